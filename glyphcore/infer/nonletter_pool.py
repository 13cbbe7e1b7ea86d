"""The machine's pool of generated non-letters: what outlier exposure trains on and the letter judgement contrasts.

``POOL_SIZE`` non-letters (:func:`glyphcore.testing.nonletter_strokes`: scribbles, symbols, shapes,
spirals, hatching, zigzags, specks, random strokes, in the Draw canvas's three formats, prepared
exactly as the Draw page prepares a canvas) are generated once per machine (about 15 s) and kept in the
cache folder (:func:`glyphcore.paths.cache_dir`: the data folder unless ``GLYPH_CACHE_DIR`` moves it) as
``non-letters/pool-v<POOL_VERSION>-<n>.npy`` (100 x 100 uint8 frames, 20 MB). Training draws from it
(:mod:`glyphcore.train.nonletters`); calibration fits the judgement's contrast of letters against it
(:mod:`glyphcore.infer.contrast`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from glyphcore import paths
from glyphcore.atomic import atomic_write
from glyphcore.frame import CLASSES, FRAME_SIZE
from glyphcore.infer.preprocess import preprocess
from glyphcore.testing import CANVAS_STYLES, nonletter_strokes, render_canvas

__all__ = ["EXPOSURE_KINDS", "POOL_SEED", "POOL_SIZE", "POOL_VERSION", "applies", "non_letter_pool"]

POOL_SIZE = 2000  # generated non-letters kept per machine
POOL_VERSION = 2  # bump when the generator or the preparation changes: a new file is made
POOL_SEED = 3_000_000  # far from the seeds calibration (770,000) and bench/trust.py (100, 31,000) draw
# What the pool draws: every kind of glyphcore.testing.nonletter_strokes (docs/benchmarks.md, "Outlier
# exposure", measures a pool without the symbols and specks too: how the exposure carries over to kinds
# it never saw).
EXPOSURE_KINDS = (
    "scribble",
    "symbol",
    "square",
    "triangle",
    "star",
    "spiral",
    "hatching",
    "zigzag",
    "speck",
    "random_strokes",
)
_LOG = logging.getLogger(__name__)


def applies(classes: list[str] | None, image_shape: list[int] | tuple[int, ...]) -> bool:
    """Whether generated non-letters are the outliers that matter for a data set: every class a letter
    (``None``: classes not known, not checked), one channel, the glyph frame's size. For digits or
    photos a drawn scribble is not."""
    letters = classes is None or (bool(classes) and all(c in CLASSES for c in classes))
    return letters and list(image_shape) == [1, FRAME_SIZE, FRAME_SIZE]


def _pool_path(n: int) -> Path:
    return paths.cache_dir() / "non-letters" / f"pool-v{POOL_VERSION}-{n}.npy"


def _generate(n: int) -> np.ndarray:
    """``n`` non-letters, kinds and canvas formats in turn, as the Draw page prepares them (N x 1 x 100 x 100 uint8)."""
    frames: list[np.ndarray] = []
    i = 0
    while len(frames) < n:
        strokes = nonletter_strokes(EXPOSURE_KINDS[i % len(EXPOSURE_KINDS)], seed=POOL_SEED + i)
        prepared = preprocess(render_canvas(strokes, style=CANVAS_STYLES[i % len(CANVAS_STYLES)]))
        if not prepared.empty:  # a speck below the ink minimum is never predicted, so never trained on
            frames.append(prepared.preview)
        i += 1
    return np.stack(frames)[:, None]


def non_letter_pool(n: int | None = None) -> np.ndarray:
    """The machine's pool of ``n`` (default ``POOL_SIZE``) generated non-letters, made on first use and
    kept in the data folder.

    A damaged or foreign file is not trusted: the pool is generated again in memory (and the file
    replaced only when it could not be read as the pool).
    """
    n = POOL_SIZE if n is None else n
    path = _pool_path(n)
    try:
        pool = np.load(path, allow_pickle=False)
        if pool.dtype == np.uint8 and pool.shape == (n, 1, FRAME_SIZE, FRAME_SIZE):
            return pool
    except (OSError, ValueError):
        pass
    pool = _generate(n)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as f:
            np.save(f, pool, allow_pickle=False)
    except OSError as e:  # a read-only or full data folder: work with the pool in memory
        _LOG.warning("could not keep the non-letter pool in %s: %s", path, e)
    return pool
