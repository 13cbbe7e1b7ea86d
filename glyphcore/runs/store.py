"""The run-folder store: the files of a run, read and written, and the list of runs.

    <runs_dir>/<run_id>/
      config.json     the full TrainConfig, data set id and hash, glyphcore/torch versions
      status.json     state, pid, device, started/ended, epoch, best epoch/val loss/acc, params, ...
      metrics.jsonl   append-only, one JSON object per line: {"event": "step"|"epoch"|"log"|"end", ...}
      best.pt         saved when val loss improves; last.pt every epoch (the resume point)
      train.log       the training process's stdout and stderr
      eval/           evaluation results (confusion matrix, per-class metrics, predictions)

Times are Unix seconds (float); accuracies are fractions in [0, 1]. Readers reconcile a status
that says running with the process table (``read_status``). No torch here.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from glyphcore import paths
from glyphcore.atomic import atomic_write
from glyphcore.errors import CheckpointError, ConfigError, RunError
from glyphcore.runs.lock import pid_start_time, status_lock

__all__ = [
    "CONFIG_FILE",
    "STATUS_FILE",
    "METRICS_FILE",
    "BEST_CKPT",
    "LAST_CKPT",
    "EVAL_DIR",
    "LOG_FILE",
    "ACTIVE_STATES",
    "RESUMABLE_STATES",
    "STATUS_DEFAULTS",
    "RunInfo",
    "MetricsChunk",
    "MetricsLog",
    "resolve_run",
    "new_run_dir",
    "sanitize_name",
    "write_json_atomic",
    "read_json",
    "write_config",
    "write_status",
    "update_status",
    "read_status",
    "read_config",
    "read_metrics",
    "list_runs",
    "run_info",
    "pid_alive",
    "checkpoint_path",
    "is_checkpoint_file_ref",
    "last_error_line",
    "log_tail",
    "can_resume",
    "run_has_results",
    "clean_orphan_tmps",
    "typed_status",
]

# One source of truth for the names inside a run folder.
CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
BEST_CKPT = "best.pt"
LAST_CKPT = "last.pt"
EVAL_DIR = "eval"
LOG_FILE = "train.log"


ACTIVE_STATES = ("queued", "running")  # a process is (or should be) working on the run
RESUMABLE_STATES = ("cancelled", "crashed", "failed")  # resume continues from last.pt
# A queued run whose launcher never recorded a pid is given this long before it counts as crashed.
_QUEUED_GRACE_S = 60.0


def resolve_run(ref: str | os.PathLike) -> Path:
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
        raise RunError(f"no run {ref_s!r}: {candidate} is not a folder. List runs with `python -m glyphcore runs list`")
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


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when it is missing, unreadable or not an object."""
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def write_config(run_dir: Path, config: Any, name: str | None, **extra: Any) -> dict[str, Any]:
    """Write config.json: every TrainConfig field, plus ``run_id``, ``name``, ``created`` (kept from
    an earlier config.json of the folder) and ``extra`` (the data set, versions, model args...).

    The one writer of config.json: the launcher, the sweep queue and the training process call it.
    """
    old = read_json(Path(run_dir) / CONFIG_FILE) or {}
    data = {
        **asdict(config),
        "run_id": Path(run_dir).name,
        "name": name,
        "created": old.get("created", time.time()),
        **extra,
    }
    write_json_atomic(Path(run_dir) / CONFIG_FILE, data)
    return data


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
_INT_KEYS = (
    "pid",
    "pid_start",
    "launcher_pid",
    "launcher_pid_start",
    "epoch",
    "epochs",
    "step",
    "steps_per_epoch",
    "best_epoch",
    "params",
    "world_size",
)
_FLOAT_KEYS = (
    "started",
    "ended",
    "updated",
    "best_val_loss",
    "best_val_acc",
    "wall_seconds",
    "images_per_s",
    "compile_seconds",
    "gpu_peak_mib",
    "cancel_requested",
)
_STR_KEYS = ("state", "device", "message", "name")


def _typed(value: Any, kind: str) -> tuple[Any, bool]:
    """(value, ok): ``value`` if it has the type ``kind`` ("int", "float", "str"), else (None, False)."""
    if value is None:
        return None, True
    if kind == "str":
        return (value, True) if isinstance(value, str) else (None, False)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, False
    if kind == "int":
        return (value, True) if isinstance(value, int) else (None, False)
    return (float(value), True) if math.isfinite(value) else (None, False)


def typed_status(raw: dict[str, Any]) -> dict[str, Any]:
    """status.json's values with every known key of its type (defaults for wrong types); the keys
    whose values were dropped are listed under ``bad_fields``."""
    status = {**STATUS_DEFAULTS, **raw}
    bad = []
    for keys, kind in ((_INT_KEYS, "int"), (_FLOAT_KEYS, "float"), (_STR_KEYS, "str")):
        for k in keys:
            value, ok = _typed(status.get(k), kind)
            if not ok:
                bad.append(k)
                value = None if k == "state" else STATUS_DEFAULTS.get(k)
            status[k] = value
    if status["state"] is None:
        status["state"] = "unknown"
    if status["message"] is None:
        status["message"] = ""
    status["bad_fields"] = bad
    return status


def write_status(run_dir: str | os.PathLike, status: dict[str, Any]) -> None:
    """Write status.json atomically (the full dict, missing keys filled with their defaults)."""
    write_json_atomic(Path(run_dir) / STATUS_FILE, {**STATUS_DEFAULTS, **status, "updated": time.time()})


def update_status(run_dir: str | os.PathLike, **changes: Any) -> dict[str, Any]:
    """Read status.json, apply ``changes``, write it back atomically; returns the new status.

    Under the run folder's status lock (``glyphcore.runs.lock.status_lock``): the launcher, cancel
    and the training process never lose each other's changes.
    """
    run_dir = Path(run_dir)
    with status_lock(run_dir):
        status = {**STATUS_DEFAULTS, **(read_json(run_dir / STATUS_FILE) or {}), **changes}
        write_status(run_dir, status)
    return status


# Files a training process writes: a folder holding any of them holds a run's results.
_RESULT_FILES = (METRICS_FILE, BEST_CKPT, LAST_CKPT)
# An atomic write's temporary file (glyphcore.atomic): ``.<name>.<random>.tmp``.
_TMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$")
_TMP_STALE_S = 600.0  # s: a temporary file of another writer older than this is an orphan


def run_has_results(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a run's results (metrics, checkpoints), i.e. training there anew
    would overwrite them. A folder a launcher just prepared (config.json, a queued status) has none."""
    run_dir = Path(run_dir)
    return any((run_dir / f).exists() for f in _RESULT_FILES) or (run_dir / EVAL_DIR).exists()


def clean_orphan_tmps(run_dir: str | os.PathLike) -> list[str]:
    """Remove the temporary files that killed writers left in a run folder; returns their names.

    Call it holding the trainer lock: the temporary checkpoint files are only ever written by the
    lock holder, so any there now are orphans; other temporary files (status.json, written by
    launchers too) only when older than ``_TMP_STALE_S``.
    """
    removed: list[str] = []
    now = time.time()
    try:
        entries = list(Path(run_dir).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TMP_PATTERN.match(p.name)
        if m is None or not p.is_file():
            continue
        try:
            if m.group("name") in (BEST_CKPT, LAST_CKPT) or now - p.stat().st_mtime > _TMP_STALE_S:
                p.unlink()
                removed.append(p.name)
        except OSError:
            continue
    return removed


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
    except OSError as e:  # a folder by that name, no permission...
        raise RunError(
            f"{path} cannot be read ({e.strerror or e}): the run folder is damaged; delete the run or restore the file"
        ) from None
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
    data = read_json(run_dir / CONFIG_FILE)
    if data is None:
        raise RunError(f"{run_dir} has no readable {CONFIG_FILE}: the run folder is incomplete")
    return data


# Popen objects of the runs this process launched: polling them reaps a finished child, which
# otherwise stays a zombie that os.kill(pid, 0) still reports alive.
_CHILDREN: dict[int, subprocess.Popen] = {}


def pid_alive(pid: Any, start: Any = None) -> bool:
    """Whether ``pid`` is a live glyphcore training process (not a zombie, not a reused pid).

    Args:
        pid: the process id recorded in status.json.
        start: its start time as recorded with it (``glyphcore.runs.lock.pid_start_time``); when
            given, a process with that pid but another start time is another process (the pid was
            reused), whatever its command line.
    """
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    if isinstance(start, int) and not isinstance(start, bool):
        now = pid_start_time(pid)
        if now is not None and now != start:
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

    A run marked queued or running whose process is gone is reported ``crashed`` (with a message
    saying how to resume); the file itself is left as it is.

    Raises:
        RunError: no such run.
    """
    run_dir = resolve_run(run)
    raw = read_json(run_dir / STATUS_FILE)
    status = typed_status(raw or {})
    if status["bad_fields"]:
        status["message"] = (
            f"{STATUS_FILE} has values of the wrong type in {', '.join(status['bad_fields'])} "
            f"(shown as unknown); {status['message']}"
        ).rstrip("; ")
    if raw is None:
        status["state"] = "done" if (run_dir / BEST_CKPT).is_file() else "crashed"
        status["message"] = f"{STATUS_FILE} is missing or unreadable"
        return status
    if status["state"] in ACTIVE_STATES:
        pid = status.get("pid")
        young = pid is None and time.time() - (status.get("updated") or 0.0) < _QUEUED_GRACE_S
        if not young and not pid_alive(pid, status.get("pid_start")):
            if status.get("cancel_requested"):  # SIGTERM came before the process could handle it
                status["state"] = "cancelled"
                status["message"] = "cancelled before training started"
            else:
                status["state"] = "crashed"
                why = last_error_line(run_dir)
                status["message"] = (
                    f"the training process (pid {pid}) ended without finishing the run"
                    + (f": {why}" if why else "")
                    + f"; resume it with `glyphcore runs resume {run_dir.name}`"
                )
    return status


_ERROR_LINE = re.compile(r"^(error: |[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b:?)")


def last_error_line(run_dir: Path, tail_bytes: int = 16_384) -> str:
    """The last error line the run's process printed to train.log (``error: ...`` from the CLI,
    or the last line of a traceback, ``RuntimeError: ...``), cut to 300 characters; "" if none."""
    try:
        with open(Path(run_dir) / LOG_FILE, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - tail_bytes))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if _ERROR_LINE.match(line.strip()):
            return line.strip()[:300]
    return ""


def log_tail(run_dir: Path, max_lines: int = 200, tail_bytes: int = 65_536) -> str:
    """The last ``max_lines`` lines of the run's train.log (read from its last ``tail_bytes`` bytes,
    so a huge log costs no more); "" when the run has no log."""
    try:
        with open(Path(run_dir) / LOG_FILE, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - tail_bytes))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = text.splitlines()
    if size > tail_bytes and lines:
        lines = lines[1:]  # the first line read is probably cut
    return "\n".join(lines[-max_lines:])


def can_resume(status: dict[str, Any]) -> bool:
    """Whether a run in this (reconciled) status can be resumed from its last.pt: cancelled,
    crashed, or failed for a reason a second try may not meet again (not a bad setting)."""
    return status.get("state") in RESUMABLE_STATES and status.get("resumable") is not False


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


def run_info(run_dir: Path, is_starter: bool = False) -> RunInfo:
    """One run's list entry; a run whose files cannot be read at all is listed as ``unreadable``
    (with the reason), never dropped and never an exception for the whole list."""
    run_id = "starter" if is_starter else run_dir.name
    try:
        status = read_status(run_dir)
    except (RunError, OSError, ValueError, TypeError) as e:
        return RunInfo(run_id=run_id, path=run_dir, state="unreadable", message=str(e), is_starter=is_starter)
    config = read_json(run_dir / CONFIG_FILE) or {}

    def text(key: str) -> str | None:
        v = config.get(key)
        return v if isinstance(v, str) else None

    config_epochs, _ = _typed(config.get("epochs"), "int")
    created, _ = _typed(config.get("created"), "float")
    return RunInfo(
        run_id=run_id,
        path=run_dir,
        state=status["state"],
        model=text("model"),
        activation=text("activation"),
        data=text("data"),
        name=text("name") or status.get("name"),
        epoch=status.get("epoch") or 0,
        epochs=status.get("epochs") or config_epochs,
        best_epoch=status.get("best_epoch"),
        best_val_loss=status.get("best_val_loss"),
        best_val_acc=status.get("best_val_acc"),
        params=status.get("params"),
        started=status.get("started") or created,
        ended=status.get("ended"),
        wall_seconds=status.get("wall_seconds") or 0.0,
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
            infos.append(run_info(d, is_starter))
    infos.sort(key=lambda r: (r.started or 0.0, r.run_id), reverse=True)
    if not seen_starter and ((starter / CONFIG_FILE).is_file() or (starter / STATUS_FILE).is_file()):
        infos.append(run_info(starter, is_starter=True))
    return infos


def is_checkpoint_file_ref(ref: str | os.PathLike) -> bool:
    """Whether a run reference names a checkpoint file (``*.pt`` / ``*.pth``) rather than a run."""
    p = Path(ref)
    return p.suffix in (".pt", ".pth") and not p.is_dir()


def checkpoint_path(run_ref: str | os.PathLike, which: str = "best") -> Path:
    """The checkpoint file a reference points at: a ``.pt`` file, or a run's best/last checkpoint.

    Raises:
        RunError: no such run.
        CheckpointError: the run has no such checkpoint yet (the message says why and what to do).
        ConfigError: ``which`` is neither "best" nor "last".
    """
    if which not in ("best", "last"):
        raise ConfigError(f"which must be 'best' or 'last', got {which!r}")
    p = Path(run_ref)
    if is_checkpoint_file_ref(run_ref):
        if not p.is_file():
            raise CheckpointError(f"checkpoint {p} does not exist: give the path of a .pt file or a run id")
        return p
    run_dir = resolve_run(run_ref)
    name = BEST_CKPT if which == "best" else LAST_CKPT
    path = run_dir / name
    if not path.is_file():
        state = _run_state(run_dir)
        other = run_dir / (LAST_CKPT if which == "best" else BEST_CKPT)
        hint = f"; it has {other.name} (use which={'last' if which == 'best' else 'best'})" if other.is_file() else ""
        raise CheckpointError(
            f"run {run_dir.name} has no {name} yet (state: {state}){hint}: a checkpoint is written at the "
            f"end of the first epoch; wait for it, or resume or retrain the run"
        )
    return path


def _run_state(run_dir: Path) -> str:
    try:
        return str(read_status(run_dir).get("state", "unknown"))  # reconciled: a dead "running" is crashed
    except Exception:  # a message helper: never let a broken status.json hide the real error
        return "unknown"
