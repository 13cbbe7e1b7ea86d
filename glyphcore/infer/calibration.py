"""Confidence a user can trust: a fitted temperature, the calibration error, and "is this a letter at all".

A network's softmax is not a probability until it is calibrated: label smoothing makes every clean
letter look about 90% sure, and a plain cross-entropy model is over-confident off its data. After
training, one scalar temperature ``T > 0`` is fitted on the validation split (``softmax(logits / T)``
minimising the negative log-likelihood; the argmax, so the accuracy, does not change) and stored in
the checkpoint with what it did::

    "calibration": {
        "temperature": 0.71, "fitted_on": "valid", "n": 15600,
        "ece_before": 0.081, "ece_after": 0.006, "nll_before": .., "nll_after": ..,
        "letter": {                                  # the "is this a letter" judgement
            "min_confidence": 0.26,                  # calibrated max probability below: unsure
            "confidence_quantile": 0.005,            #   (the share of validation letters below it)
            "means": Tensor K x F,                   # penultimate features: class means and the
            "precision": Tensor F x F,               #   inverse of their shared covariance
            "max_distance": 310.0,                   # squared Mahalanobis distance to the nearest class
            "distance_quantile": 0.05,               #   mean above: not a letter (validation share beyond)
        },                                           # (no "means" for a model without a linear layer)
    }

Every value is a number, a string or a tensor, so the checkpoint still loads with
``torch.load(weights_only=True)``. The expected calibration error (ECE) uses 15 equal-width
confidence bins: the sample-weighted mean of ``|accuracy - mean confidence|`` over the bins.

The letter judgement uses two scores, each thresholded at a quantile of the validation letters: the
squared Mahalanobis distance of the penultimate features (the input of the last ``nn.Linear``) to the
nearest class mean, with the classes' shared covariance (a drawing unlike anything the model learned,
even when its softmax is sure: a softmax always sums to 1), and the calibrated top probability (a
drawing between letters). Measured against the cosine distance to class centroids, the energy score
and the top probability alone (``bench/trust.py --compare-scores``), the Mahalanobis distance
separates scribbles, symbols and shapes from letters best. Its threshold lets through all but the 5% most
distant validation glyphs: those are glyphs-52's most distorted jitter (blur, noise, rotation, shear
together); clean letters from unseen fonts and hand-drawn ones sit well inside it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glyphcore.checkpoint import TEMPERATURE_RANGE
from glyphcore.errors import CheckpointError, DataError

__all__ = [
    "ECE_BINS",
    "CONFIDENCE_QUANTILE",
    "DISTANCE_QUANTILE",
    "LetterJudgement",
    "calibrate_checkpoint",
    "calibration_of",
    "collect_outputs",
    "expected_calibration_error",
    "fit_calibration",
    "fit_temperature",
    "judge_letters",
    "logits_and_features",
    "reliability_bins",
    "temperature_of",
]

ECE_BINS = 15  # equal-width confidence bins of the expected calibration error
# Shares of the validation letters beyond each letter threshold (see the module docstring; what they
# reject of real letters and of non-letters is measured in bench/trust.py).
CONFIDENCE_QUANTILE = 0.005
DISTANCE_QUANTILE = 0.05
_T_MIN, _T_MAX = TEMPERATURE_RANGE  # a temperature outside this range means the logits are degenerate
_BATCH = 512  # images per forward pass when collecting validation logits


# The feature-distance judgement needs an F x F covariance and its inverse: a model whose penultimate
# features are wider than this (tiny_conv flattens whole feature maps) is judged by its calibrated
# confidence alone (inverting a 20,000 x 20,000 matrix would take hours and GB).
MAX_JUDGED_FEATURES = 2048


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.array(x)  # a copy: memmaps are read-only


def reliability_bins(confidence: Any, correct: Any, n_bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per confidence bin: its edges, how many samples fall in it, their mean confidence and accuracy.

    Args:
        confidence: (N,) the probability given to the predicted class, in [0, 1].
        correct: (N,) bool or 0/1, whether the prediction was right.
        n_bins: equal-width bins over [0, 1]; a confidence of exactly 1 falls in the last.

    Returns:
        One dict per bin, ``{"lo", "hi", "count", "confidence", "accuracy"}`` (the means are NaN for
        an empty bin).
    """
    conf = _np(confidence).astype(np.float64).ravel()
    ok = _np(correct).astype(np.float64).ravel()
    if conf.shape != ok.shape:
        raise ValueError(f"confidence has {conf.size} values but correct {ok.size}: one of each per sample")
    idx = np.clip((conf * n_bins).astype(np.int64), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        m = idx == b
        c = int(m.sum())
        out.append(
            {
                "lo": b / n_bins,
                "hi": (b + 1) / n_bins,
                "count": c,
                "confidence": float(conf[m].mean()) if c else math.nan,
                "accuracy": float(ok[m].mean()) if c else math.nan,
            }
        )
    return out


def expected_calibration_error(confidence: Any, correct: Any, n_bins: int = ECE_BINS) -> float:
    """ECE: sum over bins of (share of samples in the bin) x |accuracy - mean confidence|, 0..1."""
    bins = reliability_bins(confidence, correct, n_bins)
    n = sum(b["count"] for b in bins)
    if n == 0:
        return 0.0
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def _nll(logits: torch.Tensor, labels: torch.Tensor, t: float) -> float:
    return float(F.cross_entropy(logits / t, labels))


def fit_temperature(logits: Any, labels: Any) -> float:
    """The temperature ``T > 0`` minimising the mean NLL of ``softmax(logits / T)``.

    A golden-section search over log T in [log 0.02, log 50] (the NLL is convex in 1/T), to a relative
    precision of 1e-4: a few dozen passes over an N x K matrix, milliseconds for 15,600 x 52.

    Args:
        logits: N x K raw logits (tensor or array).
        labels: N int class indices.

    Raises:
        DataError: no samples, or logits that are not finite.
    """
    z = torch.as_tensor(_np(logits), dtype=torch.float64)
    y = torch.as_tensor(_np(labels), dtype=torch.int64)
    if z.ndim != 2 or z.shape[0] == 0 or y.shape != (z.shape[0],):
        raise DataError(f"fit_temperature needs N x K logits and N labels, got {tuple(z.shape)} and {tuple(y.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise DataError("the logits are not finite (NaN or Inf): the model diverged; retrain it before calibrating")
    lo, hi = math.log(_T_MIN), math.log(_T_MAX)
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = _nll(z, y, math.exp(a)), _nll(z, y, math.exp(b))
    while hi - lo > 1e-4:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = _nll(z, y, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = _nll(z, y, math.exp(b))
    return float(math.exp((lo + hi) / 2))


@torch.no_grad()
def logits_and_features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One forward pass: float32 logits N x K and the penultimate features N x F (the input of the
    model's last ``nn.Linear``; None for a model without one, or one whose features are wider than
    ``MAX_JUDGED_FEATURES``: they are never judged by, so they are not kept)."""
    from glyphcore.infer.explain import last_module_of_type

    layer = last_module_of_type(model, nn.Linear)
    if isinstance(layer, nn.Linear) and layer.in_features > MAX_JUDGED_FEATURES:
        layer = None
    store: list[torch.Tensor] = []
    handle = None
    if layer is not None:
        handle = layer.register_forward_pre_hook(lambda _m, args: store.append(args[0].detach().float().flatten(1)))
    try:
        logits = model(x).float()
    finally:
        if handle is not None:
            handle.remove()
    return logits, (store[-1] if store else None)


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


def _distances(
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
    nearest = preds.cpu()
    means, prec = spec.get("means"), spec.get("precision")
    max_d = spec.get("max_distance")
    if (
        features is not None
        and isinstance(means, torch.Tensor)
        and isinstance(prec, torch.Tensor)
        and max_d is not None
        and means.shape[1] == features.shape[1]
    ):
        dist, nearest = _distances(features, means, prec)
    min_c = float(spec.get("min_confidence", 0.0))
    conf_np, dist_np, pred_np, near_np = conf.cpu().numpy(), dist.numpy(), preds.cpu().numpy(), nearest.numpy()
    letter = np.ones(n, dtype=bool)
    reasons = []
    for i in range(n):
        name = classes[int(pred_np[i])] if classes else str(int(pred_np[i]))
        near = classes[int(near_np[i])] if classes else str(int(near_np[i]))
        far = max_d is not None and math.isfinite(dist_np[i]) and dist_np[i] > float(max_d)
        unsure = conf_np[i] < min_c
        if far:
            reasons.append(
                f"not a letter: it looks like none of the letters the model learned (even the nearest, "
                f"{near}, is {math.sqrt(dist_np[i] / float(max_d)):.1f}x as far in the model's features "
                f"as the letters it knows)"
            )
        elif unsure:
            reasons.append(
                f"unsure: the best guess, {name}, has only {conf_np[i]:.0%} confidence (letters the model "
                f"knows get at least {min_c:.0%})"
            )
        else:
            reasons.append("")
        letter[i] = not (far or unsure)
    return LetterJudgement(letter=letter, confidence=conf_np, distance=dist_np, reasons=reasons)


def fit_calibration(
    logits: Any,
    labels: Any,
    features: Any = None,
    *,
    split: str = "valid",
    confidence_quantile: float = CONFIDENCE_QUANTILE,
    distance_quantile: float = DISTANCE_QUANTILE,
) -> dict[str, Any]:
    """Fit the temperature and the letter thresholds on one split's logits; the checkpoint entry.

    Args:
        logits: N x K raw logits of the split.
        labels: N class indices.
        features: N x F penultimate features (None: the judgement uses the confidence only).
        split: the split's name, recorded as ``fitted_on``.
        confidence_quantile: share of the split's letters below the "unsure" confidence threshold.
        distance_quantile: share of the split's letters beyond the "not a letter" distance threshold.

    Returns:
        The ``"calibration"`` dict (see the module docstring).
    """
    z = torch.as_tensor(_np(logits), dtype=torch.float32)
    y = torch.as_tensor(_np(labels), dtype=torch.int64)
    t = fit_temperature(z, y)
    p0, p1 = z.softmax(1), (z / t).softmax(1)
    c0, pred = p0.max(1)
    c1 = p1.max(1).values
    ok = (pred == y).numpy()
    letter: dict[str, Any] = {
        "min_confidence": float(np.quantile(c1.numpy(), confidence_quantile)),
        "confidence_quantile": float(confidence_quantile),
    }
    if features is not None and _np(features).shape[1] <= MAX_JUDGED_FEATURES:
        f = torch.as_tensor(_np(features), dtype=torch.float64)
        k, dim = z.shape[1], f.shape[1]
        right = torch.as_tensor(ok)
        means = torch.zeros(k, dim, dtype=torch.float64)
        for c in range(k):
            m = (y == c) & right  # the letters the model knows: its right answers
            if not bool(m.any()):
                m = y == c
            if bool(m.any()):
                means[c] = f[m].mean(0)
        resid = f - means[y]
        cov = resid.T @ resid / max(1, f.shape[0] - 1)
        # shrink toward a scaled identity: few samples per feature (tiny data) give a singular covariance
        shrink = min(0.5, dim / max(1, f.shape[0]))
        cov = (1 - shrink) * cov + shrink * (torch.trace(cov) / dim + 1e-12) * torch.eye(dim, dtype=torch.float64)
        prec = torch.linalg.inv(cov)
        d = _distances(f, means, prec)[0].numpy()
        letter.update(
            means=means.float(),
            precision=prec.float(),
            max_distance=float(np.quantile(d, 1.0 - distance_quantile)),
            distance_quantile=float(distance_quantile),
        )
    return {
        "temperature": t,
        "fitted_on": split,
        "n": int(y.numel()),
        "ece_before": expected_calibration_error(c0.numpy(), ok),
        "ece_after": expected_calibration_error(c1.numpy(), ok),
        "nll_before": _nll(z.double(), y, 1.0),
        "nll_after": _nll(z.double(), y, t),
        "letter": letter,
    }


def calibration_of(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """A checkpoint's calibration dict, or None when it was never calibrated (or is malformed)."""
    cal = ckpt.get("calibration")
    if not isinstance(cal, dict):
        return None
    t = cal.get("temperature")
    if isinstance(t, bool) or not isinstance(t, int | float) or not _T_MIN <= t <= _T_MAX:
        return None  # load_checkpoint refuses such a file; a dict built another way is read as uncalibrated
    return cal


def temperature_of(ckpt: dict[str, Any]) -> float:
    """The checkpoint's temperature, 1.0 when it was never calibrated."""
    cal = calibration_of(ckpt)
    return float(cal["temperature"]) if cal else 1.0


def collect_outputs(
    model: nn.Module,
    images: Any,
    input_size: tuple[int, int],
    in_channels: int,
    device: torch.device,
    batch_size: int = _BATCH,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits and penultimate features of a uint8 N x C x H x W array (or a DeviceData's images), on the CPU."""
    from glyphcore.infer.preprocess import frame_to_tensor

    logits, feats = [], []
    n = int(images.shape[0])
    model.eval()
    for s in range(0, n, batch_size):
        chunk = images[s : s + batch_size]
        if isinstance(chunk, torch.Tensor):
            x = chunk.to(device).float().div_(255.0)
            if tuple(x.shape[-2:]) != tuple(input_size):
                x = frame_to_tensor(chunk.cpu().numpy(), input_size, in_channels).to(device)
        else:
            x = frame_to_tensor(np.asarray(chunk), input_size, in_channels).to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        z, f = logits_and_features(model, x)
        logits.append(z.cpu())
        if f is not None:
            feats.append(f.cpu())
    return torch.cat(logits), (torch.cat(feats) if feats and len(feats) == len(logits) else None)


def calibrate_checkpoint(
    path: str | os.PathLike, images: Any, labels: Any, *, split: str = "valid", device: str | torch.device | None = None
) -> dict[str, Any]:
    """Fit a checkpoint's calibration on a labelled split and rewrite the file with it, atomically.

    The weights are unchanged (their checksum too); only the ``"calibration"`` entry is added or
    replaced.

    Args:
        path: a ``.pt`` checkpoint (e.g. ``<run>/best.pt``).
        images: uint8 N x C x H x W (or a tensor of them) of the split.
        labels: N class indices.
        split: its name, recorded as ``fitted_on``.
        device: where to run the model (default the CPU).

    Returns:
        The calibration dict written.

    Raises:
        CheckpointError: the file is not a usable glyphcore checkpoint.
        DataError: the split is empty or its labels do not match the images.
    """
    from glyphcore.checkpoint import load_checkpoint, save_checkpoint
    from glyphcore.infer.predictor import load_predictor

    path = Path(path)
    if int(images.shape[0]) == 0 or int(np.asarray(_np(labels)).shape[0]) != int(images.shape[0]):
        raise DataError(f"calibrating {path} needs a labelled split with images, got {int(images.shape[0])} images")
    predictor = load_predictor(path, device=device)
    logits, feats = collect_outputs(
        predictor.model, images, predictor.input_size, predictor.in_channels, predictor.device
    )
    labels_np = np.asarray(_np(labels), dtype=np.int64)
    if labels_np.max(initial=0) >= logits.shape[1]:
        raise DataError(f"the labels of {split} go up to {labels_np.max()} but {path} has {logits.shape[1]} classes")
    cal = fit_calibration(logits, labels_np, feats, split=split)
    ckpt = load_checkpoint(path)
    if "state_dict" not in ckpt:
        raise CheckpointError(f"{path} has no weights to calibrate")
    ckpt["calibration"] = cal
    save_checkpoint(ckpt, path)
    return cal
