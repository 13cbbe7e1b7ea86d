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

The pool of non-letters is the machine's (:mod:`glyphcore.infer.nonletter_pool`); a batch draws
from it by (seed, step, rank), so a resumed run draws what the uninterrupted one would have, each
batch flipped and transposed at random: 8 orientations of each.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from glyphcore.infer.nonletter_pool import non_letter_pool

__all__ = ["SHARE", "NonLetters", "exposure_loss", "per_batch"]

SHARE = 0.25  # non-letters per letter in a batch


def per_batch(batch_size: int) -> int:
    """Non-letters added to a step of ``batch_size`` letters: ``SHARE`` of it, at least one."""
    return max(1, round(batch_size * SHARE))


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
