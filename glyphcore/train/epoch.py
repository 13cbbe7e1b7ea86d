"""One epoch of training (``train_one_epoch``), evaluation (``evaluate``) and the epoch's checks.

Speed (docs/benchmarks.md, "Training throughput on the CPU"): the data set sits on the device as ONE
uint8 tensor; a batch is cut from it by index and converted to float there; augmentation is batched
per sample; the model and its inputs are channels_last; bf16 autocast where the device runs it
natively; evaluation uses big batches; losses and accuracies are summed on the device and read once
per epoch (plus the step-loss records: ``TrainState.log_every`` steps apart, read at once on the
CPU, where reading is free, at most once a second on a GPU). Data parallel goes through
``state.dist`` (``glyphcore.train.distributed``): no ``world > 1`` branches here.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from glyphcore.train.callbacks import DIVERGED_CHANCE_FACTOR, chance_note, loss_diverged
from glyphcore.train.device import DeviceData, aug_seed, epoch_permutation
from glyphcore.train.distributed import Distributed
from glyphcore.train.factories import lr_at
from glyphcore.train.nonletters import exposure_loss
from glyphcore.train.state import ZERO_PARTIAL, Cancelled, Diverged, TrainState

__all__ = [
    "train_one_epoch",
    "evaluate",
    "evaluate_state",
    "validate_epoch",
    "autocast",
    "StepLosses",
    "EpochSums",
    "FLUSH_INTERVAL_S",
]

FLUSH_INTERVAL_S = 1.0  # s between step-loss reads on a GPU (each read is a host sync)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def divergence_message(state: TrainState, value: float, epoch: int, step: int) -> str:
    lr = state.config.lr
    return (
        f"the training loss became {value} at epoch {epoch}, step {step}: the learning rate {lr:g} is too "
        f"high for this model and data. Lower it, e.g. to a tenth: --lr {lr / 10:g}"
    )


class StepLosses:
    """The step-loss records of one epoch: the mean loss of each window of ``state.log_every``
    steps (and of the session's first step, so the live curve has a point within seconds), kept on
    the device and handed to the callbacks when read (``flush``: one host sync)."""

    def __init__(self, state: TrainState, epoch: int) -> None:
        self.state, self.epoch = state, epoch
        self.window = torch.zeros((), device=state.device)
        self.window_n = 0
        self.pending: list[tuple[int, int, torch.Tensor]] = []
        first = epoch == state.epoch + 1 and not state.logged_first_step
        self.first_step = state.epoch_step if first else -1
        state.logged_first_step = True
        self.read_every_step = state.device.type == "cpu"
        self.last_flush = time.perf_counter()

    def add(self, loss: torch.Tensor, i: int, last_step: bool) -> bool:
        """Add step ``i``'s loss; returns whether this step is a log point (a record is made)."""
        self.window += loss.detach()
        self.window_n += 1
        log_point = self.state.step % self.state.log_every == 0 or last_step or i == self.first_step
        if log_point:
            self.pending.append((self.epoch, self.state.step, self.window / self.window_n))
            self.window = torch.zeros((), device=self.state.device)
            self.window_n = 0
        return log_point

    def maybe_flush(self, log_point: bool) -> None:
        """Read the records now on the CPU; on a GPU at a log point at most once a second."""
        if self.read_every_step or (log_point and time.perf_counter() - self.last_flush >= FLUSH_INTERVAL_S):
            self.flush()
            self.last_flush = time.perf_counter()

    def flush(self) -> None:
        """Read pending step losses (one host sync), hand them to the callbacks, stop on NaN/Inf."""
        if not self.pending:
            return
        state = self.state
        values = torch.stack([v for _, _, v in self.pending]).float().tolist()
        records = [{"event": "step", "epoch": e, "step": s, "loss": v} for (e, s, _), v in zip(self.pending, values)]
        self.pending.clear()
        for cb in state.callbacks:
            cb.on_log(state, records)
        bad = next((r for r in records if not math.isfinite(r["loss"])), None)
        if bad is not None:
            raise Diverged(divergence_message(state, bad["loss"], self.epoch, bad["step"]))


class EpochSums:
    """Loss sum, correct answers and images seen in an epoch, summed on the device (float64 where
    the device has it). They start from a mid-epoch resume point's sums, so the additions happen in
    the same order as in an uninterrupted run (bit-identical metrics); under DDP the stored sums
    are global: rank 0 carries them, the others start from 0."""

    def __init__(self, state: TrainState) -> None:
        dev = state.device
        self.dtype = torch.float32 if dev.type == "mps" else torch.float64
        start = state.partial if state.dist.is_main else ZERO_PARTIAL
        self.loss_sum = torch.tensor(start["loss_sum"], device=dev, dtype=self.dtype)
        self.correct = torch.tensor(int(start["correct"]), device=dev, dtype=torch.int64)
        self.seen = int(start["seen"])

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        nb = int(y.shape[0])
        self.loss_sum += loss.detach() * nb
        self.correct += (logits.detach().argmax(1) == y).sum()
        self.seen += nb

    def read(self, dist: Distributed) -> tuple[float, float, float]:
        """(loss sum, correct, seen) over all processes: the one sync of the epoch."""
        dev = self.loss_sum.device
        seen = torch.tensor(float(self.seen), device=dev, dtype=self.dtype)
        totals = dist.all_reduce(torch.stack([self.loss_sum, self.correct.to(self.dtype), seen]))
        ls, corr, n = totals.tolist()
        return ls, corr, n


def _augmenter(state: TrainState, epoch: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The epoch's batch augmentation (identity for ``augment=none``); its generator is seeded from
    (seed, epoch, rank), or continues a mid-epoch resume point's draws."""
    cfg = state.config
    if cfg.augment == "none":
        return lambda x: x
    from glyphcore.data import augment_batch  # only runs that augment need it

    gen = state.aug_gen = torch.Generator(device=state.device)
    if state.aug_gen_state is not None:
        gen.set_state(state.aug_gen_state)
        state.aug_gen_state = None
    else:
        gen.manual_seed(aug_seed(cfg.seed, epoch, state.dist.rank))
    return lambda x: augment_batch(x, cfg.augment, generator=gen).contiguous(memory_format=torch.channels_last)


def _optimizer_step(state: TrainState, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step at the schedule's learning rate; returns the letters' (logits, loss).

    With outlier exposure (``state.non_letters``) the step's generated non-letters ride in the same
    forward pass, and their exposure loss, times ``outlier_exposure``, is added to what is minimised;
    the returned loss (the curves) is the letters' own.
    """
    cfg = state.config
    lr = lr_at(cfg.schedule, cfg.lr, state.step, state.total_steps)
    for g in state.optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)  # a transfer model's backbone: a fraction of the head's
    if cfg.compile == "reduce-overhead":
        torch.compiler.cudagraph_mark_step_begin()
    extra = state.non_letters.batch(cfg.seed, state.step, state.dist.shard) if state.non_letters else None
    extra = extra if extra is not None and extra.shape[0] else None  # a process whose share is none
    with autocast(state.device, state.amp_dtype):
        out = state.net(x if extra is None else torch.cat([x, extra]))
    logits = out[: y.shape[0]]
    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
    minimised = loss if extra is None else loss + cfg.outlier_exposure * exposure_loss(out[y.shape[0] :])
    state.optimizer.zero_grad(set_to_none=True)
    minimised.backward()
    state.optimizer.step()
    return logits, loss


def _should_stop(state: TrainState, losses: StepLosses, log_point: bool) -> bool:
    """Whether to stop after this step (cancel, time budget). Under DDP stopping is agreed on at
    step numbers every process reaches: the log points."""
    if state.dist.active:
        if not log_point:
            return False
        cancel, stop = state.dist.any_of([state.cancel_requested, state.stop_reason is not None], state.device)
        state.cancel_requested = cancel
        if stop and state.stop_reason is None:
            state.request_stop("time_budget", "another process reached the time budget")
        losses.flush()
    else:
        losses.maybe_flush(log_point)
    return state.cancel_requested or state.stop_reason is not None


def train_one_epoch(state: TrainState, epoch: int) -> dict[str, float]:
    """Train epoch ``epoch`` (1-based), from ``state.epoch_step`` on (a mid-epoch resume point).

    Returns:
        {"train_loss", "train_acc", "seconds" (training only), "images_per_s", "partial"}; all
        processes' shares summed under DDP.

    Raises:
        Diverged: a NaN/Inf training loss. Cancelled: SIGTERM (the resume point is mid-epoch).
    """
    cfg, steps = state.config, state.steps_per_epoch
    state.net.train()
    perm = epoch_permutation(cfg.seed, epoch, len(state.train_data)).to(state.device)
    augment = _augmenter(state, epoch)
    sums, losses = EpochSums(state), StepLosses(state, epoch)
    t0 = time.perf_counter()
    state.epoch_clock = (t0, state.epoch_step)  # images/s from the first logged steps on
    partial = False
    for i in range(state.epoch_step, steps):
        idx = state.dist.shard(perm[i * cfg.batch_size : (i + 1) * cfg.batch_size])
        x, y = state.train_data.batch(idx)
        logits, loss = _optimizer_step(state, augment(x), y)
        sums.add(loss, logits, y)
        state.step += 1
        state.epoch_step = i + 1
        log_point = losses.add(loss, i, last_step=i == steps - 1)
        for cb in state.callbacks:
            cb.on_step(state)
        if state.saver.failed:  # a checkpoint could not be written (a full disk): stop now, not an epoch later
            state.saver.raise_failure()
        if _should_stop(state, losses, log_point):
            partial = i != steps - 1
            break
    losses.flush()
    return _end_epoch(state, sums, epoch, time.perf_counter() - t0, partial)


def _end_epoch(state: TrainState, sums: EpochSums, epoch: int, seconds: float, partial: bool) -> dict[str, float]:
    """The epoch's figures; a cancel mid-epoch keeps its sums for the resume point instead."""
    ls, corr, seen = sums.read(state.dist)
    seconds += state.partial["seconds"]
    if not math.isfinite(ls):
        raise Diverged(divergence_message(state, ls, epoch, state.step))
    if state.cancel_requested and partial:
        # Keep the epoch's sums for the resume point; the epoch is neither validated nor recorded.
        state.partial = {"loss_sum": ls, "correct": corr, "seen": seen, "seconds": seconds}
        raise Cancelled()
    state.partial = dict(ZERO_PARTIAL)
    state.epoch_step = 0
    return {
        "train_loss": ls / max(seen, 1),
        "train_acc": corr / max(seen, 1),
        "seconds": seconds,
        "images_per_s": seen / seconds if seconds > 0 else 0.0,
        "partial": partial,
    }


def evaluate(
    model: nn.Module,
    data: DeviceData,
    *,
    batch_size: int = 1000,
    amp_dtype: torch.dtype | None = None,
    dist: Distributed | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy (no label smoothing) and accuracy (fraction) of ``model`` on ``data``.

    Big batches in order; sums stay on the device and are read once. Under DDP each process takes
    every ``world``-th batch and the sums are all-reduced.
    """
    dist = dist if dist is not None else Distributed()
    model.eval()
    dev = data.device
    dtype = torch.float64 if dev.type != "mps" else torch.float32
    loss_sum = torch.zeros((), device=dev, dtype=dtype)
    correct = torch.zeros((), device=dev, dtype=torch.int64)
    n = len(data)
    with torch.no_grad():
        for k, start in enumerate(range(0, n, batch_size)):
            if not dist.owns_batch(k):
                continue
            x, y = data.slice(start, min(start + batch_size, n))
            with autocast(dev, amp_dtype):
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
    ls, corr = dist.all_reduce(torch.stack([loss_sum, correct.to(dtype)])).tolist()
    return ls / n, corr / n


def evaluate_state(state: TrainState) -> tuple[float, float]:
    # Every process validates rank 0's BatchNorm statistics (each moved its own in the last step).
    state.dist.share_buffers(state.model)
    model = state.net
    if state.dist.active:  # DDP's forward would sync buffers again; a compiled DDP module: the plain one
        model = state.model if state.config.compile != "off" else getattr(state.net, "module", state.net)
    return evaluate(
        model, state.val_data, batch_size=state.config.eval_batch_size, amp_dtype=state.amp_dtype, dist=state.dist
    )


def validate_epoch(state: TrainState, epoch: int) -> tuple[float, float]:
    """Validation loss and accuracy after ``epoch``; Diverged for a NaN or a loss far above guessing."""
    val_loss, val_acc = evaluate_state(state)
    if not math.isfinite(val_loss):
        raise Diverged(divergence_message(state, val_loss, epoch, state.step))
    n, lr = len(state.classes), state.config.lr
    if loss_diverged(val_loss, epoch, n):
        raise Diverged(
            f"the validation loss is {val_loss:.4g} after epoch {epoch}, over {DIVERGED_CHANCE_FACTOR:g}x "
            f"the {math.log(n):.3f} of guessing uniformly among {n} classes: the training diverged. The learning "
            f"rate {lr:g} is likely too high for this model and data; lower it, e.g. to a tenth: --lr {lr / 10:g}"
        )
    state.chance = chance_note(val_acc, n, lr)
    return val_loss, val_acc
