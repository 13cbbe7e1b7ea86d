"""The state of one fit (``TrainState``), what a fit returns (``FitResult``) and the checkpoint writer.

Counters: ``epoch`` = epochs completed; ``step`` = optimizer steps done (all epochs); ``epoch_step``
= steps done in the epoch in progress (non-zero only mid-epoch). ``checkpoint_payload`` makes the
best.pt / last.pt dicts (glyphcore.checkpoint's format); ``load_resume_point`` restores a last.pt.
"""

from __future__ import annotations

import math
import platform
import queue
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from glyphcore import __version__
from glyphcore.checkpoint import load_checkpoint, save_checkpoint
from glyphcore.errors import CheckpointError, ConfigError, DataError, os_reason
from glyphcore.runfolder import store
from glyphcore.train.config import RUNTIME_FIELDS, TrainConfig
from glyphcore.train.device import DeviceData, device_name
from glyphcore.train.distributed import Distributed
from glyphcore.train.factories import count_params
from glyphcore.train.nonletters import NonLetters


class Events(Protocol):
    """The fixed loop's short event list, as the state and the loop call it; the callbacks
    (``glyphcore.train.callbacks.Callback``) implement it, and their own state rides in last.pt
    (``state_dict``), so a resumed run's early stopping, time budget etc. go on where they were."""

    def on_fit_start(self, state: TrainState) -> None: ...
    def on_step(self, state: TrainState) -> None: ...
    def on_log(self, state: TrainState, records: list[dict[str, Any]]) -> None: ...
    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None: ...
    def on_fit_end(self, state: TrainState, result: FitResult) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, sd: dict[str, Any]) -> None: ...


__all__ = [
    "TrainState",
    "FitResult",
    "CheckpointSaver",
    "versions",
    "Diverged",
    "Cancelled",
    "ZERO_PARTIAL",
    "config_changes",
]


def versions() -> dict[str, str]:
    return {"glyphcore": str(__version__), "torch": str(torch.__version__), "python": platform.python_version()}


class CheckpointSaver:
    """Writes checkpoints on one background thread, in order, so that the loop never waits for the
    disk (torch.save + fsync of a few MB, twice an epoch at worst). Payloads must be snapshots
    (tensors copied to the CPU). A failed write (a full disk) is a ``CheckpointError`` naming the OS
    reason; the training loop polls ``failed`` every step and stops at once (``raise_failure``), so
    a run loses at most the epoch whose checkpoint could not be written. ``submit`` and ``flush``
    raise it too. ``wait_for`` waits for one file's writes only: the loop calls it before it records
    an epoch, so a busy disk cannot let last.pt fall more than one epoch behind the metrics."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._pending: Counter[Path] = Counter()
        self._written = threading.Condition()

    def submit(self, payload: dict[str, Any], path: Path) -> None:
        self._raise()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="glyphcore-checkpoints", daemon=True)
            self._thread.start()
        with self._written:
            self._pending[Path(path)] += 1
        self._queue.put((payload, Path(path)))

    def wait_for(self, path: Path) -> None:
        """Wait until every submitted write of ``path`` is done (or failed: ``failed`` tells)."""
        with self._written:
            self._written.wait_for(lambda: not self._pending[Path(path)])

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:  # after a failure, later writes would only hide it
                    save_checkpoint(*item)
            except OSError as e:
                self._error = CheckpointError(
                    f"could not write {Path(item[1]).name}: {os_reason(e)}. The run stopped; its previous "
                    f"checkpoints are intact: free space (or make the folder writable) and resume it"
                )
            except BaseException as e:  # noqa: BLE001 (handed to the training thread)
                self._error = e
            finally:
                if item is not None:
                    with self._written:
                        self._pending[item[1]] -= 1
                        self._written.notify_all()
                self._queue.task_done()

    @property
    def failed(self) -> bool:
        """A write has failed and its error was not raised yet (one attribute read: cheap per step)."""
        return self._error is not None

    def raise_failure(self) -> None:
        """Raise the failed write's error, if any."""
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def wait(self) -> None:
        """Wait until every submitted checkpoint is written, leaving a failure for ``flush`` to raise."""
        if self._thread is not None:
            self._queue.join()

    def flush(self) -> None:
        """Wait until every submitted checkpoint is on disk; raise the first failure."""
        if self._thread is not None:
            self._queue.join()
        self._raise()

    def close(self) -> None:
        """Stop the thread (after the queue is written). Errors are left to ``flush``."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None


@dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
        state: done | cancelled | diverged | failed.
        message: why it ended (early stopping, time budget, divergence hint, error).
        epochs_run: epochs completed (the last one numbered so).
        best_epoch, best_val_loss, best_val_acc: the saved best (acc as a fraction).
        history: the epoch records (as in metrics.jsonl).
        params: trainable parameters.
        wall_seconds: training-loop wall time (epochs, validation, checkpoints), all sessions.
        compile_seconds: torch.compile warm-up, excluded from wall_seconds (None without compile).
        model: the model, with the best weights restored.
        run_dir: the run folder, or None.
        gpu_peak_mib: peak GPU memory allocated (MiB); None off CUDA.
        chance: the warning when the last epoch's validation accuracy was no better than guessing.
    """

    state: str
    message: str
    epochs_run: int
    best_epoch: int | None
    best_val_loss: float
    best_val_acc: float | None
    history: list[dict[str, Any]]
    params: int
    wall_seconds: float
    compile_seconds: float | None
    model: nn.Module
    run_dir: Path | None
    gpu_peak_mib: float | None = None
    chance: str | None = None


class Diverged(Exception):
    """The training diverged (a NaN/Inf loss, or a loss far above guessing): the message says why."""


class Cancelled(Exception):
    """The run was asked to stop (SIGTERM/SIGINT, ``runs cancel``); its resume point is kept."""


ZERO_PARTIAL = {"loss_sum": 0.0, "correct": 0.0, "seen": 0.0, "seconds": 0.0}  # no epoch in progress


class TrainState:
    """Everything one fit holds: model, optimizer, data, counters, best, messages. Callbacks read
    it and act through ``log``, ``request_stop``, ``save_best``.

    Counters: ``epoch`` = epochs completed; ``step`` = optimizer steps done (all epochs);
    ``epoch_step`` = steps done in the epoch in progress (non-zero only mid-epoch).
    """

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module,
        net: nn.Module,
        optimizer: torch.optim.Optimizer,
        data: tuple[DeviceData, DeviceData],
        amp_dtype: torch.dtype | None,
        *,
        frame: dict | None,
        dataset_info: dict[str, Any],
        run_dir: Path | None,
        dist: Distributed | None = None,
    ) -> None:
        self.config = config
        self.model = model  # the plain module (state_dict keys without DDP/compile prefixes)
        self.net = net  # what the loop calls: model, DDP(model) or torch.compile(...)
        self.optimizer = optimizer
        self.train_data, self.val_data = data
        self.device, self.amp_dtype = self.train_data.device, amp_dtype
        self.classes, self.frame, self.dataset_info = list(dataset_info["classes"]), frame, dataset_info
        self.run_dir = run_dir
        self.dist = dist if dist is not None else Distributed()
        self.model_name = getattr(model, "glyph_name", config.model)
        self.model_args = dict(getattr(model, "glyph_args", {}))
        self.params = count_params(model)
        n, b = len(self.train_data), config.batch_size
        # Under DDP a last batch smaller than the process count is dropped (a process would get none).
        self.steps_per_epoch = n // b + (1 if n % b and not self.dist.drop_last_partial(n % b) else 0)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.log_every = config.log_every  # steps between step-loss records
        self.device_name = device_name(self.device)
        self.versions = versions()  # the software of this fit (config.json, checkpoints)
        self.saver = CheckpointSaver()
        self.non_letters: NonLetters | None = None  # outlier exposure's pool, when it applies (setup)
        self.callbacks: list[Events] = []  # glyphcore.train.callbacks.Callback objects
        self.messages: list[tuple[float, str]] = []
        self._start_counters()

    def _start_counters(self) -> None:
        """Counters, best and stop flags of a fit that has not trained yet (a resume point replaces them)."""
        self.epoch = self.step = self.epoch_step = 0
        self.partial = dict(ZERO_PARTIAL)
        self.best_val_loss = math.inf
        self.best_val_acc: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self.stop_reason: str | None = None
        self.stop_message = ""
        self.cancel_requested = False
        self.elapsed_before = 0.0  # s of training in earlier sessions (resume)
        self._t_start: float | None = None
        self.compile_seconds: float | None = None
        self.metrics_offset = self.resume_offset = 0
        self.resumed = False
        self.aug_gen: torch.Generator | None = None
        self.aug_gen_state: torch.Tensor | None = None
        # (perf_counter at the start of this session's part of the epoch, epoch_step then)
        self.epoch_clock: tuple[float, int] | None = None
        self.logged_first_step = False  # the session's first step has been logged
        self.chance: str | None = None  # the last epoch was no better than guessing: the warning

    @property
    def rank(self) -> int:
        """This process's rank (0 writes the run folder)."""
        return self.dist.rank

    @property
    def world_size(self) -> int:
        """Training processes (1 without torchrun)."""
        return self.dist.world

    def start_clock(self) -> None:
        """The training wall clock of this session starts now."""
        self._t_start = time.perf_counter()

    def stop_clock(self) -> float:
        """Stop this session's clock; returns the training wall time of all sessions (s)."""
        self.elapsed_before, self._t_start = self.wall_seconds(), None
        return self.elapsed_before

    def live_images_per_s(self) -> float | None:
        """Training images per second in the epoch so far (this session's steps): what the app shows
        before the first epoch has ended. None before the first step."""
        if self.epoch_clock is None:
            return None
        t0, first_step = self.epoch_clock
        steps, seconds = self.epoch_step - first_step, time.perf_counter() - t0
        return steps * self.config.batch_size / seconds if steps > 0 and seconds > 0 else None

    def gpu_peak_mib(self) -> float | None:
        """Peak GPU memory allocated by this process so far (MiB); None off CUDA."""
        if self.device.type != "cuda":
            return None
        return round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)

    # -- actions for callbacks -------------------------------------------------------------------
    def log(self, message: str) -> None:
        """A line for the log (metrics.jsonl ``log`` events, the console)."""
        self.messages.append((time.time(), message))

    def request_stop(self, reason: str, message: str) -> None:
        """Stop after the current step (mid-epoch: the epoch is validated and recorded as partial)."""
        if self.stop_reason is None:
            self.stop_reason, self.stop_message = reason, message

    def wall_seconds(self) -> float:
        """Training wall time so far, this session and earlier ones (s)."""
        live = time.perf_counter() - self._t_start if self._t_start is not None else 0.0
        return self.elapsed_before + live

    def save_best(self, record: dict[str, Any]) -> None:
        """Keep the current weights as the best (memory; best.pt in a run folder, rank 0)."""
        self.best_val_loss, self.best_val_acc, self.best_epoch = record["val_loss"], record["val_acc"], record["epoch"]
        self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        if self.run_dir is not None and self.rank == 0:
            self.saver.submit(self.checkpoint_payload("best"), self.run_dir / store.BEST_CKPT)

    def restore_best(self) -> None:
        """Put the best weights back into the model."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    # -- checkpoints -----------------------------------------------------------------------------
    def checkpoint_payload(self, kind: str) -> dict[str, Any]:
        """The checkpoint dict (glyphcore.checkpoint format) for ``best`` or ``last``."""
        ds = self.dataset_info
        base = {
            "model_name": self.model_name,
            "model_args": self.model_args,
            "classes": list(self.classes),
            "frame": self.frame,
            "config": asdict(self.config),
            "dataset": {"id": ds.get("id"), "hash": ds.get("hash"), "source": ds.get("source")},
            "versions": self.versions,
        }
        if kind == "best":
            assert self.best_state is not None
            return {
                **base,
                "state_dict": self.best_state,
                "epoch": self.best_epoch,
                "val_loss": float(self.best_val_loss),
                "val_acc": self.best_val_acc,
            }
        last = self.history[-1] if self.history else {}
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.aug_gen is not None:
            rng["aug"] = self.aug_gen.get_state()
        opt = _to_cpu(self.optimizer.state_dict())
        return {
            **base,
            # copies: the saver writes them while training goes on
            "state_dict": {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()},
            "epoch": self.epoch,
            "val_loss": float(last.get("val_loss", math.nan)),
            "val_acc": float(last.get("val_acc", math.nan)),
            "optimizer": opt,
            "scheduler": {"schedule": self.config.schedule, "step": self.step},
            "rng": rng,
            "step": self.step,
            "resume": {"epoch_step": self.epoch_step, **{k: float(v) for k, v in self.partial.items()}},
            "best": {"val_loss": float(self.best_val_loss), "val_acc": self.best_val_acc, "epoch": self.best_epoch},
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks if cb.state_dict()},
            "history": list(self.history),
            "metrics_offset": self.metrics_offset,
            "wall_seconds": self.wall_seconds(),
        }

    def resume_from_folder(self, *, allow_data_change: bool = False, allow_config_change: bool = False) -> None:
        """Continue from the run folder's last.pt (and its best.pt); without a last.pt, start over there.

        Raises:
            DataError: the data set changed since the resume point (unless ``allow_data_change``).
            ConfigError: a setting that is not runtime-only changed (unless ``allow_config_change``).
            CheckpointError: the resume point does not fit the model or the classes.
        """
        if self.run_dir is None:
            raise ConfigError("resume needs the run folder (run_dir)")
        last = self.run_dir / store.LAST_CKPT
        if not last.is_file():
            self.resumed = True  # no resume point yet: start over in the same folder
            self.log(f"No {store.LAST_CKPT} to resume from: starting over")
            return
        best_path = self.run_dir / store.BEST_CKPT
        best = load_checkpoint(best_path)["state_dict"] if best_path.is_file() else None
        ckpt = load_checkpoint(last, map_location=self.device)
        self._check_same_data(ckpt, allow_data_change)
        changed = config_changes(ckpt.get("config"), self.config)
        if changed and not allow_config_change:
            raise ConfigError(
                f"the run's settings changed since its resume point: {'; '.join(changed)}. Restore config.json, "
                f"start a new run to try the new settings, or pass --allow-config-change to continue with them"
            )
        if changed:
            self.log(f"Resumed with changed settings: {'; '.join(changed)}")
        self.load_resume_point(ckpt, best)
        where = f"epoch {self.epoch + 1}, step {self.epoch_step + 1}" if self.epoch_step else f"epoch {self.epoch + 1}"
        self.log(f"Resumed from {store.LAST_CKPT} at {where} (global step {self.step})")

    def _check_same_data(self, ckpt: dict[str, Any], allow_data_change: bool) -> None:
        saved_ds = ckpt.get("dataset")
        was = saved_ds.get("hash") if isinstance(saved_ds, dict) else None
        now = self.dataset_info.get("hash")
        if was and now and was != now and not allow_data_change:
            raise DataError(
                f"the data set {self.config.data} changed since this run was trained on it (hash {str(was)[:12]} "
                f"then, {str(now)[:12]} now): resuming would mix two data sets. Rebuild the old one, start "
                f"a new run, or pass --allow-data-change to continue on the new data anyway"
            )

    def load_resume_point(self, ckpt: dict[str, Any], best_state: dict[str, torch.Tensor] | None) -> None:
        """Restore everything from a last.pt payload (see ``checkpoint_payload``)."""
        if ckpt.get("model_name") != self.model_name or ckpt.get("model_args") != self.model_args:
            raise CheckpointError(
                f"last.pt holds {ckpt.get('model_name')} {ckpt.get('model_args')} but the run's config builds "
                f"{self.model_name} {self.model_args}: the run folder's config.json was changed; restore it"
            )
        if list(ckpt["classes"]) != list(self.classes):
            raise CheckpointError("last.pt was trained on other classes than the run's data set now has")
        self.model.load_state_dict(ckpt["state_dict"])
        self._load_optimizer(ckpt)
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        res = ckpt.get("resume") or {}
        self.epoch_step = int(res.get("epoch_step", 0))
        self.partial = {k: float(res.get(k, 0.0)) for k in self.partial}
        best = ckpt.get("best") or {}
        self.best_val_loss = float(best.get("val_loss", math.inf))
        self.best_val_acc, self.best_epoch = best.get("val_acc"), best.get("epoch")
        self.best_state = best_state
        self.history = list(ckpt.get("history") or [])
        cb_states = ckpt.get("callbacks") or {}
        for cb in self.callbacks:
            if type(cb).__name__ in cb_states:
                cb.load_state_dict(cb_states[type(cb).__name__])
        rng = ckpt.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.aug_gen_state = rng.get("aug") if self.epoch_step else None
        self.elapsed_before = float(ckpt.get("wall_seconds", 0.0))
        self.resume_offset = int(ckpt.get("metrics_offset", 0))
        self.resumed = True

    def _load_optimizer(self, ckpt: dict[str, Any]) -> None:
        """The optimizer's state from the resume point; one of another optimizer starts fresh."""
        saved = (ckpt.get("config") or {}).get("optimizer") if isinstance(ckpt.get("config"), dict) else None
        if saved is not None and saved != self.config.optimizer:
            self.log(f"The optimizer changed ({saved} -> {self.config.optimizer}): its state starts fresh")
            return
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(
                f"last.pt's optimizer state does not fit the run's {self.config.optimizer} optimizer "
                f"({type(e).__name__}: {e}): restore the run's config.json, or start a new run"
            ) from None


def config_changes(saved: Any, config: TrainConfig) -> list[str]:
    """The settings of ``config`` that differ from ``saved`` (a resume point's config dict), as
    "lr 0.0002 -> 0.5" texts; runtime-only settings (``RUNTIME_FIELDS``) may change and are left out.
    A resume point without a config (an old one) has nothing to compare: []."""
    if not isinstance(saved, dict):
        return []
    now = asdict(config)
    keys = [k for k in now if k in saved and k not in RUNTIME_FIELDS and k != "preset"]
    return [f"{k} {saved[k]!r} -> {now[k]!r}" for k in keys if saved[k] != now[k]]


def _to_cpu(obj: Any) -> Any:
    """A snapshot of ``obj`` with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj
