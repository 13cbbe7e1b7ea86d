"""The training glyphs nearest to a drawing: what a model has seen that looks like what you drew.

A fixed, class-balanced subset of a run's training split (``per_class`` images of each class, drawn
with a seed) is the reference. Distances are measured in one of two spaces:

* ``"pixels"``: the model's input image, smoothed by a 4x4 average (so a stroke a few pixels off
  still overlaps), Euclidean distance;
* ``"features"``: the model's penultimate features (the input of its last ``nn.Linear``), cosine
  distance: what the classifier itself compares.

The subset and its embeddings are cached per process (keyed by data set hash, checkpoint file and
its mtime), so only the first query of a run pays for embedding the subset.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glyphcore.errors import ConfigError, DataError
from glyphcore.infer.forward import PENULTIMATE, Outputs, last_module_of_type
from glyphcore.infer.predictor import Predictor
from glyphcore.infer.preprocess import frame_to_tensor

__all__ = ["SPACES", "Neighbour", "balanced_subset", "nearest_glyphs", "penultimate_features"]

SPACES = ("pixels", "features")
_POOL = 4  # px: the pixel space averages 4x4 blocks (100 px glyph -> 25 x 25)
_BATCH = 256  # images per forward pass when embedding the subset
_CACHE_MAX = 8  # (run, subset) embeddings kept per process
_cache: dict[tuple, dict[str, Any]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Neighbour:
    """One training glyph near the query.

    Attributes:
        index: its position in the split.
        label: its class name.
        distance: Euclidean (pixels) or cosine (features) distance to the query; smaller is nearer.
        image: the glyph, uint8 H x W (grey) as stored in the data set.
    """

    index: int
    label: str
    distance: float
    image: np.ndarray


def penultimate_features(predictor: Predictor, images: Any, batch_size: int = _BATCH) -> Outputs:
    """Logits and penultimate features (the input of the last ``nn.Linear``, N x F) of a batch.

    Args:
        predictor: from :func:`glyphcore.infer.load_predictor`.
        images: glyph arrays or model input (anything :meth:`Predictor.run` takes).
        batch_size: images per forward pass.

    Raises:
        ConfigError: the model has no linear layer.
    """
    if last_module_of_type(predictor.model, nn.Linear) is None:
        raise ConfigError(f"{type(predictor.model).__name__} has no nn.Linear layer: it has no penultimate features")
    return predictor.run(images, features=(PENULTIMATE,), batch_size=batch_size)


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """N x C x H x W in [0, 1] -> N x D smoothed pixel vectors."""
    return F.avg_pool2d(x.float(), _POOL, ceil_mode=True).flatten(1).cpu()


def balanced_subset(data: Any, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of up to ``per_class`` images of each class."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels)
    picks = []
    for k in range(len(data.classes)):
        idx = np.flatnonzero(labels == k)
        if idx.size > per_class:
            idx = rng.choice(idx, per_class, replace=False)
        picks.append(idx)
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.int64)


def _reference(predictor: Predictor, space: str, source: str, split: str, per_class: int, seed: int) -> dict[str, Any]:
    """The cached subset (images, labels, indices) and its embedding for one predictor and space."""
    from glyphcore.data import load_dataset

    data = load_dataset(source, split)
    if list(data.classes) != list(predictor.classes):
        raise DataError(
            f"{source}/{split} has other classes than the model ({len(data.classes)} vs {len(predictor.classes)}): "
            f"nearest neighbours need the data the model was trained on"
        )
    mtime = predictor.path.stat().st_mtime_ns if space == "features" else 0
    key = (
        space,
        source,
        split,
        (data.meta or {}).get("hash"),
        len(data),
        per_class,
        seed,
        str(predictor.path) if space == "features" else None,
        mtime,
        tuple(predictor.input_size),
        predictor.in_channels,
    )
    with _lock:
        if key in _cache:
            return _cache[key]
    idx = balanced_subset(data, per_class, seed)
    images = np.asarray(data.images[idx])  # N x C x H x W uint8
    if space == "features":
        emb = F.normalize(penultimate_features(predictor, images).features[PENULTIMATE], dim=1)
    else:
        emb = _pixels(frame_to_tensor(images, predictor.input_size, predictor.in_channels))
    ref = {
        "indices": idx,
        "labels": np.asarray(data.labels)[idx],
        "images": images,
        "emb": emb,
        "classes": list(data.classes),
    }
    with _lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = ref
    return ref


def nearest_glyphs(
    prepared: Any,
    predictor: Predictor,
    *,
    k: int = 8,
    space: str = "pixels",
    source: str | None = None,
    split: str = "train",
    per_class: int = 20,
    seed: int = 0,
) -> list[Neighbour]:
    """The ``k`` training glyphs nearest to a prepared drawing.

    Args:
        prepared: a :class:`glyphcore.infer.Prepared` made for this predictor
            (``predictor.prepare(image)``), or a 1 x C x H x W tensor in the model's input form.
        predictor: from :func:`glyphcore.infer.load_predictor`.
        k: how many neighbours.
        space: ``"pixels"`` or ``"features"`` (see the module docstring).
        source: the data set to search; default the one the run was trained on.
        split: its split (default "train": what the model learned from).
        per_class: reference images per class (52 x 20 = 1,040 glyphs by default).
        seed: which images form the reference.

    Returns:
        Up to ``k`` :class:`Neighbour` objects, nearest first.

    Raises:
        ConfigError: an unknown space, or features of a model without a linear layer.
        DataError: the data set is not on this machine, or has other classes than the model.
    """
    if space not in SPACES:
        raise ConfigError(f"unknown space {space!r}: use one of {', '.join(SPACES)}")
    if source is None:
        source = predictor.data_source
    ref = _reference(predictor, space, source, split, per_class, seed)
    x = getattr(prepared, "tensor", prepared)[:1].float()
    if space == "features":
        q = F.normalize(penultimate_features(predictor, x).features[PENULTIMATE], dim=1)
        dist = (1.0 - ref["emb"] @ q[0]).numpy()
    else:
        # exact differences, not the matmul shortcut (whose rounding leaves an identical image at ~1e-3)
        dist = torch.cdist(_pixels(x), ref["emb"], compute_mode="donot_use_mm_for_euclid_dist")[0].numpy()
    order = np.argsort(dist, kind="stable")[: max(0, int(k))]
    return [
        Neighbour(
            index=int(ref["indices"][i]),
            label=ref["classes"][int(ref["labels"][i])],
            distance=float(dist[i]),
            image=ref["images"][i][0],
        )
        for i in order
    ]
