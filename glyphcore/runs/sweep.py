"""Activation sweeps: the same TrainConfig once per activation, launched together or queued.

``together``: one ``runs.launch`` per activation; the runs train at the same time.

``queued``: every run folder is created at once in the ``queued`` state, and one small detached
process (``python -m glyphcore.runs.sweep RUN_DIR ...``, the queue runner) trains them one after
another. While a run waits, its status.json carries the runner's pid, so the run lists show it
``queued`` while the runner lives and ``crashed`` if the runner dies. A waiting run is cancelled
with :func:`cancel_queued` (the runner skips it); a run the runner has started is an ordinary run
with its own pid (``runs.cancel`` stops just that run and the queue moves on). SIGTERM to the
runner itself cancels every run still waiting and stops the one training.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from glyphcore import runs
from glyphcore.runs.process import spawn_detached
from glyphcore.errors import ConfigError, RunError

__all__ = ["SWEEP_MODES", "sweep_configs", "launch_sweep", "cancel_queued", "run_queue", "main"]

SWEEP_MODES = ("together", "queued")


def sweep_configs(config: Any, activations: list[str]) -> list[Any]:
    """One validated copy of ``config`` per activation (order kept, duplicates dropped).

    Raises:
        ConfigError: no activation chosen, or an unknown one (the message lists the valid names).
    """
    from glyphcore.models import ACTIVATION_NAMES
    from glyphcore.train.config import validate_config

    chosen = list(dict.fromkeys(activations))
    if not chosen:
        raise ConfigError("an activation sweep needs at least one activation; pick some")
    unknown = [a for a in chosen if a not in ACTIVATION_NAMES]
    if unknown:
        raise ConfigError(f"unknown activation(s) {', '.join(unknown)}; choose from {', '.join(ACTIVATION_NAMES)}")
    return [validate_config(dataclasses.replace(config, activation=a)) for a in chosen]


def launch_sweep(config: Any, activations: list[str], mode: str = "together", name: str | None = None) -> list[str]:
    """Launch ``config`` once per activation.

    Args:
        config: a TrainConfig (its ``activation`` is replaced by each of ``activations``).
        activations: names from ``glyphcore.models.ACTIVATION_NAMES``.
        mode: "together" (all start now) or "queued" (one after another, by a detached runner).
        name: optional run name, shared by the sweep's runs (the activation is in every run id).

    Returns:
        The run ids, in activation order.

    Raises:
        ConfigError: bad mode, activation or setting. RunError: a process could not start.
    """
    if mode not in SWEEP_MODES:
        raise ConfigError(f"sweep mode must be one of {', '.join(SWEEP_MODES)}, got {mode!r}")
    configs = sweep_configs(config, activations)
    if mode == "together":
        return [runs.launch(c, name=name) for c in configs]

    run_dirs = []
    for i, c in enumerate(configs):
        run_dir = runs.new_run_dir(c.model, c.activation, name)
        runs.write_config(run_dir, c, name)
        runs.write_status(run_dir, {"state": "queued", "epochs": c.epochs, "name": name, "world_size": 1,
                                    "message": f"queued: run {i + 1} of {len(configs)} of an activation sweep"})
        run_dirs.append(run_dir)
    argv = [sys.executable, "-m", "glyphcore.runs.sweep", *map(str, run_dirs)]
    try:
        spawn_detached(argv, run_dirs[0] / runs.LOG_FILE)
    except OSError as e:
        for d in run_dirs:
            runs.update_status(d, state="failed", ended=time.time(), message=f"could not start the queue: {e}")
        raise RunError(f"could not start the sweep's queue runner ({argv[0]}): {e}") from None
    return [d.name for d in run_dirs]


def _raw_state(run_dir: Path) -> str | None:
    """The state written in status.json (not reconciled: the runner owns these runs)."""
    return (runs.read_json(run_dir / runs.STATUS_FILE) or {}).get("state")


def cancel_queued(run: str | Path) -> dict[str, Any]:
    """Cancel a run that waits in a sweep queue: the runner will skip it.

    Returns:
        The new status.

    Raises:
        RunError: the run is not waiting (a started run is cancelled with ``runs.cancel``).
    """
    run_dir = runs.resolve_run(run)
    status = runs.read_status(run_dir)
    if status["state"] != "queued" or status.get("launcher_pid"):
        raise RunError(f"run {run_dir.name} is {status['state']}, not waiting in a queue; use runs.cancel")
    return runs.update_status(run_dir, state="cancelled", ended=time.time(), message="cancelled before it started")


def run_queue(run_dirs: list[Path]) -> int:
    """The queue runner: train each still-queued run in turn, each as its own process.

    Returns:
        0 when the queue was worked through, 1 when it was stopped by SIGTERM.
    """
    from glyphcore.train.config import config_from_dict, config_to_argv

    me = os.getpid()
    for d in run_dirs:  # while they wait, the runner's pid keeps them "queued", not "crashed"
        if _raw_state(d) == "queued":
            runs.update_status(d, pid=me, launcher_pid=None)
    stopping = {"flag": False}
    current: dict[str, subprocess.Popen | None] = {"proc": None}

    def on_term(signum: int, frame: Any) -> None:
        stopping["flag"] = True
        if current["proc"] is not None and current["proc"].poll() is None:
            current["proc"].send_signal(signal.SIGTERM)  # it saves last.pt and marks itself cancelled

    signal.signal(signal.SIGTERM, on_term)
    for d in run_dirs:
        if _raw_state(d) != "queued":
            continue  # cancelled while waiting
        if stopping["flag"]:
            runs.update_status(d, state="cancelled", ended=time.time(), pid=None, message="the sweep queue was stopped")
            continue
        try:
            saved = runs.read_config(d)
            config = config_from_dict(saved, ignore_unknown=True)
            args = config_to_argv(config) + (["--name", saved["name"]] if saved.get("name") else [])
        except Exception as e:  # a broken run folder must not stop the queue
            runs.update_status(d, state="failed", ended=time.time(), pid=None, message=f"could not read its config: {e}")
            continue
        runs.update_status(d, pid=None, launcher_pid=None, message="starting")
        # in the runner's session: SIGTERM to the runner's group reaches the run as well
        proc = spawn_detached(runs.train_argv(d, args), d / runs.LOG_FILE, new_session=False)
        current["proc"] = proc
        if _raw_state(d) == "queued":  # the child may have written "running" with its pid already
            from glyphcore.runs.lock import pid_start_time

            runs.update_status(d, pid=proc.pid, pid_start=pid_start_time(proc.pid))
        proc.wait()
        current["proc"] = None
    return 1 if stopping["flag"] else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m glyphcore.runs.sweep RUN_DIR ...``: the queue runner (started by launch_sweep)."""
    parser = argparse.ArgumentParser(prog="python -m glyphcore.runs.sweep", description=run_queue.__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, help="queued run folders, trained in this order")
    return run_queue(parser.parse_args(argv).run_dirs)


if __name__ == "__main__":
    sys.exit(main())
