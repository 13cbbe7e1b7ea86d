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

import argparse
import dataclasses
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glyphcore import paths, runs, stats
from glyphcore.errors import ConfigError, RunError
from glyphcore.runfolder.lock import pid_start_time
from glyphcore.runs import groups
from glyphcore.runs.process import spawn_detached
from glyphcore.runs.sweep import (
    SWEEPS_DIR,
    cancel_sweep,
    launch_sweep,
    read_sweep,
    sweep_configs,
    sweep_grid,
    sweep_table,
)

__all__ = [
    "RoundResult",
    "planned_looks",
    "planned_looks_of",
    "decide_in_rounds",
    "judge_sweeps",
    "series_sweeps",
    "sweep_comparison",
    "wait_for_sweep",
    "ROUNDS_DIR",
    "start_until_decided",
    "read_until_decided",
    "cancel_until_decided",
    "run_plan",
    "main",
]

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
    return _rounds_of(info["series"]), info


def _rounds_of(series: str) -> list[str]:
    """The sweep ids of the series' rounds, in round order."""
    folder = paths.runs_dir() / SWEEPS_DIR
    rounds = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        other = (runs.read_json(path) or {}).get("until_decided")
        if isinstance(other, dict) and other.get("series") == series and isinstance(other.get("round"), int):
            rounds.append((other["round"], path.stem))
    return [s for _, s in sorted(rounds)]


def planned_looks_of(plan: Mapping[str, Any]) -> int:
    """The planned looks of an ``until_decided`` record (1 when it has none or a bad value)."""
    looks = plan.get("looks")
    return looks if isinstance(looks, int) and not isinstance(looks, bool) and 1 <= looks <= 10_000 else 1


def sweep_comparison(sweep_id: str, baseline: str | None = None, margin: float | None = None) -> dict[str, Any]:
    """``groups.compare_runs`` of a sweep (with every round of an until-decided sweep, judged with
    its planned looks and, unless given, its baseline and margin), plus "sweeps" (its rounds) and
    "runs" (``sweep_table`` rows of every round)."""
    sweep_ids, plan = series_sweeps(sweep_id)
    sweeps = [read_sweep(s) for s in sweep_ids]
    planned_margin = plan.get("margin")
    if margin is None and isinstance(planned_margin, int | float) and 0 <= planned_margin < 1e6:
        margin = float(planned_margin)
    if baseline is None and isinstance(plan.get("baseline"), str):
        baseline = plan["baseline"]
    infos = [i for s in sweeps for i in s.runs]
    report = groups.compare_runs(infos, baseline=baseline, margin=margin, looks=planned_looks_of(plan))
    return {**report, "sweeps": sweep_ids, "runs": [row for s in sweeps for row in sweep_table(s)]}


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


def _series_name() -> str:
    return f"until-decided-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 1_000_000_000:09d}"


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
    on_round: Callable[[RoundResult], None] = lambda result: None,
    series: str | None = None,
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
        series: the name the rounds' records share (default a new one).

    Returns:
        The rounds, in order; the last one's verdicts are the answer.

    Raises:
        ConfigError: bad seeds / max_seeds, a grid that varies the seed, or a bad grid.
    """
    looks = planned_looks(seeds, max_seeds)
    if "seed" in (keys := list(sweep_grid(config, grid))):
        raise ConfigError("until decided adds the seeds itself: vary other settings, not the seed")
    judge = judge or (lambda ids, n: judge_sweeps(ids, baseline, metric, margin, confidence, n))
    plan = dict(series=series or _series_name(), looks=looks, max_seeds=max_seeds, baseline=baseline, margin=margin)
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
        on_round(result)
        if not result.undecided or used >= max_seeds or not result.verdicts:
            return results
        points = [result.undecided[0]["baseline_settings"], *(r["settings"] for r in result.undecided)]
        round_grid = _covering_grid(points, keys)
        round_config, round_seeds = dataclasses.replace(config, seed=config.seed + used), 1


# A detached until-decided (the app starts one): <runs>/sweeps/rounds/<series>.json holds the plan
# and the progress (state, pid, the rounds' sweep ids and verdicts), <series>.log its output.
ROUNDS_DIR = "rounds"  # under the sweeps folder
_PLAN_KEYS = ("seeds", "max_seeds", "baseline", "margin", "parallel", "name")


def _plan_path(series: str) -> Path:
    return paths.runs_dir() / SWEEPS_DIR / ROUNDS_DIR / f"{runs.sanitize_name(series, max_len=200)}.json"


def start_until_decided(config: Any, grid: dict[str, list[Any]] | list[str], **plan: Any) -> str:
    """:func:`decide_in_rounds` in a detached process of its own; returns the series name at once.

    Args:
        config, grid: as for :func:`decide_in_rounds`.
        plan: its seeds, max_seeds, baseline, margin, parallel and name.

    Raises:
        ConfigError: a bad plan or grid (checked before anything starts). RunError: no process.
    """
    unknown = sorted(set(plan) - set(_PLAN_KEYS))
    if unknown:
        raise ConfigError(f"unknown until-decided option(s) {', '.join(unknown)}; use {', '.join(_PLAN_KEYS)}")
    planned_looks(plan.get("seeds", 3), plan.get("max_seeds", 10))
    sweep_configs(config, grid, plan.get("seeds", 3))
    series = _series_name()
    path = _plan_path(series)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"series": series, "config": dataclasses.asdict(config), "grid": sweep_grid(config, grid), **plan}
    runs.write_json_atomic(path, {**record, "state": "running", "rounds": [], "pid": None, "created": time.time()})
    try:
        proc = spawn_detached([sys.executable, "-m", "glyphcore.runs.rounds", str(path)], path.with_suffix(".log"))
    except OSError as e:
        runs.write_json_atomic(path, {**record, "state": "failed", "rounds": [], "message": str(e)})
        raise RunError(f"could not start the until-decided process: {e}") from None
    _update_plan(path, pid=proc.pid, pid_start=pid_start_time(proc.pid))
    return series


def _update_plan(path: Path, **changes: Any) -> dict[str, Any]:
    record = {**(runs.read_json(path) or {}), **changes}
    runs.write_json_atomic(path, record)
    return record


def read_until_decided(series: str) -> dict[str, Any]:
    """A detached until-decided's plan and progress: state (running, done, failed, or crashed when
    its process is gone), rounds (sweep id, seeds and verdict kinds per round), message.

    Raises:
        RunError: no such series.
    """
    record = runs.read_json(_plan_path(series))
    if record is None:
        raise RunError(f"no until-decided comparison {series!r}")
    if record.get("state") == "running" and not runs.pid_alive(record.get("pid"), record.get("pid_start")):
        young = record.get("pid") is None and time.time() - float(record.get("created") or 0) < 60
        if not young:
            record["state"], record["message"] = "crashed", "the until-decided process ended without finishing"
    return record


def cancel_until_decided(series: str, wait: float = 0.0) -> dict[str, Any]:
    """Stop a detached until-decided: its process first (so that it starts no further round), then
    every round still waiting or training (``cancel_sweep``).

    Returns:
        Its progress (:func:`read_until_decided`), state "cancelled".

    Raises:
        RunError: no such series, or it is not running.
    """
    record = read_until_decided(series)
    if record.get("state") != "running":
        raise RunError(f"{series} is {record.get('state')}, not running; nothing to cancel")
    path = _plan_path(series)
    _update_plan(path, state="cancelled", message="cancelled")
    pid = record.get("pid")
    if isinstance(pid, int) and runs.pid_alive(pid, record.get("pid_start")):
        os.kill(pid, signal.SIGTERM)
    for sweep_id in _rounds_of(record["series"]):
        if read_sweep(sweep_id).active:
            cancel_sweep(sweep_id, wait=wait)
    return read_until_decided(series)


def run_plan(path: Path) -> int:
    """The detached process: run the plan at ``path``, recording each round; 0 done, 1 failed."""
    from glyphcore.train.config import config_from_dict

    record = runs.read_json(Path(path)) or {}
    _update_plan(path, pid=os.getpid(), pid_start=pid_start_time(os.getpid()))
    done: list[dict[str, Any]] = []

    def on_round(result: RoundResult) -> None:
        kinds = {r["arm"]: r["verdict"] for r in result.verdicts}
        done.append({"round": result.round, "sweep_id": result.sweep_id, "seeds": result.seeds, "verdicts": kinds})
        _update_plan(path, rounds=done)

    try:
        config = config_from_dict(record["config"], ignore_unknown=True)
        options = {k: record[k] for k in _PLAN_KEYS if record.get(k) is not None}
        decide_in_rounds(config, record["grid"], series=record["series"], on_round=on_round, **options)
    except Exception as e:  # recorded for the app, and in the log with its traceback
        _update_plan(path, state="failed", message=f"{type(e).__name__}: {e}")
        raise
    if (runs.read_json(path) or {}).get("state") == "running":  # not cancelled meanwhile
        _update_plan(path, state="done", message=f"{len(done)} round(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m glyphcore.runs.rounds PLAN``: a detached until-decided (started by start_until_decided)."""
    parser = argparse.ArgumentParser(prog="python -m glyphcore.runs.rounds", description=run_plan.__doc__)
    parser.add_argument("plan", type=Path, help="<runs folder>/sweeps/rounds/<series>.json")
    return run_plan(parser.parse_args(argv).plan)


if __name__ == "__main__":
    sys.exit(main())
