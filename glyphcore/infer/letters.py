"""Whether an input looks like a letter at all: a checkpoint's stored thresholds applied to a batch.

The thresholds are fitted by :mod:`glyphcore.infer.calibration` (its module docstring describes the
stored ``"letter"`` entry and why the two scores were chosen); this module only reads them, so the
Predictor can judge every prediction without depending on the fitting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from glyphcore.checkpoint import TEMPERATURE_RANGE
from glyphcore.infer.forward import PENULTIMATE, last_module_of_type, layer_feature

__all__ = [
    "MAX_JUDGED_BLOCKS",
    "MAX_JUDGED_FEATURES",
    "LetterJudgement",
    "block_layers",
    "calibration_of",
    "concatenated_features",
    "contrast_scores",
    "judge_letters",
    "linear_score",
    "judged_features",
    "nearest_class_distances",
    "pooled_features",
    "temperature_of",
    "unusualness",
]

# The feature-distance judgement needs an F x F covariance and its inverse: a model whose penultimate
# features are wider than this (tiny_conv flattens whole feature maps) is judged by its calibrated
# confidence alone (inverting a 20,000 x 20,000 matrix would take hours and GB).
MAX_JUDGED_FEATURES = 2048


MAX_JUDGED_BLOCKS = 4  # conv blocks whose pooled outputs the judgement reads (evenly spaced, the last kept)
# modules that end a convolution block's run of leaves: the classifier head starts at them
_HEAD = (nn.Linear, nn.Flatten, nn.Dropout, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def block_layers(model: nn.Module) -> tuple[str, ...]:
    """The module names whose outputs are the model's convolution blocks: for each ``nn.Conv2d``, the
    last leaf module before the next convolution (or before the classifier head), e.g. ``features.act1``.

    Early blocks see strokes: a scribble is unusual there even where the last layer maps it near a
    class. At most ``MAX_JUDGED_BLOCKS`` (evenly spaced, the last kept); none for a model without
    convolutions or whose blocks are wider than ``MAX_JUDGED_FEATURES`` channels.
    """
    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    conv_at = [i for i, (_, m) in enumerate(leaves) if isinstance(m, nn.Conv2d)]
    blocks = []
    for k, start in enumerate(conv_at):
        end = conv_at[k + 1] if k + 1 < len(conv_at) else len(leaves)
        run = leaves[start:end]
        head = next((j for j, (_, m) in enumerate(run) if isinstance(m, _HEAD)), len(run))
        conv = run[0][1]
        if head and isinstance(conv, nn.Conv2d) and conv.out_channels <= MAX_JUDGED_FEATURES:
            blocks.append(run[head - 1][0])
    if len(blocks) > MAX_JUDGED_BLOCKS:
        picks = np.linspace(0, len(blocks) - 1, MAX_JUDGED_BLOCKS).round().astype(int)
        blocks = [blocks[i] for i in picks]
    return tuple(blocks)


def judged_features(model: nn.Module) -> tuple[str, ...]:
    """The features the judgement reads of this model: ``"penultimate"`` (left out for a model without
    a linear layer or whose penultimate features are wider than ``MAX_JUDGED_FEATURES``) and the
    outputs of its convolution blocks (:func:`block_layers`, as ``"layer:<name>"``)."""
    layer = last_module_of_type(model, nn.Linear)
    pen = (PENULTIMATE,) if isinstance(layer, nn.Linear) and layer.in_features <= MAX_JUDGED_FEATURES else ()
    return pen + tuple(layer_feature(n) for n in block_layers(model))


def pooled_features(features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each feature as N x F: feature maps (N x C x H x W) averaged over their positions, the rest as they are."""
    return {k: v.float().mean(dim=tuple(range(2, v.ndim))) if v.ndim > 2 else v for k, v in features.items()}


def concatenated_features(features: Mapping[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """The named features side by side, N x (F1 + F2 + ...) float64 (maps averaged over positions)."""
    pooled = pooled_features({n: features[n] for n in names})
    return torch.cat([pooled[n].double().cpu().flatten(1) for n in names], dim=1)


def contrast_scores(
    features: torch.Tensor | Mapping[str, torch.Tensor] | None, spec: dict[str, Any]
) -> tuple[torch.Tensor, float] | None:
    """How much more like the generated non-letters than like letters each input's features are
    (:mod:`glyphcore.infer.contrast`), and the threshold above which that is unusual.

    Returns:
        ``(scores, threshold)``, or None when the checkpoint has no contrast or it does not match the features.
    """
    fit = spec.get("contrast")
    if not isinstance(fit, dict) or not isinstance(features, Mapping) or not _usable_contrast(fit, features):
        return None
    x = concatenated_features(features, list(fit["layers"]))
    return (linear_score(x, fit), float(fit["threshold"])) if x.shape[1] == fit["weight"].numel() else None


def _usable_contrast(fit: dict[str, Any], features: Mapping[str, torch.Tensor]) -> bool:
    """Whether a stored contrast is whole: named layers the features have, finite 1-D tensors of one
    length (positive scales), a finite bias and threshold."""
    names, parts = fit.get("layers"), [fit.get(k) for k in ("mean", "scale", "weight")]
    tensors = [t for t in parts if isinstance(t, torch.Tensor) and t.ndim == 1 and bool(torch.isfinite(t).all())]
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n in features for n in names)):
        return False
    if len(tensors) != 3:
        return False
    mean, scale, weight = tensors
    same = mean.numel() == scale.numel() == weight.numel() and bool((scale > 0).all())
    return same and _finite(fit.get("bias")) and _finite(fit.get("threshold"))


def linear_score(x: torch.Tensor, fit: Mapping[str, Any]) -> torch.Tensor:
    """``((x - mean) / scale) @ weight + bias`` in float64: the contrast's score of N x D features."""
    mean, scale, weight = (fit[k].double() for k in ("mean", "scale", "weight"))
    return ((x.double() - mean) / scale) @ weight + float(fit["bias"])


@dataclass
class LetterJudgement:
    """Whether each input of a batch looks like a letter, and why not.

    Attributes:
        letter: (N,) bool, True when judged a letter.
        confidence: (N,) calibrated top probability.
        distance: (N,) how unusual the features are (:func:`unusualness`; NaN without features).
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


def _layer_distance(features: torch.Tensor | None, fit: Any) -> torch.Tensor | None:
    """Squared Mahalanobis distance to the nearest class mean with one stored fit, or None when the
    fit is malformed or does not match the features."""
    if features is None or not isinstance(fit, dict):
        return None
    means, prec = fit.get("means"), fit.get("precision")
    if not (isinstance(means, torch.Tensor) and isinstance(prec, torch.Tensor) and means.ndim == 2):
        return None
    f = features.flatten(1) if features.ndim > 2 else features
    if means.shape[1] != f.shape[1] or tuple(prec.shape) != (f.shape[1], f.shape[1]):
        return None
    return nearest_class_distances(f, means, prec)[0]


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _positive(value: Any) -> float | None:
    return float(value) if _finite(value) and value > 0 else None


def unusualness(
    features: torch.Tensor | Mapping[str, torch.Tensor] | None, spec: dict[str, Any]
) -> tuple[torch.Tensor, float] | None:
    """How unusual each input's features are, and the threshold above which they are unusual.

    With a multi-layer fit (``spec["layers"]``: per feature name its class means, shared precision
    and ``scale``, the layer's own threshold), the score is the largest over the layers of the
    squared Mahalanobis distance divided by its scale, against ``spec["max_score"]``. Older
    checkpoints (or features without every layer) fall back to the penultimate distance against
    ``spec["max_distance"]``.

    Args:
        features: N x F penultimate features, or feature name -> N x ... (maps are averaged over positions).
        spec: the checkpoint's ``calibration["letter"]``.

    Returns:
        ``(scores, threshold)``, or None when no stored fit matches the features.
    """
    feats = pooled_features(features) if isinstance(features, Mapping) else {PENULTIMATE: features}
    layers, max_score = spec.get("layers"), _positive(spec.get("max_score"))
    if isinstance(layers, dict) and layers and max_score is not None:
        scaled: list[torch.Tensor] = []
        for name, fit in layers.items():
            scale = _positive(fit.get("scale")) if isinstance(fit, dict) else None
            d = _layer_distance(feats.get(name), fit)
            if d is None or scale is None:
                scaled = []
                break
            scaled.append(d / scale)
        if scaled:
            return torch.stack(scaled).max(dim=0).values, max_score
    max_d = _positive(spec.get("max_distance"))
    d = _layer_distance(feats.get(PENULTIMATE), {"means": spec.get("means"), "precision": spec.get("precision")})
    return None if d is None or max_d is None else (d, max_d)


def judge_letters(
    logits: torch.Tensor,
    features: torch.Tensor | Mapping[str, torch.Tensor] | None,
    calibration: dict[str, Any] | None,
    classes: list[str] | None = None,
) -> LetterJudgement | None:
    """Judge a batch with a checkpoint's stored thresholds (``calibration["letter"]``).

    Args:
        logits: N x K raw logits.
        features: the judged features (:func:`judged_features`) by name, or the N x F penultimate
            features alone (then only the penultimate distance is used), or None.
        calibration: the checkpoint's ``"calibration"`` dict; None or no ``"letter"`` entry: no judgement.
        classes: class names, for the reasons.

    Returns:
        A :class:`LetterJudgement`, or None when the checkpoint has no fitted judgement.
    """
    if not calibration or not isinstance(calibration.get("letter"), dict):
        return None
    spec = calibration["letter"]
    t = float(calibration.get("temperature", 1.0))
    conf, preds = (logits.float() / t).softmax(dim=1).max(dim=1)
    n = logits.shape[0]
    if isinstance(features, Mapping):
        features = pooled_features(features)  # once, for both feature scores
    scored = unusualness(features, spec)
    dist = scored[0].float() if scored else torch.full((n,), float("nan"))
    max_d = scored[1] if scored else None
    min_c = float(spec.get("min_confidence", 0.0))
    contrast = contrast_scores(features, spec)
    odd = np.zeros(n, dtype=bool) if contrast is None else (contrast[0] > contrast[1]).numpy()
    conf_np, dist_np, pred_np = conf.cpu().numpy(), dist.numpy(), preds.cpu().numpy()
    letter = np.ones(n, dtype=bool)
    reasons = []
    for i in range(n):
        name = classes[int(pred_np[i])] if classes else str(int(pred_np[i]))
        far = bool(odd[i]) or (max_d is not None and math.isfinite(dist_np[i]) and dist_np[i] > max_d)
        unsure = bool(conf_np[i] < min_c)
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
    beyond = f"more so than {share:.1%} of real letters are" if math.isfinite(share) else "far from them"
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
