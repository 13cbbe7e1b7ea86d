"""Shared fixtures. ``tiny_glyphs``: a tiny glyphs-52 built once per session.

It is built from :func:`glyphcore.data.fonts.sample_fonts` (11 font instances of 7 design families
from the Streamlit wheel, Pillow and Hershey-Fonts: the same on every machine), 10 / 4 / 4 images
per class in train / valid / test and 2 in "seen" (1,040 images, about a second), into a session
temp folder; GLYPH_DATA_DIR points there for the rest of the session.

Test modules in the sub-folders import the helper modules here (``shapes_data``, ``run_folders``,
``tiny_runs``) by name: this folder has no ``__init__.py``, so pytest puts it on ``sys.path`` when it
loads this conftest. Test file names are unique across the folders for the same reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TINY_PER_CLASS = (10, 4, 4)
REPO_STARTER = Path(__file__).resolve().parent.parent / "checkpoints" / "starter"


@contextlib.contextmanager
def session_environ(name: str, value: Path) -> Iterator[Path]:
    """Set the environment variable ``name`` to ``value`` (which processes started meanwhile inherit),
    put back as it was afterwards."""
    previous = os.environ.get(name)
    os.environ[name] = str(value)
    try:
        yield value
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@pytest.fixture(scope="session", autouse=True)
def starter_copy(tmp_path_factory) -> Path:
    """Point GLYPH_STARTER_DIR at a copy of the committed starter run for the whole session.

    Evaluating a run writes its eval/ folder; on the tiny test data that would rewrite the
    committed starter's results. Servers started by the browser tests inherit the variable.
    """
    import shutil

    target = tmp_path_factory.mktemp("starter") / "starter"
    if REPO_STARTER.is_dir():
        shutil.copytree(REPO_STARTER, target)
    with session_environ("GLYPH_STARTER_DIR", target):
        yield target


@pytest.fixture(scope="session", autouse=True)
def machine_cache(tmp_path_factory) -> Path:
    """Point GLYPH_CACHE_DIR at one folder for the session: the generated non-letter pool (about 15 s
    to make) is made once and shared by every test's data folder and every run process they start."""
    with session_environ("GLYPH_CACHE_DIR", tmp_path_factory.mktemp("glyph-cache")) as target:
        yield target


@pytest.fixture(scope="session", autouse=True)
def tiny_run_templates(tmp_path_factory) -> Path:
    """The folder tests/tiny_runs.py trains its template runs into, removed at the end of the session
    (a template is about 11 MB)."""
    import shutil

    import tiny_runs

    root = tmp_path_factory.mktemp("tiny-run-templates")
    tiny_runs.use_template_dir(root)
    yield root
    tiny_runs.use_template_dir(None)
    shutil.rmtree(root, ignore_errors=True)


TINY_SEEN_PER_CLASS = 2
TINY_SEED = 0


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    """An empty runs folder that glyphcore (and an app under test) use: GLYPH_RUNS_DIR points at it."""
    d = tmp_path / "runs"
    d.mkdir()
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def tiny_glyphs(tmp_path_factory) -> Path:
    """Build a tiny glyphs-52 and set GLYPH_DATA_DIR to its data folder for the session.

    Returns:
        The data set folder (``$GLYPH_DATA_DIR/glyphs-52``); ``load_dataset("glyphs-52", split)``
        reads it.
    """
    from glyphcore.data import build_glyphs52
    from glyphcore.data.fonts import sample_fonts

    with session_environ("GLYPH_DATA_DIR", tmp_path_factory.mktemp("glyph-data")):
        yield build_glyphs52(
            per_class=TINY_PER_CLASS, seen_per_class=TINY_SEEN_PER_CLASS, seed=TINY_SEED, fonts=sample_fonts()
        )


@pytest.fixture
def standin_process():
    """A live process whose command line names glyphcore, as a training process's does, so that a
    run pointing at its pid counts as running; ended (by pid) after the test."""
    procs: list[subprocess.Popen] = []

    def start() -> int:
        # runs.pid_alive looks for "-m glyphcore..." in the command line; after -c they are plain argv
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "-m", "glyphcore.standin"])
        procs.append(p)
        return p.pid

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=10)
