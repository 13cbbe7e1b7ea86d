"""requirements.txt (what `pip install -r` and Streamlit's deploy tooling read) agrees with pyproject.toml's
runtime dependencies and with the versions constraints.txt pins."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
RANGES = {"torch", "torchvision"}  # left to the registry's build for the machine (CPU or CUDA)


def _requirements(path: Path) -> dict[str, Requirement]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    reqs = [Requirement(line) for line in lines if line]
    return {canonicalize_name(r.name): r for r in reqs}


def test_requirements_are_pyprojects_runtime_dependencies_at_the_pinned_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}
    pinned = _requirements(ROOT / "constraints.txt")
    wanted = _requirements(ROOT / "requirements.txt")
    assert set(wanted) == set(declared)  # every runtime dependency, nothing else (no test or export tools)
    for name, req in wanted.items():
        assert not req.extras and req.marker is None, name
        if name in RANGES:
            assert req.specifier == declared[name].specifier, name  # the same range as pyproject.toml
            continue
        (spec,) = req.specifier  # exactly one ==version
        assert spec.operator == "==", name
        assert pinned[name].specifier.contains(spec.version), f"{name}: constraints.txt pins {pinned[name]}"
        assert declared[name].specifier.contains(spec.version), f"{name}: pyproject.toml wants {declared[name]}"
