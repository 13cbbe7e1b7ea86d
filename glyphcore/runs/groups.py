"""Groups of seed replicates and comparisons between them.

A group is the runs whose settings are equal but for the seed (:func:`group_key`: the comparable
settings of ``glyphcore.runs.compare``, without ``seed``). Its rows show mean, sd and n of a metric
over the members that finished (state ``done``); members that failed, diverged, crashed, were
cancelled or are still running are listed as left out, with why. Two groups are compared **paired
by seed** (seed k has the same data order, augmentation draws and initial weights in every arm):
:func:`compare_groups` gives one row per arm against a baseline with the interval and the verdict of
``glyphcore.stats`` (Bonferroni-corrected over the arms, and over the planned looks of "until
decided"). Pure functions over ``RunInfo``, config dicts and metrics events; no torch at import time.

One module (a little over 500 lines) because every part reads the same two definitions, what makes
runs one group and how a metric is read, checked and shown: the group table, the paired verdicts,
the mean curves and the cost points must never disagree on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from glyphcore import stats
from glyphcore.errors import ConfigError
from glyphcore.runfolder import store
from glyphcore.runfolder.store import RunInfo
from glyphcore.runs.compare import comparable_settings, value_text

__all__ = [
    "MetricSpec",
    "metric_spec",
    "group_key",
    "RunGroup",
    "group_runs",
    "find_group",
    "compare_groups",
    "DEFAULT_METRICS",
    "compare_runs",
    "comparison_method",
    "group_curves",
    "cost_points",
    "train_flops_per_image",
]


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is shown and judged: ``label``, ``scale`` (stored value x scale = shown value,
    e.g. 100 for an accuracy fraction in percentage points), ``unit``, ``higher_is_better``, the
    default equivalence ``margin`` (in the shown unit) and decimals ``digits``."""

    name: str
    label: str
    scale: float
    unit: str
    higher_is_better: bool
    margin: float
    digits: int


_LOSS_MARGIN = 0.01  # a gap in validation loss (nats per image) smaller than this does not matter


def metric_spec(metric: str) -> MetricSpec:
    """The spec of ``metric``: a name ending in ``acc`` is an accuracy fraction shown in percentage
    points (higher is better, margin ``stats.DEFAULT_MARGIN``); one containing ``loss`` is lower-is-
    better (margin 0.01); ``wall_seconds`` is lower-is-better seconds; anything else is shown as is,
    higher is better, with a margin of 0 (pass a margin to allow "no difference")."""
    label = metric.replace("_", " ")
    if metric.endswith("acc"):
        return MetricSpec(metric, label, 100.0, "points", True, stats.DEFAULT_MARGIN, 2)
    if "loss" in metric:
        return MetricSpec(metric, label, 1.0, "", False, _LOSS_MARGIN, 3)
    if metric == "wall_seconds":
        return MetricSpec(metric, "wall time", 1.0, "s", False, 0.0, 1)
    return MetricSpec(metric, label, 1.0, "", True, 0.0, 3)


def group_key(config: Mapping[str, Any]) -> tuple:
    """What makes runs replicates of each other: their comparable settings (no bookkeeping, runtime
    or derived key) without ``seed``, as a sorted tuple of (setting, value text)."""
    return tuple(sorted((k, value_text(v)) for k, v in comparable_settings(config).items() if k != "seed"))


def _seed(config: Mapping[str, Any]) -> int | None:
    seed = config.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _checked(metric: str, value: Any) -> float | None:
    """``value`` when it is a number in ``metric``'s range (accuracy 0..1, loss/time >= 0), else None."""
    v = _finite(value)
    if v is None:
        return None
    if metric.endswith("acc") and not 0.0 <= v <= 1.0:
        return None
    if ("loss" in metric or metric.endswith("seconds")) and v < 0:
        return None
    return v


def _last_epoch_event(info: RunInfo) -> Mapping[str, Any]:
    try:
        events = store.read_metrics(info.path)
    except (OSError, ValueError):
        return {}
    return next((e for e in reversed(events) if e.get("event") == "epoch"), {})


@dataclass
class RunGroup:
    """Runs equal in every setting but the seed.

    Attributes:
        key: :func:`group_key` of its members.
        label: the settings that differ between the groups listed together, e.g. "activation=gelu"
            (set by :func:`group_runs`; text from files, show it as text).
        settings: the members' comparable settings (without seed).
        members: the runs, oldest first.
        seeds: run id -> seed (None when its config has none).
    """

    key: tuple
    label: str
    settings: dict[str, Any]
    members: list[RunInfo]
    seeds: dict[str, int | None]
    _cache: dict[tuple[str, str], float | None] = field(default_factory=dict, repr=False)

    def value(self, info: RunInfo, metric: str) -> float | None:
        """A member's ``metric`` (stored units): from status.json, else from its last epoch record;
        None when missing or out of range."""
        if (info.run_id, metric) not in self._cache:
            raw = info.status.get(metric, getattr(info, metric, None))
            if raw is None:
                raw = _last_epoch_event(info).get(metric)
            self._cache[(info.run_id, metric)] = _checked(metric, raw)
        return self._cache[(info.run_id, metric)]

    def values_by_seed(self, metric: str = "best_val_acc") -> dict[int, float]:
        """Seed -> ``metric`` of the finished members (the oldest run of a seed when it repeats)."""
        out: dict[int, float] = {}
        for info in self.members:
            seed, value = self.seeds.get(info.run_id), self.value(info, metric)
            if info.state == "done" and seed is not None and value is not None and seed not in out:
                out[seed] = value
        return out

    def left_out(self, metric: str = "best_val_acc") -> list[tuple[RunInfo, str]]:
        """The members not counted for ``metric`` and why ("failed", "running", "best_val_acc
        unknown", "repeats seed 3")."""
        counted: set[int] = set()
        out = []
        for info in self.members:
            seed = self.seeds.get(info.run_id)
            if info.state != "done":
                out.append((info, info.state))
            elif seed is None:
                out.append((info, "seed unknown"))
            elif self.value(info, metric) is None:
                out.append((info, f"{metric} unknown"))
            elif seed in counted:
                out.append((info, f"repeats seed {seed}"))
            else:
                counted.add(seed)
        return out

    def n(self, metric: str = "best_val_acc") -> int:
        """How many seeds count for ``metric``."""
        return len(self.values_by_seed(metric))

    def mean(self, metric: str = "best_val_acc") -> float | None:
        """Mean of ``metric`` over the counted seeds (stored units), None when none."""
        return stats.mean_sd(list(self.values_by_seed(metric).values()))[0]

    def sd(self, metric: str = "best_val_acc") -> float | None:
        """Sample sd of ``metric`` over the counted seeds (stored units), None below two."""
        return stats.mean_sd(list(self.values_by_seed(metric).values()))[1]

    def row(self, metric: str = "best_val_acc") -> dict[str, Any]:
        """One row of the group table: group, n, mean and sd (shown units), seeds, members, left out."""
        spec = metric_spec(metric)
        mean, sd = self.mean(metric), self.sd(metric)
        return {
            "group": self.label,
            "n": self.n(metric),
            f"mean {spec.label}": None if mean is None else round(mean * spec.scale, spec.digits + 2),
            "sd": None if sd is None else round(sd * spec.scale, spec.digits + 2),
            "seeds": ", ".join(str(s) for s in sorted(self.values_by_seed(metric))),
            "members": ", ".join(m.run_id for m in self.members),
            "left out": "; ".join(f"{i.run_id}: {why}" for i, why in self.left_out(metric)),
        }


def _configs_of(infos: Iterable[RunInfo]) -> list[tuple[RunInfo, dict[str, Any]]]:
    out = []
    for info in infos:
        config = store.read_json(info.path / store.CONFIG_FILE)
        if isinstance(config, dict):  # a run without a readable config.json cannot be grouped
            out.append((info, config))
    return out


def _labels(settings: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each group's differing settings as text ("activation=gelu, lr=0.001"); a lone group is
    named by its model and activation."""
    keys = sorted({k for s in settings for k in s})
    differing = [k for k in keys if len({value_text(s.get(k)) for s in settings}) > 1]
    if not differing:
        return [" ".join(str(s.get(k)) for k in ("model", "activation") if s.get(k) is not None) for s in settings]
    return [", ".join(f"{k}={value_text(s.get(k))}" for k in differing) for s in settings]


def group_runs(infos: Iterable[RunInfo]) -> list[RunGroup]:
    """The runs in groups of replicates (equal but for the seed), ordered by their first run.

    Members are sorted oldest first; a run whose config.json cannot be read is left out (it cannot
    be placed). Labels name the settings that differ between the returned groups.
    """
    by_key: dict[tuple, RunGroup] = {}
    pairs = sorted(_configs_of(infos), key=lambda p: (p[0].started or 0.0, p[0].run_id))
    for info, config in pairs:
        key = group_key(config)
        group = by_key.get(key)
        if group is None:
            settings = {k: v for k, v in comparable_settings(config).items() if k != "seed"}
            group = by_key[key] = RunGroup(key=key, label="", settings=settings, members=[], seeds={})
        group.members.append(info)
        group.seeds[info.run_id] = _seed(config)
    groups = list(by_key.values())
    for group, label in zip(groups, _labels([g.settings for g in groups])):
        group.label = label
    return groups


def find_group(groups: Sequence[RunGroup], ref: str) -> RunGroup:
    """The group labelled ``ref``, or holding the run ``ref``, or whose label contains ``ref`` once.

    Raises:
        ConfigError: no such group, or ``ref`` names several.
    """
    exact = [g for g in groups if g.label == ref or any(m.run_id == ref for m in g.members)]
    found = exact or [g for g in groups if ref in g.label]
    if len(found) == 1:
        return found[0]
    names = "; ".join(g.label for g in groups)
    what = "no group" if not found else f"{len(found)} groups"
    raise ConfigError(f"{what} match {ref!r}; name one group by its label or a run id: {names}")


def comparison_method(arms: int, confidence: float = 0.95, correction: str = "bonferroni", looks: int = 1) -> str:
    """One line saying how the intervals were made (the verdict table's caption)."""
    per = stats.bonferroni_confidence(confidence, (arms if correction == "bonferroni" else 1) * looks)
    parts = [f"Paired by seed: t interval of the mean difference arm - baseline, {100 * confidence:.4g}% overall"]
    if correction == "bonferroni" and arms > 1:
        parts.append(f"Bonferroni over {arms} arms")
    if looks > 1:
        parts.append(f"Bonferroni over {looks} planned looks (until decided)")
    if per != confidence:
        parts.append(f"so each interval is at {100 * per:.4g}%")
    return "; ".join(parts) + "."


def _unpaired_notes(arm: RunGroup, baseline: RunGroup, metric: str, paired: set[int]) -> dict[int, list[str]]:
    """Seed -> why it is not a pair, for every seed of either group that is not: "failed in gelu"."""
    notes: dict[int, list[str]] = {}
    for group, other in ((arm, baseline), (baseline, arm)):
        reasons = {group.seeds.get(i.run_id): why for i, why in group.left_out(metric)}
        counted = set(group.values_by_seed(metric))
        for seed in sorted(s for s in (set(reasons) | set(other.seeds.values())) - paired if s is not None):
            if seed in reasons and seed not in counted:
                notes.setdefault(seed, []).append(f"{reasons[seed]} in {group.label}")
            elif seed not in counted and seed in set(other.values_by_seed(metric)):
                notes.setdefault(seed, []).append(f"has no run in {group.label}")
    return dict(sorted(notes.items()))


def _left_out_text(notes: Mapping[int, list[str]]) -> str:
    """ "2 pairs left out: seed 3 failed in gelu; seed 4 running in relu, failed in gelu" ("" for none)."""
    if not notes:
        return ""
    parts = "; ".join(f"seed {seed} {', '.join(why)}" for seed, why in notes.items())
    return f"{len(notes)} pair{'s' if len(notes) != 1 else ''} left out: {parts}"


def compare_groups(
    baseline: RunGroup,
    arms: Sequence[RunGroup],
    metric: str = "best_val_acc",
    margin: float | None = None,
    confidence: float = 0.95,
    correction: str = "bonferroni",
    looks: int = 1,
) -> list[dict[str, Any]]:
    """One row per arm: its paired difference from ``baseline`` in ``metric`` and the verdict.

    Pairs are matched by seed; only seeds finished (done, with the metric known) in both groups count.

    Args:
        baseline: the group every arm is compared with.
        arms: the other groups.
        metric: ``best_val_acc``, ``best_val_loss`` or any numeric metric of status.json or of the
            last epoch record (:func:`metric_spec` says how it is shown and judged).
        margin: equivalence margin in the shown unit (default: the metric's, 0.3 points of accuracy).
        confidence: overall confidence of the intervals (all arms and looks together).
        correction: "bonferroni" (each interval at 1 - (1 - confidence) / arms) or "none".
        looks: the planned looks of "until decided" (the error rate is spent over them too).

    Returns:
        Rows: arm, baseline, metric, unit, n_pairs, mean_diff, low, high (shown units, arm - baseline;
        None when undefined), arm_mean, baseline_mean, verdict (a stats.VERDICT_KINDS kind),
        sentence, left_out ("2 pairs left out: seed 3 failed in gelu; ..." or ""), confidence (each
        interval's own) and method (the caption).

    Raises:
        ConfigError: an unknown correction, a negative margin, or confidence outside (0, 1).
    """
    spec = metric_spec(metric)
    margin = spec.margin if margin is None else float(margin)
    if correction not in stats.CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r}; choose from {', '.join(stats.CORRECTIONS)}")
    if not margin >= 0 or not 0 < confidence < 1 or looks < 1:
        raise ConfigError(f"margin must be >= 0, confidence in (0, 1), looks >= 1; got {margin}, {confidence}, {looks}")
    per = stats.bonferroni_confidence(confidence, (len(arms) if correction == "bonferroni" else 1) * looks)
    method = comparison_method(len(arms), confidence, correction, looks)
    base = baseline.values_by_seed(metric)
    return [_compare_row(arm, baseline, base, spec, margin, confidence, per, method) for arm in arms]


DEFAULT_METRICS = ("best_val_acc", "best_val_loss")  # what a comparison judges unless told


def compare_runs(
    infos: Sequence[Any],
    baseline: str | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    margin: float | None = None,
    looks: int = 1,
) -> dict[str, Any]:
    """The whole comparison of some runs, as the CLI and the pages lead with it: their groups and
    every arm against the baseline group (its label or a run id; default the first group) on each of
    ``metrics``; ``margin`` is the first metric's (the others keep their defaults).

    Returns:
        {"metrics", "method", "verdicts": compare_groups rows of every metric in turn, "groups":
        RunGroup.row rows on the first metric}.
    """
    groups = group_runs(infos)
    if not groups:
        return {"metrics": list(metrics), "method": "", "verdicts": [], "groups": []}
    base = find_group(groups, baseline) if baseline else groups[0]
    arms = [g for g in groups if g is not base]
    verdicts = []
    for i, metric in enumerate(metrics if arms else ()):
        verdicts += compare_groups(base, arms, metric=metric, margin=margin if i == 0 else None, looks=looks)
    return {
        "metrics": list(metrics),
        "method": comparison_method(len(arms), looks=looks),
        "verdicts": verdicts,
        "groups": [g.row(metrics[0]) for g in groups],
    }


def _compare_row(
    arm: RunGroup,
    baseline: RunGroup,
    base: Mapping[int, float],
    spec: MetricSpec,
    margin: float,
    confidence: float,
    per: float,
    method: str,
) -> dict[str, Any]:
    values = arm.values_by_seed(spec.name)
    seeds = sorted(set(values) & set(base))
    interval = stats.paired_interval(
        [values[s] * spec.scale for s in seeds], [base[s] * spec.scale for s in seeds], per
    )
    v = stats.verdict(
        interval,
        margin,
        spec.label,
        arm.label,
        baseline.label,
        spec.higher_is_better,
        spec.unit,
        confidence,
        spec.digits,
    )
    notes = _unpaired_notes(arm, baseline, spec.name, set(seeds))
    arm_mean, base_mean = arm.mean(spec.name), baseline.mean(spec.name)
    return {
        "arm": arm.label,
        "baseline": baseline.label,
        "metric": spec.name,
        "unit": spec.unit,
        "n_pairs": interval.n,
        "mean_diff": interval.mean,
        "low": interval.low,
        "high": interval.high,
        "arm_mean": None if arm_mean is None else arm_mean * spec.scale,
        "baseline_mean": None if base_mean is None else base_mean * spec.scale,
        "verdict": v.kind,
        "sentence": v.sentence,
        "left_out": _left_out_text(notes),
        "confidence": per,
        "method": method,
    }


def group_curves(
    group: RunGroup,
    events_by_run: Mapping[str, Iterable[Mapping[str, Any]]],
    key: str = "val_acc",
    x: str = "epoch",
    states: tuple[str, ...] = ("done",),
) -> list[dict[str, Any]]:
    """The group's mean curve and band of ``key`` against ``x`` over its members in ``states``.

    Args:
        group: the group.
        events_by_run: run id -> its metrics events (``runs.read_metrics``).
        key: the value of the "epoch" records to draw, e.g. "val_acc", "val_loss", "train_loss".
        x: the x of those records, e.g. "epoch" or "step".
        states: whose curves count (default the finished members, as in the verdicts).

    Returns:
        Rows ``{"x", "mean", "sd", "low", "high", "n"}`` sorted by x, in stored units; the band is
        mean +- sd over the members that have that x (low == high == mean where n == 1). A
        non-finite or wrong-typed value is skipped.
    """
    at: dict[float, list[float]] = {}
    for info in group.members:
        if info.state not in states:
            continue
        last: dict[float, float] = {}  # a resumed run may repeat an epoch: its last record counts
        for event in events_by_run.get(info.run_id, ()):
            xv, yv = _finite(event.get(x)), _finite(event.get(key))
            if event.get("event") == "epoch" and xv is not None and yv is not None:
                last[xv] = yv
        for xv, yv in last.items():
            at.setdefault(xv, []).append(yv)
    rows = []
    for xv in sorted(at):
        mean, sd = stats.mean_sd(at[xv])
        assert mean is not None  # every list has a value
        spread = sd or 0.0
        rows.append({"x": xv, "mean": mean, "sd": sd, "low": mean - spread, "high": mean + spread, "n": len(at[xv])})
    return rows


_FLOPS_CACHE: dict[str, int | None] = {}


def train_flops_per_image(config: Mapping[str, Any]) -> int | None:
    """Forward + backward FLOPs of one training image of the model a run built (its config.json's
    model_name, model_args and data set image shape; ``glyphcore.models.summary``), None when the
    config does not say or the model cannot be rebuilt. Builds the model once per architecture."""
    import json

    dataset = config.get("dataset") if isinstance(config.get("dataset"), dict) else {}
    shape = dataset.get("image_shape") if isinstance(dataset, dict) else None
    name, args = config.get("model_name"), config.get("model_args")
    if not isinstance(shape, list) or len(shape) != 3 or not isinstance(name, str) or not isinstance(args, dict):
        return None
    cache_key = json.dumps([name, args, shape], sort_keys=True, default=str)
    if cache_key not in _FLOPS_CACHE:
        try:
            from glyphcore.models.registry import rebuild_model
            from glyphcore.models.summary import model_summary

            model = rebuild_model(name, args, source="config.json")
            _FLOPS_CACHE[cache_key] = int(model_summary(model, [int(s) for s in shape]).train_flops)
        except (ConfigError, ValueError, TypeError, RuntimeError):
            _FLOPS_CACHE[cache_key] = None
    return _FLOPS_CACHE[cache_key]


def _train_flops(info: RunInfo, flops_per_image: Callable[[Mapping[str, Any]], int | None]) -> float | None:
    """Training FLOPs of a run: per image x training images x epochs done."""
    config = store.read_json(info.path / store.CONFIG_FILE) or {}
    dataset = config.get("dataset") if isinstance(config.get("dataset"), dict) else {}
    counts = dataset.get("counts") if isinstance(dataset, dict) else None
    n_train = _finite(counts.get("train")) if isinstance(counts, dict) else None
    per_image = flops_per_image(config)
    if per_image is None or n_train is None or n_train <= 0 or info.epoch <= 0:
        return None
    return float(per_image) * n_train * info.epoch


def cost_points(
    groups: Sequence[RunGroup],
    metric: str = "best_val_acc",
    confidence: float = 0.95,
    flops_per_image: Callable[[Mapping[str, Any]], int | None] = train_flops_per_image,
) -> list[dict[str, Any]]:
    """One point per group for an accuracy-against-cost chart.

    Returns:
        Rows: group, n, mean, low, high (``metric`` in shown units, t interval of the group's mean;
        low/high None below 2 seeds), train_flops (mean over the counted members of training FLOPs
        per image x training images x epochs done; None when unknown), wall_s (mean wall seconds)
        and params (of the first counted member).
    """
    spec = metric_spec(metric)
    rows = []
    for group in groups:
        by_seed = group.values_by_seed(metric)
        counted = [m for m in group.members if m.run_id in _counted_ids(group, metric)]
        interval = stats.mean_interval([v * spec.scale for v in by_seed.values()], confidence)
        flops = [f for f in (_train_flops(m, flops_per_image) for m in counted) if f is not None]
        walls = [w for w in (_finite(m.wall_seconds) for m in counted) if w is not None and w > 0]
        rows.append(
            {
                "group": group.label,
                "n": interval.n,
                "mean": interval.mean,
                "low": interval.low,
                "high": interval.high,
                "train_flops": stats.mean_sd(flops)[0],
                "wall_s": stats.mean_sd(walls)[0],
                "params": next((m.params for m in counted if m.params), None),
            }
        )
    return rows


def _counted_ids(group: RunGroup, metric: str) -> set[str]:
    left = {info.run_id for info, _ in group.left_out(metric)}
    return {m.run_id for m in group.members} - left
