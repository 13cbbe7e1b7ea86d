"""Real trained runs for page tests: ``glyphcore.train.fit`` for 2 epochs on the ``tiny_glyphs`` data.

Training happens once per (activation, epochs, data set) and process; each test gets its own copy of the run
folder in its runs folder, so tests can write eval/ caches without seeing each other's.

    run_dir = tiny_run(runs_dir, "tiny-relu", activation="relu")   # needs GLYPH_DATA_DIR = tiny_glyphs
    with temporary_tiny_run(runs_dir, "tiny-relu") as run_dir: ...   # removed again afterwards

The trained templates live in one folder for the process: the test session's own (tests/conftest.py
sets it with :func:`use_template_dir` and removes it at the end of the session), else a temporary
folder removed when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from pathlib import Path

_TEMPLATES: dict[tuple[str, int, str], Path] = {}
_TEMPLATE_DIR: list[Path] = []  # the folder the templates are trained into (one at most)

__all__ = ["tiny_run", "temporary_tiny_run", "use_template_dir"]


def use_template_dir(path: Path | None) -> None:
    """Train templates into ``path`` from now on (None: forget the templates and the folder)."""
    _TEMPLATES.clear()
    _TEMPLATE_DIR.clear()
    if path is not None:
        _TEMPLATE_DIR.append(Path(path))


def _template_dir() -> Path:
    if not _TEMPLATE_DIR:  # outside a test session: a folder of our own, removed at exit
        path = Path(tempfile.mkdtemp(prefix="tiny-run-templates-"))
        atexit.register(shutil.rmtree, path, True)
        _TEMPLATE_DIR.append(path)
    return _TEMPLATE_DIR[0]


def tiny_run(runs_dir: Path, run_id: str, *, activation: str = "relu", epochs: int = 2) -> Path:
    """A run folder ``runs_dir/run_id`` trained by glyphcore on the current GLYPH_DATA_DIR's glyphs-52.

    The model is the report's seed_cnn at batch 50 with a higher learning rate, on 1 CPU thread
    (a few seconds on the tiny set); its accuracy is far from the report's, which the page tests
    do not need.
    """
    import torch

    from glyphcore.data import glyphs52_dir
    from glyphcore.train import fit, make_config

    # the data set itself: tests that link the session's tiny set into data folders of their own share a template
    key = (activation, epochs, str(glyphs52_dir().resolve()))
    template = _TEMPLATES.get(key)
    if template is None or not template.is_dir():
        template = Path(tempfile.mkdtemp(prefix=f"{activation}-{epochs}-", dir=_template_dir())) / "run"
        threads = torch.get_num_threads()
        try:
            fit(
                make_config("report", activation=activation, epochs=epochs, lr=2e-3, threads=1, device="cpu", seed=0),
                template,
            )
        finally:
            torch.set_num_threads(threads)
        _TEMPLATES[key] = template
    target = Path(runs_dir) / run_id
    shutil.copytree(template, target)
    return target


@contextlib.contextmanager
def temporary_tiny_run(runs_dir: Path, run_id: str, **kwargs):
    """:func:`tiny_run`, its folder deleted again when the ``with`` block ends."""
    run_dir = tiny_run(runs_dir, run_id, **kwargs)
    try:
        yield run_dir
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
