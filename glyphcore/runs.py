"""Run folders: one folder per training run under ``paths.runs_dir()``, and the launcher.

    <runs_dir>/<run_id>/
      config.json     the full TrainConfig, data set id and hash, glyphcore/torch versions
      status.json     state, pid, device, started/ended, epoch, best epoch/val loss/acc, params, ...
      metrics.jsonl   append-only, one JSON object per line: {"event": "step"|"epoch"|"log"|"end", ...}
      best.pt         saved when val loss improves; last.pt every epoch (the resume point)
      train.log       the training process's stdout and stderr
      eval/           evaluation results (confusion matrix, per-class metrics, predictions)

A run is its own OS process (``python -m glyphcore train --run-dir DIR ...``) started detached by
``launch``; the app and the CLI only read and write these files. Times are Unix seconds (float);
accuracies are fractions in [0, 1]. This module never imports torch at import time.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from glyphcore import paths
from glyphcore.atomic import atomic_write
from glyphcore.errors import ConfigError, RunError

__all__ = [
    "CONFIG_FILE", "STATUS_FILE", "METRICS_FILE", "BEST_CKPT", "LAST_CKPT", "EVAL_DIR", "LOG_FILE",
    "STATES", "ACTIVE_STATES", "RESUMABLE_STATES",
    "RunInfo", "MetricsChunk", "MetricsLog",
    "resolve_run", "new_run_dir", "sanitize_name", "write_json_atomic", "write_status", "update_status",
    "read_status", "read_config", "read_metrics", "list_runs", "launch", "train_argv", "cancel",
    "resume", "delete", "pid_alive",
]

# One source of truth for the names inside a run folder.
CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
BEST_CKPT = "best.pt"
LAST_CKPT = "last.pt"
EVAL_DIR = "eval"
LOG_FILE = "train.log"

STATES = ("queued", "running", "done", "failed", "cancelled", "diverged", "crashed")
ACTIVE_STATES = ("queued", "running")  # a process is (or should be) working on the run
RESUMABLE_STATES = ("cancelled", "crashed", "failed")  # resume continues from last.pt
# A queued run whose launcher never recorded a pid is given this long before it counts as crashed.
_QUEUED_GRACE_S = 60.0


def resolve_run(ref: str | Path) -> Path:
    """Turn a run reference into its folder: a run id, a path to a run folder, or ``starter``.

    Raises:
        RunError: nothing by that name, or the folder is not a run (no config.json/status.json).
    """
    ref_s = str(ref)
    if ref_s == "starter":
        candidate = paths.starter_dir()
    else:
        p = Path(ref_s)
        candidate = p if (p.is_dir() or "/" in ref_s or ref_s.startswith(".")) else paths.runs_dir() / ref_s
    if not candidate.is_dir():
        raise RunError(
            f"no run {ref_s!r}: {candidate} is not a folder. List runs with `python -m glyphcore runs list`"
        )
    if not ((candidate / CONFIG_FILE).is_file() or (candidate / STATUS_FILE).is_file()):
        raise RunError(f"{candidate} is not a run folder: it has no {CONFIG_FILE} or {STATUS_FILE}")
    return candidate


# ---------------------------------------------------------------------------------------------
# Names and files
# ---------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sanitize_name(name: str, max_len: int = 40) -> str:
    """A user-typed run name as a safe folder-name part: letters, digits, '.', '_' and '-' only.

    >>> sanitize_name("  my run/../../etc  ")
    'my-run-..-..-etc'
    """
    s = _UNSAFE.sub("-", str(name).strip()).strip("-.")
    s = re.sub(r"-{2,}", "-", s)[:max_len].strip("-.")
    return s


def new_run_dir(model: str, activation: str, name: str | None = None, root: Path | None = None) -> Path:
    """Create and return a fresh run folder ``<root>/<YYYYmmdd-HHMMSS>-<model>-<activation>[-<name>]``.

    Two runs started in the same second get ``-2``, ``-3``...; the folder is created with
    ``mkdir(exist_ok=False)`` so two launchers never share one.
    """
    root = Path(root) if root is not None else paths.runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    parts = [time.strftime("%Y%m%d-%H%M%S"), sanitize_name(model), sanitize_name(activation)]
    if name and sanitize_name(name):
        parts.append(sanitize_name(name))
    base = "-".join(p for p in parts if p)
    for i in range(1, 1000):
        candidate = root / (base if i == 1 else f"{base}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RunError(f"could not create a run folder named {base} in {root}: too many runs with that name")


def _json_safe(value: Any) -> Any:
    """NaN/Inf -> None so every line is strict JSON (a diverged loss is recorded as null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to a temp file in the same folder, then rename over ``path``: readers never see
    half a file."""
    with atomic_write(path, "w") as f:
        json.dump(_json_safe(data), f, indent=1, sort_keys=True)
        f.write("\n")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


# Every key of status.json, with its value before the run has told anything.
STATUS_DEFAULTS: dict[str, Any] = {
    "state": "queued", "pid": None, "launcher_pid": None, "device": None, "started": None,
    "ended": None, "updated": None, "epoch": 0, "epochs": None, "step": 0, "steps_per_epoch": None,
    "best_epoch": None, "best_val_loss": None, "best_val_acc": None, "params": None,
    "wall_seconds": 0.0, "images_per_s": None, "compile_seconds": None, "gpu_peak_mib": None, "world_size": 1,
    "message": "", "name": None, "cancel_requested": None,
}


def write_status(run_dir: str | os.PathLike, status: dict[str, Any]) -> None:
    """Write status.json atomically (the full dict, missing keys filled with their defaults)."""
    write_json_atomic(Path(run_dir) / STATUS_FILE, {**STATUS_DEFAULTS, **status, "updated": time.time()})


def update_status(run_dir: str | os.PathLike, **changes: Any) -> dict[str, Any]:
    """Read status.json, apply ``changes``, write it back atomically; returns the new status."""
    run_dir = Path(run_dir)
    status = {**STATUS_DEFAULTS, **(_read_json(run_dir / STATUS_FILE) or {}), **changes}
    write_status(run_dir, status)
    return status


class MetricsLog:
    """The writer side of metrics.jsonl: append-only lines, flushed at once.

    ``offset`` is the file size after the last write; a checkpoint stores it so that a resumed run
    can cut off the records written after its resume point (``truncate``).
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.offset = self._f.tell()

    def append(self, *records: dict[str, Any]) -> int:
        """Write one line per record (``time`` added when absent); returns the new offset."""
        now = time.time()
        text = "".join(json.dumps(_json_safe({**r, "time": r.get("time", now)})) + "\n" for r in records)
        self._f.write(text)
        self._f.flush()
        self.offset = self._f.tell()
        return self.offset

    def truncate(self, offset: int) -> None:
        """Cut the file back to ``offset`` bytes (records after a resume point are abandoned)."""
        self._f.flush()
        self._f.truncate(offset)
        self._f.seek(offset)
        self.offset = offset

    def close(self) -> None:
        self._f.close()


class MetricsChunk(list):
    """Records read from metrics.jsonl: a list of dicts, plus where to continue.

    Attributes:
        offset: byte offset after the last complete line read; pass it as ``since_offset`` next time.
        reset: True when the file was shorter than ``since_offset`` (a resumed run cut off records
            written after its resume point): the records are then the whole file, from the start.
    """

    offset: int = 0
    reset: bool = False


def read_metrics(run: str | Path, since_offset: int = 0) -> MetricsChunk:
    """Read metrics.jsonl records, from ``since_offset`` bytes on.

    A torn last line (being written right now) is left for the next read; a corrupt complete line
    is skipped.

    Args:
        run: run id, folder or "starter".
        since_offset: the ``offset`` of the previous chunk (0 = from the start).

    Returns:
        MetricsChunk (a list of dicts) with ``.offset`` and ``.reset``.
    """
    path = resolve_run(run) / METRICS_FILE
    chunk = MetricsChunk()
    chunk.offset, chunk.reset = 0, False
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if since_offset > size:
                chunk.reset, since_offset = True, 0
            f.seek(since_offset)
            data = f.read()
    except FileNotFoundError:
        chunk.reset = since_offset > 0
        return chunk
    end = data.rfind(b"\n") + 1  # only complete lines
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            chunk.append(rec)
    chunk.offset = since_offset + end
    return chunk


def read_config(run: str | Path) -> dict[str, Any]:
    """config.json of a run: every TrainConfig field, plus ``run_id``, ``name``, ``dataset``
    ({id, hash, source, classes, image_shape, counts}) and ``versions``.

    Raises:
        RunError: no such run, or its config.json is missing or unreadable.
    """
    run_dir = resolve_run(run)
    data = _read_json(run_dir / CONFIG_FILE)
    if data is None:
        raise RunError(f"{run_dir} has no readable {CONFIG_FILE}: the run folder is incomplete")
    return data


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

# Popen objects of the runs this process launched: polling them reaps a finished child, which
# otherwise stays a zombie that os.kill(pid, 0) still reports alive.
_CHILDREN: dict[int, subprocess.Popen] = {}


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live glyphcore training process (not a zombie, not a reused pid)."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:  # started by this process: poll() knows (and reaps it when it has ended)
        if child.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
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
            if stat[stat.rfind(")") + 2:].startswith(("Z", "X")):
                return False
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        modules = [b for a, b in zip(args, args[1:]) if a == b"-m"]
        return any(m == b"glyphcore" or m.startswith(b"glyphcore.") or m == b"torch.distributed.run" for m in modules) \
            or any(a.endswith(b"torchrun") for a in args)
    return True


def read_status(run: str | Path) -> dict[str, Any]:
    """status.json of a run, reconciled with the process table.

    A run marked queued or running whose process is gone is reported ``crashed`` (with a message
    saying how to resume); the file itself is left as it is.

    Raises:
        RunError: no such run.
    """
    run_dir = resolve_run(run)
    raw = _read_json(run_dir / STATUS_FILE)
    status = {**STATUS_DEFAULTS, **(raw or {})}
    if raw is None:
        status["state"] = "done" if (run_dir / BEST_CKPT).is_file() else "crashed"
        status["message"] = f"{STATUS_FILE} is missing or unreadable"
        return status
    if status["state"] in ACTIVE_STATES:
        pid = status.get("pid")
        young = pid is None and time.time() - float(status.get("updated") or 0) < _QUEUED_GRACE_S
        if not young and not pid_alive(pid):
            if status.get("cancel_requested"):  # SIGTERM came before the process could handle it
                status["state"] = "cancelled"
                status["message"] = "cancelled before training started"
            else:
                status["state"] = "crashed"
                status["message"] = (
                    f"the training process (pid {pid}) ended without finishing the run; "
                    f"resume it with `python -m glyphcore runs resume {run_dir.name}`"
                )
    return status


@dataclass
class RunInfo:
    """One run as the lists show it (from its status.json and config.json).

    Attributes:
        run_id: folder name (``starter`` for the committed starter model).
        path: the run folder.
        state: one of STATES, reconciled (running with a dead pid -> crashed).
        model, activation, data, name: from config.json.
        epoch, epochs: epochs finished / planned.
        best_epoch, best_val_loss, best_val_acc: the best epoch so far (acc as a fraction).
        params: trainable parameters.
        started, ended: Unix seconds, or None.
        wall_seconds: seconds of training so far.
        device, message: as in status.json.
        is_starter: the committed starter run.
        status: the whole reconciled status dict.
    """

    run_id: str
    path: Path
    state: str
    model: str | None = None
    activation: str | None = None
    data: str | None = None
    name: str | None = None
    epoch: int = 0
    epochs: int | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    best_val_acc: float | None = None
    params: int | None = None
    started: float | None = None
    ended: float | None = None
    wall_seconds: float = 0.0
    device: str | None = None
    message: str = ""
    is_starter: bool = False
    status: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def _run_info(run_dir: Path, is_starter: bool = False) -> RunInfo:
    status = read_status(run_dir)
    config = _read_json(run_dir / CONFIG_FILE) or {}
    return RunInfo(
        run_id="starter" if is_starter else run_dir.name,
        path=run_dir,
        state=status["state"],
        model=config.get("model"),
        activation=config.get("activation"),
        data=config.get("data"),
        name=config.get("name") or status.get("name"),
        epoch=int(status.get("epoch") or 0),
        epochs=status.get("epochs") or config.get("epochs"),
        best_epoch=status.get("best_epoch"),
        best_val_loss=status.get("best_val_loss"),
        best_val_acc=status.get("best_val_acc"),
        params=status.get("params"),
        started=status.get("started") or config.get("created"),
        ended=status.get("ended"),
        wall_seconds=float(status.get("wall_seconds") or 0.0),
        device=status.get("device"),
        message=status.get("message") or "",
        is_starter=is_starter,
        status=status,
    )


def list_runs() -> list[RunInfo]:
    """Every run under ``paths.runs_dir()``, newest first, plus the committed starter run (last)
    when it exists and is not already listed. States are reconciled (see ``read_status``)."""
    root = paths.runs_dir()
    starter = paths.starter_dir().resolve()
    infos: list[RunInfo] = []
    seen_starter = False
    if root.is_dir():
        for d in root.iterdir():
            if not d.is_dir() or not ((d / CONFIG_FILE).is_file() or (d / STATUS_FILE).is_file()):
                continue
            is_starter = d.resolve() == starter
            seen_starter |= is_starter
            infos.append(_run_info(d, is_starter))
    infos.sort(key=lambda r: (r.started or 0.0, r.run_id), reverse=True)
    if not seen_starter and ((starter / CONFIG_FILE).is_file() or (starter / STATUS_FILE).is_file()):
        infos.append(_run_info(starter, is_starter=True))
    return infos


def train_argv(run_dir: str | os.PathLike, train_args: list[str], nproc: int = 1) -> list[str]:
    """The argv that runs ``python -m glyphcore train --run-dir DIR *train_args``; with nproc > 1,
    under torchrun (``python -m torch.distributed.run --standalone --nproc_per_node N -m glyphcore``)."""
    tail = ["-m", "glyphcore", "train", "--run-dir", str(run_dir), *train_args]
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *tail]
    return [sys.executable, *tail]


def _spawn(run_dir: Path, argv: list[str]) -> int:
    """Start ``argv`` detached (own session, output to train.log); record its pid; return it."""
    env = dict(os.environ)
    # The child imports glyphcore from this checkout even when it is not installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(paths.REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    with open(run_dir / LOG_FILE, "ab") as log:
        try:
            proc = subprocess.Popen(  # an argv list, never a shell string
                argv, cwd=paths.REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, close_fds=True,
            )
        except OSError as e:
            update_status(run_dir, state="failed", ended=time.time(), message=f"could not start {argv[0]}: {e}")
            raise RunError(f"could not start the training process ({argv[0]}): {e}") from None
    _CHILDREN[proc.pid] = proc
    # The child writes its own pid once it runs; until then the launcher's pid lets the lists tell
    # a starting run from a dead one. (If the child was quicker, it has written "running" already.)
    status = _read_json(run_dir / STATUS_FILE) or {}
    if status.get("state", "queued") == "queued":
        update_status(run_dir, pid=proc.pid, launcher_pid=proc.pid)
    return proc.pid


def _visible_gpus() -> int:
    import torch  # only here: the launcher counts GPUs when asked to use them all

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def launch(config: Any, name: str | None = None, extra_args: list[str] | None = None,
           gpus: str | int | None = None, nproc: int | None = None) -> str:
    """Start a training run as a detached process and return its run id at once.

    The run folder gets config.json and a ``queued`` status.json before the process starts; the
    process's output goes to train.log. Several runs may run at once.

    Args:
        config: a TrainConfig (``glyphcore.train.make_config``), validated here.
        name: optional user-typed name, sanitised into the run id.
        extra_args: more ``train`` flags (e.g. ``["--threads", "1"]``).
        gpus: "all" (every visible GPU, one process each under torchrun) or a number of GPUs;
            None = one process on ``config.device``.
        nproc: processes under torchrun without GPUs (CPU, gloo); for tests and CPU-only machines.

    Returns:
        The run id (the folder name under ``paths.runs_dir()``).

    Raises:
        ConfigError: a bad setting; RunError: the process could not start.
    """
    from glyphcore.train_config import TrainConfig, config_to_argv, validate_config

    if not isinstance(config, TrainConfig):
        raise ConfigError(f"launch needs a TrainConfig, got {type(config).__name__}")
    validate_config(config)
    n = int(nproc or 1)
    if gpus is not None:
        available = _visible_gpus()
        want = available if gpus == "all" else int(gpus)
        if want > available:
            raise ConfigError(f"asked for {want} GPU(s) but {available} are visible; use gpus='all' or fewer")
        n = max(want, 1)
    run_dir = new_run_dir(config.model, config.activation, name)
    write_json_atomic(run_dir / CONFIG_FILE, {**asdict(config), "run_id": run_dir.name, "name": name,
                                              "created": time.time()})
    write_status(run_dir, {"state": "queued", "epochs": config.epochs, "name": name, "world_size": n,
                           "message": "starting"})
    args = config_to_argv(config) + (["--name", name] if name else []) + list(extra_args or [])
    _spawn(run_dir, train_argv(run_dir, args, nproc=n))
    return run_dir.name


def _signal_target(status: dict[str, Any]) -> int | None:
    """The pid to signal: torchrun's (it forwards to every worker) or the single process."""
    for key in ("launcher_pid", "pid"):
        pid = status.get(key)
        if pid and pid != os.getpid() and pid_alive(pid):
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
    from glyphcore.train_config import RUNTIME_FIELDS, config_from_dict, config_to_argv

    run_dir = resolve_run(run)
    if run_dir.resolve() == paths.starter_dir().resolve():
        raise RunError("the starter run is read-only: fine-tune it in a new run with --init-from starter")
    status = read_status(run_dir)
    state = status["state"]
    bad = sorted(set(overrides) - set(RUNTIME_FIELDS))
    if bad:
        raise ConfigError(f"a resumed run keeps its settings; only {', '.join(RUNTIME_FIELDS)} may change "
                          f"(not {', '.join(bad)}). Start a new run to change them")
    saved = read_config(run_dir)
    config = config_from_dict({**saved, **overrides}, ignore_unknown=True)
    more_epochs = state == "done" and config.epochs > int(status.get("epoch") or 0)
    if state in ACTIVE_STATES:
        raise RunError(f"run {run_dir.name} is still {state}; cancel it first")
    if state not in RESUMABLE_STATES and not more_epochs:
        hint = (" Start a new run with a lower learning rate (e.g. a tenth)." if state == "diverged"
                else " Pass a larger epochs= to train it further." if state == "done" else "")
        raise RunError(f"run {run_dir.name} is {state} and cannot be resumed.{hint}")
    n = int(status.get("world_size") or 1)
    write_json_atomic(run_dir / CONFIG_FILE, {**saved, **overrides})
    update_status(run_dir, state="queued", pid=None, launcher_pid=None, ended=None, epochs=config.epochs,
                  cancel_requested=None, message="resuming")
    args = config_to_argv(config) + ["--resume"] + list(extra_args or [])
    _spawn(run_dir, train_argv(run_dir, args, nproc=n))
    return run_dir.name


def delete(run: str | Path) -> None:
    """Delete a run folder and everything in it.

    Raises:
        RunError: the run is running (cancel it first), or it is the committed starter run.
    """
    run_dir = resolve_run(run)
    if run_dir.resolve() == paths.starter_dir().resolve():
        raise RunError("the starter run is part of the repository and cannot be deleted")
    status = read_status(run_dir)
    if status["state"] in ACTIVE_STATES:
        raise RunError(f"run {run_dir.name} is {status['state']}; cancel it before deleting it")
    shutil.rmtree(run_dir)
