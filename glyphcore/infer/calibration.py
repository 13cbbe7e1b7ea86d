"""Confidence a user can trust: a fitted temperature, the calibration error, and "is this a letter at all".

A network's softmax is not a probability until it is calibrated: label smoothing makes every clean
letter look about 90% sure, and a plain cross-entropy model is over-confident off its data. After
training, one scalar temperature ``T > 0`` is fitted (``softmax(logits / T)`` minimising the negative
log-likelihood; the argmax, so the accuracy, does not change) on the validation split AND on synthetic
drawings of every letter in the three canvas formats, the two weighted equally. Valid and test are
different font families, and a temperature fitted on one set of families can overshoot on another
(quick runs: valid over-confident, test calibrated at T = 1), so the fitted temperature is then shrunk
toward 1 until no check group, each font family of the split and the drawings, gets a worse ECE
(:func:`transfer_temperature`). It is stored in the checkpoint with what it did::

    "calibration": {
        "temperature": 0.71, "fitted_on": "valid", "n": 15600,
        "temperature_fitted": 0.69, "temperature_shrink": 0.95,   # the NLL fit, and how much of it is kept
        "ece_before": 0.081, "ece_after": 0.006, "nll_before": .., "nll_after": ..,   # on valid
        "ece_drawings_before": .., "ece_drawings_after": ..,   # on the drawings (absent in older files)
        "letter": {                                  # the "is this a letter" judgement
            "min_confidence": 0.26,                  # calibrated max probability below: unsure
            "layers": {                              # per judged layer (glyphcore.infer.density):
                "penultimate": {"means": Tensor K x F, "precision": Tensor F x F, "scale": 310.0},
                "layer:features.act1": {...}, ...    #   class means, shared precision, own threshold
            },
            "max_score": 1.04,                       # largest distance/scale above: unusual
            "folds": 4,                              # the thresholds are cross-fitted over this many folds
            "means": .., "precision": .., "max_distance": ..,   # the penultimate layer alone, as
                                                     #   older readers know it (no "means" for a model
                                                     #   without a linear layer)
            "contrast": {"layers": [..], "mean": .., "scale": .., "weight": .., "bias": .., "threshold": ..},
                                                     # letters against generated non-letters
                                                     #   (glyphcore.infer.contrast; letter models only)
            "false_alarm_rate": 0.005,               # each threshold rejects at most this share of the
            "sources": {"valid": 15600, "drawings": 312},  # letters of each source
        },
    }

Older checkpoints (no ``"layers"``: the penultimate distance against ``max_distance``; or
``"distance_quantile"`` / ``"confidence_quantile"``, thresholds from valid alone) load and are judged
with their stored thresholds. Every value is a number, a string, a dict or a tensor, so the checkpoint
still loads with ``torch.load(weights_only=True)``, and the checkpoint's content checksum covers every
field. The expected calibration error (ECE) uses 15 equal-width confidence bins: the sample-weighted mean
of ``|accuracy - mean confidence|`` over the bins.

The letter judgement uses three scores, each thresholded at the stated false-alarm rate on both sources:
the feature density (:mod:`glyphcore.infer.density`: a drawing unlike anything the model learned, even
when its softmax is sure: a softmax always sums to 1), the contrast (:mod:`glyphcore.infer.contrast`:
features more like the machine's generated non-letters than like letters; for letter models in the
glyph frame), and the calibrated top probability (a drawing between letters). Unusual features (by
density or contrast) with a confident answer give "unsure" with the best guess; "not a letter" needs
unusual features and an unsure answer both. Other scores were measured beside them (``bench/trust.py``;
docs/benchmarks.md).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from glyphcore.checkpoint import TEMPERATURE_RANGE, load_checkpoint, save_checkpoint
from glyphcore.errors import CheckpointError, DataError
from glyphcore.infer.contrast import fit_contrast
from glyphcore.infer.density import fit_letter_density, fit_letter_distance
from glyphcore.infer.forward import PENULTIMATE, Outputs
from glyphcore.infer.judgement import FALSE_ALARM_RATE, calibration_drawings, pooled_weights, threshold_for
from glyphcore.infer.letters import judged_features, pooled_features
from glyphcore.infer.nonletter_pool import applies, non_letter_pool
from glyphcore.infer.predictor import Predictor, load_predictor

__all__ = [
    "ECE_BINS",
    "calibrate_checkpoint",
    "expected_calibration_error",
    "fit_calibration",
    "fit_letter_distance",  # from glyphcore.infer.density, where the density is fitted
    "fit_temperature",
    "judged_outputs",
    "reliability_bins",
    "transfer_temperature",
]

ECE_BINS = 15  # equal-width confidence bins of the expected calibration error
_T_MIN, _T_MAX = TEMPERATURE_RANGE  # a temperature outside this range means the logits are degenerate
_BATCH = 512  # images per forward pass when collecting validation logits
_SHRINK_STEPS = 20  # the temperature's shrink toward 1 is searched in steps of 1/20
# a font family with fewer letters than this has a noisy ECE: such families are checked pooled, as one group
_MIN_GROUP = 200


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
    groups: Any = None,
    nonletters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit the temperature and the letter thresholds on a split's letters and, when given, drawings.

    The temperature minimises the NLL with both sources weighted equally, then is shrunk toward 1 as
    far as it must be so that no check group (each font family of the split, the drawings) gets a
    worse ECE (:func:`transfer_temperature`); the feature density is fitted on both sources and its
    thresholds cross-fitted across families (:func:`glyphcore.infer.density.fit_letter_density`), and,
    given non-letters, so is the contrast of letters against them (:mod:`glyphcore.infer.contrast`).

    Args:
        logits: N x K raw logits of the split.
        labels: N class indices.
        features: N x F penultimate features, or feature name -> N x ... (None: confidence only).
        split: the split's name, recorded as ``fitted_on``.
        false_alarm_rate: the stated share of each source's letters each threshold may reject.
        drawings: ``(logits, labels, features)`` of synthetic letter drawings (features may be None).
        groups: N group ids of the split (its font families, :func:`glyphcore.infer.judgement.family_groups`);
            None: the split is one group.
        nonletters: generated non-letters' judged features by name (None: no contrast).

    Returns:
        The ``"calibration"`` dict (see the module docstring).
    """
    src = {split: _source(logits, labels, features)}
    if drawings is not None:
        src["drawings"] = _source(*drawings)
    gid = None if groups is None else np.asarray(_np(groups)).ravel()
    if gid is not None and gid.shape[0] != src[split][1].numel():
        raise DataError(f"{gid.shape[0]} group ids for {src[split][1].numel()} letters of {split}: one per letter")
    weights = pooled_weights({k: int(v[1].numel()) for k, v in src.items()})
    z, y = torch.cat([v[0] for v in src.values()]), torch.cat([v[1] for v in src.values()])
    w = torch.cat([torch.full((v[1].numel(),), weights[k], dtype=torch.float64) for k, v in src.items()])
    t_fit = fit_temperature(z, y, w)
    t, shrink = transfer_temperature(t_fit, _check_groups(src, split, gid))
    out: dict[str, Any] = {"temperature": t, "fitted_on": split, "n": int(src[split][1].numel())}
    out.update(temperature_fitted=t_fit, temperature_shrink=shrink)
    for k, (zk, yk, _) in src.items():
        pre = "" if k == split else f"{k}_"
        out[f"ece_{pre}before"], out[f"ece_{pre}after"] = _ece_at(zk, yk, 1.0), _ece_at(zk, yk, t)
    zs, ys = src[split][0].double(), src[split][1]
    out["nll_before"], out["nll_after"] = _nll(zs, ys, 1.0), _nll(zs, ys, t)
    out["letter"] = _letter_judgement(src, split, gid, t, false_alarm_rate, nonletters)
    return out


def _letter_judgement(
    src: dict[str, tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]],
    split: str,
    gid: np.ndarray | None,
    t: float,
    rate: float,
    nonletters: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The ``"letter"`` entry: the confidence floor at temperature ``t``, the density and, given
    non-letters, the contrast, each at the stated false-alarm ``rate`` on every source."""
    conf = {k: -(v[0] / t).softmax(1).max(1).values.numpy() for k, v in src.items()}  # larger: less sure
    letter: dict[str, Any] = {
        "min_confidence": -threshold_for(conf, rate),
        "false_alarm_rate": float(rate),
        "sources": {k: int(v[1].numel()) for k, v in src.items()},
    }
    letter.update(fit_letter_density(src, split, gid, rate))
    if nonletters is not None:
        contrast = fit_contrast(src, split, gid, _features(nonletters), rate)
        letter.update({"contrast": contrast} if contrast else {})
    return letter


def _ece_at(z: torch.Tensor, y: torch.Tensor, t: float) -> float:
    """ECE of ``softmax(z / t)`` against the labels y."""
    conf, pred = (z.float() / t).softmax(1).max(1)
    return expected_calibration_error(conf.numpy(), (pred == y).numpy())


def transfer_temperature(t_fit: float, groups: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """The fitted temperature, shrunk toward 1 only as far as it must be so that no group's ECE gets worse.

    A temperature fitted on held-out font families overshoots on other families (on quick runs the
    validation families were over-confident and the test families calibrated at T = 1), so the
    temperature kept is ``t_fit ** s`` with the largest shrink ``s`` in 1, 0.95, ..., 0.05 under which
    no group's ECE is worse than at T = 1; ``s = 0`` (T = 1, changes nothing) when every one makes
    some group worse.

    Args:
        t_fit: the temperature that minimises the pooled NLL.
        groups: ``(logits, labels)`` per check group (a font family of the split, the drawings).

    Returns:
        ``(temperature, shrink)``.
    """
    before = [_ece_at(z, y, 1.0) for z, y in groups]
    for i in range(_SHRINK_STEPS, 0, -1):
        s = i / _SHRINK_STEPS
        if all(_ece_at(z, y, t_fit**s) <= b + 1e-12 for (z, y), b in zip(groups, before)):
            return float(t_fit**s), s
    return 1.0, 0.0


def _check_groups(
    src: dict[str, tuple[torch.Tensor, torch.Tensor, Any]], split: str, groups: np.ndarray | None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The split's font families (those under ``_MIN_GROUP`` letters pooled into one) and each other source."""
    z, y = src[split][0], src[split][1]
    masks: list[np.ndarray] = [np.ones(y.numel(), dtype=bool)]
    if groups is not None:
        ids, counts = np.unique(groups, return_counts=True)
        masks = [groups == g for g, c in zip(ids, counts) if c >= _MIN_GROUP]
        small = np.isin(groups, ids[counts < _MIN_GROUP])
        masks += [small] if small.any() else []
    out = [(z[torch.from_numpy(m)], y[torch.from_numpy(m)]) for m in masks]
    return out + [(v[0], v[1]) for k, v in src.items() if k != split]


def _features(features: Any) -> dict[str, torch.Tensor]:
    """Features by name as N x F float32: a mapping's maps averaged over positions, a bare N x F as the penultimate."""
    if features is None:
        return {}
    if isinstance(features, Mapping):
        return pooled_features({k: torch.as_tensor(_np(v), dtype=torch.float32) for k, v in features.items()})
    return {PENULTIMATE: torch.as_tensor(_np(features), dtype=torch.float32)}


def _source(logits: Any, labels: Any, features: Any) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """One source of letters as float32 logits, int64 labels and its features by name (N x F float32)."""
    z, y = torch.as_tensor(_np(logits), dtype=torch.float32), torch.as_tensor(_np(labels), dtype=torch.int64)
    return z, y, _features(features)


def judged_outputs(predictor: Predictor, images: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and the judged features (:func:`glyphcore.infer.letters.judged_features`, feature maps
    averaged over their positions batch by batch, so a large split never holds whole maps)."""
    logits: list[torch.Tensor] = []
    feats: dict[str, list[torch.Tensor]] = {}

    def keep(out: Outputs) -> None:
        logits.append(out.logits.cpu())
        for k, v in pooled_features(out.features).items():
            feats.setdefault(k, []).append(v.cpu())

    predictor.run(images, features=judged_features(predictor.model), batch_size=_BATCH, on_batch=keep)
    return torch.cat(logits), {k: torch.cat(v) for k, v in feats.items()}


def _drawn_letters(predictor: Predictor) -> tuple[Any, Any, Any] | None:
    """``(logits, labels, features)`` of the synthetic letter drawings; None for a model without letters."""
    drawings = calibration_drawings(predictor)
    if drawings is None:
        return None
    logits, feats = judged_outputs(predictor, drawings[0])
    return logits, drawings[1], feats


def _nonletter_features(predictor: Predictor) -> dict[str, torch.Tensor] | None:
    """The judged features of the machine's generated non-letters (:func:`non_letter_pool`); None for a
    model they do not apply to (classes other than letters, another input than the glyph frame)."""
    if not applies(predictor.classes, [predictor.in_channels, *predictor.input_size]):
        return None
    return judged_outputs(predictor, non_letter_pool())[1]


def calibrate_checkpoint(
    path: str | os.PathLike,
    images: Any,
    labels: Any,
    *,
    split: str = "valid",
    device: str | torch.device | None = None,
    groups: Any = None,
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
        groups: N font-family ids of the split (:func:`glyphcore.infer.judgement.family_groups`), for
            the cross-fitted thresholds and the temperature's check; None: letters are folded one by one.

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
    logits, feats = judged_outputs(predictor, images)
    labels_np = np.asarray(_np(labels), dtype=np.int64)
    if labels_np.max(initial=0) >= logits.shape[1]:
        raise DataError(f"the labels of {split} go up to {labels_np.max()} but {path} has {logits.shape[1]} classes")
    drawn, others = _drawn_letters(predictor), _nonletter_features(predictor)
    cal = fit_calibration(logits, labels_np, feats, split=split, drawings=drawn, groups=groups, nonletters=others)
    ckpt = load_checkpoint(path)
    if "state_dict" not in ckpt:
        raise CheckpointError(f"{path} has no weights to calibrate")
    ckpt["calibration"] = cal
    save_checkpoint(ckpt, path)
    return cal
