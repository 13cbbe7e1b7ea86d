"""TensorBoard event files of a run, in ``<run>/tb/``: written live by a callback, or converted later
from metrics.jsonl (``glyphcore runs export-tb``); one layout for both (:func:`write_records`).

Layout (``tensorboard --logdir checkpoints`` shows one TensorBoard run per run folder, ``<run>/tb``):

- ``step/train_loss``: the step-loss records (mean training loss since the previous record), at the
  global optimizer step;
- ``epoch/train_loss``, ``epoch/train_acc``, ``epoch/val_loss``, ``epoch/val_acc``, ``epoch/lr``,
  ``epoch/images_per_s``: one point per epoch at the global step the epoch ended on (one x axis
  for every tag, so a resumed run's purge of abandoned steps applies to all of them); accuracies
  are fractions, as in metrics.jsonl;
- hparams: the TrainConfig's scalar fields (optional ones as text, ``"none"`` when unset, so that
  every run gives a field the same type) with the final metrics ``hparams/best_val_acc`` and
  ``hparams/best_val_loss`` (the save-best epoch's), written at the end of the fit.

TensorBoard is an optional extra (``pip install glyph-explorer[tensorboard]``): without it a fit
writes no events and says so once (``TensorBoard logs off: pip install tensorboard``); with it a
failure to write events is logged and stops the events, never the run. ``torch.utils.tensorboard``
is imported only when events are written, so that importing this module stays cheap.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glyphcore.errors import ConfigError, RunError
from glyphcore.runfolder import store
from glyphcore.train.callbacks import Callback
from glyphcore.train.config import field_specs

if TYPE_CHECKING:
    from glyphcore.train.state import FitResult, TrainState

__all__ = [
    "EPOCH_TAGS",
    "METRIC_TAGS",
    "STEP_TAGS",
    "TB_DIR",
    "TensorBoardWriter",
    "export_tb",
    "hparams_of",
    "tensorboard_callbacks",
    "tensorboard_installed",
    "write_hparams",
    "write_records",
]

TB_DIR = "tb"  # sub-folder of a run folder that holds its event files
# metrics.jsonl field -> TensorBoard tag, for "step" and "epoch" records.
STEP_TAGS = {"loss": "step/train_loss"}
EPOCH_TAGS = {
    "train_loss": "epoch/train_loss",
    "train_acc": "epoch/train_acc",
    "val_loss": "epoch/val_loss",
    "val_acc": "epoch/val_acc",
    "lr": "epoch/lr",
    "images_per_s": "epoch/images_per_s",
}
# The final metrics of the hparams view: name -> tag.
METRIC_TAGS = {"best_val_acc": "hparams/best_val_acc", "best_val_loss": "hparams/best_val_loss"}
OFF_LINE = "TensorBoard logs off: pip install tensorboard"
FLUSH_SECS = 10  # s between the event writer's flushes within an epoch (every epoch end flushes too)

_log = logging.getLogger(__name__)
_said_off = False


def tensorboard_installed() -> bool:
    """Whether the ``tensorboard`` package can be imported."""
    return importlib.util.find_spec("tensorboard") is not None


def tensorboard_callbacks(run_dir: Path) -> list[Callback]:
    """``[TensorBoardWriter(run_dir / "tb")]`` when tensorboard is installed, else ``[]`` (and one
    log line per process saying how to turn the logs on)."""
    global _said_off
    if tensorboard_installed():
        return [TensorBoardWriter(Path(run_dir) / TB_DIR)]
    if not _said_off:
        _said_off = True
        _log.warning(OFF_LINE)
    return []


def _summary_writer(log_dir: Path, purge_step: int | None = None) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step, flush_secs=FLUSH_SECS)


def write_records(writer: Any, records: list[dict[str, Any]], walltime: float | None = None) -> int:
    """Write metrics.jsonl records ("step" and "epoch"; others are ignored) as scalars.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter``.
        records: metrics.jsonl records.
        walltime: Unix time of records that carry no ``time`` (live ones); default now.

    Returns:
        The number of scalars written.
    """
    n = 0
    for r in records:
        kind = r.get("event")
        tags = STEP_TAGS if kind == "step" else EPOCH_TAGS if kind == "epoch" else None
        if tags is None:
            continue
        step = int(r.get("step", r.get("epoch", 0)))
        when = float(r.get("time", walltime if walltime is not None else time.time()))
        for field, tag in tags.items():
            if r.get(field) is not None:
                writer.add_scalar(tag, float(r[field]), step, walltime=when)
                n += 1
    return n


def hparams_of(config: dict[str, Any]) -> dict[str, Any]:
    """The TrainConfig's scalar fields as hparams: str, int, float and bool fields as they are,
    optional ones as text (``"none"`` when unset); dict fields (model_options) are left out."""
    out: dict[str, Any] = {}
    for spec in field_specs():
        if spec["type"] == "dict":
            continue
        value = config.get(spec["name"], spec["default"])
        out[spec["name"]] = ("none" if value is None else str(value)) if spec["optional"] else value
    return out


def write_hparams(
    writer: Any,
    config: dict[str, Any],
    best_val_acc: float | None,
    best_val_loss: float | None,
    step: int,
    walltime: float | None = None,
) -> None:
    """Write the hparams view's records (experiment, session start and end) and the final metrics
    into ``writer``'s own folder (``SummaryWriter.add_hparams`` would make a timestamped sub-folder)."""
    from torch.utils.tensorboard.summary import hparams

    metrics = {
        tag: float(v)
        for name, tag in METRIC_TAGS.items()
        if (v := {"best_val_acc": best_val_acc, "best_val_loss": best_val_loss}[name]) is not None
        and math.isfinite(float(v))
    }
    when = walltime if walltime is not None else time.time()
    for summary in hparams(hparams_of(config), metrics):
        writer.file_writer.add_summary(summary, walltime=when)
    for tag, v in metrics.items():
        writer.add_scalar(tag, v, step, walltime=when)


class TensorBoardWriter(Callback):
    """Writes a fit's events into ``log_dir`` (rank 0, with a run folder: see ``default_callbacks``).

    A resumed fit purges the events after its resume point (``purge_step``), as metrics.jsonl cuts
    its records there. An error while writing is logged once in the run's log and ends the events.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.writer: Any = None

    def _guard(self, state: TrainState, what: str, fn: Any, *args: Any) -> None:
        if self.writer is None:
            return
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 -- events are a copy of metrics.jsonl: losing them must not fail the run
            state.log(f"TensorBoard logs stopped ({what}: {type(e).__name__}: {e})")
            self.close()

    def close(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as e:  # noqa: BLE001 -- e.g. a full disk on the last flush; the run itself is fine
                _log.warning("TensorBoard logs: could not close the event file: %s", e)

    def on_fit_start(self, state: TrainState) -> None:
        try:
            self.writer = _summary_writer(self.log_dir, state.step + 1 if state.resumed and state.step else None)
        except Exception as e:  # noqa: BLE001 -- e.g. an unwritable folder or a broken tensorboard install
            state.log(f"TensorBoard logs off ({type(e).__name__}: {e})")

    def on_log(self, state: TrainState, records: list[dict[str, Any]]) -> None:
        self._guard(state, "steps", write_records, self.writer, records)

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        self._guard(state, "epoch", write_records, self.writer, [{"event": "epoch", **record}])
        self._guard(state, "flush", lambda: self.writer.flush())

    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        self._guard(
            state,
            "hparams",
            write_hparams,
            self.writer,
            asdict(state.config),
            result.best_val_acc,
            result.best_val_loss,
            state.step,
        )
        self.close()


def export_tb(run: str | Path, *, overwrite: bool = False) -> Path:
    """Write a run's metrics.jsonl (and config, final metrics) as event files in ``<run>/tb/``, the
    layout a live run writes; wall times are the records' own.

    Args:
        run: run id, run folder or "starter".
        overwrite: replace an existing tb/ folder.

    Returns:
        The tb/ folder.

    Raises:
        RunError: no such run, the run is still active (it writes its own events), or tb/ exists
            and ``overwrite`` is False.
        ConfigError: tensorboard is not installed.
    """
    run_dir = store.resolve_run(run)
    status = store.read_status(run_dir)
    if status.get("state") in store.ACTIVE_STATES:
        raise RunError(f"run {run_dir.name} is {status['state']}: convert it once it has ended (or cancel it)")
    target = run_dir / TB_DIR
    if target.exists() and not overwrite:
        raise RunError(f"{target} exists: pass --overwrite to replace it")
    if not tensorboard_installed():
        raise ConfigError(
            "runs export-tb needs tensorboard, which is not installed: pip install glyph-explorer[tensorboard]"
        )
    try:
        config = store.read_config(run_dir)
    except RunError:
        config = {}  # a run that failed before writing its config still has curves to show
    records = list(store.read_metrics(run_dir))
    # Written into a fresh folder beside tb/, then swapped in: a failure leaves the old tb/ intact.
    tmp = run_dir / f".{TB_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        writer = _summary_writer(tmp)
        try:
            write_records(writer, records)
            last_step = max(
                (int(r["step"]) for r in records if r.get("event") in ("step", "epoch") and "step" in r), default=0
            )
            ended = status.get("ended") or max((float(r["time"]) for r in records if "time" in r), default=None)
            write_hparams(writer, config, status.get("best_val_acc"), status.get("best_val_loss"), last_step, ended)
        finally:
            writer.close()
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
