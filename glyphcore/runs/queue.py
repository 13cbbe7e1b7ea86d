"""A sweep's runner: ``python -m glyphcore.runs.queue RECORD`` starts the sweep's waiting runs in
order, at most ``parallel`` at a time, each as an ordinary training process, until every one has ended.

``launch_sweep`` and ``resume_sweep`` (``glyphcore.runs.sweep``) start it detached. A run's hand-off
to its training process happens under the run's status lock, so a cancel is never lost between the
two; machine-wide run slots (flocks on ``<runs>/.cpu-slots.<i>``) keep two sweeps set to n at a time
from running more than n runs together, and a slot passes to the training process it was taken for.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from glyphcore import runs
from glyphcore.runfolder.lock import pid_start_time, status_lock, try_lock_file
from glyphcore.runs.process import spawn_detached
from glyphcore.runs.sweep import raw_state, read_sweep

__all__ = ["SLOTS_FILE", "run_queue", "main"]

_POLL_S = 0.5  # s between the runner's looks at its running processes
SLOTS_FILE = ".cpu-slots"  # under the runs folder: slot i is a flock on <runs>/.cpu-slots.<i>


def _train_args(run_dir: Path) -> list[str]:
    from glyphcore.train.config import config_from_dict, config_to_argv

    saved = runs.read_config(run_dir)
    config = config_from_dict(saved, ignore_unknown=True)
    return config_to_argv(config) + (["--name", saved["name"]] if saved.get("name") else [])


class _Slots:
    """The runs folder's machine-wide run slots: slot i is a flock on ``<runs>/.cpu-slots.<i>``; a
    runner holds one per training process it started, so that two sweeps set to n at a time run
    at most n runs together, whichever runner started them."""

    def __init__(self, root: Path, n: int) -> None:
        self.paths = [root / f"{SLOTS_FILE}.{i}" for i in range(n)]
        self.fds: dict[int, int] = {}

    def take(self) -> int | None:
        """A free slot's number (now held), or None when every slot is held."""
        for i, path in enumerate(self.paths):
            if i not in self.fds:
                fd = try_lock_file(path)
                if fd is not None:
                    self.fds[i] = fd
                    return i
        return None

    def release(self, i: int) -> None:
        os.close(self.fds.pop(i))


def _hand_off(d: Path, slot_fd: int) -> subprocess.Popen | None:
    """Start a waiting run's training process, atomically under the run's status lock: a cancel
    lands either before (the run is skipped: None) or after (the run has a process, and the cancel
    signals it); never in between, where it would be overwritten. The process inherits the run
    slot's lock (``slot_fd``), so the slot stays taken while it trains, even if the runner dies."""
    try:
        args = _train_args(d)
    except Exception as e:  # a broken run folder must not stop the sweep
        runs.update_status(
            d, state="failed", ended=time.time(), pid=None, resumable=False, message=f"could not read its config: {e}"
        )
        return None
    with status_lock(d):
        if raw_state(d) != "queued":
            return None  # cancelled while waiting
        # in the runner's session: a signal to the runner's group reaches the runs as well
        proc = spawn_detached(runs.train_argv(d, args), d / runs.LOG_FILE, new_session=False, pass_fds=(slot_fd,))
        start = pid_start_time(proc.pid)
        runs.update_status(
            d, pid=proc.pid, pid_start=start, launcher_pid=proc.pid, launcher_pid_start=start, message="starting"
        )
    return proc


def _claim_waiting(run_dirs: list[Path]) -> None:
    """Write this runner's pid into every waiting run: while they wait it keeps them "queued"
    (and when it dies they read "queued (runner gone)")."""
    me = os.getpid()
    for d in run_dirs:
        with status_lock(d):
            if raw_state(d) == "queued":
                runs.update_status(d, pid=me, pid_start=pid_start_time(me), launcher_pid=None)


def run_queue(record_path: Path) -> int:
    """The runner: start the sweep's still-queued runs in order, at most ``parallel`` at a time (and
    at most that many with other sweeps' runners of the runs folder, through its slots), each as
    its own training process, until every one has ended.

    Returns:
        0 when the sweep was worked through, 1 when it was stopped by SIGTERM.
    """
    sweep = read_sweep(Path(record_path).stem)
    root = Path(record_path).parent.parent
    waiting = [root / r for r in sweep.run_ids]
    _claim_waiting(waiting)
    slots = _Slots(root, sweep.parallel)
    stopping = {"flag": False}
    running: dict[Path, tuple[subprocess.Popen, int]] = {}

    def on_term(signum: int, frame: Any) -> None:
        stopping["flag"] = True
        for proc, _ in running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # it saves last.pt and marks itself cancelled

    signal.signal(signal.SIGTERM, on_term)
    while waiting or running:
        for d, (proc, slot) in list(running.items()):
            if proc.poll() is not None:
                del running[d]
                slots.release(slot)
        while waiting and len(running) < sweep.parallel:
            d = waiting[0]
            if raw_state(d) != "queued":
                waiting.pop(0)  # cancelled (or started by an earlier runner of this sweep)
                continue
            if stopping["flag"]:
                waiting.pop(0)
                runs.update_status(d, state="cancelled", ended=time.time(), pid=None, message="the sweep was stopped")
                continue
            free = slots.take()
            if free is None:
                break  # another sweep's runs hold every slot: wait for one
            waiting.pop(0)
            started = _hand_off(d, slots.fds[free])
            if started is None:
                slots.release(free)
            else:
                running[d] = (started, free)
        if waiting or running:
            time.sleep(_POLL_S)
    return 1 if stopping["flag"] else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m glyphcore.runs.queue RECORD``: the sweep's runner (started by launch_sweep)."""
    parser = argparse.ArgumentParser(prog="python -m glyphcore.runs.queue", description=run_queue.__doc__)
    parser.add_argument("record", type=Path, help="the sweep's record, <runs folder>/sweeps/<sweep id>.json")
    return run_queue(parser.parse_args(argv).record)


if __name__ == "__main__":
    sys.exit(main())
