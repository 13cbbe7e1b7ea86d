"""glyphcore.stats on constructed numbers with known answers: the t interval by hand, verdicts
(better, worse, no difference, undecided, one seed), the Bonferroni correction and the stopping rule."""

from __future__ import annotations

import math

import pytest

from glyphcore import stats


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [
        (0.975, 1, 12.7062047),
        (0.975, 2, 4.3026527),
        (0.975, 4, 2.7764451),
        (0.995, 10, 3.1692727),
        (0.95, 30, 1.6972609),
    ],
)
def test_t_quantiles_match_the_printed_tables(p, df, table):
    assert stats.t_quantile(p, df) == pytest.approx(table, abs=1e-6)
    assert stats.t_quantile(1 - p, df) == pytest.approx(-table, abs=1e-6)


def test_the_paired_t_interval_checked_by_hand():
    # differences 0.31, 0.09, 0.19 (the silu - relu by seed): mean 0.19667, sd 0.11015,
    # half width t(0.975, 2) * sd / sqrt(3) = 4.30265 * 0.11015 / 1.73205 = 0.27363
    interval = stats.paired_interval([95.08, 95.46, 94.87], [94.77, 95.37, 94.68])
    assert interval.n == 3 and interval.confidence == 0.95
    assert interval.mean == pytest.approx(0.196667, abs=1e-5)
    assert interval.sd == pytest.approx(0.110151, abs=1e-5)
    assert interval.low == pytest.approx(0.196667 - 0.273630, abs=1e-5)
    assert interval.high == pytest.approx(0.196667 + 0.273630, abs=1e-5)
    # the figure: "silu - relu: +0.20, CI -0.08..+0.47": undecided at the default margin
    v = stats.verdict(interval, stats.DEFAULT_MARGIN, "best val acc", "SiLU", "ReLU")
    assert v.kind == "undecided"
    assert v.sentence.startswith("undecided between SiLU and ReLU: add seeds (the 95% interval -0.08 to 0.47 points")
    assert "3 seeds" in v.sentence


def test_a_clear_gain_is_better_and_a_clear_loss_is_worse():
    better = stats.paired_interval([1.0, 1.2, 1.1, 1.0, 1.2], [0.6, 0.8, 0.7, 0.6, 0.7])
    v = stats.verdict(better, 0.3, "best val acc", "GELU", "ReLU")
    assert v.kind == "better"
    assert v.sentence == "GELU is better than ReLU by 0.42 points of best val acc (95% interval 0.36 to 0.48, 5 seeds)"
    worse = stats.paired_interval([0.6, 0.8, 0.7, 0.6, 0.7], [1.0, 1.2, 1.1, 1.0, 1.2])
    w = stats.verdict(worse, 0.3, "best val acc", "ReLU", "GELU")
    assert w.kind == "worse" and "ReLU is worse than GELU by 0.42 points" in w.sentence
    assert "(95% interval 0.36 to 0.48, 5 seeds)" in w.sentence


def test_a_loss_is_better_when_lower():
    interval = stats.paired_interval([0.50, 0.52, 0.49], [0.60, 0.61, 0.60])  # arm's loss ~0.1 lower
    v = stats.verdict(interval, 0.01, "best val loss", "GELU", "ReLU", higher_is_better=False, unit="")
    assert v.kind == "better" and v.sentence.startswith("GELU is better than ReLU by 0.10 of best val loss (lower)")


def test_a_gap_inside_the_margin_is_no_difference():
    interval = stats.paired_interval([1.0, 1.1, 1.05, 0.98], [1.0, 1.05, 1.04, 1.0])
    assert -0.3 < interval.low < 0 < interval.high < 0.3
    v = stats.verdict(interval, 0.3, "best val acc", "GELU", "ReLU")
    assert v.kind == "no difference"
    assert "within ±0.30 points with 95% confidence" in v.sentence and "4 seeds" in v.sentence
    # a narrower margin than the interval: the same numbers are undecided
    assert stats.verdict(interval, 0.03, "best val acc", "GELU", "ReLU").kind == "undecided"


def test_identical_pairs_give_an_exact_zero_and_no_difference():
    interval = stats.paired_interval([0.9, 0.8], [0.9, 0.8])
    assert (interval.mean, interval.low, interval.high, interval.sd) == (0.0, 0.0, 0.0, 0.0)
    assert stats.verdict(interval, 0.3, "best val acc", "a", "b").kind == "no difference"


def test_one_seed_cannot_tell_noise_from_effect_and_none_is_nan_free():
    one = stats.paired_interval([95.4], [94.7])
    assert (one.n, one.low, one.high, one.sd) == (1, None, None, None) and one.mean == pytest.approx(0.7)
    v = stats.verdict(one, 0.3, "best val acc", "GELU", "ReLU")
    assert v.kind == "one seed" and v.sentence.startswith("1 seed: cannot tell noise from effect")
    none = stats.paired_interval([], [])
    assert none.n == 0 and none.mean is None
    assert stats.verdict(none, 0.3, "best val acc", "GELU", "ReLU").kind == "undecided"


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="equal lengths"):
        stats.paired_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence"):
        stats.paired_interval([1.0, 2.0], [1.0, 1.0], confidence=95)


def test_the_bonferroni_correction_flips_a_verdict_that_one_comparison_alone_would_give():
    # differences 0.05, 0.15, 0.1, 0.2, 0.0: alone, better (95% interval 0.002 to 0.198); among
    # 3 arms each interval is at 98.33%, which reaches below 0: undecided
    arm, base = [1.05, 1.15, 1.1, 1.2, 1.0], [1.0] * 5
    alone = stats.paired_interval(arm, base, 0.95)
    assert stats.verdict(alone, 0.05, "best val acc", "GELU", "ReLU").kind == "better"
    per_interval = stats.bonferroni_confidence(0.95, 3)
    assert per_interval == pytest.approx(1 - 0.05 / 3)
    corrected = stats.paired_interval(arm, base, per_interval)
    assert corrected.low < 0 < corrected.high
    v = stats.verdict(corrected, 0.05, "best val acc", "GELU", "ReLU", confidence=0.95)
    assert v.kind == "undecided" and "the 95% interval" in v.sentence  # the family's confidence is stated


def test_holm_adjusts_step_down_and_keeps_order():
    assert stats.holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert stats.holm_adjust([]) == []


def test_the_stopping_rule_spends_the_error_rate_over_the_planned_looks():
    assert stats.sequential_confidence(1, 1) == pytest.approx(0.95)
    assert [stats.sequential_confidence(k, 5) for k in (1, 3, 5)] == pytest.approx([0.99] * 3)
    with pytest.raises(ValueError, match="look must be between 1 and max_looks=5"):
        stats.sequential_confidence(6, 5)
    # across 5 looks the same differences need a wider interval than at one look
    a, b = [1.2, 1.3, 1.25], [1.0] * 3
    once, spent = stats.paired_interval(a, b, 0.95), stats.paired_interval(a, b, stats.sequential_confidence(2, 5))
    assert spent.high - spent.low > once.high - once.low
    assert not math.isnan(spent.low)
