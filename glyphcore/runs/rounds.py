"""Until decided: add seeds in rounds until every arm-vs-baseline comparison has a verdict.

Round 1 is an ordinary sweep of the grid crossed with ``seeds`` seeds. After each round the runs of
all rounds so far are grouped and every arm is compared with the baseline (``groups.compare_groups``);
the next round is a sweep of one more seed over the baseline and the arms still undecided (the
smallest grid that covers them), until none is undecided or ``max_seeds`` seeds are reached.

The stopping rule stays valid although the verdicts are looked at after every round: the intervals
spend the error rate over the planned maximum number of looks (``max_seeds - seeds + 1``) as well as
over the arms (Bonferroni both ways, ``glyphcore.stats.sequential_confidence``), so the verdicts at
whichever round the rounds stop are right together with the stated confidence.

Every round's sweep record carries ``until_decided``: the series' name, the round, the planned
looks, the baseline, the metric and the margin, so that the rounds read back as one comparison
(:func:`series_sweeps`). The driver runs in the caller's process (``sweep start --until-decided``
waits in the foreground); the runs themselves are ordinary sweep runs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from glyphcore import paths, runs, stats
from glyphcore.errors import ConfigError
from glyphcore.runs import groups
from glyphcore.runs.sweep import SWEEPS_DIR, launch_sweep, read_sweep, sweep_grid

__all__ = ["RoundResult", "planned_looks", "decide_in_rounds", "judge_sweeps", "series_sweeps", "wait_for_sweep"]

_POLL_S = 1.0  # s between looks at a round's sweep


@dataclass
class RoundResult:
    """One round: its number (1-based), its sweep, the seeds it added and the verdict rows after it
    (``groups.compare_groups`` rows with the arm's settings under ``settings``)."""

    round: int
    sweep_id: str
    seeds: list[int]
    verdicts: list[dict[str, Any]]

    @property
    def undecided(self) -> list[dict[str, Any]]:
        """The rows whose verdict is not one of ``stats.DECIDED_KINDS``."""
        return [r for r in self.verdicts if r["verdict"] not in stats.DECIDED_KINDS]


def planned_looks(seeds: int, max_seeds: int) -> int:
    """How many times the verdicts are looked at: after the first round, then after each added seed.

    Raises:
        ConfigError: seeds below 1, or max_seeds below seeds.
    """
    if seeds < 1 or max_seeds < seeds:
        raise ConfigError(f"until decided needs 1 <= --seeds <= --max-seeds, got {seeds} and {max_seeds}")
    return max_seeds - seeds + 1


def wait_for_sweep(sweep_id: str) -> None:
    """Block until no run of the sweep is waiting or training."""
    while read_sweep(sweep_id).active:
        time.sleep(_POLL_S)


def _record(sweep_id: str) -> dict[str, Any]:
    return runs.read_json(paths.runs_dir() / SWEEPS_DIR / f"{runs.sanitize_name(sweep_id, max_len=200)}.json") or {}


def series_sweeps(sweep_id: str) -> tuple[list[str], dict[str, Any]]:
    """Every sweep of the until-decided comparison that ``sweep_id`` is a round of (in round order),
    and its ``until_decided`` settings; ``([sweep_id], {})`` for an ordinary sweep."""
    info = _record(sweep_id).get("until_decided")
    if not isinstance(info, dict) or not isinstance(info.get("series"), str):
        return [sweep_id], {}
    folder = paths.runs_dir() / SWEEPS_DIR
    rounds = []
    for path in sorted(folder.glob("*.json")):
        other = (runs.read_json(path) or {}).get("until_decided")
        if isinstance(other, dict) and other.get("series") == info["series"] and isinstance(other.get("round"), int):
            rounds.append((other["round"], path.stem))
    return [s for _, s in sorted(rounds)], info


def judge_sweeps(
    sweep_ids: Iterable[str],
    baseline: str | None,
    metric: str = "best_val_acc",
    margin: float | None = None,
    confidence: float = 0.95,
    looks: int = 1,
) -> list[dict[str, Any]]:
    """The verdict rows over every run of ``sweep_ids``: each arm's group against the baseline group
    (its label or a run id; default the first group), each row with the arm's ``settings`` and the
    baseline's (``baseline_settings``)."""
    infos = {i.run_id: i for s in sweep_ids for i in read_sweep(s).runs}
    found = groups.group_runs(infos.values())
    if not found:
        return []
    base = groups.find_group(found, baseline) if baseline else found[0]
    arms = [g for g in found if g is not base]
    rows = groups.compare_groups(base, arms, metric=metric, margin=margin, confidence=confidence, looks=looks)
    return [{**row, "settings": arm.settings, "baseline_settings": base.settings} for row, arm in zip(rows, arms)]


def _covering_grid(points: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, list[Any]]:
    """The smallest grid over ``keys`` whose product holds every point (values in first-seen order)."""
    grid: dict[str, list[Any]] = {}
    for key in keys:
        seen: dict[str, Any] = {}
        for point in points:
            seen.setdefault(repr(point.get(key)), point.get(key))
        grid[key] = list(seen.values())
    return grid


Launch = Callable[..., str]
Judge = Callable[[list[str], int], list[dict[str, Any]]]


def decide_in_rounds(
    config: Any,
    grid: dict[str, list[Any]] | list[str],
    *,
    seeds: int = 3,
    max_seeds: int = 10,
    baseline: str | None = None,
    metric: str = "best_val_acc",
    margin: float | None = None,
    confidence: float = 0.95,
    parallel: int | None = None,
    name: str | None = None,
    launch: Launch = launch_sweep,
    wait: Callable[[str], None] = wait_for_sweep,
    judge: Judge | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
) -> list[RoundResult]:
    """Train ``grid`` x ``seeds`` seeds, then one more seed per round for the baseline and every arm
    still undecided, until every comparison is decided or ``max_seeds`` seeds are reached.

    Args:
        config: a TrainConfig; seeds ``config.seed``, ``config.seed + 1``, ... are used in order.
        grid: setting -> values (a list: activations); it must not vary the seed itself.
        seeds: seeds of the first round; max_seeds: the most seeds any arm gets.
        baseline: the baseline group's label (e.g. "activation=relu") or a run id; default the first.
        metric, margin, confidence, parallel, name: as in ``groups.compare_groups`` and ``launch_sweep``.
        launch, wait, judge: the steps (tests script them): ``launch_sweep``, :func:`wait_for_sweep`,
            ``judge(sweep_ids, looks)`` -> rows as :func:`judge_sweeps` makes them.
        on_round: called with each round's result as it is judged (progress output).

    Returns:
        The rounds, in order; the last one's verdicts are the answer.

    Raises:
        ConfigError: bad seeds / max_seeds, a grid that varies the seed, or a bad grid.
    """
    looks = planned_looks(seeds, max_seeds)
    if "seed" in (keys := list(sweep_grid(config, grid))):
        raise ConfigError("until decided adds the seeds itself: vary other settings, not the seed")
    judge = judge or (lambda ids, n: judge_sweeps(ids, baseline, metric, margin, confidence, n))
    series = f"until-decided-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 1_000_000_000:09d}"
    plan = {"series": series, "looks": looks, "max_seeds": max_seeds, "baseline": baseline, "margin": margin}
    results: list[RoundResult] = []
    round_grid, round_config, round_seeds, used = grid, config, seeds, 0
    while True:
        extra = {"until_decided": {**plan, "round": len(results) + 1}}
        sweep_id = launch(round_config, round_grid, seeds=round_seeds, extra=extra, parallel=parallel, name=name)
        wait(sweep_id)
        added = list(range(round_config.seed, round_config.seed + round_seeds))
        used += round_seeds
        verdicts = judge([r.sweep_id for r in results] + [sweep_id], looks)
        results.append(result := RoundResult(len(results) + 1, sweep_id, added, verdicts))
        if on_round is not None:
            on_round(result)
        if not result.undecided or used >= max_seeds or not result.verdicts:
            return results
        points = [result.undecided[0]["baseline_settings"], *(r["settings"] for r in result.undecided)]
        round_grid = _covering_grid(points, keys)
        round_config, round_seeds = dataclasses.replace(config, seed=config.seed + used), 1
