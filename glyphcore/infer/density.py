"""The feature-density part of the letter judgement: class means and a shared covariance per judged
layer, and thresholds cross-fitted across font families.

A drawing unlike anything the model learned can still get a sure softmax (a softmax always sums to
1), so the judgement also measures how far an input's features sit from the letters: the squared
Mahalanobis distance to the nearest class mean, with the classes' shared covariance, on the
penultimate features and on the position-averaged output of each convolution block
(:func:`glyphcore.infer.letters.block_layers`; early blocks see strokes, and a scribble is unusual
there even when the last layer maps it near a class). Each layer's distance is divided by its own
threshold and the largest counts (:func:`glyphcore.infer.letters.unusualness`).

The means and covariance are fitted on the split's letters AND the synthetic drawings, so drawings
count as letters; but a threshold measured on letters the fit has seen is too tight for letters it
has not (measured in docs/benchmarks.md: 6% of test letters rejected at a stated 0.5%). So each
threshold is chosen on out-of-fold distances: the split's font families are dealt into
``N_FOLDS`` folds (the drawings likewise, by index), each fold's distances come from a fit without
it, and the threshold lets through all but the stated share of each source's out-of-fold letters.
It thereby emulates font families the fit has never seen. The stored fit is the one on everything.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from glyphcore.infer.forward import PENULTIMATE
from glyphcore.infer.judgement import threshold_for
from glyphcore.infer.letters import MAX_JUDGED_FEATURES, nearest_class_distances

__all__ = ["N_FOLDS", "cross_fit_folds", "fit_letter_density", "fit_letter_distance", "judged_layer_names"]

N_FOLDS = 4  # folds of font families (and of drawings) for the cross-fitted thresholds
_FOLD_SEED = 0  # the same families give the same folds


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.array(x)


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


def judged_layer_names(
    src: dict[str, tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]], split: str
) -> list[str]:
    """The split's features that every source has and that are narrow enough to judge by
    (``MAX_JUDGED_FEATURES``), in the split's order."""
    return [
        n
        for n, f in src[split][2].items()
        if f.shape[1] <= MAX_JUDGED_FEATURES and all(n in v[2] for v in src.values())
    ]


def cross_fit_folds(n: int, groups: np.ndarray | None, n_folds: int = N_FOLDS) -> np.ndarray:
    """A fold (0..n_folds-1) per letter: whole groups (font families) dealt at random into the folds,
    or, with fewer than two groups, the letters themselves."""
    rng = np.random.default_rng(_FOLD_SEED)
    if groups is not None and np.unique(groups).size >= 2:
        ids = rng.permutation(np.unique(groups))
        k = min(n_folds, ids.size)
        fold_of = {g: i % k for i, g in enumerate(ids.tolist())}
        return np.array([fold_of[g] for g in np.asarray(groups).tolist()], dtype=np.int64)
    return rng.permutation(n) % n_folds


def fit_letter_density(
    src: dict[str, tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]],
    split: str,
    groups: np.ndarray | None,
    rate: float,
) -> dict[str, Any]:
    """The density fit of every judged layer on all sources, with cross-fitted thresholds.

    Args:
        src: per source (the split, "drawings"), ``(logits, labels, features by name as N x F)``.
        split: the split's name (its letters are folded by ``groups``; other sources by index).
        groups: the split's font family per letter, or None.
        rate: the stated share of each source's letters to reject.

    Returns:
        ``{"layers": {name: {"means", "precision", "scale"}}, "max_score", "folds"}`` and, when the
        penultimate features are judged, the single-layer fields older readers use (``"means"``,
        ``"precision"``, ``"max_distance"``: the penultimate fit and its own threshold); ``{}`` when no
        layer can be judged.
    """
    names = judged_layer_names(src, split)
    if not names:
        return {}
    n_classes = src[split][0].shape[1]
    folds = {k: cross_fit_folds(v[1].numel(), groups if k == split else None) for k, v in src.items()}
    n_folds = max(int(f.max()) + 1 for f in folds.values() if f.size)
    oof = {n: {k: np.zeros(v[1].numel()) for k, v in src.items()} for n in names}
    for i in range(n_folds):
        fits = _fit_layers(src, names, {k: f != i for k, f in folds.items()}, n_classes)
        for n in names:
            for k, v in src.items():
                m = torch.from_numpy(folds[k] == i)
                if bool(m.any()):
                    oof[n][k][m.numpy()] = nearest_class_distances(v[2][n][m], *fits[n])[0].numpy()
    scales = {n: threshold_for(oof[n], rate) for n in names}
    combined = {k: np.max([oof[n][k] / scales[n] for n in names], axis=0) for k in src}
    fits = _fit_layers(src, names, {k: np.ones(v[1].numel(), dtype=bool) for k, v in src.items()}, n_classes)
    layers = {n: {"means": fits[n][0], "precision": fits[n][1], "scale": scales[n]} for n in names}
    out: dict[str, Any] = {"layers": layers, "max_score": threshold_for(combined, rate), "folds": n_folds}
    if PENULTIMATE in layers:
        out.update(means=fits[PENULTIMATE][0], precision=fits[PENULTIMATE][1], max_distance=scales[PENULTIMATE])
    return out


def _fit_layers(
    src: dict[str, tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]],
    names: list[str],
    keep: dict[str, np.ndarray],
    n_classes: int,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, ``(means, precision)`` fitted on the kept letters of every source pooled."""
    masks = {k: torch.from_numpy(m) for k, m in keep.items()}
    y = torch.cat([v[1][masks[k]] for k, v in src.items()])
    right = torch.cat([(v[0][masks[k]].argmax(1) == v[1][masks[k]]) for k, v in src.items()])
    out = {}
    for n in names:
        f = torch.cat([v[2][n][masks[k]] for k, v in src.items()])
        fit = fit_letter_distance(f, y, right, n_classes)
        out[n] = (fit["means"], fit["precision"])
    return out
