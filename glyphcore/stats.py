"""Statistics of comparisons: paired intervals, the multiple-comparison correction, verdicts in
words and the stopping rule of "until decided". Pure functions on numbers (no torch, no numpy).

The method, stated once:

* **Paired by seed.** Seed k trains every arm on the same data order, augmentation draws and initial
  weights, so an arm is compared with the baseline through the per-seed differences ``a_k - b_k``.
  :func:`paired_interval` is the Student t interval of their mean (n - 1 degrees of freedom).
* **Verdict.** With an equivalence margin ``m`` (``DEFAULT_MARGIN``: 0.3 points of accuracy): the
  arm is *better* when the whole interval lies above 0, *worse* when below 0, *no difference* when
  the whole interval lies within ``(-m, +m)`` (two one-sided tests), else *undecided* (add seeds);
  one seed cannot tell noise from effect.
* **Several arms against one baseline: Bonferroni.** With k arms, each interval is computed at
  confidence ``1 - (1 - c) / k`` (:func:`bonferroni_confidence`), so that all k intervals hold
  together with confidence ``c``; the verdicts may then be read together.
* **Until decided: Bonferroni over the planned looks.** Looking after every round and stopping
  when decided would inflate the error rate of a fixed 95% interval; :func:`sequential_confidence`
  spends the error rate evenly over the planned maximum number of looks (a Bonferroni alpha
  spending: each look at ``1 - (1 - c) / max_looks``), so the verdicts at whichever look the rounds
  stop are right with confidence ``c`` (conservative: the looks are correlated).

The t quantile is computed here (regularised incomplete beta by a continued fraction, inverted by
bisection) so that no statistics library is needed; it agrees with tables to 1e-9.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MARGIN",
    "VERDICT_KINDS",
    "DECIDED_KINDS",
    "CORRECTIONS",
    "Interval",
    "Verdict",
    "t_cdf",
    "t_quantile",
    "mean_sd",
    "paired_interval",
    "mean_interval",
    "bonferroni_confidence",
    "holm_adjust",
    "sequential_confidence",
    "verdict",
]

# The default equivalence margin: differences of best validation accuracy smaller than 0.3
# percentage points count as "no difference" (about the seed-to-seed sd of the quick preset).
DEFAULT_MARGIN = 0.3  # percentage points of accuracy
VERDICT_KINDS = ("better", "worse", "no difference", "undecided", "one seed")
DECIDED_KINDS = ("better", "worse", "no difference")  # the kinds that end "until decided"
# How several arms against one baseline are corrected: "bonferroni" (each interval at
# 1 - (1 - c) / arms) or "none" (each interval on its own, at c).
CORRECTIONS = ("bonferroni", "none")


@dataclass(frozen=True)
class Interval:
    """A paired difference and its confidence interval.

    Attributes:
        mean: mean of the per-seed differences a - b.
        low, high: the interval's ends; None when n < 2 (one difference has no spread).
        n: how many pairs.
        sd: sample standard deviation of the differences (n - 1 in the denominator); None when n < 2.
        confidence: the interval's own confidence (after any correction), e.g. 0.95.
    """

    mean: float | None
    low: float | None
    high: float | None
    n: int
    sd: float | None
    confidence: float


@dataclass(frozen=True)
class Verdict:
    """A comparison in words: ``kind`` is one of VERDICT_KINDS, ``sentence`` says it for a person."""

    kind: str
    sentence: str


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (0 < p < 1), by bisection.

    Raises:
        ValueError: p outside (0, 1) or df <= 0.
    """
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample sd (n - 1) of ``values``; (None, None) for none, sd None for one value."""
    n = len(values)
    if n == 0:
        return None, None
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def paired_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """The t interval of the mean per-seed difference ``a[k] - b[k]``.

    Args:
        a, b: the two arms' values, pair k from the same seed (equal lengths).
        confidence: two-sided confidence of the interval, in (0, 1).

    Returns:
        An Interval: mean +- t(1 - (1 - confidence) / 2, n - 1) * sd / sqrt(n); low/high/sd None
        when n < 2 (nan-free). Equal differences (sd 0) give low == high == mean.

    Raises:
        ValueError: lengths differ, or confidence not in (0, 1).
    """
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    mean, sd = mean_sd(diffs)
    if mean is None or sd is None:
        return Interval(mean, None, None, len(diffs), None, confidence)
    half = t_quantile(1.0 - (1.0 - confidence) / 2.0, len(diffs) - 1) * sd / math.sqrt(len(diffs))
    return Interval(mean, mean - half, mean + half, len(diffs), sd, confidence)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The t interval of the mean of ``values`` (one group on its own: for a cost chart, not a verdict)."""
    return paired_interval(values, [0.0] * len(values), confidence)


def bonferroni_confidence(confidence: float, comparisons: int) -> float:
    """Each interval's confidence so that ``comparisons`` intervals hold together with ``confidence``."""
    return 1.0 - (1.0 - confidence) / max(1, int(comparisons))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given): reject where adjusted < alpha.

    The step-down version of Bonferroni, for reporting tests rather than intervals: the i-th
    smallest p is multiplied by (m - i), made monotone, capped at 1.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def sequential_confidence(look: int, max_looks: int, confidence: float = 0.95) -> float:
    """The confidence of the intervals at look ``look`` (1-based) of at most ``max_looks``, so that
    stopping at the first look where everything is decided keeps the overall ``confidence``.

    Bonferroni alpha spending over the looks: every look gets an equal share of the error rate,
    ``1 - (1 - confidence) / max_looks`` (the same at each look, so later seeds are never judged more
    leniently than earlier ones).

    Raises:
        ValueError: look outside 1..max_looks.
    """
    if not 1 <= look <= max_looks:
        raise ValueError(f"look must be between 1 and max_looks={max_looks}, got {look}")
    return bonferroni_confidence(confidence, max_looks)


def _number(x: float, digits: int) -> str:
    return f"{x:.{digits}f}" if abs(x) >= 10.0**-digits or x == 0 else f"{x:.2g}"


def verdict(
    interval: Interval,
    margin: float,
    metric_label: str,
    arm_label: str,
    baseline_label: str,
    higher_is_better: bool = True,
    unit: str = "points",
    confidence: float | None = None,
    digits: int = 2,
) -> Verdict:
    """The verdict on ``arm - baseline`` and its sentence.

    Args:
        interval: the paired interval of arm - baseline (:func:`paired_interval`), in ``unit``.
        margin: the equivalence margin, in ``unit`` (> 0): a gap smaller than this does not matter.
        metric_label: what was measured, e.g. "best val acc".
        arm_label, baseline_label: the two groups, e.g. "GELU" and "ReLU".
        higher_is_better: False for a loss (the arm is better when its value is lower).
        unit: the unit of the differences, e.g. "points" (percentage points) or "" (none).
        confidence: the confidence the sentence states (e.g. 0.95 for a Bonferroni family whose
            intervals are each wider); default the interval's own.
        digits: decimals of the numbers in the sentence.

    Returns:
        better (the interval lies above 0 in the good direction), worse (below 0), no difference
        (the interval lies within +-margin), undecided (neither: add seeds; also no pairs at all)
        or one seed (n == 1).
    """
    conf = f"{100 * (confidence if confidence is not None else interval.confidence):.4g}%"
    u = f" {unit}" if unit else ""
    seeds = f"{interval.n} seed{'s' if interval.n != 1 else ''}"
    if interval.mean is None:
        return Verdict("undecided", f"undecided: no seed finished in both {arm_label} and {baseline_label}")
    sign = 1.0 if higher_is_better else -1.0
    gain = sign * interval.mean
    if interval.low is None or interval.high is None:
        text = f"{arm_label} - {baseline_label} = {_number(interval.mean, digits)}{u} of {metric_label}"
        return Verdict("one seed", f"1 seed: cannot tell noise from effect ({text})")
    lo, hi = sorted((sign * interval.low, sign * interval.high))  # the interval of the gain
    if lo > 0 or hi < 0:
        kind, size, ends = ("better", gain, (lo, hi)) if lo > 0 else ("worse", -gain, (-hi, -lo))
        direction = "" if higher_is_better else (" (lower)" if kind == "better" else " (higher)")
        return Verdict(
            kind,
            f"{arm_label} is {kind} than {baseline_label} by {_number(size, digits)}{u} of {metric_label}"
            f"{direction} ({conf} interval {_number(ends[0], digits)} to {_number(ends[1], digits)}, {seeds})",
        )
    ends_text = f"{_number(interval.low, digits)} to {_number(interval.high, digits)}{u}"
    if -margin < interval.low and interval.high < margin:
        return Verdict(
            "no difference",
            f"no difference found between {arm_label} and {baseline_label}: the gap in {metric_label} is within "
            f"±{_number(margin, digits)}{u} with {conf} confidence (interval {ends_text}, {seeds})",
        )
    return Verdict(
        "undecided",
        f"undecided between {arm_label} and {baseline_label}: add seeds (the {conf} interval {ends_text} "
        f"of {metric_label} reaches past the ±{_number(margin, digits)} margin, {seeds})",
    )
