"""The list of runs: one ``RunInfo`` per run folder, and the checkpoint a reference points at.

The run folder's parts live in ``files`` (names, config.json), ``status`` (status.json, reconciled
with the process table) and ``metrics`` (metrics.jsonl, train.log); their public names are
importable from here and from ``glyphcore.runs`` as well. No torch here.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from glyphcore import paths
from glyphcore.errors import CheckpointError, ConfigError, RunError
from glyphcore.runfolder.files import (
    BEST_CKPT,
    CONFIG_FILE,
    EVAL_DIR,
    LAST_CKPT,
    LOG_FILE,
    METRICS_FILE,
    RUN_ENTRIES,
    STATUS_FILE,
    check_run_dir_claimable,
    clean_orphan_tmps,
    looks_like_run,
    new_run_dir,
    open_in_run,
    read_config,
    read_json,
    resolve_run,
    run_has_results,
    sanitize_name,
    write_config,
    write_json_atomic,
)
from glyphcore.runfolder.metrics import MetricsChunk, MetricsLog, last_error_line, log_tail, read_metrics
from glyphcore.runfolder.status import (
    ACTIVE_STATES,
    CHILD_PROCESSES,  # noqa: F401 (the launcher's children, registered by glyphcore.runs.process)
    PID_MAX,
    RESUMABLE_STATES,
    STATES,
    STATUS_DEFAULTS,
    TIME_RANGE,
    can_resume,
    checked_number,
    pid_alive,
    read_status,
    refuse_if_cancelled,
    typed_status,
    update_status,
    write_status,
)

__all__ = [
    "CONFIG_FILE",
    "STATUS_FILE",
    "METRICS_FILE",
    "BEST_CKPT",
    "LAST_CKPT",
    "EVAL_DIR",
    "LOG_FILE",
    "RUN_ENTRIES",
    "ACTIVE_STATES",
    "RESUMABLE_STATES",
    "STATUS_DEFAULTS",
    "PID_MAX",
    "STATES",
    "TIME_RANGE",
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
    "checked_number",
    "open_in_run",
    "looks_like_run",
    "check_run_dir_claimable",
    "refuse_if_cancelled",
]


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

    config_epochs = checked_number(config.get("epochs"), "int", 0, 10**12)
    created = checked_number(config.get("created"), "float", *TIME_RANGE)
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
