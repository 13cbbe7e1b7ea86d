"""Whether an input looks like a letter at all: a checkpoint's stored thresholds applied to a batch.

The thresholds are fitted by :mod:`glyphcore.infer.calibration` (its module docstring describes the
stored ``"letter"`` entry and why the two scores were chosen); this module only reads them, so the
Predictor can judge every prediction without depending on the fitting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from glyphcore.checkpoint import TEMPERATURE_RANGE
from glyphcore.infer.forward import PENULTIMATE, last_module_of_type

__all__ = [
    "MAX_JUDGED_FEATURES",
    "LetterJudgement",
    "calibration_of",
    "judge_letters",
    "judged_features",
    "nearest_class_distances",
    "temperature_of",
]

# The feature-distance judgement needs an F x F covariance and its inverse: a model whose penultimate
# features are wider than this (tiny_conv flattens whole feature maps) is judged by its calibrated
# confidence alone (inverting a 20,000 x 20,000 matrix would take hours and GB).
MAX_JUDGED_FEATURES = 2048


def judged_features(model: nn.Module) -> tuple[str, ...]:
    """The features the judgement reads of this model: ``("penultimate",)``, or none for a model
    without a linear layer or whose penultimate features are wider than ``MAX_JUDGED_FEATURES``."""
    layer = last_module_of_type(model, nn.Linear)
    return (PENULTIMATE,) if isinstance(layer, nn.Linear) and layer.in_features <= MAX_JUDGED_FEATURES else ()


@dataclass
class LetterJudgement:
    """Whether each input of a batch looks like a letter, and why not.

    Attributes:
        letter: (N,) bool, True when judged a letter.
        confidence: (N,) calibrated top probability.
        distance: (N,) squared Mahalanobis distance to the nearest class mean (NaN without features).
        reasons: one sentence per input, "" for a letter.
    """

    letter: np.ndarray
    confidence: np.ndarray
    distance: np.ndarray
    reasons: list[str]


def nearest_class_distances(
    features: torch.Tensor, means: torch.Tensor, precision: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared Mahalanobis distance of each feature vector to its nearest class mean, and that class."""
    f = features.double().cpu()
    mu, prec = means.double().cpu(), precision.double().cpu()
    fp = f @ prec
    # (f - mu)^T P (f - mu) = f P f - 2 f P mu + mu P mu, for every (sample, class) at once
    d = (fp * f).sum(1, keepdim=True) - 2 * fp @ mu.T + ((mu @ prec) * mu).sum(1)[None]
    dist, nearest = d.clamp_min(0).min(dim=1)
    return dist.float(), nearest


def judge_letters(
    logits: torch.Tensor,
    features: torch.Tensor | None,
    calibration: dict[str, Any] | None,
    classes: list[str] | None = None,
) -> LetterJudgement | None:
    """Judge a batch with a checkpoint's stored thresholds (``calibration["letter"]``).

    Args:
        logits: N x K raw logits.
        features: N x F penultimate features, or None.
        calibration: the checkpoint's ``"calibration"`` dict; None or no ``"letter"`` entry: no judgement.
        classes: class names, for the reasons.

    Returns:
        A :class:`LetterJudgement`, or None when the checkpoint has no fitted judgement.
    """
    if not calibration or not isinstance(calibration.get("letter"), dict):
        return None
    spec = calibration["letter"]
    t = float(calibration.get("temperature", 1.0))
    probs = (logits.float() / t).softmax(dim=1)
    conf, preds = probs.max(dim=1)
    n = logits.shape[0]
    dist = torch.full((n,), float("nan"))
    means, prec = spec.get("means"), spec.get("precision")
    max_d = spec.get("max_distance")
    if (
        features is not None
        and isinstance(means, torch.Tensor)
        and isinstance(prec, torch.Tensor)
        and max_d is not None
        and means.shape[1] == features.shape[1]
    ):
        dist = nearest_class_distances(features, means, prec)[0]
    min_c = float(spec.get("min_confidence", 0.0))
    conf_np, dist_np, pred_np = conf.cpu().numpy(), dist.numpy(), preds.cpu().numpy()
    letter = np.ones(n, dtype=bool)
    reasons = []
    for i in range(n):
        name = classes[int(pred_np[i])] if classes else str(int(pred_np[i]))
        far = max_d is not None and math.isfinite(dist_np[i]) and dist_np[i] > float(max_d)
        unsure = conf_np[i] < min_c
        reasons.append(_reason(far, unsure, name, float(conf_np[i]), min_c, _checked_share(spec)))
        letter[i] = not (far or unsure)
    return LetterJudgement(letter=letter, confidence=conf_np, distance=dist_np, reasons=reasons)


def _checked_share(spec: dict[str, Any]) -> float:
    """The share of real letters the distance threshold lets through (older checkpoints: 1 - distance_quantile)."""
    rate = spec.get("false_alarm_rate", spec.get("distance_quantile", 0.05))
    ok = not isinstance(rate, bool) and isinstance(rate, int | float) and 0.0 <= rate < 1.0
    return 1.0 - float(rate) if ok else math.nan


def _reason(far: bool, unsure: bool, name: str, conf: float, min_c: float, share: float) -> str:
    """One plain sentence for a verdict; its numbers agree with it ("" for a letter).

    A confident answer whose features are unusual is "unsure" with the best guess, never "not a
    letter": "not a letter" needs both an unusual input and no letter the model is sure of.
    """
    beyond = f"further from them than {share:.1%} of real letters are" if math.isfinite(share) else "far from them"
    if far and unsure:
        return (
            f"not a letter: it is unlike every letter the model learned ({beyond}), and even its best guess, "
            f"{name}, gets only {conf:.0%} confidence"
        )
    if far:
        return (
            f"unsure: the model reads it as {name}, but in its features the drawing is unlike the letters "
            f"it learned ({beyond}), so that reading may be wrong"
        )
    if unsure:
        return (
            f"unsure: the best guess, {name}, has only {conf:.0%} confidence (letters the model "
            f"knows get at least {min_c:.0%})"
        )
    return ""


def calibration_of(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """A checkpoint's calibration dict, or None when it was never calibrated (or is malformed)."""
    cal = ckpt.get("calibration")
    if not isinstance(cal, dict):
        return None
    t = cal.get("temperature")
    if isinstance(t, bool) or not isinstance(t, int | float) or not TEMPERATURE_RANGE[0] <= t <= TEMPERATURE_RANGE[1]:
        return None  # load_checkpoint refuses such a file; a dict built another way is read as uncalibrated
    return cal


def temperature_of(ckpt: dict[str, Any]) -> float:
    """The checkpoint's temperature, 1.0 when it was never calibrated."""
    cal = calibration_of(ckpt)
    return float(cal["temperature"]) if cal else 1.0
