"""status.json: its keys, their types and ranges, written atomically under the status lock, and
read reconciled with the process table (a "running" run whose process is gone is "crashed").

Times are Unix seconds (float); accuracies are fractions in [0, 1]. Every value read is checked for
its type and range (``typed_status``): a damaged field is "unknown" for that run only. No torch here.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from glyphcore.errors import RunError
from glyphcore.runfolder.files import BEST_CKPT, CONFIG_FILE, STATUS_FILE, read_json, resolve_run, write_json_atomic
from glyphcore.runfolder.lock import pid_start_time, status_lock, trainer_lock_taken
from glyphcore.runfolder.metrics import last_error_line

__all__ = [
    "ACTIVE_STATES",
    "RESUMABLE_STATES",
    "STATUS_DEFAULTS",
    "PID_MAX",
    "STATES",
    "TIME_RANGE",
    "typed_status",
    "checked_number",
    "write_status",
    "update_status",
    "read_status",
    "pid_alive",
    "can_resume",
    "refuse_if_cancelled",
]

ACTIVE_STATES = ("queued", "running")  # a process is (or should be) working on the run
RESUMABLE_STATES = ("cancelled", "crashed", "failed")  # resume continues from last.pt
# A queued run whose launcher never recorded a pid is given this long before it counts as crashed.
_QUEUED_GRACE_S = 60.0


# Every key of status.json, with its value before the run has told anything.
STATUS_DEFAULTS: dict[str, Any] = {
    "state": "queued",
    "pid": None,
    "pid_start": None,
    "launcher_pid": None,
    "launcher_pid_start": None,
    "device": None,
    "started": None,
    "ended": None,
    "updated": None,
    "epoch": 0,
    "epochs": None,
    "step": 0,
    "steps_per_epoch": None,
    "best_epoch": None,
    "best_val_loss": None,
    "best_val_acc": None,
    "params": None,
    "wall_seconds": 0.0,
    "images_per_s": None,
    "compile_seconds": None,
    "gpu_peak_mib": None,
    "world_size": 1,
    "message": "",
    "name": None,
    "cancel_requested": None,
    "resumable": None,
}


# The type each status.json key must have; a value of another type (a hand-edited or damaged file)
# is read as its default, never trusted (one bad field must not crash or hide the lists).
PID_MAX = 2**22  # the largest pid Linux hands out (kernel.pid_max's ceiling, 4194304)
TIME_RANGE = (946_684_800.0, 4_102_444_800.0)  # Unix s, 2000-01-01..2100-01-01: a time outside is damage
_EPOCH_2000, _EPOCH_2100 = TIME_RANGE
_COUNT_MAX = 10**12  # epochs, steps, parameters: far above anything real, far below an overflow
# key -> (kind, lowest, highest): a value of another type or outside the range is damage.
_FIELDS: dict[str, tuple[str, float, float]] = {
    "pid": ("int", 1, PID_MAX),
    "launcher_pid": ("int", 1, PID_MAX),
    "pid_start": ("int", 0, 2**63 - 1),  # clock ticks since boot
    "launcher_pid_start": ("int", 0, 2**63 - 1),
    "epoch": ("int", 0, _COUNT_MAX),
    "epochs": ("int", 0, _COUNT_MAX),
    "step": ("int", 0, _COUNT_MAX),
    "steps_per_epoch": ("int", 0, _COUNT_MAX),
    "best_epoch": ("int", 0, _COUNT_MAX),
    "params": ("int", 0, _COUNT_MAX),
    "world_size": ("int", 1, 65_536),
    "started": ("float", _EPOCH_2000, _EPOCH_2100),
    "ended": ("float", _EPOCH_2000, _EPOCH_2100),
    "updated": ("float", _EPOCH_2000, _EPOCH_2100),
    "cancel_requested": ("float", _EPOCH_2000, _EPOCH_2100),
    "best_val_loss": ("float", 0.0, 3.5e38),  # a diverging run records losses up to float32's max
    "best_val_acc": ("float", 0.0, 1.0),
    "wall_seconds": ("float", 0.0, 1e9),  # s: 31 years
    "compile_seconds": ("float", 0.0, 1e9),
    "images_per_s": ("float", 0.0, 1e12),
    "gpu_peak_mib": ("float", 0.0, 1e9),
}
STATES = ("queued", "running", "done", "failed", "cancelled", "diverged", "crashed")
_STR_KEYS = ("device", "message", "name")
_STR_MAX = 4000  # characters: a message longer than this is cut


def checked_number(value: Any, kind: str = "float", low: float = -math.inf, high: float = math.inf) -> Any:
    """``value`` if it is a number of ``kind`` ("int": a whole number; "float": any finite number,
    returned as float) within [low, high]; else None. bool is not a number here.

    >>> checked_number(2147483648, "int", 1, 2**22) is None
    True
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind == "int" and not isinstance(value, int):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not low <= value <= high:
        return None
    return float(value) if kind == "float" else value


def typed_status(raw: dict[str, Any]) -> dict[str, Any]:
    """status.json's values with every known key of its type and range (defaults for damaged ones:
    a wrong type, a pid above ``PID_MAX``, a time outside 2000..2100, an accuracy outside 0..1, an
    unknown state); the keys whose values were dropped are listed under ``bad_fields``."""
    status = {**STATUS_DEFAULTS, **raw}
    bad = []
    for k, (kind, low, high) in _FIELDS.items():
        value = status.get(k)
        if value is not None:
            value = checked_number(value, kind, low, high)
            if value is None:
                bad.append(k)
                value = STATUS_DEFAULTS.get(k)
        status[k] = value
    for k in _STR_KEYS:
        value = status.get(k)
        if value is not None and not isinstance(value, str):
            bad.append(k)
            value = STATUS_DEFAULTS.get(k)
        status[k] = value[:_STR_MAX] if isinstance(value, str) else value
    if status.get("state") not in STATES:
        bad.append("state")
        status["state"] = "unknown"
    if status.get("resumable") not in (None, True, False):
        bad.append("resumable")
        status["resumable"] = None
    status["message"] = status["message"] or ""
    status["bad_fields"] = bad
    return status


def write_status(run_dir: str | os.PathLike, status: dict[str, Any]) -> None:
    """Write status.json atomically (the full dict, missing keys filled with their defaults)."""
    write_json_atomic(Path(run_dir) / STATUS_FILE, {**STATUS_DEFAULTS, **status, "updated": time.time()})


def update_status(run_dir: str | os.PathLike, **changes: Any) -> dict[str, Any]:
    """Read status.json, apply ``changes``, write it back atomically; returns the new status.

    Under the run folder's status lock (``glyphcore.runfolder.lock.status_lock``): the launcher, cancel
    and the training process never lose each other's changes.
    """
    run_dir = Path(run_dir)
    with status_lock(run_dir):
        status = {**STATUS_DEFAULTS, **(read_json(run_dir / STATUS_FILE) or {}), **changes}
        write_status(run_dir, status)
    return status


# Popen objects of the runs this process launched: polling them reaps a finished child, which
# otherwise stays a zombie that os.kill(pid, 0) still reports alive.
CHILD_PROCESSES: dict[int, subprocess.Popen] = {}


def pid_alive(pid: Any, start: Any = None) -> bool:
    """Whether ``pid`` is a live glyphcore training process (not a zombie, not a reused pid).

    Args:
        pid: the process id recorded in status.json.
        start: its start time as recorded with it (``glyphcore.runfolder.lock.pid_start_time``); when
            given, a process with that pid but another start time is another process (the pid was
            reused), whatever its command line.
    """
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid <= PID_MAX:
        return False  # os.kill of a pid above the C int range would raise OverflowError
    if isinstance(start, int) and not isinstance(start, bool):
        now = pid_start_time(pid)
        if now is not None and now != start:
            return False
    child = CHILD_PROCESSES.get(pid)
    if child is not None:  # started by this process: poll() knows (and reaps it when it has ended)
        if child.poll() is None:
            return True
        CHILD_PROCESSES.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    proc = Path("/proc") / str(pid)
    if proc.is_dir():  # Linux: rule out zombies and pids reused by some other program
        try:
            stat = (proc / "stat").read_text()
            if stat[stat.rfind(")") + 2 :].startswith(("Z", "X")):
                return False
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        modules = [b for a, b in zip(args, args[1:]) if a == b"-m"]
        # `python -m glyphcore ...`, the `glyphcore` command (its script is argv[1]) or torchrun
        return any(
            m == b"glyphcore" or m.startswith(b"glyphcore.") or m == b"torch.distributed.run" for m in modules
        ) or any(os.path.basename(a) in (b"glyphcore", b"torchrun") for a in args[:2])
    return True


def read_status(run: str | Path) -> dict[str, Any]:
    """status.json of a run, reconciled with the process table.

    A run marked queued or running whose process is gone (and whose trainer lock is free: a run
    trained from Python holds it under the notebook's pid) is reported ``crashed`` with a message
    saying how to resume; a sweep's run still waiting when its runner died stays ``queued``, with
    ``runner_gone`` set and a message saying how to restart the queue. The file is left as it is.

    Raises:
        RunError: no such run.
    """
    run_dir = resolve_run(run)
    raw = read_json(run_dir / STATUS_FILE)
    status = typed_status(raw or {})
    status["runner_gone"] = False
    if raw is None:
        status["state"] = "done" if (run_dir / BEST_CKPT).is_file() else "crashed"
        status["message"] = f"{STATUS_FILE} is missing, unreadable or not a regular file"
        return status
    if status["state"] in ACTIVE_STATES and not _process_lives(run_dir, status):
        _reconcile_dead(run_dir, status)
    if status["bad_fields"]:
        status["message"] = (
            f"{STATUS_FILE} has values of the wrong type or out of range in {', '.join(status['bad_fields'])} "
            f"(shown as unknown); {status['message']}"
        ).rstrip("; ")
    return status


def _process_lives(run_dir: Path, status: dict[str, Any]) -> bool:
    """Whether the process status.json names (or the holder of the trainer lock) is alive; a queued
    run without a pid yet is given ``_QUEUED_GRACE_S`` to get one."""
    pid = status.get("pid")
    unset = pid is None and "pid" not in status["bad_fields"]  # not written yet, rather than damaged
    if unset and status["state"] == "queued" and time.time() - (status.get("updated") or 0.0) < _QUEUED_GRACE_S:
        return True
    return pid_alive(pid, status.get("pid_start")) or trainer_lock_taken(run_dir)


def _reconcile_dead(run_dir: Path, status: dict[str, Any]) -> None:
    """The state of an active run whose process is gone: cancelled, waiting without a runner, or crashed."""
    sweep = (read_json(run_dir / CONFIG_FILE) or {}).get("sweep")
    if status.get("cancel_requested"):  # SIGTERM came before the process could handle it
        status["state"], status["message"] = "cancelled", "cancelled before training started"
    elif status["state"] == "queued" and not status.get("launcher_pid") and isinstance(sweep, str):
        status["runner_gone"] = True
        status["message"] = (
            f"queued (runner gone): the sweep's runner ended before this run started; restart the queue with "
            f"`glyphcore sweep resume {sweep}`, or cancel the run"
        )
    else:
        status["state"] = "crashed"
        why = last_error_line(run_dir)
        status["message"] = (
            f"the training process (pid {status.get('pid')}) ended without finishing the run"
            + (f": {why}" if why else "")
            + f"; resume it with `glyphcore runs resume {run_dir.name}`"
        )


def refuse_if_cancelled(run_dir: str | os.PathLike) -> None:
    """Refuse to start training a run whose status.json says it was cancelled before it started (a
    sweep's run cancelled while its runner handed it off): the cancel stands.

    Raises:
        RunError: the run is cancelled; the message says how to run it anyway.
    """
    run_dir = Path(run_dir)
    with status_lock(run_dir):
        state = (read_json(run_dir / STATUS_FILE) or {}).get("state")
    if state == "cancelled":
        raise RunError(
            f"run {run_dir.name} was cancelled; not starting it. Resume it (`python -m glyphcore runs resume "
            f"{run_dir.name}`) or pass --overwrite to train it anew"
        )


def can_resume(status: dict[str, Any]) -> bool:
    """Whether a run in this (reconciled) status can be resumed from its last.pt: cancelled,
    crashed, or failed for a reason a second try may not meet again (not a bad setting)."""
    return status.get("state") in RESUMABLE_STATES and status.get("resumable") is not False
