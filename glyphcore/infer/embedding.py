"""A run's penultimate features on a class-balanced sample of a split, for the Runs page's embedding map.

The sample is the same seeded, class-balanced subset the nearest-neighbour search uses
(``per_class`` images of each class); each image's features are the input of the model's last
``nn.Linear`` (:func:`glyphcore.infer.neighbours.penultimate_features`), and its prediction comes from
the same forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from glyphcore.errors import ConfigError, DataError
from glyphcore.infer.explain import last_module_of_type
from glyphcore.infer.neighbours import _subset
from glyphcore.infer.preprocess import frame_to_tensor

__all__ = ["SplitFeatures", "split_features"]

_BATCH = 256  # images per forward pass


@dataclass(frozen=True)
class SplitFeatures:
    """Features of a sample of one split.

    Attributes:
        indices: the images' positions in the split (sorted), int64 (N,).
        features: float32 N x F, the input of the model's last linear layer.
        labels: true class index per image (N,).
        preds: predicted class index per image (N,).
        classes: class names (label order).
        images: the images, uint8 N x C x H x W, as stored.
    """

    indices: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    preds: np.ndarray
    classes: list[str]
    images: np.ndarray


@torch.inference_mode()
def split_features(
    predictor: Any, split: str = "valid", *, source: str | None = None, per_class: int = 10, seed: int = 0
) -> SplitFeatures:
    """Penultimate features and predictions of ``per_class`` images of each class of a split.

    Args:
        predictor: from :func:`glyphcore.infer.load_predictor`.
        split: which split of the run's data set.
        source: the data set; default the one the run was trained on.
        per_class: images per class (52 x 10 = 520 points by default).
        seed: which images form the sample.

    Raises:
        DataError: the data set is missing, or has other classes than the model.
        ConfigError: the model has no linear layer.
    """
    from glyphcore.data import load_dataset

    data = load_dataset(source or predictor.data_source, split)
    if list(data.classes) != list(predictor.classes):
        raise DataError(
            f"{source or predictor.data_source}/{split} has other classes than the model "
            f"({len(data.classes)} vs {len(predictor.classes)}): the map needs the model's own data"
        )
    layer = last_module_of_type(predictor.model, nn.Linear)
    if layer is None:
        raise ConfigError(f"{type(predictor.model).__name__} has no nn.Linear layer: it has no penultimate features")
    idx = _subset(data, per_class, seed)
    images = np.asarray(data.images[idx])
    feats, preds = [], []
    store: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(lambda _m, args: store.append(args[0].detach().float().flatten(1)))
    try:
        for s in range(0, len(idx), _BATCH):
            x = frame_to_tensor(images[s : s + _BATCH], predictor.input_size, predictor.in_channels).to(
                predictor.device
            )
            with predictor.lock:
                logits = predictor.model(x)
            feats.append(store.pop().cpu())
            preds.append(logits.argmax(dim=1).cpu())
    finally:
        handle.remove()
    return SplitFeatures(
        indices=idx.astype(np.int64),
        features=torch.cat(feats).numpy() if feats else np.zeros((0, 0), np.float32),
        labels=np.asarray(data.labels)[idx].astype(np.int64),
        preds=torch.cat(preds).numpy().astype(np.int64) if preds else np.zeros(0, np.int64),
        classes=list(data.classes),
        images=images,
    )
