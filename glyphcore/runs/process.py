"""Run processes: launch a training run detached, cancel it, resume it, delete its folder.

A run is its own OS process (``python -m glyphcore train --run-dir DIR ...``), started detached
with an argv list (never a shell string); the app and the CLI only read and write its files, so a
run survives page switches, reloads and an app restart. No torch here (but for counting GPUs).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from glyphcore import paths
from glyphcore.errors import ConfigError, RunError, os_reason
from glyphcore.runfolder.files import looks_like_run, open_in_run
from glyphcore.runfolder.lock import (
    hold_trainer_lock,
    pid_start_time,
    release_trainer_lock,
    status_lock,
    trainer_lock_taken,
)
from glyphcore.runfolder.store import (
    ACTIVE_STATES,
    CHILD_PROCESSES,
    CONFIG_FILE,
    LOG_FILE,
    RESUMABLE_STATES,
    STATUS_FILE,
    list_runs,
    new_run_dir,
    pid_alive,
    read_config,
    read_json,
    read_status,
    resolve_run,
    run_info,
    update_status,
    write_config,
    write_json_atomic,
    write_status,
)

__all__ = [
    "LOOPBACK",
    "launch",
    "train_argv",
    "spawn_detached",
    "child_env",
    "cancel",
    "cancel_waiting",
    "stop",
    "resume",
    "can_delete",
    "delete",
]

LOOPBACK = "127.0.0.1"  # one machine's processes talk over loopback only


def train_argv(run_dir: str | os.PathLike, train_args: list[str], nproc: int = 1) -> list[str]:
    """The argv that runs ``python -m glyphcore train --run-dir DIR *train_args``; with nproc > 1,
    under torchrun on this machine alone: what ``--standalone`` does (a c10d rendezvous on a free
    port, a fresh id), but at the loopback address instead of the host name, so that the
    rendezvous and the workers' store are reached over 127.0.0.1."""
    tail = ["-m", "glyphcore", "train", "--run-dir", str(run_dir), *train_args]
    if nproc > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes=1",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={LOOPBACK}:0",
            f"--rdzv-id={secrets.token_hex(8)}",
            f"--local-addr={LOOPBACK}",
            f"--nproc-per-node={nproc}",
            *tail,
        ]
    return [sys.executable, *tail]


def child_env() -> dict[str, str]:
    """The environment of a training or queue process: this one's, with unbuffered output so that
    train.log is written as it happens."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def spawn_detached(
    argv: list[str], log_path: Path, *, new_session: bool = True, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen:
    """Start ``argv`` (a list, never a shell string) in the repository folder, output appended to
    ``log_path``; in its own session (``new_session``) so that it outlives the app and its signals.
    ``pass_fds``: open files the process inherits (a sweep's run slot: held while it lives).

    Raises:
        OSError: the program could not be started.
    """
    with open_in_run(log_path, "ab") as log:  # never through a symlink in the run folder
        proc = subprocess.Popen(
            argv,
            cwd=paths.REPO_ROOT,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=new_session,
            close_fds=True,
            pass_fds=pass_fds,
        )
    CHILD_PROCESSES[proc.pid] = proc
    return proc


def _spawn(run_dir: Path, argv: list[str]) -> int:
    """Start a run's training process detached; record its pid; return it."""
    try:
        proc = spawn_detached(argv, run_dir / LOG_FILE)
    except (OSError, ValueError) as e:  # ValueError: an argument the OS cannot pass (a NUL byte)
        update_status(run_dir, state="failed", ended=time.time(), message=f"could not start {argv[0]}: {e}")
        raise RunError(f"could not start the training process ({argv[0]}): {e}") from None
    # The child writes its own pid once it runs; until then the launcher's pid lets the lists tell
    # a starting run from a dead one. (If the child was quicker, it has written "running" already.)
    start = pid_start_time(proc.pid)
    with status_lock(run_dir):
        status = read_json(run_dir / STATUS_FILE) or {}
        if status.get("state", "queued") == "queued":
            update_status(run_dir, pid=proc.pid, pid_start=start, launcher_pid=proc.pid, launcher_pid_start=start)
    return proc.pid


def _visible_gpus() -> int:
    import torch  # only here: the launcher counts GPUs when asked to use them all

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _least_busy_gpu(count: int) -> str:
    """``cuda:i`` for the GPU with the fewest queued or running runs (by their device setting)."""
    busy = [0] * count
    for info in list_runs():
        if info.state in ACTIVE_STATES:
            device = str((read_json(info.path / CONFIG_FILE) or {}).get("device", ""))
            if device.startswith("cuda:") and device[5:].isdigit() and int(device[5:]) < count:
                busy[int(device[5:])] += 1
    return f"cuda:{busy.index(min(busy))}"


def launch(
    config: Any,
    name: str | None = None,
    extra_args: list[str] | None = None,
    gpus: str | int | None = None,
    nproc: int | None = None,
) -> str:
    """Start a training run as a detached process and return its run id at once.

    The run folder gets config.json and a ``queued`` status.json before the process starts; the
    process's output goes to train.log. Several runs may run at once.

    Args:
        config: a TrainConfig (``glyphcore.train.make_config``): valid by construction.
        name: optional user-typed name, sanitised into the run id.
        extra_args: more ``train`` flags (e.g. ``["--threads", "1"]``).
        gpus: "all" (every visible GPU, one process each under torchrun) or a number of GPUs;
            None = one process on ``config.device`` (``auto`` on a machine with several GPUs: the
            GPU with the fewest runs on it, so that separately launched runs do not share one).
        nproc: processes under torchrun without GPUs (CPU, gloo); for tests and CPU-only machines.

    Returns:
        The run id (the folder name under ``paths.runs_dir()``).

    Raises:
        ConfigError: a bad setting; RunError: the process could not start.
    """
    from glyphcore.train.config import TrainConfig, config_to_argv

    if not isinstance(config, TrainConfig):
        raise ConfigError(f"launch needs a TrainConfig, got {type(config).__name__}")
    if name is not None and (not isinstance(name, str) or any(ord(ch) < 32 for ch in name)):
        raise ConfigError(
            f"a run name must be plain text without control characters (a NUL byte, a newline...), "
            f"got {name!r}: type the name again"
        )
    n = int(nproc or 1)
    if gpus is not None:
        available = _visible_gpus()
        want = available if gpus == "all" else int(gpus)
        if want > available:
            raise ConfigError(f"asked for {want} GPU(s) but {available} are visible; use gpus='all' or fewer")
        n = max(want, 1)
    elif n == 1 and config.device == "auto":
        visible = _visible_gpus()
        if visible > 1:  # several GPUs: this run gets the one with the fewest runs on it
            config = dataclasses.replace(config, device=_least_busy_gpu(visible))
    run_dir = new_run_dir(config.model, config.activation, name)
    write_config(run_dir, config, name)
    write_status(
        run_dir, {"state": "queued", "epochs": config.epochs, "name": name, "world_size": n, "message": "starting"}
    )
    args = config_to_argv(config) + (["--name", name] if name else []) + list(extra_args or [])
    _spawn(run_dir, train_argv(run_dir, args, nproc=n))
    return run_dir.name


def _signal_target(status: dict[str, Any]) -> int | None:
    """The pid to signal: torchrun's (it forwards to every worker) or the single process."""
    for key in ("launcher_pid", "pid"):
        pid = status.get(key)
        if pid and pid != os.getpid() and pid_alive(pid, status.get(f"{key}_start")):
            return int(pid)
    return None


def cancel(run: str | Path, wait: float = 0.0) -> dict[str, Any]:
    """Ask a running run to stop: SIGTERM; the process saves last.pt and marks itself cancelled.

    Args:
        run: run id or folder.
        wait: seconds to wait for the run to leave the running state (0 = return at once).

    Returns:
        The (reconciled) status after waiting.

    Raises:
        RunError: the run is not running.
    """
    run_dir = resolve_run(run)
    status = read_status(run_dir)
    if status["state"] not in ACTIVE_STATES:
        raise RunError(f"run {run_dir.name} is not running (state {status['state']}); nothing to cancel")
    if _waiting(run_dir, status):  # the pid is its sweep runner's: signalling it would stop the whole sweep
        return cancel_waiting(run_dir)
    pid = _signal_target(status)
    if pid is None:
        raise RunError(f"run {run_dir.name} has no live process to signal; it will show as crashed")
    # Remembered so that a process killed by this signal before it could handle it (still importing
    # torch) is reported cancelled, not crashed.
    update_status(run_dir, cancel_requested=time.time())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        status = read_status(run_dir)
        if status["state"] not in ACTIVE_STATES:
            break
        time.sleep(0.1)
    return read_status(run_dir)


def _waiting(run_dir: Path, status: dict[str, Any]) -> bool:
    """A run that waits in a sweep's queue: queued, and no training process was handed it yet (a
    run launched on its own gets its process at once, and is cancelled by signal)."""
    in_sweep = isinstance((read_json(run_dir / CONFIG_FILE) or {}).get("sweep"), str)
    return in_sweep and status["state"] == "queued" and not status.get("launcher_pid")


def cancel_waiting(run: str | Path) -> dict[str, Any]:
    """Cancel a run that waits in a sweep's queue: marked cancelled under its status lock, so the
    runner (which hands a run off under the same lock) either started it before (it is then
    cancelled by signal) or never will.

    Raises:
        RunError: the run is not waiting (a started run is cancelled with ``cancel``).
    """
    run_dir = resolve_run(run)
    with status_lock(run_dir):
        status = read_status(run_dir)
        if not _waiting(run_dir, status):
            raise RunError(f"run {run_dir.name} is {status['state']}, not waiting in a queue; use runs.cancel")
        return update_status(run_dir, state="cancelled", ended=time.time(), message="cancelled before it started")


def stop(run: str | Path, wait: float = 0.0) -> dict[str, Any]:
    """Stop a run, whichever way applies: a run waiting in a sweep queue is marked cancelled (the
    queue skips it); a run with a process gets ``cancel`` (SIGTERM; it saves last.pt).

    Raises:
        RunError: the run is neither queued nor running.
    """
    return cancel(run, wait=wait)


def resume(run: str | Path, extra_args: list[str] | None = None, **overrides: Any) -> str:
    """Relaunch a cancelled, crashed or failed run from its last.pt: epoch numbering and metrics
    continue (records written after the resume point are cut off). ``overrides`` may change the
    runtime settings only (``RUNTIME_FIELDS``: epochs, patience, time budget, device, ...); a done
    run can be resumed to train more epochs (``epochs=`` above the ones it ran).

    Returns:
        The run id.

    Raises:
        RunError: the run is running, or in a state that cannot be resumed.
        ConfigError: an override of a field that defines the run (model, lr, data...).
    """
    from glyphcore.train.config import RUNTIME_FIELDS, config_from_dict, config_to_argv

    run_dir = resolve_run(run)
    if run_dir.resolve() == paths.starter_dir().resolve():
        raise RunError("the starter run is read-only: fine-tune it in a new run with --init-from starter")
    bad = sorted(set(overrides) - set(RUNTIME_FIELDS))
    if bad:
        raise ConfigError(
            f"a resumed run keeps its settings; only {', '.join(RUNTIME_FIELDS)} may change "
            f"(not {', '.join(bad)}). Start a new run to change them"
        )
    # Check and mark queued under the status lock: of two resumes at the same instant, the second
    # sees the first's "queued" and is refused, so only one trainer is ever started.
    with status_lock(run_dir):
        status = read_status(run_dir)
        saved = read_config(run_dir)
        config = config_from_dict({**saved, **overrides}, ignore_unknown=True)
        more_epochs = status["state"] == "done" and config.epochs > _int_or_zero(status.get("epoch"))
        _check_resumable(run_dir, status, more_epochs)
        world = status.get("world_size")
        n = max(1, world) if isinstance(world, int) else 1
        try:
            write_json_atomic(run_dir / CONFIG_FILE, {**saved, **overrides})
        except OSError as e:
            raise RunError(f"cannot resume {run_dir.name}: its folder cannot be written ({os_reason(e)})") from None
        update_status(
            run_dir,
            state="queued",
            pid=None,
            pid_start=None,
            launcher_pid=None,
            launcher_pid_start=None,
            ended=None,
            epochs=config.epochs,
            cancel_requested=None,
            resumable=None,
            message="resuming",
        )
    args = config_to_argv(config) + ["--resume"] + list(extra_args or [])
    _spawn(run_dir, train_argv(run_dir, args, nproc=n))
    return run_dir.name


def _check_resumable(run_dir: Path, status: dict[str, Any], more_epochs: bool) -> None:
    """Refuse to resume a live run, a run that failed on a bad setting, or one that has nothing to resume.

    Raises:
        RunError: saying why and what to do instead.
    """
    state = status["state"]
    # What the run's state rules out comes first: a done run's process may still hold the lock for a
    # moment after writing "done", and "cancel it first" would be the wrong advice then.
    if state == "failed" and status.get("resumable") is False:
        raise RunError(
            f"run {run_dir.name} failed before training started and would fail the same way again "
            f"({status.get('message') or 'see its train.log'}); start a new run with that fixed"
        )
    if state not in RESUMABLE_STATES and state not in ACTIVE_STATES and not more_epochs:
        hint = {
            "diverged": " Start a new run with a lower learning rate (e.g. a tenth).",
            "done": " Pass a larger epochs= to train it further.",
        }.get(state, "")
        raise RunError(f"run {run_dir.name} is {state} and cannot be resumed.{hint}")
    if trainer_lock_taken(run_dir):  # whatever status.json says: a live trainer holds the lock
        raise RunError(
            f"run {run_dir.name} is being trained by another process right now; "
            f"cancel it first (`python -m glyphcore runs cancel {run_dir.name}`)"
        )
    if state in ACTIVE_STATES:
        raise RunError(f"run {run_dir.name} is still {state}; cancel it first")


def _int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def can_delete(info: Any) -> tuple[bool, str]:
    """Whether a run may be deleted, and if not why (for a page to disable its Delete button and
    say so before asking): never the starter, never a folder outside the runs folder or one that
    does not look like a run, never a live run (its trainer lock is held, or it is queued/running).

    Args:
        info: the run's ``RunInfo`` (``list_runs``, ``run_info``).

    Returns:
        (True, "") or (False, a sentence saying why and what to do).
    """
    run_dir = Path(info.path)
    if info.is_starter or run_dir.resolve() == paths.starter_dir().resolve():
        return False, "the starter run is part of the repository and cannot be deleted"
    if run_dir.is_symlink() or run_dir.resolve().parent != paths.runs_dir().resolve():
        return False, f"{run_dir} is not a folder inside the runs folder {paths.runs_dir()}; delete it by hand"
    if not looks_like_run(run_dir):
        return False, (
            f"{run_dir} does not look like a run folder (a config.json, a status.json or results, and nothing "
            f"else): it may hold other files; delete it by hand if it is yours to delete"
        )
    if trainer_lock_taken(run_dir):
        return False, f"run {run_dir.name} is being trained right now; cancel it first, then delete it"
    status = info.status or {}
    if info.state in ACTIVE_STATES and not status.get("runner_gone"):
        return False, (
            f"run {run_dir.name} is {info.state}; cancel it first (`python -m glyphcore runs cancel "
            f"{run_dir.name}`, or Cancel on its panel), then delete it"
        )
    return True, ""


def delete(run: str | Path) -> None:
    """Delete a run folder and everything in it (symlinks inside are removed, never followed).

    Raises:
        RunError: ``can_delete`` says no (the starter, a live run, a folder that is not a run or
            lies outside the runs folder), or the folder could not be removed.
    """
    run_dir = resolve_run(run)
    ok, why = can_delete(run_info(run_dir, is_starter=run_dir.resolve() == paths.starter_dir().resolve()))
    if not ok:
        raise RunError(why)
    hold_trainer_lock(run_dir)  # no trainer can start in the folder while it goes
    try:
        shutil.rmtree(run_dir)
    except OSError as e:
        raise RunError(f"could not delete {run_dir}: {os_reason(e)}; what is left of it is still there") from None
    finally:
        release_trainer_lock(run_dir)
