"""One split of a data set in memory (:class:`ImageSet`), the one form every data source loads into."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ImageSet", "content_hash"]


@dataclass
class ImageSet:
    """One split of a data set, in memory (or memory-mapped).

    Attributes:
        images: uint8 array N x C x H x W (C=1 for glyphs/MNIST, 3 for CIFAR); may be a read-only memmap.
        labels: int64 array N; label i <-> classes[i].
        classes: class names.
        source: the source spec it came from ("glyphs-52", "course:/path", "folder:/p", "torchvision:MNIST").
        split: "train" | "valid" | "test" | "seen", or the source's own split name.
        font_ids: int32 array N, index into meta["fonts"] (glyphs-52 only), else None.
        meta: {"id", "hash", "fonts", "frame", ...}: what a run records about its data.
        size_modes: uint8 array N, index into meta["size_modes"]["names"] ("cap": cap-normalised,
            "em": one em size; glyphs-52 only), else None.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    source: str
    split: str
    font_ids: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    size_modes: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def content_hash(arrays: list[np.ndarray]) -> str:
    """sha256 over the raw bytes of arrays, in order (with dtype and shape, so a reshape changes it)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data.cast("B"))
    return h.hexdigest()
