"""Where Glyph Explorer keeps its files: the data folder and the runs folder.

Both sit in the repository (git-ignored) unless an environment variable points elsewhere:
``GLYPH_DATA_DIR`` for data sets, ``GLYPH_RUNS_DIR`` for run folders. ``GLYPH_STARTER_DIR`` moves
the starter model's run folder (tests use a copy, so that evaluating it never rewrites the
committed files). ``GLYPH_CACHE_DIR`` moves what glyphcore makes once per machine and can always make
again (the generated non-letter pool), by default kept in the data folder. Tests point all four at
temporary folders (the cache at one folder for the whole session, so the pool is made once).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "cache_dir", "data_dir", "runs_dir", "starter_dir"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Folder holding built data sets (``glyphs-52/``) and torchvision downloads (``torchvision/``)."""
    return Path(os.environ.get("GLYPH_DATA_DIR") or REPO_ROOT / "data")


def cache_dir() -> Path:
    """Folder holding what glyphcore generates once per machine and can make again (``non-letters/``);
    the data folder unless ``GLYPH_CACHE_DIR`` says otherwise."""
    return Path(os.environ.get("GLYPH_CACHE_DIR") or data_dir())


def runs_dir() -> Path:
    """Folder holding one sub-folder per training run."""
    return Path(os.environ.get("GLYPH_RUNS_DIR") or REPO_ROOT / "checkpoints")


def starter_dir() -> Path:
    """The committed starter model's run folder (``--run starter``)."""
    return Path(os.environ.get("GLYPH_STARTER_DIR") or REPO_ROOT / "checkpoints" / "starter")
