"""``fit``: claim the run folder, set up, train the epochs, tear down.

The epoch itself is ``glyphcore.train.epoch``; what happens before it, ``glyphcore.train.setup``;
data parallel (torchrun) goes through one ``Distributed`` object (``glyphcore.train.distributed``);
the run folder is claimed and released in one place (``glyphcore.train.rundir``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glyphcore.train.callbacks import Callback
from glyphcore.train.config import TrainConfig
from glyphcore.train.distributed import Distributed
from glyphcore.train.epoch import FLUSH_INTERVAL_S, evaluate, train_one_epoch, validate_epoch
from glyphcore.train.factories import lr_at
from glyphcore.train.rundir import claimed_run_dir
from glyphcore.train.setup import error_message, setup
from glyphcore.train.state import Cancelled, Diverged, FitResult, TrainState

__all__ = ["train_one_epoch", "evaluate", "fit", "FLUSH_INTERVAL_S"]


class _SignalCancel:
    """SIGTERM (and SIGINT) handler: asks the fit to stop after its current step. A signal that
    arrives while the data loads is kept and honoured as soon as the loop starts."""

    def __init__(self) -> None:
        self.requested = False
        self.state: TrainState | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self.state is not None:
            self.state.cancel_requested = True

    def attach(self, state: TrainState) -> None:
        self.state = state
        state.cancel_requested = state.cancel_requested or self.requested


@contextlib.contextmanager
def _signals_to(handler: _SignalCancel, enabled: bool):
    """Route SIGTERM and SIGINT to ``handler`` inside the block (main thread only), then restore."""
    if not enabled or sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def fit(
    config: TrainConfig,
    run_dir: str | os.PathLike | None = None,
    *,
    train_set: Any = None,
    val_set: Any = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    name: str | None = None,
    handle_signals: bool = False,
    allow_data_change: bool = False,
    allow_config_change: bool = False,
) -> FitResult:
    """Train ``config``; with ``run_dir``, write the run folder (config, status, metrics, best.pt, last.pt).

    Args:
        config: the settings (``make_config``); a TrainConfig is valid by construction.
        run_dir: the run folder (created); None trains in memory only.
        train_set, val_set: ImageSet-like objects (``images`` uint8 N x C x H x W, ``labels``,
            ``classes``, ``meta``); default: ``glyphcore.data.load_dataset(config.data, ...)``.
        callbacks: extra callbacks, after the default ones (``default_callbacks``).
        resume: continue from ``run_dir``/last.pt (epoch numbering and metrics continue); without a
            last.pt the run starts over in the same folder.
        name: the user's run name (config.json / status.json).
        handle_signals: SIGTERM/SIGINT cancel the run cleanly (the CLI process sets this).
        allow_data_change: resume even though the data set's hash differs from the resume point's
            (refused by default: the run would silently continue on other data).
        allow_config_change: resume even though settings other than the runtime-only ones
            (``RUNTIME_FIELDS``) differ from the resume point's (refused by default).

    Returns:
        FitResult; the model holds the best weights.

    Raises:
        ConfigError, DataError, CheckpointError: bad settings, data or resume point (also recorded
            as a failed run in the run folder). Other exceptions propagate after the same record.
    """
    dist = Distributed.from_env()
    run_path = Path(run_dir) if run_dir is not None else None
    opts = {
        "train_set": train_set,
        "val_set": val_set,
        "callbacks": callbacks,
        "resume": resume,
        "name": name,
        "allow_data_change": allow_data_change,
        "allow_config_change": allow_config_change,
    }
    cancel = _SignalCancel()
    # rank 0 claims the folder before anything is written: it may be another trainer's
    with _signals_to(cancel, handle_signals), claimed_run_dir(run_path if dist.is_main else None):
        state = setup(config, run_path, dist, opts)
        cancel.attach(state)
        return _run_loop(state)


# ---------------------------------------------------------------------------------------------
# fit: epochs and teardown
# ---------------------------------------------------------------------------------------------


def _run_epoch(state: TrainState) -> None:
    """Train, validate and record the next epoch (callbacks' ``on_epoch_end``)."""
    cfg = state.config
    epoch = state.epoch + 1
    t_epoch = time.perf_counter()
    tr = train_one_epoch(state, epoch)
    val_loss, val_acc = validate_epoch(state, epoch)
    state.epoch = epoch
    record = {
        "epoch": epoch,
        "step": state.step,
        "train_loss": tr["train_loss"],
        "train_acc": tr["train_acc"],
        "val_loss": val_loss,
        "val_acc": val_acc,
        "lr": lr_at(cfg.schedule, cfg.lr, max(state.step - 1, 0), state.total_steps),
        "seconds": time.perf_counter() - t_epoch,  # s of the whole epoch (training, validation), this session's
        "images_per_s": tr["images_per_s"],  # training images per second of training
    }
    if tr["partial"]:
        record["partial"] = True
    state.history.append(record)
    for cb in state.callbacks:
        cb.on_epoch_end(state, record)


def _end_message(state: TrainState) -> str:
    if state.stop_reason is not None:
        message = f"stopped after epoch {state.epoch}: {state.stop_message}"
    else:
        message = f"finished {state.epoch} epochs"
    if state.best_epoch is not None:
        message += (
            f"; best epoch {state.best_epoch}: val loss {state.best_val_loss:.6f}, "
            f"val acc {100 * (state.best_val_acc or 0):.2f}%"
        )
    return f"{state.chance}. {message}" if state.chance else message


def _train_epochs(state: TrainState) -> tuple[str, str, BaseException | None]:
    """The epochs; returns (end state, message, the error to raise after the teardown)."""
    try:
        while state.epoch < state.config.epochs and state.stop_reason is None:
            if state.cancel_requested:
                raise Cancelled()
            _run_epoch(state)
        return "done", _end_message(state), None
    except Diverged as e:
        return "diverged", str(e), None
    except Cancelled:
        where = (
            f"epoch {state.epoch + 1}, step {state.epoch_step}" if state.epoch_step else f"after epoch {state.epoch}"
        )
        return "cancelled", f"cancelled at {where}; resume continues from there", None
    except BaseException as e:  # recorded as failed, then raised
        message = error_message(e)
        return "failed", f"could not write the run folder: {message}" if isinstance(e, OSError) else message, e


def _run_loop(state: TrainState) -> FitResult:
    try:
        for cb in state.callbacks:
            cb.on_fit_start(state)
    except BaseException:  # e.g. a read-only or full disk: nothing could be recorded
        state.saver.close()
        raise
    state.start_clock()
    end_state, message, error = _train_epochs(state)
    result = _result(state, end_state, message, state.stop_clock())
    # In reverse order, as a teardown: the run-folder writer saves the resume point (the current
    # weights) before SaveBest, registered first, puts the best weights back.
    try:
        for cb in reversed(state.callbacks):
            try:
                cb.on_fit_end(state, result)
            except Exception:
                if error is None:
                    raise
        state.saver.flush()
    finally:
        state.saver.close()
    if error is not None:
        raise error
    return result


def _result(state: TrainState, end_state: str, message: str, wall: float) -> FitResult:
    return FitResult(
        state=end_state,
        message=message,
        epochs_run=state.epoch,
        best_epoch=state.best_epoch,
        best_val_loss=state.best_val_loss,
        best_val_acc=state.best_val_acc,
        history=list(state.history),
        params=state.params,
        wall_seconds=wall,
        compile_seconds=state.compile_seconds,
        model=state.model,
        run_dir=state.run_dir,
        gpu_peak_mib=state.gpu_peak_mib(),
        chance=state.chance,
    )
