"""Confidence a user can trust: a fitted temperature, the calibration error, and "is this a letter at all".

A network's softmax is not a probability until it is calibrated: label smoothing makes every clean
letter look about 90% sure, and a plain cross-entropy model is over-confident off its data. After
training, one scalar temperature ``T > 0`` is fitted (``softmax(logits / T)`` minimising the negative
log-likelihood; the argmax, so the accuracy, does not change) on the validation split AND on synthetic
drawings of every letter in the three canvas formats, the two weighted equally (valid is held-out font
families; a temperature fitted on them alone made drawings and the test families worse), and stored in
the checkpoint with what it did::

    "calibration": {
        "temperature": 0.71, "fitted_on": "valid", "n": 15600,
        "ece_before": 0.081, "ece_after": 0.006, "nll_before": .., "nll_after": ..,   # on valid
        "ece_drawings_before": .., "ece_drawings_after": ..,   # on the drawings (absent in older files)
        "letter": {                                  # the "is this a letter" judgement
            "min_confidence": 0.26,                  # calibrated max probability below: unsure
            "means": Tensor K x F,                   # penultimate features: class means and the
            "precision": Tensor F x F,               #   inverse of their shared covariance
            "max_distance": 310.0,                   # squared Mahalanobis distance to the nearest class
                                                     #   mean above: unusual (no "means" for a model
                                                     #   without a linear layer)
            "false_alarm_rate": 0.005,               # each threshold rejects at most this share of the
            "sources": {"valid": 15600, "drawings": 312},  # letters of each source
        },
    }

Older checkpoints (``"distance_quantile"`` / ``"confidence_quantile"`` in place of the last two keys,
thresholds from valid alone) load and are judged with their stored thresholds. Every value is a
number, a string, a dict or a tensor, so the checkpoint still loads with ``torch.load(weights_only=True)``.
The expected calibration error (ECE) uses 15 equal-width confidence bins: the sample-weighted mean of
``|accuracy - mean confidence|`` over the bins.

The letter judgement uses two scores, each thresholded by :func:`glyphcore.infer.judgement.threshold_for`
at the stated false-alarm rate on both sources: the squared Mahalanobis distance of the penultimate
features (the input of the last ``nn.Linear``) to the nearest class mean, with the classes' shared
covariance (a drawing unlike anything the model learned, even when its softmax is sure: a softmax always
sums to 1), and the calibrated top probability (a drawing between letters). Unusual features with a
confident answer give "unsure" with the best guess; "not a letter" needs both. The energy score and a
combination were measured beside them (``bench/trust.py --compare-scores``; docs/benchmarks.md).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from glyphcore.checkpoint import TEMPERATURE_RANGE, load_checkpoint, save_checkpoint
from glyphcore.errors import CheckpointError, DataError
from glyphcore.infer.forward import PENULTIMATE
from glyphcore.infer.judgement import FALSE_ALARM_RATE, calibration_drawings, pooled_weights, threshold_for
from glyphcore.infer.letters import MAX_JUDGED_FEATURES, judged_features, nearest_class_distances
from glyphcore.infer.predictor import load_predictor

__all__ = [
    "ECE_BINS",
    "calibrate_checkpoint",
    "expected_calibration_error",
    "fit_calibration",
    "fit_letter_distance",
    "fit_temperature",
    "reliability_bins",
]

ECE_BINS = 15  # equal-width confidence bins of the expected calibration error
_T_MIN, _T_MAX = TEMPERATURE_RANGE  # a temperature outside this range means the logits are degenerate
_BATCH = 512  # images per forward pass when collecting validation logits


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


def _nll(logits: torch.Tensor, labels: torch.Tensor, t: float, weights: torch.Tensor | None = None) -> float:
    if weights is None:
        return float(F.cross_entropy(logits / t, labels))
    return float((F.cross_entropy(logits / t, labels, reduction="none") * weights).sum() / weights.sum())


def fit_temperature(logits: Any, labels: Any, weights: Any = None) -> float:
    """The temperature ``T > 0`` minimising the mean NLL of ``softmax(logits / T)``.

    A golden-section search over log T in [log 0.02, log 50] (the NLL is convex in 1/T), to a relative
    precision of 1e-4: a few dozen passes over an N x K matrix, milliseconds for 15,600 x 52.

    Args:
        logits: N x K raw logits (tensor or array).
        labels: N int class indices.
        weights: N sample weights (default all 1), e.g. :func:`glyphcore.infer.judgement.pooled_weights`.

    Raises:
        DataError: no samples, or logits that are not finite.
    """
    z = torch.as_tensor(_np(logits), dtype=torch.float64)
    y = torch.as_tensor(_np(labels), dtype=torch.int64)
    if z.ndim != 2 or z.shape[0] == 0 or y.shape != (z.shape[0],):
        raise DataError(f"fit_temperature needs N x K logits and N labels, got {tuple(z.shape)} and {tuple(y.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise DataError("the logits are not finite (NaN or Inf): the model diverged; retrain it before calibrating")
    w = None if weights is None else torch.as_tensor(_np(weights), dtype=torch.float64)
    lo, hi = math.log(_T_MIN), math.log(_T_MAX)
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = _nll(z, y, math.exp(a), w), _nll(z, y, math.exp(b), w)
    while hi - lo > 1e-4:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = _nll(z, y, math.exp(a), w)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = _nll(z, y, math.exp(b), w)
    return float(math.exp((lo + hi) / 2))


def fit_calibration(
    logits: Any,
    labels: Any,
    features: Any = None,
    *,
    split: str = "valid",
    false_alarm_rate: float = FALSE_ALARM_RATE,
    drawings: tuple[Any, Any, Any] | None = None,
) -> dict[str, Any]:
    """Fit the temperature and the letter thresholds on a split's letters and, when given, drawings.

    The temperature minimises the NLL with both sources weighted equally; each threshold rejects at
    most ``false_alarm_rate`` of each source's letters (:mod:`glyphcore.infer.judgement`).

    Args:
        logits: N x K raw logits of the split.
        labels: N class indices.
        features: N x F penultimate features (None: the judgement uses the confidence only).
        split: the split's name, recorded as ``fitted_on``.
        false_alarm_rate: the stated share of each source's letters each threshold may reject.
        drawings: ``(logits, labels, features)`` of synthetic letter drawings (features may be None).

    Returns:
        The ``"calibration"`` dict (see the module docstring).
    """
    src = {split: _source(logits, labels, features)}
    if drawings is not None:
        src["drawings"] = _source(*drawings)
    weights = pooled_weights({k: int(v[1].numel()) for k, v in src.items()})
    z, y = torch.cat([v[0] for v in src.values()]), torch.cat([v[1] for v in src.values()])
    w = torch.cat([torch.full((v[1].numel(),), weights[k], dtype=torch.float64) for k, v in src.items()])
    t = fit_temperature(z, y, w)
    out: dict[str, Any] = {"temperature": t, "fitted_on": split, "n": int(src[split][1].numel())}
    for k, (zk, yk, _) in src.items():
        pre = "" if k == split else f"{k}_"
        c0, pred = zk.softmax(1).max(1)
        ok = (pred == yk).numpy()
        out[f"ece_{pre}before"] = expected_calibration_error(c0.numpy(), ok)
        out[f"ece_{pre}after"] = expected_calibration_error((zk / t).softmax(1).max(1).values.numpy(), ok)
    zs, ys = src[split][0].double(), src[split][1]
    out["nll_before"], out["nll_after"] = _nll(zs, ys, 1.0), _nll(zs, ys, t)
    conf = {k: -(v[0] / t).softmax(1).max(1).values.numpy() for k, v in src.items()}  # larger: less sure
    letter: dict[str, Any] = {
        "min_confidence": -threshold_for(conf, false_alarm_rate),
        "false_alarm_rate": float(false_alarm_rate),
        "sources": {k: int(v[1].numel()) for k, v in src.items()},
    }
    f = src[split][2]
    if f is not None and f.shape[1] <= MAX_JUDGED_FEATURES:
        right = src[split][0].argmax(1) == src[split][1]
        letter.update(fit_letter_distance(f, src[split][1], right, src[split][0].shape[1]))
        dist = {
            k: nearest_class_distances(v[2], letter["means"], letter["precision"])[0].numpy()
            for k, v in src.items()
            if v[2] is not None
        }
        letter["max_distance"] = threshold_for(dist, false_alarm_rate)
    out["letter"] = letter
    return out


def _source(logits: Any, labels: Any, features: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One source of letters as float32 logits, int64 labels and float32 features (or None)."""
    f = None if features is None else torch.as_tensor(_np(features), dtype=torch.float32)
    return torch.as_tensor(_np(logits), dtype=torch.float32), torch.as_tensor(_np(labels), dtype=torch.int64), f


def fit_letter_distance(features: Any, labels: torch.Tensor, right: torch.Tensor, n_classes: int) -> dict[str, Any]:
    """The "not a letter" part of the judgement: class means and the shared precision.

    Args:
        features: N x F penultimate features of the split.
        labels: N class indices.
        right: N bools, whether the model got each one right (a class mean is over its right answers).
        n_classes: K, the number of classes.

    Returns:
        ``{"means", "precision"}`` (see the module docstring; the threshold is chosen by the caller).
    """
    f = torch.as_tensor(_np(features), dtype=torch.float64)
    dim = f.shape[1]
    means = torch.zeros(n_classes, dim, dtype=torch.float64)
    for c in range(n_classes):
        m = (labels == c) & right  # the letters the model knows: its right answers
        if not bool(m.any()):
            m = labels == c
        if bool(m.any()):
            means[c] = f[m].mean(0)
    resid = f - means[labels]
    cov = resid.T @ resid / max(1, f.shape[0] - 1)
    # shrink toward a scaled identity: few samples per feature (tiny data) give a singular covariance
    shrink = min(0.5, dim / max(1, f.shape[0]))
    cov = (1 - shrink) * cov + shrink * (torch.trace(cov) / dim + 1e-12) * torch.eye(dim, dtype=torch.float64)
    return {"means": means.float(), "precision": torch.linalg.inv(cov).float()}


def _drawn_letters(predictor: Any) -> tuple[Any, Any, Any] | None:
    """``(logits, labels, features)`` of the synthetic letter drawings; None for a model without letters."""
    drawings = calibration_drawings(predictor)
    if drawings is None:
        return None
    out = predictor.run(drawings[0], features=judged_features(predictor.model), batch_size=_BATCH)
    return out.logits, drawings[1], out.features.get(PENULTIMATE)


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
    path = Path(path)
    if int(images.shape[0]) == 0 or int(np.asarray(_np(labels)).shape[0]) != int(images.shape[0]):
        raise DataError(f"calibrating {path} needs a labelled split with images, got {int(images.shape[0])} images")
    predictor = load_predictor(path, device=device)
    out = predictor.run(images, features=judged_features(predictor.model), batch_size=_BATCH)
    logits, feats = out.logits, out.features.get(PENULTIMATE)
    labels_np = np.asarray(_np(labels), dtype=np.int64)
    if labels_np.max(initial=0) >= logits.shape[1]:
        raise DataError(f"the labels of {split} go up to {labels_np.max()} but {path} has {logits.shape[1]} classes")
    cal = fit_calibration(logits, labels_np, feats, split=split, drawings=_drawn_letters(predictor))
    ckpt = load_checkpoint(path)
    if "state_dict" not in ckpt:
        raise CheckpointError(f"{path} has no weights to calibrate")
    ckpt["calibration"] = cal
    save_checkpoint(ckpt, path)
    return cal
