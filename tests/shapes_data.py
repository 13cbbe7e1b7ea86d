"""Tiny synthetic image sets for the training tests: four easy classes of bars and boxes.

Made in memory (an ImageSet-like object) or written in the course layout
(``<root>/<split>/<hex>/<i>_<hex>.npy``) for runs started as separate processes. A few hundred
28x28 images: an epoch takes a fraction of a second on one CPU thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASSES = ["A", "B", "C", "D"]  # A: horizontal bar, B: vertical bar, C: box, D: cross
SIZE = 28  # px


@dataclass
class ShapesSet:
    """The fields of glyphcore.data.ImageSet that training reads."""

    images: np.ndarray  # uint8 N x 1 x SIZE x SIZE
    labels: np.ndarray  # int64 N
    classes: list[str]
    source: str = "shapes"
    split: str = "train"
    font_ids: np.ndarray | None = None
    meta: dict = field(default_factory=lambda: {"id": "shapes", "hash": "0" * 16, "frame": None})

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def shapes_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy images (uint8 N x 1 x 28 x 28) and their labels (int64 N)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    x = np.zeros((n, 1, SIZE, SIZE), np.int32)
    for i, c in enumerate(labels):
        r, q = rng.integers(7, SIZE - 7, 2)
        if c in (0, 3):
            x[i, 0, r - 1 : r + 2, 4:-4] = 255
        if c in (1, 3):
            x[i, 0, 4:-4, q - 1 : q + 2] = 255
        if c == 2:
            x[i, 0, 6:-6, 6:-6] = 255
    x += rng.integers(0, 70, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8), labels.astype(np.int64)


def shapes_set(n: int, seed: int, split: str = "train") -> ShapesSet:
    images, labels = shapes_images(n, seed)
    return ShapesSet(images, labels, list(CLASSES), split=split)


def write_course_layout(root: Path, counts: dict[str, int] | None = None) -> Path:
    """Write train/valid splits in the course layout under ``root``; returns ``root``."""
    counts = counts or {"train": 200, "valid": 60}
    for k, (split, n) in enumerate(counts.items()):
        images, labels = shapes_images(n, seed=100 + k)
        for i, (img, lab) in enumerate(zip(images, labels)):
            hx = format(ord(CLASSES[lab]), "x")
            d = root / split / hx
            d.mkdir(parents=True, exist_ok=True)
            np.save(d / f"{i}_{hx}.npy", img[0])
    return root


def lenet_train_argv(data: str, run_dir: Path, epochs: int, *extra: str) -> list[str]:
    """The ``glyphcore train`` arguments for lenet on ``data`` (e.g. ``course:<root>`` of
    :func:`write_course_layout`), one CPU thread, batch 20, into ``run_dir``, without a progress bar."""
    return [
        "train",
        "--data",
        data,
        "--model",
        "lenet",
        "--epochs",
        str(epochs),
        "--batch-size",
        "20",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--run-dir",
        str(run_dir),
        "--progress",
        "off",
        *extra,
    ]
