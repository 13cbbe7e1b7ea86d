"""The contrast part of the letter judgement: letters against generated non-letters, one linear
classifier on the judged features.

The feature density (:mod:`glyphcore.infer.density`) asks "is this far from every letter?"; a scribble
or a star that the model maps among the letters passes it, and passes the confidence too when the model
is sure of it. The contrast asks the question from the other side: a logistic regression on the judged
features (each judged layer's position-averaged output, standardised, all layers side by side) of
the letters calibration is fitted on (the split and the drawings) against the machine's pool of
generated non-letters (:mod:`glyphcore.infer.nonletter_pool`), letters and non-letters weighted
equally. Measured in docs/benchmarks.md ("The contrast ..."): with it, the judgement flags 95-99% of
generated non-letters of other seeds than the pool's for quick, fast and report runs (82-97% without),
at about 0.1 points more letters flagged.

Its threshold is cross-fitted as the density's is: the split's font families, the drawings and the pool
are dealt into folds, each fold is scored by a classifier fitted without it, and the threshold lets
through all but the stated share of each source's out-of-fold letters. The stored classifier is the
one fitted on everything::

    "contrast": {"layers": ["layer:features.act1", ..., "penultimate"], "mean": Tensor D,
                 "scale": Tensor D, "weight": Tensor D, "bias": -3.1, "threshold": 2.4,
                 "nonletters": 2000, "l2": 0.0003}

A score ``((features - mean) / scale) @ weight + bias`` above ``threshold`` is unusual
(:func:`glyphcore.infer.letters.contrast_scores`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from glyphcore.infer.density import cross_fit_folds, judged_layer_names
from glyphcore.infer.judgement import threshold_for
from glyphcore.infer.letters import concatenated_features, linear_score

__all__ = ["L2", "MIN_EACH", "fit_contrast"]

# The ridge penalty on the standardised weights. Measured on nine runs of every preset (docs/benchmarks.md,
# "The contrast ..."): 3e-4 flags 95.5-99.3% of generated non-letters, 1e-3 90.6-99.0% (the fast runs
# lose most), with the same letters flagged within 2 of 312 drawings; 1e-4 flagged drawings more often.
L2 = 3e-4
_MAX_ITER = 100  # L-BFGS iterations: the loss is convex, it settles in a few dozen
MIN_EACH = 20  # fewer letters or non-letters than this: too few to fit a classifier and fold it, no contrast

Sources = dict[str, tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]]


def _fit(letters: torch.Tensor, others: torch.Tensor, l2: float) -> dict[str, Any]:
    """A logistic regression (float64, L-BFGS) of letters (0) against non-letters (1), each class
    weighted half, on standardised features."""
    x = torch.cat([letters, others]).double()
    mean, scale = x.mean(0), x.std(0) + 1e-6
    xs = (x - mean) / scale
    y = torch.cat([torch.zeros(len(letters)), torch.ones(len(others))]).double()
    w8 = torch.cat([torch.full((len(letters),), 0.5 / len(letters)), torch.full((len(others),), 0.5 / len(others))])
    w8 = w8.double()
    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=_MAX_ITER, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        bce = F.binary_cross_entropy_with_logits(xs @ weight + bias, y, reduction="none")
        value = (bce * w8).sum() + l2 * (weight * weight).sum()
        value.backward()
        return value

    with torch.enable_grad():
        opt.step(loss)
    return {
        "mean": mean.float(),
        "scale": scale.float(),
        "weight": weight.detach().float(),
        "bias": float(bias.detach()),
    }


def fit_contrast(
    src: Sources,
    split: str,
    groups: np.ndarray | None,
    nonletters: dict[str, torch.Tensor],
    rate: float,
    l2: float = L2,
) -> dict[str, Any]:
    """The contrast of every source's letters against the non-letters, with a cross-fitted threshold.

    Args:
        src: per source (the split, "drawings"), ``(logits, labels, features by name as N x F)``.
        split: the split's name (its letters are folded by ``groups``; the other sources and the
            non-letters by index).
        groups: the split's font family per letter, or None.
        nonletters: the generated non-letters' features by name (N x F).
        rate: the stated share of each source's letters to reject.
        l2: the ridge penalty.

    Returns:
        The ``"contrast"`` entry (see the module docstring); ``{}`` when no layer is judged in every
        source and in the non-letters, or either side has fewer than ``MIN_EACH``.
    """
    names = sorted(n for n in judged_layer_names(src, split) if n in nonletters)
    if not names:
        return {}
    x = {k: concatenated_features(v[2], names) for k, v in src.items()}
    others = concatenated_features(nonletters, names)
    if sum(len(v) for v in x.values()) < MIN_EACH or len(others) < MIN_EACH:
        return {}
    folds = {k: cross_fit_folds(len(v), groups if k == split else None) for k, v in x.items()}
    other_folds = cross_fit_folds(len(others), None)
    oof = {k: np.zeros(len(v)) for k, v in x.items()}
    for i in range(int(max(f.max() for f in folds.values())) + 1):
        keep = {k: torch.from_numpy(f != i) for k, f in folds.items()}
        fit = _fit(torch.cat([v[keep[k]] for k, v in x.items()]), others[other_folds != i], l2)
        for k, v in x.items():
            oof[k][~keep[k].numpy()] = linear_score(v[~keep[k]], fit).numpy()
    fit = _fit(torch.cat(list(x.values())), others, l2)
    return {"layers": names, **fit, "threshold": threshold_for(oof, rate), "nonletters": len(others), "l2": l2}
