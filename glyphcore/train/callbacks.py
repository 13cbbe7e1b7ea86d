"""The callbacks of a fit: the fixed loop changes only through these, on a short event list.

Events, in order: ``on_fit_start``; ``on_step`` after every optimizer step (host-side values only,
never a device sync); ``on_log`` with step-loss records when they are read; ``on_epoch_end`` with
the epoch record; ``on_fit_end`` with the ``FitResult``. Save-best, early stopping, the time budget,
the run folder and the console are callbacks. This module does not import torch: the CLI defines
its console callback without paying for it.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glyphcore.runfolder import store

if TYPE_CHECKING:
    from glyphcore.train.state import FitResult, TrainState

__all__ = [
    "Callback",
    "SaveBest",
    "EarlyStopping",
    "TimeBudget",
    "RunFolderWriter",
    "Calibrate",
    "best_log_line",
    "chance_note",
    "CHANCE_FACTOR",
    "CHANCE_NOTE_PREFIX",
    "DIVERGED_CHANCE_FACTOR",
    "loss_diverged",
]

# A validation loss above this many times ln(num_classes) -- the cross-entropy of guessing every
# class with equal probability -- means the model is confidently wrong, far worse than knowing
# nothing: after 2 epochs, such a run has diverged (a too-high learning rate blows the weights up;
# the loss then grows to 1e3..1e10 without ever becoming NaN).
DIVERGED_CHANCE_FACTOR = 3.0
DIVERGED_AFTER_EPOCH = 2  # the first epoch of a hard start may still be above it


def loss_diverged(val_loss: float, epoch: int, num_classes: int) -> bool:
    """Whether a finite validation loss after ``epoch`` (1-based) shows a diverged run.

    >>> loss_diverged(1e10, 2, 52), loss_diverged(3.9, 2, 52), loss_diverged(50.0, 1, 52)
    (True, False, False)
    """
    if num_classes < 2 or epoch < DIVERGED_AFTER_EPOCH:
        return False
    return val_loss > DIVERGED_CHANCE_FACTOR * math.log(num_classes)


# A run whose validation accuracy is at most this many times that of guessing (1/classes) has
# learned nothing yet: after an epoch, its "best" weights are no good news (e.g. lr 10: 1.92% = 1/52).
CHANCE_FACTOR = 1.5
CHANCE_NOTE_PREFIX = "no better than chance"


def chance_note(val_acc: float, num_classes: int, lr: float) -> str | None:
    """The warning for a validation accuracy (fraction) no better than guessing, else None.

    >>> chance_note(0.0192, 52, 10.0)
    'no better than chance: validation accuracy 1.92%, guessing gets 1/52 = 1.92%; try a lower learning rate (--lr 1)'
    >>> chance_note(0.5, 52, 10.0) is None
    True
    """
    if num_classes < 2 or not math.isfinite(val_acc) or val_acc > CHANCE_FACTOR / num_classes:
        return None
    return (
        f"{CHANCE_NOTE_PREFIX}: validation accuracy {100 * val_acc:.2f}%, guessing gets 1/{num_classes} = "
        f"{100 / num_classes:.2f}%; try a lower learning rate (--lr {lr / 10:g})"
    )


def best_log_line(old: float, new: float) -> str:
    """The report's save-best line: ``Validation loss decreased (0.088288 --> 0.072012). Saving model ...``"""
    return f"Validation loss decreased ({old:.6f} --> {new:.6f}). Saving model ..."


class Callback:
    """Base class: override the events you need. ``state`` is the ``TrainState`` of the fit.

    Events, in order: ``on_fit_start``; per optimizer step ``on_step`` (host-side values only: no
    device reads); ``on_log`` with step-loss records when they are read; ``on_epoch_end`` with the
    epoch record; ``on_fit_end`` with the ``FitResult`` (callbacks in reverse order: a teardown).
    ``state_dict``/``load_state_dict`` carry a
    callback's memory across a resume (stored in last.pt).
    """

    def on_fit_start(self, state: TrainState) -> None: ...
    def on_step(self, state: TrainState) -> None: ...
    def on_log(self, state: TrainState, records: list[dict[str, Any]]) -> None: ...
    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None: ...
    def on_fit_end(self, state: TrainState, result: FitResult) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, sd: dict[str, Any]) -> None: ...


class SaveBest(Callback):
    """Save-best on validation loss, as the report: a strictly lower val loss logs
    ``Validation loss decreased (old --> new). Saving model ...`` (the first epoch from ``inf``) and
    saves the weights (``state.save_best(record)``: memory, and best.pt in a run folder). At the end
    the best weights are put back into the model."""

    def on_epoch_end(self, state: Any, record: dict[str, Any]) -> None:
        val = record["val_loss"]
        if val < state.best_val_loss:
            note = getattr(state, "chance", None)  # this epoch no better than guessing (the fit's check)
            if note is None:
                state.log(best_log_line(state.best_val_loss, val))
            else:  # the lowest loss so far, but nothing learned: not news to celebrate
                state.log(f"Validation loss {val:.6f}, {note}; keeping these weights only as the least bad so far")
            state.save_best(record)

    def on_fit_end(self, state: Any, result: Any) -> None:
        state.restore_best()


class EarlyStopping(Callback):
    """Stop when the validation loss has not gone strictly below its best for ``patience`` epochs.

    Epochs are numbered from 1 (the report's log). ``[6, 5, 5, 5, 5, 5]`` with patience 3 stops
    after epoch 5: the best is epoch 2, and epochs 3, 4, 5 bring nothing (fastai numbers the same
    stop "epoch 4", counting from 0).
    """

    def __init__(self, patience: int) -> None:
        self.patience = int(patience)
        self.best = math.inf
        self.best_epoch = 0
        self.wait = 0

    def on_epoch_end(self, state: Any, record: dict[str, Any]) -> None:
        if record["val_loss"] < self.best:
            self.best, self.best_epoch, self.wait = record["val_loss"], record["epoch"], 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.request_stop(
                "early_stop",
                f"early stopping: no lower validation loss for {self.wait} epochs since epoch {self.best_epoch}",
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = float(sd["best"]), int(sd["best_epoch"]), int(sd["wait"])


class TimeBudget(Callback):
    """Stop after ``minutes`` of training wall time (all sessions of a resumed run together); the
    epoch in progress is cut short, validated and recorded as partial."""

    def __init__(self, minutes: float) -> None:
        self.seconds = float(minutes) * 60.0

    def on_step(self, state: Any) -> None:
        if state.wall_seconds() >= self.seconds and state.stop_reason is None:
            state.request_stop("time_budget", f"time budget of {self.seconds / 60:g} min reached")


class RunFolderWriter(Callback):
    """Writes the run folder (rank 0 only): config.json, status.json (atomically), metrics.jsonl,
    last.pt every epoch and on cancel. best.pt is written by ``state.save_best``."""

    def __init__(self, run_dir: Path, name: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.name = name
        self.metrics: store.MetricsLog | None = None
        self._msg_pos = 0

    # -- helpers -------------------------------------------------------------------------------
    def _status(self, ts: TrainState, **extra: Any) -> None:
        """Update status.json with the counters of ``ts`` and ``extra`` (e.g. state="running")."""
        store.update_status(
            self.run_dir,
            epoch=ts.epoch,
            epochs=ts.config.epochs,
            step=ts.step,
            steps_per_epoch=ts.steps_per_epoch,
            best_epoch=ts.best_epoch,
            best_val_loss=ts.best_val_loss if math.isfinite(ts.best_val_loss) else None,
            best_val_acc=ts.best_val_acc,
            params=ts.params,
            wall_seconds=round(ts.wall_seconds(), 3),
            **extra,
        )

    def _flush_messages(self, state: TrainState) -> None:
        new = state.messages[self._msg_pos :]
        self._msg_pos = len(state.messages)
        if new and self.metrics is not None:
            self.metrics.append(*({"event": "log", "message": m, "time": t} for t, m in new))

    def save_last(self, state: TrainState) -> None:
        state.metrics_offset = self.metrics.offset if self.metrics else 0
        state.saver.submit(state.checkpoint_payload("last"), self.run_dir / store.LAST_CKPT)

    # -- events --------------------------------------------------------------------------------
    def on_fit_start(self, state: TrainState) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        old = store.read_json(self.run_dir / store.CONFIG_FILE) or {}
        name = self.name if self.name is not None else old.get("name")
        store.write_config(
            self.run_dir,
            state.config,
            name,
            dataset=state.dataset_info,
            versions=state.versions,
            model_name=state.model_name,
            model_args=state.model_args,
            params=state.params,
            world_size=state.world_size,
        )
        self.metrics = store.MetricsLog(self.run_dir)
        # Records after the resume point belong to a timeline that was abandoned (a crash mid-epoch).
        self.metrics.truncate(state.resume_offset)
        self._msg_pos = 0
        prev = store.read_json(self.run_dir / store.STATUS_FILE) or {}
        pid = os.getpid()
        launcher = os.getppid() if state.world_size > 1 else pid  # torchrun forwards signals to workers
        from glyphcore.runfolder.lock import pid_start_time

        self._status(
            state,
            state="running",
            pid=pid,
            pid_start=pid_start_time(pid),
            launcher_pid=launcher,
            launcher_pid_start=pid_start_time(launcher),
            device=state.device_name,
            started=prev.get("started") if state.resumed and prev.get("started") else time.time(),
            ended=None,
            name=name,
            world_size=state.world_size,
            compile_seconds=state.compile_seconds,
            message="running",
        )
        self._flush_messages(state)

    def on_log(self, state: TrainState, records: list[dict[str, Any]]) -> None:
        assert self.metrics is not None
        self.metrics.append(*records)
        self._flush_messages(state)
        ips = state.live_images_per_s()
        self._status(state, **({"images_per_s": round(ips, 1)} if ips else {}))

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        assert self.metrics is not None
        # The previous epoch's last.pt is on disk before this epoch is recorded: a kill at any moment
        # loses at most the epoch just recorded (its last.pt still being written) and the one running.
        state.saver.wait_for(self.run_dir / store.LAST_CKPT)
        self.metrics.append({"event": "epoch", **record})
        self._flush_messages(state)
        self.save_last(state)
        self._status(state, images_per_s=record["images_per_s"], gpu_peak_mib=state.gpu_peak_mib())

    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        if self.metrics is None:
            return
        end_state, message, error = result.state, result.message, None
        try:
            if result.state == "cancelled":
                self.save_last(state)  # the resume point, mid-epoch if it was cancelled mid-epoch
            state.saver.flush()  # "done" only once the checkpoints are on disk
        except Exception as e:  # a full disk: the previous checkpoints are still valid
            end_state, message, error = "failed", f"could not write a checkpoint: {e}", e
        self._flush_messages(state)
        self.metrics.append({"event": "end", "state": end_state, "message": message})
        self.metrics.close()
        self._status(state, state=end_state, ended=time.time(), message=message)
        if error is not None:
            raise error


class Calibrate(Callback):
    """At the end of a finished fit with a run folder, fit the confidence calibration (temperature
    and "is it a letter" thresholds, ``glyphcore.infer.calibration``) of best.pt on the validation
    split and rewrite best.pt with it (atomically, weights unchanged). Registered after the run-folder
    writer, so it runs before it in the end-of-fit teardown: the run is "done" only once best.pt is
    calibrated. A calibration that cannot be fitted is logged in the run, not a failed run: the
    model is still usable, only uncalibrated."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        if result.state != "done":
            return  # a cancelled run is calibrated when its resumed fit finishes
        best = self.run_dir / store.BEST_CKPT
        state.saver.wait()  # best.pt may still be in the background writer
        if state.saver.failed or not best.is_file():
            return  # a failed write is the run-folder writer's to record (the run is failed, not calibrated)
        from glyphcore.errors import GlyphError
        from glyphcore.infer.calibration import calibrate_checkpoint
        from glyphcore.infer.judgement import family_groups

        split = str((state.dataset_info.get("splits") or {}).get("val") or state.config.val_split)
        try:
            cal = calibrate_checkpoint(
                best,
                state.val_data.images,
                state.val_data.labels.cpu(),
                split=split,
                device=state.device,
                groups=family_groups(state.val_data),
            )
        except (GlyphError, OSError, RuntimeError, ValueError) as e:
            state.log(
                f"best.pt was not calibrated ({type(e).__name__}: {str(e)[:300]}); "
                f"run `glyphcore calibrate {self.run_dir}` to try again"
            )
            return
        state.log(
            f"Calibrated best.pt on {split}: temperature {cal['temperature']:.3f}, "
            f"ECE {100 * cal['ece_before']:.2f}% -> {100 * cal['ece_after']:.2f}%"
        )
