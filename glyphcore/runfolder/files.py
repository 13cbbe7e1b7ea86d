"""The run folder's files: their names, finding a run by reference, new folders, JSON read and
written atomically, config.json, and what may be written or deleted there.

    <runs_dir>/<run_id>/
      config.json     the full TrainConfig, data set id and hash, glyphcore/torch versions
      status.json     state, pid, device, started/ended, epoch, best epoch/val loss/acc, params, ...
      metrics.jsonl   append-only, one JSON object per line: {"event": "step"|"epoch"|"log"|"end", ...}
      best.pt         saved when val loss improves; last.pt every epoch (the resume point)
      train.log       the training process's stdout and stderr
      eval/           evaluation results (confusion matrix, per-class metrics, predictions)

A run folder is written only through its own entries: a symlink inside it is never followed for
writing (``open_in_run``) or deleting. No torch here.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from glyphcore import paths
from glyphcore.atomic import atomic_write
from glyphcore.errors import RunError
from glyphcore.runfolder.lock import status_lock

__all__ = [
    "CONFIG_FILE",
    "STATUS_FILE",
    "METRICS_FILE",
    "BEST_CKPT",
    "LAST_CKPT",
    "EVAL_DIR",
    "LOG_FILE",
    "RUN_ENTRIES",
    "resolve_run",
    "new_run_dir",
    "sanitize_name",
    "write_json_atomic",
    "read_json",
    "write_config",
    "read_config",
    "run_has_results",
    "clean_orphan_tmps",
    "open_in_run",
    "looks_like_run",
    "check_run_dir_claimable",
]

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
BEST_CKPT = "best.pt"
LAST_CKPT = "last.pt"
EVAL_DIR = "eval"
LOG_FILE = "train.log"
# Every name a run folder holds (a training process, a launcher, the lock and the exporters write
# these; atomic writes' ``.<name>.<random>.tmp`` files besides): anything else is not the run's.
RUN_ENTRIES = frozenset(
    {CONFIG_FILE, STATUS_FILE, METRICS_FILE, BEST_CKPT, LAST_CKPT, EVAL_DIR, LOG_FILE, "tb", ".lock", ".status.lock"}
)
_JSON_MAX_BYTES = 16 * 2**20  # B: config.json, status.json and sweep records are a few KB


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


def json_safe(value: Any) -> Any:
    """NaN/Inf -> None so every line is strict JSON (a diverged loss is recorded as null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to a temp file in the same folder, then rename over ``path``: readers never see
    half a file."""
    with atomic_write(path, "w") as f:
        json.dump(json_safe(data), f, indent=1, sort_keys=True)
        f.write("\n")


def open_regular(path: str | os.PathLike) -> IO[bytes]:
    """Open ``path`` for reading only if it is a regular file (after links): a FIFO, a device such
    as /dev/zero or a folder where a file is expected would hang or never end a read.

    Raises:
        OSError: missing, unreadable, or not a regular file (the message names what it is).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise OSError(errno.EINVAL, "not a regular file (a pipe, a device or a folder)", str(path))
    return f


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when it is missing, unreadable, not a regular file, larger
    than 16 MiB or not an object."""
    try:
        with open_regular(path) as f:
            raw = f.read(_JSON_MAX_BYTES + 1)
        if len(raw) > _JSON_MAX_BYTES:
            return None
        data = json.loads(raw)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError, RecursionError):
        return None


def open_in_run(path: str | os.PathLike, mode: str = "a") -> IO[Any]:
    """Open a file inside a run folder for writing ("a" or "ab") without following a symlink: a
    link in a copied run folder must not make a run write (or truncate) a file elsewhere.

    Raises:
        OSError: the entry is a symlink (ELOOP) or cannot be opened.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o644)
    if "b" in mode:
        return os.fdopen(fd, "ab")
    return os.fdopen(fd, "a", encoding="utf-8")


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


# Files a training process writes: a folder holding any of them holds a run's results.
_RESULT_FILES = (METRICS_FILE, BEST_CKPT, LAST_CKPT)
# An atomic write's temporary file (glyphcore.atomic): ``.<name>.<random>.tmp``.
_TMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$")
_TMP_STALE_S = 600.0  # s: a temporary file of another writer older than this is an orphan
# files whose writers beside a trainer hold the trainer lock (checkpoints) or the status lock (status.json)
_LOCKED_WRITES = (BEST_CKPT, LAST_CKPT, STATUS_FILE)


def run_has_results(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a run's results (metrics, checkpoints), i.e. training there anew
    would overwrite them. A folder a launcher just prepared (config.json, a queued status) has none."""
    run_dir = Path(run_dir)
    return any((run_dir / f).exists() for f in _RESULT_FILES) or (run_dir / EVAL_DIR).exists()


def clean_orphan_tmps(run_dir: str | os.PathLike) -> list[str]:
    """Remove the temporary files that killed writers left in a run folder; returns their names.

    Call it holding the trainer lock: the temporary checkpoint files are only ever written by the
    lock holder, so any there now are orphans. status.json's are removed under the status lock:
    every status.json write beside a trainer holds it (``update_status``: the trainer, cancel, the
    sweep runner's hand-off; the only writes without it are a launcher's first status, made before
    the run's trainer starts), so any there then are orphans too (a trainer killed mid-write); other
    temporary files only when older than ``_TMP_STALE_S``.
    """
    removed: list[str] = []
    now = time.time()
    try:
        entries = list(Path(run_dir).iterdir())
    except OSError:
        return removed
    with status_lock(run_dir):
        for p in entries:
            m = _TMP_PATTERN.match(p.name)
            if m is None or not p.is_file():
                continue
            try:
                if m.group("name") in _LOCKED_WRITES or now - p.stat().st_mtime > _TMP_STALE_S:
                    p.unlink()
                    removed.append(p.name)
            except OSError:
                continue
    return removed


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


def looks_like_run(run_dir: str | os.PathLike) -> bool:
    """Whether a folder is a run folder: a real folder (not a link) with a config.json that is a
    JSON object, a status.json or a run's results, and nothing but a run's own entries
    (``RUN_ENTRIES`` and temporary files). A project folder holding a config.json is not a run."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink() or not run_dir.is_dir() or read_json(run_dir / CONFIG_FILE) is None:
        return False
    if not ((run_dir / STATUS_FILE).is_file() or run_has_results(run_dir)):
        return False
    return not _foreign_entries(run_dir)


def _foreign_entries(run_dir: Path) -> list[str]:
    """The entries of a folder that no run writes (sorted names)."""
    try:
        names = [p.name for p in run_dir.iterdir()]
    except OSError:
        return ["(unreadable)"]
    # temporary files: atomic writes' (.<name>.<random>.tmp) and the TensorBoard export's (.tb.tmp-<pid>)
    return sorted(n for n in names if n not in RUN_ENTRIES and not (n.startswith(".") and "tmp" in n))


def check_run_dir_claimable(run_dir: str | os.PathLike) -> None:
    """Refuse to train into an existing folder that is not a run: a missing or empty folder, or one
    that holds only a run's own entries, may become (or continue) a run; anything else is the
    user's and would be overwritten (config.json, status.json).

    Raises:
        RunError: a file, a symlink, or a folder holding other things (named, with the fix).
    """
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        raise RunError(f"--run-dir {run_dir} is a symlink: pass the real folder, or a new folder for the run")
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise RunError(f"--run-dir {run_dir} is a file, not a folder: pass a folder for the run")
    foreign = _foreign_entries(run_dir)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RunError(
            f"--run-dir {run_dir} is not a run folder (it holds {shown}): training there would overwrite "
            f"its config.json and status.json; pass a new or empty folder for the run"
        )
