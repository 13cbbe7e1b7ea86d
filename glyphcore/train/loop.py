"""The training loop: ``train_one_epoch``, ``evaluate`` and ``fit`` (setup, epochs, teardown).

Speed (DESIGN.md "Speed"): the data set sits on the device as ONE uint8 tensor; a batch is cut
from it by index and converted to float there; augmentation is batched per sample; the model and
its inputs are channels_last; bf16 autocast where the device runs it natively; evaluation uses big
batches; losses and accuracies are summed on the device and read once per epoch (plus the step-loss
records: every ``log_every`` steps on the CPU, where reading is free, at most once a second on a GPU).

Data parallel: started by torchrun (WORLD_SIZE > 1), every process holds the whole data set, takes
its share of each global batch (``batch_size`` is global), and only rank 0 writes the run folder.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glyphcore.checkpoint import load_checkpoint
from glyphcore.errors import ConfigError, DataError, GlyphError, RunError, os_reason
from glyphcore.runs import store
from glyphcore.runs.lock import hold_trainer_lock, release_trainer_lock
from glyphcore.train.callbacks import DIVERGED_CHANCE_FACTOR, Callback, default_callbacks, loss_diverged
from glyphcore.train.config import TrainConfig, validate_config
from glyphcore.train.device import (
    DeviceData,
    _aug_seed,
    epoch_permutation,
    keep_freed_cpu_memory,
    resolve_amp,
    resolve_device,
)
from glyphcore.train.factories import build_model, count_params, lr_at, make_optimizer
from glyphcore.train.state import FitResult, TrainState, _Cancelled, _Diverged

__all__ = ["train_one_epoch", "evaluate", "fit", "FLUSH_INTERVAL_S"]

FLUSH_INTERVAL_S = 1.0  # s between step-loss reads on a GPU (each read is a host sync)


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
    return (
        f"the training loss became {value} at epoch {epoch}, step {step}: the learning rate {lr:g} is too "
        f"high for this model and data. Lower it, e.g. to a tenth: --lr {lr / 10:g}"
    )


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
    state.epoch_clock = (t0, state.epoch_step)  # images/s from the first logged steps on
    partial = False
    compiled_graphs = cfg.compile == "reduce-overhead"
    first_step = state.epoch_step if epoch == state.epoch + 1 and not state.logged_first_step else -1
    state.logged_first_step = True
    for i in range(state.epoch_step, steps):
        idx = perm[i * b : (i + 1) * b]
        if world > 1:
            idx = idx[rank::world]
        x, y = data.batch(idx)
        if cfg.augment != "none":
            x = augment_batch(x, cfg.augment, generator=state.aug_gen).contiguous(memory_format=torch.channels_last)
        lr = lr_at(cfg.schedule, cfg.lr, state.step, state.total_steps)
        for g in state.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)  # a transfer model's backbone: a fraction of the head's
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
        # the first step of a session is logged too: the live curve has a point within seconds
        log_point = state.step % cfg.log_every == 0 or last_step or i == first_step
        if log_point:
            pending.append((epoch, state.step, window / window_n))
            window = torch.zeros((), device=dev)
            window_n = 0
        for cb in state.callbacks:
            cb.on_step(state)
        if state.saver.failed:  # a checkpoint could not be written (a full disk): stop now, not an epoch later
            state.saver.raise_failure()
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
    totals = torch.stack(
        [loss_sum, correct.to(acc_dtype), torch.tensor(float(seen_local), device=dev, dtype=acc_dtype)]
    )
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
    rank: int = 0,
    world_size: int = 1,
) -> tuple[float, float]:
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
        val_split = "valid" if "valid" in splits else "test" if "test" in splits else ""
        if not val_split:
            raise DataError(
                f"{config.data} has no valid or test split to validate on (it has {', '.join(splits)}); "
                f"pass --val-split"
            )
    return load_dataset(config.data, "train"), load_dataset(config.data, val_split)


def _init_weights_from(model: nn.Module, ref: str) -> str:
    """Fine-tuning: copy the weights of a run's best.pt (or a .pt file) into ``model``; a head of
    another class count stays fresh (``glyphcore.models.finetune``). Returns a log line."""
    from glyphcore.models.finetune import load_backbone_from_checkpoint

    path = store.checkpoint_path(ref, "best")
    done = load_backbone_from_checkpoint(model, load_checkpoint(path))
    head = f", head left fresh ({len(done.skipped_head)} tensors)" if done.skipped_head else ""
    return f"Initialised {len(done.loaded)} tensors from {path}{head}"


def _compile(state: TrainState) -> None:
    """torch.compile the model and warm it up on every shape the run will see (train batch, its
    remainder, eval batch, its remainder), then restore the weights: the run is unchanged, and the
    compile time is measured apart (``state.compile_seconds``)."""
    cfg, dev = state.config, state.device
    t0 = time.perf_counter()
    state.net = torch.compile(  # type: ignore[assignment]  # a compiled module is called like the module
        state.net, mode=None if cfg.compile == "default" else cfg.compile, dynamic=False
    )
    snapshot = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
    n_train, n_val = len(state.train_data), len(state.val_data)
    per_rank = max(cfg.batch_size // state.world_size, 1)
    train_shapes = {min(per_rank, n_train)}
    rem = n_train % cfg.batch_size
    if rem and rem // state.world_size:
        train_shapes.add(rem // state.world_size)
    eval_shapes = {min(cfg.eval_batch_size, n_val)} | (
        {n_val % cfg.eval_batch_size} if n_val % cfg.eval_batch_size else set()
    )
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
) -> FitResult:
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
        allow_data_change: resume even though the data set's hash differs from the resume point's
            (refused by default: the run would silently continue on other data).

    Returns:
        FitResult; the model holds the best weights.

    Raises:
        ConfigError, DataError, CheckpointError: bad settings, data or resume point (also recorded
            as a failed run in the run folder). Other exceptions propagate after the same record.
    """
    validate_config(config)
    cancel = _SignalCancel()
    with _signals_to(cancel, handle_signals):
        state = _setup(config, run_dir, train_set, val_set, callbacks, resume, name, allow_data_change)
        cancel.attach(state)
        return _run_loop(state)


def _setup(
    config: TrainConfig,
    run_dir: str | os.PathLike | None,
    train_set: Any,
    val_set: Any,
    callbacks: Sequence[Callback],
    resume: bool,
    name: str | None,
    allow_data_change: bool = False,
) -> TrainState:
    """Everything before the first epoch: processes, device, data, model, optimizer, resume point,
    compile. A failure is recorded in the run folder's status.json, then raised."""
    rank, local_rank, world = _dist_env()
    run_path = Path(run_dir) if run_dir is not None else None
    if run_path is not None and rank == 0:
        _claim_run_dir(run_path)  # refused before anything is written: the folder may be another trainer's
    try:
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
        if train_set is None or val_set is None:
            train_set, val_set = _load_data(config)
        classes = list(train_set.classes)
        if list(val_set.classes) != classes:
            raise DataError(f"the train and validation splits of {config.data} have different class lists")
        c, h, w = (int(s) for s in train_set.images.shape[1:])
        if tuple(val_set.images.shape[1:]) != (c, h, w):
            raise DataError(f"train images are {c}x{h}x{w} but validation images {tuple(val_set.images.shape[1:])}")
        torch.manual_seed(config.seed)  # the weights' initialisation
        from_file = bool(config.init_from) or (
            resume and run_path is not None and (run_path / store.LAST_CKPT).is_file()
        )
        model = build_model(config, c, (h, w), len(classes), weights_from_file=from_file)
        params = count_params(model)
        if config.param_budget is not None and params > config.param_budget:
            raise ConfigError(
                f"{config.model} has {params:,} trainable parameters, above the budget of {config.param_budget:,}: "
                f"pick a smaller model (or fewer channels), or raise --param-budget"
            )
        init_line = _init_weights_from(model, config.init_from) if config.init_from and not resume else None
        model = model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        meta = dict(getattr(train_set, "meta", {}) or {})
        dataset_info = {
            "id": meta.get("id") or getattr(train_set, "source", config.data),
            "hash": meta.get("hash"),
            "source": getattr(train_set, "source", config.data),
            "classes": classes,
            "image_shape": [c, h, w],
            "splits": {
                "train": getattr(train_set, "split", "train"),
                "val": getattr(val_set, "split", config.val_split),
            },
            "counts": {"train": int(len(train_set.labels)), "val": int(len(val_set.labels))},
        }
        net: nn.Module = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        optimizer = make_optimizer(config, model, device)
        state = TrainState(
            config,
            model,
            net,
            optimizer,
            DeviceData(train_set, device),
            DeviceData(val_set, device),
            device,
            amp_dtype,
            classes=classes,
            frame=meta.get("frame"),
            dataset_info=dataset_info,
            run_dir=run_path,
            rank=rank,
            world_size=world,
        )
        state.callbacks = default_callbacks(config, run_path, rank, name) + list(callbacks)
        if resume:
            if run_path is None:
                raise ConfigError("resume needs the run folder (run_dir)")
            last = run_path / store.LAST_CKPT
            if last.is_file():
                best_path = run_path / store.BEST_CKPT
                best = load_checkpoint(best_path)["state_dict"] if best_path.is_file() else None
                resume_point = load_checkpoint(last, map_location=device)
                saved_ds = resume_point.get("dataset")
                was = saved_ds.get("hash") if isinstance(saved_ds, dict) else None
                now = dataset_info.get("hash")
                if was and now and was != now and not allow_data_change:
                    raise DataError(
                        f"the data set {config.data} changed since this run was trained on it (hash {str(was)[:12]} "
                        f"then, {str(now)[:12]} now): resuming would mix two data sets. Rebuild the old one, start "
                        f"a new run, or pass --allow-data-change to continue on the new data anyway"
                    )
                state.load_resume_point(resume_point, best)
                where = (
                    f"epoch {state.epoch + 1}, step {state.epoch_step + 1}"
                    if state.epoch_step
                    else f"epoch {state.epoch + 1}"
                )
                state.log(f"Resumed from {store.LAST_CKPT} at {where} (global step {state.step})")
            else:
                state.resumed = True  # no resume point yet: start over in the same folder
                state.log(f"No {store.LAST_CKPT} to resume from: starting over")
        if init_line:
            state.log(init_line)
        amp_name = {None: "fp32", torch.bfloat16: "bf16"}.get(amp_dtype, str(amp_dtype))
        state.log(
            f"Training {state.model_name} ({state.params:,} parameters) on {state.device_name}, {amp_name}, "
            f"{len(state.train_data):,} training / {len(state.val_data):,} validation images"
            + (f", {world} processes" if world > 1 else "")
        )
        if config.compile != "off":
            _compile(state)
    except BaseException as e:
        if run_path is not None and rank == 0:
            # A bad setting, data set or resume point fails the same way again: not offered a resume.
            with contextlib.suppress(OSError):  # a full or read-only disk: the error below says so
                store.update_status(
                    run_path,
                    state="failed",
                    ended=time.time(),
                    pid=os.getpid(),
                    resumable=not isinstance(e, GlyphError),
                    message=_error_message(e),
                )
            release_trainer_lock(run_path)
        raise
    return state


def _error_message(e: BaseException) -> str:
    """The status/console line for an error: a GlyphError's own text, an OS error's reason ("disk
    full ..."), else the exception's type and text."""
    if isinstance(e, GlyphError):
        return str(e)
    if isinstance(e, OSError):
        return os_reason(e)
    return f"{type(e).__name__}: {e}"


def _claim_run_dir(run_path: Path) -> None:
    """Create the run folder, take its trainer lock for this process's life (a second trainer is
    refused: ``glyphcore.runs.lock``), and remove the temporary files killed writers left there.

    Raises:
        RunError: the folder is the starter's, a file, not writable, or another process trains in it.
    """
    from glyphcore import paths

    if run_path.exists() and not run_path.is_dir():
        raise RunError(f"--run-dir {run_path} is a file, not a folder: pass a folder for the run")
    if run_path.resolve() == paths.starter_dir().resolve():
        raise RunError(
            "the starter run is read-only: train into another folder (fine-tune it with "
            "--init-from starter) and copy the files over yourself if you mean to replace it"
        )
    try:
        run_path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot create the run folder {run_path}: {os_reason(e)}") from None
    hold_trainer_lock(run_path)
    store.clean_orphan_tmps(run_path)


def _run_loop(state: TrainState) -> FitResult:
    cfg = state.config
    end_state, message, error = "done", "", None
    try:
        for cb in state.callbacks:
            cb.on_fit_start(state)
    except BaseException:  # e.g. a read-only or full disk: nothing could be recorded
        state.saver.close()
        if state.run_dir is not None and state.rank == 0:
            release_trainer_lock(state.run_dir)
        raise
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
            if loss_diverged(val_loss, epoch, len(state.classes)):
                lr = cfg.lr
                raise _Diverged(
                    f"the validation loss is {val_loss:.4g} after epoch {epoch}, over {DIVERGED_CHANCE_FACTOR:g}x "
                    f"the {math.log(len(state.classes)):.3f} of guessing uniformly among {len(state.classes)} "
                    f"classes: the training diverged. The learning rate {lr:g} is likely too high for this model "
                    f"and data; lower it, e.g. to a tenth: --lr {lr / 10:g}"
                )
            state.epoch = epoch
            record = {
                "epoch": epoch,
                "step": state.step,
                "train_loss": tr["train_loss"],
                "train_acc": tr["train_acc"],
                "val_loss": val_loss,
                "val_acc": val_acc,
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
            message += (
                f"; best epoch {state.best_epoch}: val loss {state.best_val_loss:.6f}, "
                f"val acc {100 * (state.best_val_acc or 0):.2f}%"
            )
    except _Diverged as e:
        end_state, message = "diverged", str(e)
    except _Cancelled:
        end_state = "cancelled"
        where = (
            f"epoch {state.epoch + 1}, step {state.epoch_step}" if state.epoch_step else f"after epoch {state.epoch}"
        )
        message = f"cancelled at {where}; resume continues from there"
    except BaseException as e:  # recorded as failed, then raised
        end_state, error = "failed", e
        message = _error_message(e)
        if isinstance(e, OSError):
            message = f"could not write the run folder: {message}"
    wall = state.wall_seconds()
    state.elapsed_before, state._t_start = wall, None
    result = FitResult(
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
        if state.run_dir is not None and state.rank == 0:
            release_trainer_lock(state.run_dir)
    if error is not None:
        raise error
    return result


def _evaluate_state(state: TrainState) -> tuple[float, float]:
    if state.world_size > 1:
        import torch.distributed as dist

        # Every process validates rank 0's BatchNorm statistics (each moved its own in the last step).
        for buf in state.model.buffers():
            dist.broadcast(buf, 0)
    model: nn.Module = state.net.module if state.world_size > 1 and hasattr(state.net, "module") else state.net  # type: ignore[assignment]
    if state.world_size > 1 and state.config.compile != "off":
        model = state.model
    return evaluate(
        model,
        state.val_data,
        batch_size=state.config.eval_batch_size,
        amp_dtype=state.amp_dtype,
        rank=state.rank,
        world_size=state.world_size,
    )
