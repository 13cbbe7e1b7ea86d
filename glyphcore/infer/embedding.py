"""A run's penultimate features on a class-balanced sample of a split, for the Runs page's embedding map.

The sample is the same seeded, class-balanced subset the nearest-neighbour search uses
(``per_class`` images of each class); each image's features are the input of the model's last
``nn.Linear`` (:func:`glyphcore.infer.neighbours.penultimate_features`, one ``Predictor.run``), and its prediction
comes from the same forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glyphcore.errors import DataError
from glyphcore.infer.forward import PENULTIMATE
from glyphcore.infer.neighbours import balanced_subset, penultimate_features
from glyphcore.infer.predictor import Predictor

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


def split_features(
    predictor: Predictor, split: str = "valid", *, source: str | None = None, per_class: int = 10, seed: int = 0
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
    idx = balanced_subset(data, per_class, seed)
    images = np.asarray(data.images[idx])
    out = penultimate_features(predictor, images, batch_size=_BATCH)
    return SplitFeatures(
        indices=idx.astype(np.int64),
        features=out.features[PENULTIMATE].numpy() if len(idx) else np.zeros((0, 0), np.float32),
        labels=np.asarray(data.labels)[idx].astype(np.int64),
        preds=out.logits.argmax(dim=1).numpy().astype(np.int64) if len(idx) else np.zeros(0, np.int64),
        classes=list(data.classes),
        images=images,
    )
