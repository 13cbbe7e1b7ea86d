"""Training: the loop (``train_one_epoch`` / ``evaluate`` / ``fit``) and its callbacks.

The loop is fixed; behaviour is added by callbacks on a short event list: ``on_fit_start``,
``on_step`` (after every optimizer step; host-side values only, never a device sync),
``on_log`` (step-loss records, when flushed), ``on_epoch_end`` and ``on_fit_end``. Save-best,
early stopping, the time budget, the run folder and the console are callbacks.

Speed (DESIGN.md "Speed"): the data set sits on the device as ONE uint8 tensor; a batch is cut
from it by index and converted to float there; augmentation is batched per sample; the model and
its inputs are channels_last; bf16 autocast where the device runs it natively; evaluation uses big
batches; losses and accuracies are summed on the device and read once per epoch (plus the step-loss
records: every ``log_every`` steps on the CPU, where reading is free, at most once a second on a GPU).

Randomness: the weights are initialised from ``seed``; epoch ``e``'s shuffle and augmentation come
from generators seeded with (seed, e), so a run resumed at an epoch boundary continues exactly as
an uninterrupted one would; a mid-epoch resume point also stores the generators' states.

Data parallel: started by torchrun (WORLD_SIZE > 1), every process holds the whole data set, takes
its share of each global batch (``batch_size`` is global), and only rank 0 writes the run folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import platform
import queue
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glyphcore import __version__, runs
from glyphcore.checkpoint import load_checkpoint, save_checkpoint
from glyphcore.errors import CheckpointError, ConfigError, DataError, GlyphError
from glyphcore.train_config import (
    CHOICES,
    PRESETS,
    RUNTIME_FIELDS,
    TrainConfig,
    config_from_dict,
    config_to_argv,
    make_config,
    validate_config,
)

__all__ = [
    "TrainConfig", "CHOICES", "PRESETS", "RUNTIME_FIELDS", "make_config", "validate_config",
    "config_from_dict", "config_to_argv",
    "Callback", "SaveBest", "EarlyStopping", "TimeBudget", "RunFolderWriter", "TrainState", "FitResult",
    "DeviceData", "resolve_device", "resolve_amp", "cpu_has_native_bf16", "keep_freed_cpu_memory", "lr_at",
    "make_optimizer",
    "build_model", "count_params", "train_one_epoch", "evaluate", "fit", "best_log_line",
    "CheckpointSaver", "default_callbacks", "epoch_permutation", "FLUSH_INTERVAL_S", "ONECYCLE_WARMUP",
]

FLUSH_INTERVAL_S = 1.0  # s between step-loss reads on a GPU (each read is a host sync)
ONECYCLE_WARMUP = 0.25  # fraction of all steps spent rising to the peak lr (onecycle)
ONECYCLE_DIV = 25.0  # onecycle starts at peak / 25 ...
ONECYCLE_FINAL_DIV = 1e4  # ... and ends at peak / 25 / 1e4 (torch's OneCycleLR defaults)


# ---------------------------------------------------------------------------------------------
# Device, precision, data
# ---------------------------------------------------------------------------------------------


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> cuda (this process's GPU under torchrun), then mps, then cpu.

    Raises:
        ConfigError: a device that is not there (e.g. cuda on a machine without a GPU).
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        elif dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name} does not exist: {torch.cuda.device_count()} GPU(s) are visible")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device mps was asked for but Metal is not available here; use --device auto or cpu")
    return dev


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX). Elsewhere bf16 is emulated and
    slower than fp32. Measured on a 2-core Zen 5 (AVX512-BF16), seed_cnn, batch 50, channels_last:
    fp32 1,544 img/s, bf16 autocast 2,638 img/s."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return (" avx512_bf16" in flags or " amx_bf16" in flags) and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``; None = fp32.

    ``auto`` is bf16 where the device runs it natively (CUDA with bf16 units, CPUs with
    AVX512-BF16/AMX), fp32 elsewhere (T4-class GPUs, MPS, older CPUs).
    """
    if amp == "off":
        return None
    if amp == "bf16":
        if device.type == "mps":
            raise ConfigError("bf16 autocast is not supported on mps here; use --amp off")
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return None


# mallopt(3) parameters of glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20  # the ceiling of glibc's own adaptive threshold on 64-bit
_TRIM_THRESHOLD = 1 << 30


def keep_freed_cpu_memory() -> bool:
    """Ask glibc's malloc to keep the memory a training step frees, for the next step to reuse.

    A CPU step frees and re-allocates the same activation tensors (up to ~7 MB each for seed_cnn at
    batch 50) every few ms. By default glibc hands blocks that size back to the kernel and page-faults
    them in again on the next step. With blocks up to 32 MiB served from the heap, and up to 1 GiB of
    free heap kept, fresh training processes on the development machine ran 1.16-1.18x as fast in
    fp32 at batch 50 and 1.48x with the fast preset's batch 500; bf16 at batch 50 moved within the
    noise (bench/cpu_allocator.py, docs/benchmarks.md). Process-wide; the process keeps at most
    what it has already used. Returns False where there is no glibc (macOS, Windows, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


class DeviceData:
    """A data set held as ONE uint8 tensor on the device; batches are cut by index and made float
    in [0, 1] there (never a per-sample Python loop, never a DataLoader).

    Attributes:
        images: uint8 N x C x H x W on ``device``.
        labels: int64 N on ``device``.
    """

    def __init__(self, image_set: Any, device: torch.device) -> None:
        images = image_set.images
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            shape = getattr(images, "shape", None)
            raise DataError(
                f"images of {getattr(image_set, 'source', 'the data set')} must be a uint8 array N x C x H x W, "
                f"got {getattr(images, 'dtype', type(images).__name__)} {shape}"
            )
        labels = np.asarray(image_set.labels)
        if labels.shape != (images.shape[0],):
            raise DataError(f"{images.shape[0]} images but labels of shape {labels.shape}: they must match")
        if images.shape[0] == 0:
            raise DataError(f"the {getattr(image_set, 'split', '')} split of {getattr(image_set, 'source', '')} is empty")
        if images.flags.writeable:
            host = torch.from_numpy(images)
        elif device.type == "cpu":
            host = torch.from_numpy(np.array(images, copy=True))  # a read-only memmap: one copy into memory
        else:
            with warnings.catch_warnings():  # only read, and copied straight onto the device
                warnings.simplefilter("ignore", UserWarning)
                host = torch.from_numpy(images)
        self.images = host.to(device)
        self.labels = torch.from_numpy(labels.astype(np.int64)).to(device)
        self.device = device

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def _to_float(self, x: torch.Tensor) -> torch.Tensor:
        # uint8 -> float32 in [0, 1]; with C == 1 channels_last is the same memory, so no copy.
        return x.to(torch.float32).mul_(1.0 / 255.0).contiguous(memory_format=torch.channels_last)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``idx`` (int64 on the device) -> (float B x C x H x W in [0, 1], int64 labels B)."""
        return self._to_float(self.images.index_select(0, idx)), self.labels.index_select(0, idx)

    def slice(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``start:stop`` in order (evaluation: no gather needed)."""
        return self._to_float(self.images[start:stop]), self.labels[start:stop]


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The shuffle of epoch ``epoch`` (1-based): the same for every process and every resume."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def _aug_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch) * 7919 + 104_729 * (rank + 1)


# ---------------------------------------------------------------------------------------------
# Model, optimizer, schedule
# ---------------------------------------------------------------------------------------------


def build_model(config: TrainConfig, in_channels: int, input_size: tuple[int, int], num_classes: int) -> nn.Module:
    """The model of ``config`` for images C x H x W and ``num_classes`` classes.

    Raises:
        ConfigError: unknown model, activation or option, or a size the model cannot take (from
            ``glyphcore.models.create_model``, whose messages list the valid values).
    """
    from glyphcore.models import create_model

    return create_model(config.model, num_classes=num_classes, in_channels=in_channels, input_size=input_size,
                        activation=config.activation, batchnorm=config.batchnorm, dropout=config.dropout,
                        **config.model_options)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (the report's 702,948 for seed_cnn)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_optimizer(config: TrainConfig, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD over the trainable parameters; the fused kernels where the device has
    them (CUDA, CPU: one kernel for all parameters), else torch's default (foreach)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"{config.model} has no trainable parameters (everything is frozen)")
    if config.optimizer == "sgd":
        cls, kw = torch.optim.SGD, {"momentum": config.momentum, "nesterov": config.nesterov}
        if config.nesterov and config.momentum <= 0:
            raise ConfigError("nesterov needs a momentum above 0 (e.g. --momentum 0.9)")
    else:
        cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        kw = {}
    kw["weight_decay"] = config.weight_decay
    if device.type in ("cuda", "cpu"):
        try:
            return cls(params, lr=config.lr, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):
            pass
    return cls(params, lr=config.lr, **kw)


def lr_at(schedule: str, peak: float, step: int, total_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based) of ``total_steps``.

    none: ``peak`` throughout. cosine: from ``peak`` down to 0. onecycle: from peak/25 up to
    ``peak`` over the first 25% of the steps (cosine), then down to peak/25/1e4 (cosine), as
    torch's OneCycleLR; computed from the step alone so a resumed run needs no scheduler state.
    """
    total = max(int(total_steps), 1)
    t = min(max(step, 0), total)
    if schedule == "none":
        return peak
    if schedule == "cosine":
        return peak * 0.5 * (1.0 + math.cos(math.pi * t / total))
    if schedule == "onecycle":
        warm = max(1, round(ONECYCLE_WARMUP * total))
        start, end = peak / ONECYCLE_DIV, peak / ONECYCLE_DIV / ONECYCLE_FINAL_DIV
        if t < warm:
            return start + (peak - start) * 0.5 * (1.0 - math.cos(math.pi * t / warm))
        frac = (t - warm) / max(1, total - warm)
        return end + (peak - end) * 0.5 * (1.0 + math.cos(math.pi * frac))
    raise ConfigError(f"unknown schedule {schedule!r}: choose one of {', '.join(CHOICES['schedule'])}")


def best_log_line(old: float, new: float) -> str:
    """The report's save-best line: ``Validation loss decreased (0.088288 --> 0.072012). Saving model ...``"""
    return f"Validation loss decreased ({old:.6f} --> {new:.6f}). Saving model ..."


def _versions() -> dict[str, str]:
    return {"glyphcore": str(__version__), "torch": str(torch.__version__), "python": platform.python_version()}


class CheckpointSaver:
    """Writes checkpoints on one background thread, in order, so that the loop never waits for the
    disk (torch.save + fsync of a few MB, twice an epoch at worst). Payloads must be snapshots
    (tensors copied to the CPU). A failed write is raised by the next ``submit`` or by ``flush``."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def submit(self, payload: dict[str, Any], path: Path) -> None:
        self._raise()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="glyphcore-checkpoints", daemon=True)
            self._thread.start()
        self._queue.put((payload, path))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:  # after a failure, later writes would only hide it
                    save_checkpoint(*item)
            except BaseException as e:  # noqa: BLE001 (handed to the training thread)
                self._error = e
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

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


# ---------------------------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------------------------


class Callback:
    """Base class: override the events you need. ``state`` is the ``TrainState`` of the fit.

    Events, in order: ``on_fit_start``; per optimizer step ``on_step`` (host-side values only: no
    device reads); ``on_log`` with step-loss records when they are read; ``on_epoch_end`` with the
    epoch record; ``on_fit_end`` with the ``FitResult`` (callbacks in reverse order: a teardown). ``state_dict``/``load_state_dict`` carry a
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
            state.log(best_log_line(state.best_val_loss, val))
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
        self.metrics: runs.MetricsLog | None = None
        self._msg_pos = 0

    # -- helpers -------------------------------------------------------------------------------
    def _status(self, ts: TrainState, **extra: Any) -> None:
        """Update status.json with the counters of ``ts`` and ``extra`` (e.g. state="running")."""
        runs.update_status(
            self.run_dir,
            epoch=ts.epoch, epochs=ts.config.epochs, step=ts.step,
            steps_per_epoch=ts.steps_per_epoch, best_epoch=ts.best_epoch,
            best_val_loss=ts.best_val_loss if math.isfinite(ts.best_val_loss) else None,
            best_val_acc=ts.best_val_acc, params=ts.params,
            wall_seconds=round(ts.wall_seconds(), 3), **extra,
        )

    def _flush_messages(self, state: TrainState) -> None:
        new = state.messages[self._msg_pos:]
        self._msg_pos = len(state.messages)
        if new and self.metrics is not None:
            self.metrics.append(*({"event": "log", "message": m, "time": t} for t, m in new))

    def save_last(self, state: TrainState) -> None:
        state.metrics_offset = self.metrics.offset if self.metrics else 0
        state.saver.submit(state.checkpoint_payload("last"), self.run_dir / runs.LAST_CKPT)

    # -- events --------------------------------------------------------------------------------
    def on_fit_start(self, state: TrainState) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        old = runs._read_json(self.run_dir / runs.CONFIG_FILE) or {}
        name = self.name if self.name is not None else old.get("name")
        runs.write_json_atomic(self.run_dir / runs.CONFIG_FILE, {
            **asdict(state.config), "run_id": self.run_dir.name, "name": name,
            "created": old.get("created", time.time()), "dataset": state.dataset_info,
            "versions": _versions(), "model_name": state.model_name, "model_args": state.model_args,
            "params": state.params, "world_size": state.world_size,
        })
        self.metrics = runs.MetricsLog(self.run_dir)
        # Records after the resume point belong to a timeline that was abandoned (a crash mid-epoch).
        self.metrics.truncate(state.resume_offset)
        self._msg_pos = 0
        prev = runs._read_json(self.run_dir / runs.STATUS_FILE) or {}
        pid = os.getpid()
        launcher = os.getppid() if state.world_size > 1 else pid  # torchrun forwards signals to workers
        self._status(state, state="running", pid=pid, launcher_pid=launcher, device=state.device_name,
                     started=prev.get("started") if state.resumed and prev.get("started") else time.time(),
                     ended=None, name=name, world_size=state.world_size,
                     compile_seconds=state.compile_seconds, message="running")
        self._flush_messages(state)

    def on_log(self, state: TrainState, records: list[dict[str, Any]]) -> None:
        assert self.metrics is not None
        self.metrics.append(*records)
        self._flush_messages(state)
        self._status(state)

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        assert self.metrics is not None
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


# ---------------------------------------------------------------------------------------------
# The state of one fit
# ---------------------------------------------------------------------------------------------


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


class _Diverged(Exception):
    pass


class _Cancelled(Exception):
    pass


class TrainState:
    """Everything one fit holds: model, optimizer, data, counters, best, messages. Callbacks read
    it and act through ``log``, ``request_stop``, ``save_best``.

    Counters: ``epoch`` = epochs completed; ``step`` = optimizer steps done (all epochs);
    ``epoch_step`` = steps done in the epoch in progress (non-zero only mid-epoch).
    """

    def __init__(self, config: TrainConfig, model: nn.Module, net: nn.Module, optimizer: torch.optim.Optimizer,
                 train_data: DeviceData, val_data: DeviceData, device: torch.device,
                 amp_dtype: torch.dtype | None, *, classes: list[str], frame: dict | None,
                 dataset_info: dict[str, Any], run_dir: Path | None, rank: int = 0, world_size: int = 1) -> None:
        self.config = config
        self.model = model  # the plain module (state_dict keys without DDP/compile prefixes)
        self.net = net  # what the loop calls: model, DDP(model) or torch.compile(...)
        self.optimizer = optimizer
        self.train_data, self.val_data = train_data, val_data
        self.device, self.amp_dtype = device, amp_dtype
        self.classes, self.frame, self.dataset_info = classes, frame, dataset_info
        self.run_dir = run_dir
        self.rank, self.world_size = rank, world_size
        self.model_name = getattr(model, "glyph_name", config.model)
        self.model_args = dict(getattr(model, "glyph_args", {}))
        self.params = count_params(model)
        n, b = len(train_data), config.batch_size
        # Under DDP a last batch smaller than the process count is dropped (a process would get none).
        self.steps_per_epoch = n // b + (1 if n % b and (world_size == 1 or n % b >= world_size) else 0)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.epoch = 0
        self.step = 0
        self.epoch_step = 0
        self.partial = {"loss_sum": 0.0, "correct": 0.0, "seen": 0.0, "seconds": 0.0}
        self.best_val_loss = math.inf
        self.best_val_acc: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self.messages: list[tuple[float, str]] = []
        self.stop_reason: str | None = None
        self.stop_message = ""
        self.cancel_requested = False
        self.callbacks: list[Callback] = []
        self.elapsed_before = 0.0  # s of training in earlier sessions (resume)
        self._t_start: float | None = None
        self.compile_seconds: float | None = None
        self.metrics_offset = 0
        self.resume_offset = 0
        self.resumed = False
        self.aug_gen: torch.Generator | None = None
        self.aug_gen_state: torch.Tensor | None = None
        self.device_name = _device_name(device)
        self.saver = CheckpointSaver()

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
            self.saver.submit(self.checkpoint_payload("best"), self.run_dir / runs.BEST_CKPT)

    def restore_best(self) -> None:
        """Put the best weights back into the model."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    # -- checkpoints -----------------------------------------------------------------------------
    def checkpoint_payload(self, kind: str) -> dict[str, Any]:
        """The checkpoint dict (glyphcore.checkpoint format) for ``best`` or ``last``."""
        ds = self.dataset_info
        base = {
            "model_name": self.model_name, "model_args": self.model_args, "classes": list(self.classes),
            "frame": self.frame, "config": asdict(self.config),
            "dataset": {"id": ds.get("id"), "hash": ds.get("hash"), "source": ds.get("source")},
            "versions": _versions(),
        }
        if kind == "best":
            assert self.best_state is not None
            return {**base, "state_dict": self.best_state, "epoch": self.best_epoch,
                    "val_loss": float(self.best_val_loss), "val_acc": self.best_val_acc}
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
            "epoch": self.epoch, "val_loss": float(last.get("val_loss", math.nan)),
            "val_acc": float(last.get("val_acc", math.nan)),
            "optimizer": opt, "scheduler": {"schedule": self.config.schedule, "step": self.step},
            "rng": rng, "step": self.step,
            "resume": {"epoch_step": self.epoch_step, **{k: float(v) for k, v in self.partial.items()}},
            "best": {"val_loss": float(self.best_val_loss), "val_acc": self.best_val_acc, "epoch": self.best_epoch},
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks if cb.state_dict()},
            "history": list(self.history), "metrics_offset": self.metrics_offset,
            "wall_seconds": self.wall_seconds(),
        }

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
        self.optimizer.load_state_dict(ckpt["optimizer"])
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


def _to_cpu(obj: Any) -> Any:
    """A snapshot of ``obj`` with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
    return str(device)


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _all_reduce(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    import torch.distributed as dist

    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return t


def _flush(state: TrainState, pending: list[tuple[int, int, torch.Tensor]], epoch: int) -> None:
    """Read pending step losses (one host sync), stop on NaN/Inf, hand records to the callbacks."""
    if not pending:
        return
    values = torch.stack([v for _, _, v in pending]).float().tolist()
    records = [{"event": "step", "epoch": e, "step": s, "loss": v} for (e, s, _), v in zip(pending, values)]
    pending.clear()
    for cb in state.callbacks:
        cb.on_log(state, records)
    bad = next((r for r in records if not math.isfinite(r["loss"])), None)
    if bad is not None:
        raise _Diverged(_divergence_message(state, bad["loss"], epoch, bad["step"]))


def _divergence_message(state: TrainState, value: float, epoch: int, step: int) -> str:
    lr = state.config.lr
    return (f"the training loss became {value} at epoch {epoch}, step {step}: the learning rate {lr:g} is too "
            f"high for this model and data. Lower it, e.g. to a tenth: --lr {lr / 10:g}")


def train_one_epoch(state: TrainState, epoch: int) -> dict[str, float]:
    """Train epoch ``epoch`` (1-based), from ``state.epoch_step`` on (a mid-epoch resume point).

    Returns:
        {"train_loss", "train_acc", "seconds" (training only), "images_per_s", "partial"}; all
        processes' shares summed under DDP.

    Raises:
        _Diverged: a NaN/Inf training loss. _Cancelled: SIGTERM (the resume point is mid-epoch).
    """
    cfg, dev, net = state.config, state.device, state.net
    data, world, rank = state.train_data, state.world_size, state.rank
    net.train()
    perm = epoch_permutation(cfg.seed, epoch, len(data)).to(dev)
    if cfg.augment != "none":
        from glyphcore.data import augment_batch  # only runs that augment need it

        state.aug_gen = torch.Generator(device=dev)
        if state.aug_gen_state is not None:  # mid-epoch resume: continue the epoch's draws
            state.aug_gen.set_state(state.aug_gen_state)
            state.aug_gen_state = None
        else:
            state.aug_gen.manual_seed(_aug_seed(cfg.seed, epoch, rank))
    b, steps = cfg.batch_size, state.steps_per_epoch
    # The epoch's sums start from a mid-epoch resume point's, so that the additions happen in the
    # same order as in an uninterrupted run (bit-identical metrics). float64 where the device has it.
    # (Under DDP the stored sums are global: rank 0 carries them, the others start from 0.)
    acc_dtype = torch.float32 if dev.type == "mps" else torch.float64
    start = state.partial if rank == 0 else {"loss_sum": 0.0, "correct": 0.0, "seen": 0.0}
    loss_sum = torch.tensor(start["loss_sum"], device=dev, dtype=acc_dtype)
    correct = torch.tensor(int(start["correct"]), device=dev, dtype=torch.int64)
    window = torch.zeros((), device=dev)
    window_n = 0
    pending: list[tuple[int, int, torch.Tensor]] = []
    seen_local = int(start["seen"])
    cpu = dev.type == "cpu"
    last_flush = time.perf_counter()
    t0 = time.perf_counter()
    partial = False
    compiled_graphs = cfg.compile == "reduce-overhead"
    for i in range(state.epoch_step, steps):
        idx = perm[i * b:(i + 1) * b]
        if world > 1:
            idx = idx[rank::world]
        x, y = data.batch(idx)
        if cfg.augment != "none":
            x = augment_batch(x, cfg.augment, generator=state.aug_gen).contiguous(memory_format=torch.channels_last)
        lr = lr_at(cfg.schedule, cfg.lr, state.step, state.total_steps)
        for g in state.optimizer.param_groups:
            g["lr"] = lr
        if compiled_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with _autocast(dev, state.amp_dtype):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        nb = int(idx.shape[0])
        d = loss.detach()
        loss_sum += d * nb
        correct += (logits.detach().argmax(1) == y).sum()
        window += d
        window_n += 1
        seen_local += nb
        state.step += 1
        state.epoch_step = i + 1
        last_step = i == steps - 1
        log_point = state.step % cfg.log_every == 0 or last_step
        if log_point:
            pending.append((epoch, state.step, window / window_n))
            window = torch.zeros((), device=dev)
            window_n = 0
        for cb in state.callbacks:
            cb.on_step(state)
        if world > 1:
            # Stopping must be agreed on, at step numbers every process reaches: the log points.
            if log_point:
                flags = torch.tensor([float(state.cancel_requested), float(state.stop_reason is not None)], device=dev)
                _all_reduce(flags, "max")
                state.cancel_requested = state.cancel_requested or bool(flags[0].item())
                if flags[1].item() and state.stop_reason is None:
                    state.request_stop("time_budget", "another process reached the time budget")
                _flush(state, pending, epoch)
        elif cpu or (log_point and time.perf_counter() - last_flush >= FLUSH_INTERVAL_S):
            _flush(state, pending, epoch)
            last_flush = time.perf_counter()
        stop_now = state.cancel_requested or state.stop_reason is not None
        if world > 1:
            stop_now = stop_now and log_point
        if stop_now:
            partial = not last_step
            break
    _flush(state, pending, epoch)
    seconds = time.perf_counter() - t0
    totals = torch.stack([loss_sum, correct.to(acc_dtype), torch.tensor(float(seen_local), device=dev, dtype=acc_dtype)])
    if world > 1:
        _all_reduce(totals)
    ls, corr, seen = totals.tolist()  # the one sync of the epoch
    seconds += state.partial["seconds"]
    if not math.isfinite(ls):
        raise _Diverged(_divergence_message(state, ls, epoch, state.step))
    if state.cancel_requested and partial:
        # Keep the epoch's sums for the resume point; the epoch is neither validated nor recorded.
        state.partial = {"loss_sum": ls, "correct": corr, "seen": seen, "seconds": seconds}
        raise _Cancelled()
    state.partial = {"loss_sum": 0.0, "correct": 0.0, "seen": 0.0, "seconds": 0.0}
    state.epoch_step = 0
    return {"train_loss": ls / max(seen, 1), "train_acc": corr / max(seen, 1), "seconds": seconds,
            "images_per_s": seen / seconds if seconds > 0 else 0.0, "partial": partial}


def evaluate(model: nn.Module, data: DeviceData, *, batch_size: int = 1000, amp_dtype: torch.dtype | None = None,
             rank: int = 0, world_size: int = 1) -> tuple[float, float]:
    """Mean cross-entropy (no label smoothing) and accuracy (fraction) of ``model`` on ``data``.

    Big batches in order; sums stay on the device and are read once. Under DDP each process takes
    every ``world_size``-th batch and the sums are all-reduced.
    """
    model.eval()
    dev = data.device
    loss_sum = torch.zeros((), device=dev, dtype=torch.float64 if dev.type != "mps" else torch.float32)
    correct = torch.zeros((), device=dev, dtype=torch.int64)
    n = len(data)
    with torch.no_grad():
        for k, start in enumerate(range(0, n, batch_size)):
            if k % world_size != rank:
                continue
            x, y = data.slice(start, min(start + batch_size, n))
            with _autocast(dev, amp_dtype):
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
    totals = torch.stack([loss_sum.double() if dev.type != "mps" else loss_sum, correct.to(loss_sum.dtype)])
    if world_size > 1:
        _all_reduce(totals)
    ls, corr = totals.tolist()
    return ls / n, corr / n


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------


def _dist_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) without it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _load_data(config: TrainConfig) -> tuple[Any, Any]:
    from glyphcore.data import list_splits, load_dataset

    val_split = config.val_split
    if val_split == "auto":
        splits = list_splits(config.data)
        val_split = "valid" if "valid" in splits else "test" if "test" in splits else None
        if val_split is None:
            raise DataError(f"{config.data} has no valid or test split to validate on (it has {', '.join(splits)}); "
                            f"pass --val-split")
    return load_dataset(config.data, "train"), load_dataset(config.data, val_split)


def _init_weights_from(model: nn.Module, ref: str) -> str:
    """Fine-tuning: copy the weights of a run's best.pt (or a .pt file) into ``model``; a head of
    another class count stays fresh (``glyphcore.models.finetune``). Returns a log line."""
    from glyphcore.models.finetune import load_backbone_from_checkpoint

    p = Path(ref)
    path = p if p.suffix == ".pt" and p.is_file() else runs.resolve_run(ref) / runs.BEST_CKPT
    done = load_backbone_from_checkpoint(model, load_checkpoint(path))
    head = f", head left fresh ({len(done.skipped_head)} tensors)" if done.skipped_head else ""
    return f"Initialised {len(done.loaded)} tensors from {path}{head}"


def _compile(state: TrainState) -> None:
    """torch.compile the model and warm it up on every shape the run will see (train batch, its
    remainder, eval batch, its remainder), then restore the weights: the run is unchanged, and the
    compile time is measured apart (``state.compile_seconds``)."""
    cfg, dev = state.config, state.device
    t0 = time.perf_counter()
    state.net = torch.compile(state.net, mode=None if cfg.compile == "default" else cfg.compile, dynamic=False)
    snapshot = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
    n_train, n_val = len(state.train_data), len(state.val_data)
    per_rank = max(cfg.batch_size // state.world_size, 1)
    train_shapes = {min(per_rank, n_train)}
    rem = n_train % cfg.batch_size
    if rem and rem // state.world_size:
        train_shapes.add(rem // state.world_size)
    eval_shapes = {min(cfg.eval_batch_size, n_val)} | ({n_val % cfg.eval_batch_size} if n_val % cfg.eval_batch_size else set())
    reps = 3 if cfg.compile == "reduce-overhead" else 1  # CUDA graphs are recorded after warm-up runs
    state.net.train()
    for nb in sorted(train_shapes):
        x, y = state.train_data.slice(0, nb)
        for _ in range(reps):
            if cfg.compile == "reduce-overhead":
                torch.compiler.cudagraph_mark_step_begin()
            with _autocast(dev, state.amp_dtype):
                out = state.net(x)
            F.cross_entropy(out.float(), y).backward()
    state.optimizer.zero_grad(set_to_none=True)
    state.net.eval()
    with torch.no_grad():
        for nb in sorted(eval_shapes):
            x, _ = state.val_data.slice(0, nb)
            for _ in range(reps):
                with _autocast(dev, state.amp_dtype):
                    state.net(x)
    state.model.load_state_dict(snapshot)  # BatchNorm statistics moved during the warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    state.compile_seconds = time.perf_counter() - t0
    state.log(f"Compiled the model ({cfg.compile}) in {state.compile_seconds:.1f} s (not counted in the training time)")


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


def default_callbacks(config: TrainConfig, run_dir: Path | None, rank: int, name: str | None = None) -> list[Callback]:
    """The callbacks every fit has: save-best, early stopping / time budget when set, and (rank 0,
    with a run folder) the run-folder writer, last so it records what the others decided."""
    cbs: list[Callback] = [SaveBest()]
    if config.patience is not None:
        cbs.append(EarlyStopping(config.patience))
    if config.time_budget_min is not None:
        cbs.append(TimeBudget(config.time_budget_min))
    if run_dir is not None and rank == 0:
        cbs.append(RunFolderWriter(run_dir, name))
    return cbs


def fit(config: TrainConfig, run_dir: str | os.PathLike | None = None, *, train_set: Any = None, val_set: Any = None,
        callbacks: Sequence[Callback] = (), resume: bool = False, name: str | None = None,
        handle_signals: bool = False) -> FitResult:
    """Train ``config``; with ``run_dir``, write the run folder (config, status, metrics, best.pt, last.pt).

    Args:
        config: the settings (``make_config``); validated here.
        run_dir: the run folder (created); None trains in memory only.
        train_set, val_set: ImageSet-like objects (``images`` uint8 N x C x H x W, ``labels``,
            ``classes``, ``meta``); default: ``glyphcore.data.load_dataset(config.data, ...)``.
        callbacks: extra callbacks, after the default ones (``default_callbacks``).
        resume: continue from ``run_dir``/last.pt (epoch numbering and metrics continue); without a
            last.pt the run starts over in the same folder.
        name: the user's run name (config.json / status.json).
        handle_signals: SIGTERM/SIGINT cancel the run cleanly (the CLI process sets this).

    Returns:
        FitResult; the model holds the best weights.

    Raises:
        ConfigError, DataError, CheckpointError: bad settings, data or resume point (also recorded
            as a failed run in the run folder). Other exceptions propagate after the same record.
    """
    validate_config(config)
    cancel = _SignalCancel()
    with _signals_to(cancel, handle_signals):
        state = _setup(config, run_dir, train_set, val_set, callbacks, resume, name)
        cancel.attach(state)
        return _run_loop(state)


def _setup(config: TrainConfig, run_dir: str | os.PathLike | None, train_set: Any, val_set: Any,
           callbacks: Sequence[Callback], resume: bool, name: str | None) -> TrainState:
    """Everything before the first epoch: processes, device, data, model, optimizer, resume point,
    compile. A failure is recorded in the run folder's status.json, then raised."""
    rank, local_rank, world = _dist_env()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device, local_rank)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    amp_dtype = resolve_amp(config.amp, device)
    if device.type == "cpu":
        keep_freed_cpu_memory()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    run_path = Path(run_dir) if run_dir is not None else None
    if run_path is not None and rank == 0:
        run_path.mkdir(parents=True, exist_ok=True)
    try:
        if train_set is None or val_set is None:
            train_set, val_set = _load_data(config)
        classes = list(train_set.classes)
        if list(val_set.classes) != classes:
            raise DataError(f"the train and validation splits of {config.data} have different class lists")
        c, h, w = (int(s) for s in train_set.images.shape[1:])
        if tuple(val_set.images.shape[1:]) != (c, h, w):
            raise DataError(f"train images are {c}x{h}x{w} but validation images {tuple(val_set.images.shape[1:])}")
        torch.manual_seed(config.seed)  # the weights' initialisation
        model = build_model(config, c, (h, w), len(classes))
        params = count_params(model)
        if config.param_budget is not None and params > config.param_budget:
            raise ConfigError(
                f"{config.model} has {params:,} trainable parameters, above the budget of {config.param_budget:,}: "
                f"pick a smaller model (or fewer channels), or raise --param-budget"
            )
        init_line = _init_weights_from(model, config.init_from) if config.init_from and not resume else None
        model = model.to(device, memory_format=torch.channels_last)
        meta = dict(getattr(train_set, "meta", {}) or {})
        dataset_info = {
            "id": meta.get("id") or getattr(train_set, "source", config.data), "hash": meta.get("hash"),
            "source": getattr(train_set, "source", config.data), "classes": classes, "image_shape": [c, h, w],
            "splits": {"train": getattr(train_set, "split", "train"), "val": getattr(val_set, "split", config.val_split)},
            "counts": {"train": int(len(train_set.labels)), "val": int(len(val_set.labels))},
        }
        net: nn.Module = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        optimizer = make_optimizer(config, model, device)
        state = TrainState(config, model, net, optimizer, DeviceData(train_set, device), DeviceData(val_set, device),
                           device, amp_dtype, classes=classes, frame=meta.get("frame"), dataset_info=dataset_info,
                           run_dir=run_path, rank=rank, world_size=world)
        state.callbacks = default_callbacks(config, run_path, rank, name) + list(callbacks)
        if resume:
            if run_path is None:
                raise ConfigError("resume needs the run folder (run_dir)")
            last = run_path / runs.LAST_CKPT
            if last.is_file():
                best_path = run_path / runs.BEST_CKPT
                best = load_checkpoint(best_path)["state_dict"] if best_path.is_file() else None
                state.load_resume_point(load_checkpoint(last, map_location=device), best)
                where = f"epoch {state.epoch + 1}, step {state.epoch_step + 1}" if state.epoch_step else f"epoch {state.epoch + 1}"
                state.log(f"Resumed from {runs.LAST_CKPT} at {where} (global step {state.step})")
            else:
                state.resumed = True  # no resume point yet: start over in the same folder
                state.log(f"No {runs.LAST_CKPT} to resume from: starting over")
        if init_line:
            state.log(init_line)
        amp_name = {None: "fp32", torch.bfloat16: "bf16"}.get(amp_dtype, str(amp_dtype))
        state.log(f"Training {state.model_name} ({state.params:,} parameters) on {state.device_name}, {amp_name}, "
                  f"{len(state.train_data):,} training / {len(state.val_data):,} validation images"
                  + (f", {world} processes" if world > 1 else ""))
        if config.compile != "off":
            _compile(state)
    except BaseException as e:
        if run_path is not None and rank == 0:
            runs.update_status(run_path, state="failed", ended=time.time(), pid=os.getpid(),
                               message=str(e) if isinstance(e, GlyphError) else f"{type(e).__name__}: {e}")
        raise
    return state


def _run_loop(state: TrainState) -> FitResult:
    cfg = state.config
    end_state, message, error = "done", "", None
    for cb in state.callbacks:
        cb.on_fit_start(state)
    state._t_start = time.perf_counter()
    try:
        while state.epoch < cfg.epochs and state.stop_reason is None:
            if state.cancel_requested:
                raise _Cancelled()
            epoch = state.epoch + 1
            t_epoch = time.perf_counter()
            tr = train_one_epoch(state, epoch)
            val_loss, val_acc = _evaluate_state(state)
            if not math.isfinite(val_loss):
                raise _Diverged(_divergence_message(state, val_loss, epoch, state.step))
            state.epoch = epoch
            record = {
                "epoch": epoch, "step": state.step, "train_loss": tr["train_loss"], "train_acc": tr["train_acc"],
                "val_loss": val_loss, "val_acc": val_acc,
                "lr": lr_at(cfg.schedule, cfg.lr, max(state.step - 1, 0), state.total_steps),
                # s of the whole epoch (training, validation), this session's part of it
                "seconds": time.perf_counter() - t_epoch,
                "images_per_s": tr["images_per_s"],  # training images per second of training
            }
            if tr["partial"]:
                record["partial"] = True
            state.history.append(record)
            for cb in state.callbacks:
                cb.on_epoch_end(state, record)
        if state.stop_reason is not None:
            message = f"stopped after epoch {state.epoch}: {state.stop_message}"
        else:
            message = f"finished {state.epoch} epochs"
        if state.best_epoch is not None:
            message += f"; best epoch {state.best_epoch}: val loss {state.best_val_loss:.6f}, " \
                       f"val acc {100 * (state.best_val_acc or 0):.2f}%"
    except _Diverged as e:
        end_state, message = "diverged", str(e)
    except _Cancelled:
        end_state = "cancelled"
        where = f"epoch {state.epoch + 1}, step {state.epoch_step}" if state.epoch_step else f"after epoch {state.epoch}"
        message = f"cancelled at {where}; resume continues from there"
    except BaseException as e:  # recorded as failed, then raised
        end_state, error = "failed", e
        message = str(e) if isinstance(e, GlyphError) else f"{type(e).__name__}: {e}"
    wall = state.wall_seconds()
    state.elapsed_before, state._t_start = wall, None
    result = FitResult(
        state=end_state, message=message, epochs_run=state.epoch, best_epoch=state.best_epoch,
        best_val_loss=state.best_val_loss, best_val_acc=state.best_val_acc, history=list(state.history),
        params=state.params, wall_seconds=wall, compile_seconds=state.compile_seconds, model=state.model,
        run_dir=state.run_dir, gpu_peak_mib=state.gpu_peak_mib(),
    )
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


def _evaluate_state(state: TrainState) -> tuple[float, float]:
    if state.world_size > 1:
        import torch.distributed as dist

        # Every process validates rank 0's BatchNorm statistics (each moved its own in the last step).
        for buf in state.model.buffers():
            dist.broadcast(buf, 0)
    model = state.net.module if state.world_size > 1 and hasattr(state.net, "module") else state.net
    if state.world_size > 1 and state.config.compile != "off":
        model = state.model
    return evaluate(model, state.val_data, batch_size=state.config.eval_batch_size, amp_dtype=state.amp_dtype,
                    rank=state.rank, world_size=state.world_size)
