"""Outlier exposure: generated non-letters in every training batch, pushed toward "no letter in particular".

A classifier trained on letters alone answers everything with a letter, often a sure one: a scribble,
a star or a spiral lands among the letters in its features, so neither its confidence nor a feature
density tells them apart (docs/benchmarks.md, "Calibration ...": 21-35% of generated non-letters
flagged for quick runs). Outlier exposure (Hendrycks, Mazeika and Dietterich, "Deep Anomaly Detection
with Outlier Exposure", ICLR 2019) adds to each training batch a quarter as many generated non-letters
(:func:`glyphcore.testing.nonletter_strokes`: scribbles, symbols, shapes, spirals, hatching, zigzags,
specks, random strokes, in the Draw canvas's three formats, prepared exactly as the Draw page prepares
a canvas) and adds to the loss ``outlier_exposure x`` their cross-entropy to the uniform answer
(:func:`exposure_loss`). The model learns to spread its answer over the classes for them, so the
calibrated confidence, thresholded at the stated false-alarm rate on real letters, flags them.

It applies to letter data only (every class one of A-Z a-z, one channel, the glyph frame's size):
for digits or photos a drawn scribble is not the outlier that matters, and the run's log says it is
off. The curves show the letters' own loss; the exposure term is not part of them.

The pool: ``POOL_SIZE`` non-letters generated once per machine (about 15 s) and kept in the data
folder (``non-letters/pool-v<POOL_VERSION>-<n>.npy``, 100 x 100 uint8 frames, 20 MB); a batch draws
from it by (seed, step, rank), so a resumed run draws what the uninterrupted one would have, each
batch flipped and transposed at random: 8 orientations of each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from glyphcore import paths
from glyphcore.atomic import atomic_write
from glyphcore.frame import CLASSES, FRAME_SIZE

__all__ = [
    "POOL_SIZE",
    "POOL_VERSION",
    "SHARE",
    "EXPOSURE_KINDS",
    "NonLetters",
    "applies",
    "exposure_loss",
    "non_letter_pool",
    "per_batch",
]

POOL_SIZE = 2000  # generated non-letters kept per machine
POOL_VERSION = 2  # bump when the generator or the preparation changes: a new file is made
POOL_SEED = 3_000_000  # far from the seeds calibration (770,000) and bench/trust.py (100, 31,000) draw
SHARE = 0.25  # non-letters per letter in a batch
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
    """Whether outlier exposure applies to a data set: every class a letter (``None``: classes not known,
    not checked), one channel, the glyph frame's size."""
    letters = classes is None or (bool(classes) and all(c in CLASSES for c in classes))
    return letters and list(image_shape) == [1, FRAME_SIZE, FRAME_SIZE]


def per_batch(batch_size: int) -> int:
    """Non-letters added to a step of ``batch_size`` letters: ``SHARE`` of it, at least one."""
    return max(1, round(batch_size * SHARE))


def _pool_path(n: int) -> Path:
    return paths.data_dir() / "non-letters" / f"pool-v{POOL_VERSION}-{n}.npy"


def _generate(n: int) -> np.ndarray:
    """``n`` non-letters, kinds and canvas formats in turn, as the Draw page prepares them (N x 1 x 100 x 100 uint8)."""
    from glyphcore.infer.preprocess import preprocess
    from glyphcore.testing import CANVAS_STYLES, nonletter_strokes, render_canvas

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
    except OSError as e:  # a read-only or full data folder: train with the pool in memory
        _LOG.warning("could not keep the non-letter pool in %s: %s", path, e)
    return pool


def exposure_loss(logits: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the non-letters' logits (N x K) to the uniform answer over the K classes."""
    z = logits.float()
    return (torch.logsumexp(z, dim=1) - z.mean(dim=1)).mean()


class NonLetters:
    """The pool on the training device and the draw of each step's non-letters.

    Args:
        batch_size: the letters per step, all processes together (the non-letters are ``SHARE`` of it).
        device: where the batches are made.
        pool: uint8 N x 1 x H x W (default :func:`non_letter_pool`).
    """

    def __init__(self, batch_size: int, device: torch.device, pool: np.ndarray | None = None) -> None:
        self.pool = torch.from_numpy(non_letter_pool() if pool is None else pool).to(device)
        self.per_batch = per_batch(batch_size)

    def batch(self, seed: int, step: int, shard: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """The non-letters of one step (float in [0, 1], channels_last), the same for the same (seed, step).

        Args:
            seed: the run's seed.
            step: the optimizer step.
            shard: this process's share of the step's draw (data parallel: ``Distributed.shard``), so
                that the processes together see what one process would.
        """
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(self.pool.shape[0], (self.per_batch,), generator=gen)
        idx = (idx if shard is None else shard(idx)).to(self.pool.device)
        flip, transpose = torch.rand(2, generator=gen).tolist()
        x = self.pool[idx].float().div_(255.0)
        x = x.flip(3) if flip < 0.5 else x
        x = x.transpose(2, 3) if transpose < 0.5 else x
        return x.contiguous(memory_format=torch.channels_last)
