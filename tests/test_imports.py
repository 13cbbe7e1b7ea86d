"""Imports run downward only: no cycle between glyphcore's packages, nor between the modules of one package.

Every ``import`` statement counts, at module level and inside functions alike (an import inside a
function hides a cycle from Python's import machinery, not from a reader). Imports under
``if TYPE_CHECKING:`` count too: a type a module names is a dependency of that module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import glyphcore

ROOT = Path(glyphcore.__file__).resolve().parent  # the glyphcore package folder


def module_name(path: Path) -> str:
    """glyphcore/infer/predictor.py -> glyphcore.infer.predictor; a package's __init__ -> the package."""
    parts = ["glyphcore", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imported(path: Path, name: str, modules: dict[str, Path]) -> Iterator[str]:
    """The glyphcore modules one file imports (a ``from pkg import sub`` names the sub-module when it is one)."""
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("glyphcore"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            if not base.startswith("glyphcore"):
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                yield sub if sub in modules else base


def package_of(module: str) -> str:
    """The node of the package graph: glyphcore.infer.predictor -> glyphcore.infer; glyphcore.errors stays."""
    parts = module.split(".")
    return ".".join(parts[:2])


def edges() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(package graph, module graph inside each package), as adjacency sets."""
    modules = all_modules()
    pkgs: dict[str, set[str]] = {}
    mods: dict[str, set[str]] = {}
    for name, path in modules.items():
        for target in imported(path, name, modules):
            target = target if target in modules else target.rsplit(".", 1)[0]
            if target == name or target not in modules:
                continue
            a, b = package_of(name), package_of(target)
            if a != b:
                if a != "glyphcore" and b != "glyphcore":
                    pkgs.setdefault(a, set()).add(b)
            elif name != a:  # inside one package (its __init__ gathers the package's names: not a member)
                if target != b:
                    mods.setdefault(name, set()).add(target)
    return pkgs, mods


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one node (Tarjan), as a sorted list of its nodes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def describe(found: list[list[str]], graph: dict[str, set[str]]) -> str:
    """One line per cycle: its members, the pairs that import each other, and every import inside it."""
    lines = []
    for comp in found:
        inside = sorted(f"{a} -> {b}" for a in comp for b in graph.get(a, ()) if b in comp)
        mutual = sorted(
            f"{a} <-> {b}" for a in comp for b in graph.get(a, ()) if b in comp and a < b and a in graph.get(b, ())
        )
        pairs = f" (each way: {', '.join(mutual)})" if mutual else ""
        lines.append(f"cycle among {', '.join(comp)}{pairs}: {'; '.join(inside)}")
    return "\n".join(lines)


def test_the_cycle_finder_names_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    found = cycles(graph)
    assert found == [["a", "b", "c"]]
    assert "a -> b" in describe(found, graph) and "c -> a" in describe(found, graph)


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    mods = {"glyphcore.x": tmp_path / "x.py", "glyphcore.y": tmp_path / "y.py"}
    mods["glyphcore.x"].write_text("def f():\n    from glyphcore.y import g\n    return g\n")
    assert list(imported(mods["glyphcore.x"], "glyphcore.x", mods)) == ["glyphcore.y"]


def test_no_cycle_between_packages() -> None:
    pkgs, _ = edges()
    found = cycles(pkgs)
    assert not found, "glyphcore's packages import each other in a circle:\n" + describe(found, pkgs)


def test_no_cycle_inside_a_package() -> None:
    _, mods = edges()
    found = cycles(mods)
    assert not found, "modules of one package import each other in a circle:\n" + describe(found, mods)
