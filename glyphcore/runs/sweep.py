"""Sweeps: the same settings once per point of a grid over any TrainConfig field, as one thing.

A sweep has one id and one record, ``<runs_dir>/sweeps/<sweep_id>.json``: the grid, the run ids in
grid order, how many run at once, the device of each run and the pid of its runner. Every run folder
is created at once in the ``queued`` state (its config.json names the sweep and its place in it);
one small detached process, the runner (``python -m glyphcore.runs.queue RECORD``), starts them in
order, at most ``parallel`` at a time, each as an ordinary training process. While a run waits, its
status.json carries the runner's pid, so the lists show it ``queued`` while the runner lives and
``crashed`` if the runner dies.

On a CPU machine the runs go one at a time unless the user asks for more (two processes on two
cores are slower than one after the other); on a machine with several GPUs each run gets its own
GPU and as many run at once as there are GPUs. ``cancel_sweep`` stops the running runs and every
waiting one; ``sweep_table`` is the results table, filled in as runs finish.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glyphcore import paths, runs
from glyphcore.errors import ConfigError, RunError
from glyphcore.runfolder.lock import pid_start_time
from glyphcore.runfolder.status import PID_MAX, TIME_RANGE, checked_number
from glyphcore.runs.process import spawn_detached

__all__ = [
    "SWEEPS_DIR",
    "SweepInfo",
    "sweep_grid",
    "sweep_configs",
    "placed_configs",
    "launch_sweep",
    "read_sweep",
    "list_sweeps",
    "sweep_runs",
    "sweep_table",
    "cancel_sweep",
    "cancel_queued",
    "raw_state",
    "resume_sweep",
    "runner_argv",
]

SWEEPS_DIR = "sweeps"  # under the runs folder: one <sweep_id>.json per sweep
_PARALLEL_MAX = 1024  # runs at once: more is a damaged record


@dataclass
class SweepInfo:
    """A sweep as its record and its runs' status files tell it.

    Attributes:
        sweep_id: the record's name.
        grid: setting -> the values swept, in order.
        run_ids: the runs, in grid order.
        parallel: how many run at once.
        devices: the device setting of each run (``cuda:i`` on a machine with several GPUs).
        created: Unix seconds.
        runner_pid: the runner process.
        name: the user's name for the sweep's runs, or None.
        runs: the runs' RunInfo, in grid order (a deleted run is left out).
    """

    sweep_id: str
    grid: dict[str, list[Any]]
    run_ids: list[str]
    parallel: int
    devices: list[str]
    created: float
    runner_pid: int | None
    name: str | None
    runs: list[runs.RunInfo]

    @property
    def active(self) -> bool:
        """Some run of the sweep is waiting or training."""
        return any(r.state in runs.ACTIVE_STATES for r in self.runs)


def _sweeps_dir() -> Path:
    return paths.runs_dir() / SWEEPS_DIR


def sweep_grid(config: Any, grid: dict[str, list[Any]] | list[str], seeds: int | None = None) -> dict[str, list[Any]]:
    """The grid a sweep runs: a list is a grid over ``activation``; repeated values are dropped;
    ``seeds`` N crosses the grid with the seeds ``config.seed, config.seed + 1, ..., + N - 1`` (as
    its last, fastest-varying setting, so the replicates of a point are neighbours).

    Raises:
        ConfigError: seeds below 1, or seeds together with a grid that varies the seed itself.
    """
    out = {"activation": list(grid)} if isinstance(grid, list) else {k: list(v) for k, v in grid.items()}
    out = {k: list(dict.fromkeys(v)) for k, v in out.items()}
    if seeds is None:
        return out
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds must be a whole number of at least 1, got {seeds!r}")
    if "seed" in out:
        raise ConfigError("give either a number of seeds or seed values to vary, not both")
    return {**out, "seed": [config.seed + i for i in range(seeds)]}


def sweep_configs(config: Any, grid: dict[str, list[Any]] | list[str], seeds: int | None = None) -> list[Any]:
    """One validated copy of ``config`` per point of ``grid`` (the last setting varies fastest;
    repeated values are dropped). A list is a grid over ``activation``; ``seeds`` crosses the grid
    with that many seeds (:func:`sweep_grid`).

    Raises:
        ConfigError: an empty grid or value list, a setting that is not a TrainConfig field (or the
            preset, which names settings rather than being one), or a bad value.
    """
    from glyphcore.models import ACTIVATION_NAMES
    from glyphcore.train.config import field_specs, options_follow_model

    values = sweep_grid(config, grid, seeds)
    fields = {s["name"] for s in field_specs()} - {"preset"}
    if not values:
        raise ConfigError("a sweep needs at least one setting to vary, e.g. activation")
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(
            f"cannot sweep {', '.join(unknown)}: not a training setting; choose from {', '.join(sorted(fields))}"
        )
    for key, vals in values.items():
        if not vals:
            raise ConfigError(f"the sweep over {key} has no values; pick at least one")
    if "activation" in values:
        bad = [a for a in values["activation"] if a not in ACTIVATION_NAMES]
        if bad:
            raise ConfigError(
                f"unknown activation(s) {', '.join(map(str, bad))}; choose from {', '.join(ACTIVATION_NAMES)}"
            )
    keys = list(values)
    configs = []
    for point in itertools.product(*(values[k] for k in keys)):
        changes = options_follow_model({"model": config.model}, dict(zip(keys, point)))
        configs.append(dataclasses.replace(config, **changes))  # a TrainConfig checks itself
    return configs


def _visible_gpus() -> int:
    import torch  # only here: a sweep on the GPU spreads its runs over every GPU

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _sweep_id(grid: dict[str, Any]) -> str:
    base = "-".join([time.strftime("%Y%m%d-%H%M%S"), "sweep", *(runs.sanitize_name(k) for k in grid)])
    for i in range(1, 1000):
        candidate = base if i == 1 else f"{base}-{i}"
        if not (_sweeps_dir() / f"{candidate}.json").exists():
            return candidate
    raise RunError(f"could not name a sweep {base}: too many sweeps with that name")


def placed_configs(configs: list[Any], gpus: int, n_at_once: int) -> list[Any]:
    """Where each run of a sweep trains: on a machine with several GPUs, GPU ``i % gpus`` for run i;
    on a CPU machine running several at once, each run gets an equal share of the cores as its
    ``threads`` (unless it names its own), so that the runs at once do not fight over them."""
    share = max(1, (os.cpu_count() or 1) // n_at_once) if gpus == 0 and n_at_once > 1 else None
    return [
        dataclasses.replace(
            c, device=f"cuda:{i % gpus}" if gpus > 1 else c.device, threads=c.threads if c.threads else share
        )
        for i, c in enumerate(configs)
    ]


def launch_sweep(
    config: Any,
    grid: dict[str, list[Any]] | list[str],
    *,
    parallel: int | None = None,
    name: str | None = None,
    seeds: int | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Create the sweep's run folders (queued) and start its runner; return the sweep id at once.

    Args:
        config: a TrainConfig; each run replaces the swept settings.
        grid: setting -> values (a list: activations).
        parallel: runs at once; default one per GPU on a machine with several GPUs, else 1.
        name: optional run name shared by the sweep's runs (their ids also name the swept values).
        seeds: cross the grid with this many seeds (``config.seed`` onwards), so each point is a
            group of replicates.
        extra: more keys for the sweep's record (e.g. the rounds of "until decided").

    Raises:
        ConfigError: a bad grid or setting, or parallel below 1. RunError: the runner could not start.
    """
    configs = sweep_configs(config, grid, seeds)
    grid = sweep_grid(config, grid, seeds)
    gpus = _visible_gpus() if config.device in ("auto", "cuda") else 0
    if parallel is not None and int(parallel) < 1:
        raise ConfigError(f"parallel must be at least 1, got {parallel}")
    n_at_once = int(parallel) if parallel is not None else max(1, gpus)
    configs = placed_configs(configs, gpus, n_at_once)
    sweep_id = _sweep_id(grid)
    run_dirs = _queue_runs(configs, grid, sweep_id, name)
    record = {
        **(extra or {}),  # first: never in place of the record's own keys
        "sweep_id": sweep_id,
        "grid": grid,
        "runs": [d.name for d in run_dirs],
        "parallel": n_at_once,
        "devices": [c.device for c in configs],
        "created": time.time(),
        "runner_pid": None,
        "name": name,
    }
    _sweeps_dir().mkdir(parents=True, exist_ok=True)
    path = _sweeps_dir() / f"{sweep_id}.json"
    runs.write_json_atomic(path, record)
    _start_runner(path, record, run_dirs)
    return sweep_id


def _queue_runs(configs: list[Any], grid: dict[str, list[Any]], sweep_id: str, name: str | None) -> list[Path]:
    """One queued run folder per config, named by the swept values (the activation is in every id)."""
    run_dirs: list[Path] = []
    for i, c in enumerate(configs):
        label = "-".join(runs.sanitize_name(str(getattr(c, k))) for k in grid if k != "activation")
        run_dir = runs.new_run_dir(c.model, c.activation, "-".join(p for p in (name, label) if p) or None)
        runs.write_config(run_dir, c, name, sweep=sweep_id, sweep_index=i)
        runs.write_status(
            run_dir,
            {
                "state": "queued",
                "epochs": c.epochs,
                "name": name,
                "world_size": 1,
                "message": f"queued: run {i + 1} of {len(configs)} of sweep {sweep_id}",
            },
        )
        run_dirs.append(run_dir)
    return run_dirs


def runner_argv(record_path: Path) -> list[str]:
    """The command line of a sweep's runner (``glyphcore.runs.queue``) on its record."""
    return [sys.executable, "-m", "glyphcore.runs.queue", str(record_path)]


def _start_runner(path: Path, record: dict[str, Any], run_dirs: list[Path]) -> None:
    """Start the sweep's runner on its record; its pid goes into the record and the waiting runs.

    Raises:
        RunError: the runner could not start (every run is then marked failed).
    """
    argv = runner_argv(path)
    try:
        proc = spawn_detached(argv, run_dirs[0] / runs.LOG_FILE)
    except OSError as e:
        for d in run_dirs:
            runs.update_status(
                d,
                state="failed",
                ended=time.time(),
                resumable=False,
                message=f"could not start the sweep's runner: {e}",
            )
        raise RunError(f"could not start the sweep's runner ({argv[0]}): {e}") from None
    for d in run_dirs:  # until the runner writes its own pid: the lists tell waiting from dead
        if raw_state(d) == "queued":
            runs.update_status(d, pid=proc.pid, pid_start=pid_start_time(proc.pid))
    runs.write_json_atomic(path, {**record, "runner_pid": proc.pid})


def read_sweep(sweep_id: str) -> SweepInfo:
    """A sweep's record and the reconciled status of its runs. Every field is checked for its type
    and range: a damaged one reads as unknown (a grid of ``{}``, 1 at a time, no devices, created
    0, no runner), never an error for the list.

    Raises:
        RunError: no such sweep, or its record is unreadable (or lists no runs).
    """
    path = _sweeps_dir() / f"{runs.sanitize_name(sweep_id, max_len=200)}.json"
    record = runs.read_json(path)
    if record is None or not isinstance(record.get("runs"), list):
        raise RunError(f"no sweep {sweep_id!r} ({path} is missing or unreadable)")
    run_ids = [r for r in record["runs"] if isinstance(r, str) and r and runs.sanitize_name(r, max_len=200) == r]
    infos = []
    for run_id in run_ids:
        try:
            infos.append(runs.run_info(runs.resolve_run(run_id)))
        except RunError:
            continue  # a run deleted since
    grid = record.get("grid")
    devices = record.get("devices")
    name = record.get("name")
    return SweepInfo(
        sweep_id=sweep_id,
        grid=grid if isinstance(grid, dict) and all(isinstance(v, list) for v in grid.values()) else {},
        run_ids=run_ids,
        parallel=checked_number(record.get("parallel"), "int", 1, _PARALLEL_MAX) or 1,
        devices=[str(d) for d in devices] if isinstance(devices, list) else [],
        created=checked_number(record.get("created"), "float", *TIME_RANGE) or 0.0,
        runner_pid=checked_number(record.get("runner_pid"), "int", 1, PID_MAX),
        name=name if isinstance(name, str) else None,
        runs=infos,
    )


def list_sweeps() -> list[SweepInfo]:
    """Every sweep under the runs folder, newest first (an unreadable record is left out)."""
    out = []
    for path in sorted(_sweeps_dir().glob("*.json")) if _sweeps_dir().is_dir() else []:
        try:
            out.append(read_sweep(path.stem))
        except RunError:
            continue
    return sorted(out, key=lambda s: (s.created, s.sweep_id), reverse=True)


def sweep_runs(sweep_id: str) -> list[runs.RunInfo]:
    """The sweep's runs, in grid order."""
    return read_sweep(sweep_id).runs


def sweep_table(sweep: SweepInfo | str) -> list[dict[str, Any]]:
    """The results table of a sweep, one row per run in grid order, filled in as runs finish: the
    swept settings, state, best val acc (%), best val loss, best epoch, wall time (s)."""
    sweep = read_sweep(sweep) if isinstance(sweep, str) else sweep
    rows = []
    for info in sweep.runs:
        config = runs.read_json(info.path / runs.CONFIG_FILE) or {}
        acc, loss = info.best_val_acc, info.best_val_loss
        rows.append(
            {
                **{k: config.get(k) for k in sweep.grid},
                "run": info.run_id,
                "state": info.state,
                "best val acc (%)": round(100 * acc, 2) if isinstance(acc, int | float) else None,
                "best val loss": round(loss, 4) if isinstance(loss, int | float) else None,
                "best epoch": info.best_epoch,
                "wall s": round(info.wall_seconds, 1) if info.wall_seconds else None,
            }
        )
    return rows


def raw_state(run_dir: Path) -> str | None:
    """The state written in status.json (not reconciled: the runner owns these runs)."""
    return (runs.read_json(run_dir / runs.STATUS_FILE) or {}).get("state")


def cancel_queued(run: str | Path) -> dict[str, Any]:
    """Cancel a run that waits in a sweep: the runner will skip it (``runs.cancel_waiting``).

    Raises:
        RunError: the run is not waiting (a started run is cancelled with ``runs.cancel``).
    """
    return runs.cancel_waiting(run)


def cancel_sweep(sweep_id: str, wait: float = 0.0) -> SweepInfo:
    """Stop a whole sweep: every waiting run is cancelled (it never starts) and every running one
    gets ``runs.cancel`` (it saves last.pt and can be resumed on its own).

    Returns:
        The sweep after waiting up to ``wait`` seconds for its runs to stop.

    Raises:
        RunError: no such sweep, or nothing of it is waiting or running.
    """
    sweep = read_sweep(sweep_id)
    if not sweep.active:
        raise RunError(f"sweep {sweep.sweep_id} has nothing waiting or running; nothing to cancel")
    # the waiting ones first, so that the runner cannot start one of them in between
    for info in sweep.runs:
        if info.state == "queued" and not info.status.get("launcher_pid"):
            try:
                cancel_queued(info.path)
            except RunError:
                pass  # it has just started: cancelled below
    for info in read_sweep(sweep_id).runs:
        if info.state in runs.ACTIVE_STATES:
            try:
                runs.cancel(info.path)
            except RunError:
                pass  # it ended meanwhile
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and read_sweep(sweep_id).active:
        time.sleep(0.1)
    return read_sweep(sweep_id)


def resume_sweep(sweep_id: str) -> SweepInfo:
    """Start a new runner for a sweep whose runner is gone (killed, a reboot): its still-waiting
    runs start in order; runs that ended are left as they are (resume those with ``runs.resume``).

    Raises:
        RunError: no such sweep, its runner is alive, or nothing of it is waiting.
    """
    sweep = read_sweep(sweep_id)
    if sweep.runner_pid is not None and runs.pid_alive(sweep.runner_pid):
        raise RunError(f"sweep {sweep.sweep_id}'s runner (pid {sweep.runner_pid}) is still working through it")
    if not any(r.state == "queued" and not r.status.get("launcher_pid") for r in sweep.runs):
        raise RunError(f"sweep {sweep.sweep_id} has no run waiting to start; resume a stopped run with `runs resume`")
    path = _sweeps_dir() / f"{sweep.sweep_id}.json"
    first = next(r for r in sweep.runs if r.state == "queued")
    proc = spawn_detached(runner_argv(path), first.path / runs.LOG_FILE)
    record = runs.read_json(path) or {}
    runs.write_json_atomic(path, {**record, "runner_pid": proc.pid})
    return read_sweep(sweep.sweep_id)
