"""The contrast of letters against generated non-letters (glyphcore.infer.contrast), on hand-made features
where neither the density nor the confidence tells them apart, and read by the judgement."""

from __future__ import annotations

import copy

import numpy as np
import torch

from glyphcore.infer.calibration import fit_calibration
from glyphcore.infer.letters import contrast_scores, judge_letters

DIM, WIDE = 12, slice(7, 12)  # features; dims 7-11 vary widely among letters


def _letters(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Three classes along axes 0-2, small noise there, wide noise (sd 3) on dims 7-11; confident logits."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat(n // 3)
    f = torch.nn.functional.one_hot(y, DIM).float() * 5 + torch.randn(len(y), DIM, generator=g) * 0.3
    f[:, WIDE] = torch.randn(len(y), 5, generator=g) * 3
    z = torch.nn.functional.one_hot(y, 3).float() * 6 + torch.randn(len(y), 3, generator=g) * 0.5
    return z, y, {"penultimate": f}


def _non_letters(n: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Like a class on dims 0-2 and as sure of it, but all at +4 on dims 7-11: no single feature is unusual
    (a Mahalanobis distance typical of letters), only where they sit together."""
    z, _, f = _letters(n, seed)
    g = torch.Generator().manual_seed(seed + 1)
    f["penultimate"][:, WIDE] = 4 + torch.randn(len(z), 5, generator=g) * 0.3
    return z, f


def _flagged(z: torch.Tensor, f: dict[str, torch.Tensor], cal: dict) -> float:
    return float(np.mean(~judge_letters(z, f, cal, ["a", "b", "c"]).letter))


def test_the_contrast_flags_non_letters_the_density_and_the_confidence_let_through():
    z, y, f = _letters(1500, 0)
    _, pool = _non_letters(600, 1)
    groups = np.arange(len(y)) // 100  # 15 "families" for the cross-fitted thresholds
    plain = fit_calibration(z, y, f, groups=groups)
    cal = fit_calibration(z, y, f, groups=groups, nonletters=pool)
    contrast = cal["letter"]["contrast"]
    assert contrast["layers"] == ["penultimate"] and contrast["nonletters"] == 600
    assert {k: tuple(contrast[k].shape) for k in ("mean", "scale", "weight")} == {
        k: (DIM,) for k in ("mean", "scale", "weight")
    }
    # fresh draws of both: the letters still pass, the non-letters now do not
    zl, _, fl = _letters(1500, 10)
    zn, fn = _non_letters(600, 11)
    assert _flagged(zn, fn, plain) < 0.2  # without the contrast they read as sure letters
    assert _flagged(zn, fn, cal) >= 0.95
    assert _flagged(zl, fl, cal) <= 0.02  # 0.5% per score and source is stated; fresh letters stay near it
    # a confident answer with unusual features is "unsure" with the best guess, never "not a letter"
    j = judge_letters(zn[:1], {"penultimate": fn["penultimate"][:1]}, cal, ["a", "b", "c"])
    assert not j.letter[0] and j.reasons[0].startswith("unsure: the model reads it as a,")
    assert "not a letter" not in j.reasons[0]


def test_a_damaged_or_foreign_contrast_is_not_used_and_breaks_nothing():
    z, y, f = _letters(600, 2)
    _, pool = _non_letters(300, 3)
    cal = fit_calibration(z, y, f, nonletters=pool)
    zn, fn = _non_letters(300, 4)
    assert contrast_scores(fn, cal["letter"]) is not None
    nan_weight = cal["letter"]["contrast"]["weight"].clone()
    nan_weight[0] = float("nan")
    cases = [
        ("threshold", float("nan")),
        ("bias", "1.0"),
        ("layers", ["layer:features.act9"]),  # a layer these features do not have
        ("weight", torch.zeros(DIM + 1)),  # another length than the features
        ("weight", nan_weight),  # not finite
        ("scale", torch.zeros(DIM)),  # no positive scale
        ("mean", [0.0] * DIM),  # not a tensor
    ]
    for key, bad in cases:
        broken = copy.deepcopy(cal)
        broken["letter"]["contrast"][key] = bad
        assert contrast_scores(fn, broken["letter"]) is None, key
        j = judge_letters(zn, fn, broken, ["a", "b", "c"])  # judged by the density and the confidence alone
        assert j is not None and len(j.reasons) == len(zn)
    # bare penultimate features (no names): the contrast cannot be read, the rest still is
    assert contrast_scores(fn["penultimate"], cal["letter"]) is None
    assert judge_letters(zn, fn["penultimate"], cal) is not None


def test_without_non_letters_or_without_named_features_there_is_no_contrast():
    z, y, f = _letters(300, 5)
    assert "contrast" not in fit_calibration(z, y, f)["letter"]
    _, pool = _non_letters(90, 6)
    assert "contrast" not in fit_calibration(z, y, None, nonletters=pool)["letter"]  # no features to contrast
    # too few to fit and fold a classifier (a course folder with a handful of letters, a tiny pool): none,
    # and the rest of the judgement still works
    few = fit_calibration(z[:5], y[:5], {"penultimate": f["penultimate"][:5]}, nonletters=pool)
    j = judge_letters(z[:5], {"penultimate": f["penultimate"][:5]}, few)
    assert "contrast" not in few["letter"] and j is not None and len(j.reasons) == 5
    tiny_pool = {"penultimate": pool["penultimate"][:5]}
    assert "contrast" not in fit_calibration(z, y, f, nonletters=tiny_pool)["letter"]
