"""Tests leave nothing behind: a pytest session that trains tiny runs (tests/tiny_runs.py) leaves
nothing in the system temp folder, and its template runs are gone from its own folder too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# A test that trains a tiny run (a template, then a copy per test) and evaluates it.
CONSUMER = "evaluate/test_evaluate.py::test_a_checkpoint_with_another_class_list_or_no_checkpoint"


@pytest.mark.slow
def test_a_session_with_tiny_runs_leaves_no_temp_folders(tmp_path):
    temp = tmp_path / "tmp"  # the child session's system temp folder: tempfile and its children use it
    temp.mkdir()
    base = tmp_path / "base"  # pytest's own folder of per-test folders (kept by pytest, by design)
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={base}", str(TESTS / CONSUMER)],
        cwd=TESTS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout
    # torch makes one empty cache folder per user (torchinductor_<user>), shared by every session
    left = sorted(p.name for p in temp.iterdir() if not p.name.startswith("torchinductor_"))
    assert left == []
    assert not list(base.glob("tiny-run-templates*/*")), "the template runs were not removed"
