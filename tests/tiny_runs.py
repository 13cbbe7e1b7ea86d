"""Real trained runs for page tests: ``glyphcore.train.fit`` for 2 epochs on the ``tiny_glyphs`` data.

Training happens once per (activation, epochs) and process; each test gets its own copy of the run
folder in its runs folder, so tests can write eval/ caches without seeing each other's.

    run_dir = tiny_run(runs_dir, "tiny-relu", activation="relu")   # needs GLYPH_DATA_DIR = tiny_glyphs
    with temporary_tiny_run(runs_dir, "tiny-relu") as run_dir: ...   # removed again afterwards
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

_TEMPLATES: dict[tuple[str, int, str], Path] = {}


def tiny_run(runs_dir: Path, run_id: str, *, activation: str = "relu", epochs: int = 2) -> Path:
    """A run folder ``runs_dir/run_id`` trained by glyphcore on the current GLYPH_DATA_DIR's glyphs-52.

    The model is the report's seed_cnn at batch 50 with a higher learning rate, on 1 CPU thread
    (a few seconds on the tiny set); its accuracy is far from the report's, which the page tests
    do not need.
    """
    import os

    import torch

    from glyphcore.train import fit, make_config

    key = (activation, epochs, os.environ.get("GLYPH_DATA_DIR", ""))
    template = _TEMPLATES.get(key)
    if template is None or not template.is_dir():
        template = Path(tempfile.mkdtemp(prefix=f"tiny-run-{activation}-")) / "run"
        threads = torch.get_num_threads()
        try:
            fit(make_config("report", activation=activation, epochs=epochs, lr=2e-3, threads=1, device="cpu",
                            seed=0), template)  # fmt: skip
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
