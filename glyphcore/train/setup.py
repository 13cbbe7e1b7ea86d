"""Everything a fit does before its first epoch: device, data, model, optimizer, resume point, compile.

``setup`` returns the ``TrainState``; a failure is recorded in the run folder's status.json (the run
failed, not resumable for a bad setting) and raised.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glyphcore.checkpoint import load_checkpoint
from glyphcore.devices import resolve_device
from glyphcore.errors import ConfigError, DataError, GlyphError, os_reason
from glyphcore.infer.nonletter_pool import applies
from glyphcore.runfolder import store
from glyphcore.train.callbacks import Calibrate, Callback, EarlyStopping, RunFolderWriter, SaveBest, TimeBudget
from glyphcore.train.config import TrainConfig
from glyphcore.train.device import DeviceData, keep_freed_cpu_memory, resolve_amp
from glyphcore.train.distributed import Distributed
from glyphcore.train.epoch import autocast
from glyphcore.train.factories import build_model, count_params, make_optimizer
from glyphcore.train.nonletters import NonLetters
from glyphcore.train.state import TrainState
from glyphcore.train.tensorboard import tensorboard_callbacks

__all__ = ["setup", "default_callbacks", "error_message", "load_data", "dataset_info", "compile_model"]


def load_data(config: TrainConfig) -> tuple[Any, Any]:
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


def init_weights_from(model: nn.Module, ref: str) -> str:
    """Fine-tuning: copy the weights of a run's best.pt (or a .pt file) into ``model``; a head of
    another class count stays fresh (``glyphcore.models.finetune``). Returns a log line."""
    from glyphcore.models.finetune import load_backbone_from_checkpoint

    path = store.checkpoint_path(ref, "best")
    done = load_backbone_from_checkpoint(model, load_checkpoint(path))
    head = f", head left fresh ({len(done.skipped_head)} tensors)" if done.skipped_head else ""
    return f"Initialised {len(done.loaded)} tensors from {path}{head}"


def compile_model(state: TrainState) -> None:
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
    # the step's non-letters ride in the same forward pass (this process's share of them)
    extra = -(-state.non_letters.per_batch // state.world_size) if state.non_letters else 0
    train_shapes = {min(nb + extra, n_train) for nb in train_shapes}
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
            with autocast(dev, state.amp_dtype):
                out = state.net(x)
            F.cross_entropy(out.float(), y).backward()
    state.optimizer.zero_grad(set_to_none=True)
    state.net.eval()
    with torch.no_grad():
        for nb in sorted(eval_shapes):
            x, _ = state.val_data.slice(0, nb)
            for _ in range(reps):
                with autocast(dev, state.amp_dtype):
                    state.net(x)
    state.model.load_state_dict(snapshot)  # BatchNorm statistics moved during the warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    state.compile_seconds = time.perf_counter() - t0
    state.log(f"Compiled the model ({cfg.compile}) in {state.compile_seconds:.1f} s (not counted in the training time)")


def _prepare_device(config: TrainConfig, dist: Distributed) -> torch.device:
    """Threads, the device (joined to the process group under torchrun) and its speed settings."""
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device, dist.local_rank)
    dist.start(device)
    if device.type == "cpu":
        keep_freed_cpu_memory()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def dataset_info(config: TrainConfig, train_set: Any, val_set: Any) -> dict[str, Any]:
    """What the run records about its data (config.json, checkpoints), after checking that the two
    splits have the same classes and image shape."""
    classes = list(train_set.classes)
    if list(val_set.classes) != classes:
        raise DataError(f"the train and validation splits of {config.data} have different class lists")
    c, h, w = (int(s) for s in train_set.images.shape[1:])
    if tuple(val_set.images.shape[1:]) != (c, h, w):
        raise DataError(f"train images are {c}x{h}x{w} but validation images {tuple(val_set.images.shape[1:])}")
    meta = dict(getattr(train_set, "meta", {}) or {})
    return {
        "id": meta.get("id") or getattr(train_set, "source", config.data),
        "hash": meta.get("hash"),
        "source": getattr(train_set, "source", config.data),
        "classes": classes,
        "image_shape": [c, h, w],
        "splits": {"train": getattr(train_set, "split", "train"), "val": getattr(val_set, "split", config.val_split)},
        "counts": {"train": int(len(train_set.labels)), "val": int(len(val_set.labels))},
    }


def _make_model(config: TrainConfig, info: dict[str, Any], resuming: bool) -> tuple[nn.Module, str | None]:
    """The config's model, seeded (``seed``), within the parameter budget, fine-tuned from
    ``init_from`` unless its weights come from a resume point; returns it with a log line."""
    c, h, w = info["image_shape"]
    torch.manual_seed(config.seed)  # the weights' initialisation
    from_file = bool(config.init_from) or resuming
    model = build_model(config, c, (h, w), len(info["classes"]), weights_from_file=from_file)
    params = count_params(model)
    if config.param_budget is not None and params > config.param_budget:
        raise ConfigError(
            f"{config.model} has {params:,} trainable parameters, above the budget of {config.param_budget:,}: "
            f"pick a smaller model (or fewer channels), or raise --param-budget"
        )
    init_line = init_weights_from(model, config.init_from) if config.init_from and not resuming else None
    return model, init_line


def default_callbacks(config: TrainConfig, run_dir: Path | None, rank: int, name: str | None = None) -> list[Callback]:
    """The callbacks every fit has: save-best, early stopping / time budget when set, and (rank 0,
    with a run folder) the TensorBoard events when tensorboard is installed and the run-folder
    writer, last so it records what the others decided."""
    cbs: list[Callback] = [SaveBest()]
    if config.patience is not None:
        cbs.append(EarlyStopping(config.patience))
    if config.time_budget_min is not None:
        cbs.append(TimeBudget(config.time_budget_min))
    if run_dir is not None and rank == 0:
        cbs += tensorboard_callbacks(run_dir)  # imports torch.utils.tensorboard only when events are written
        cbs.append(RunFolderWriter(run_dir, name))
        cbs.append(Calibrate(run_dir))  # after the writer: the teardown runs in reverse, so before it
    return cbs


def setup(config: TrainConfig, run_path: Path | None, dist: Distributed, opts: dict[str, Any]) -> TrainState:
    """Everything before the first epoch: device, data, model, optimizer, resume point, compile. A
    failure is recorded in the run folder's status.json, then raised."""
    try:
        device = _prepare_device(config, dist)
        train_set, val_set = opts["train_set"], opts["val_set"]
        if train_set is None or val_set is None:
            train_set, val_set = load_data(config)
        info = dataset_info(config, train_set, val_set)
        resuming = opts["resume"] and run_path is not None and (run_path / store.LAST_CKPT).is_file()
        model, init_line = _make_model(config, info, resuming)
        model = model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        data = (DeviceData(train_set, device), DeviceData(val_set, device))
        state = TrainState(
            config,
            model,
            dist.wrap(model, device),
            make_optimizer(config, model, device),
            data,
            resolve_amp(config.amp, device),
            frame=(getattr(train_set, "meta", None) or {}).get("frame"),
            dataset_info=info,
            run_dir=run_path,
            dist=dist,
        )
        state.callbacks = default_callbacks(config, run_path, dist.rank, opts["name"]) + list(opts["callbacks"])
        if opts["resume"]:
            state.resume_from_folder(
                allow_data_change=opts["allow_data_change"], allow_config_change=opts["allow_config_change"]
            )
        if init_line:
            state.log(init_line)
        state.log(_start_line(state))
        _outlier_exposure(state)
        if config.compile != "off":
            compile_model(state)
    except BaseException as e:
        if run_path is not None and dist.is_main:
            _record_setup_failure(run_path, e)
        raise
    return state


def _outlier_exposure(state: TrainState) -> None:
    """Outlier exposure's pool on the device when the config asks for it and the data are letters; a log line."""
    cfg, info = state.config, state.dataset_info
    if not cfg.outlier_exposure:
        return
    if not applies(info["classes"], info["image_shape"]):
        state.log(
            f"Outlier exposure is off for {info['id']}: it is for letters in the glyph frame (classes A-Z a-z, "
            f"1 x 100 x 100); these classes or images are not"
        )
        return
    state.non_letters = NonLetters(cfg.batch_size, state.device)
    state.log(
        f"Outlier exposure: {state.non_letters.per_batch} generated non-letters in every step, pushed toward no "
        f"letter in particular (weight {cfg.outlier_exposure:g})"
    )


def _start_line(state: TrainState) -> str:
    amp_name = {None: "fp32", torch.bfloat16: "bf16"}.get(state.amp_dtype, str(state.amp_dtype))
    return (
        f"Training {state.model_name} ({state.params:,} parameters) on {state.device_name}, {amp_name}, "
        f"{len(state.train_data):,} training / {len(state.val_data):,} validation images"
        + (f", {state.world_size} processes" if state.dist.active else "")
    )


def _record_setup_failure(run_path: Path, e: BaseException) -> None:
    """status.json says the run failed before training; a bad setting, data set or resume point
    fails the same way again, so it is not offered a resume."""
    with contextlib.suppress(OSError):  # a full or read-only disk: the error being raised says so
        store.update_status(
            run_path,
            state="failed",
            ended=time.time(),
            pid=os.getpid(),
            resumable=not isinstance(e, GlyphError),
            message=error_message(e),
        )


def error_message(e: BaseException) -> str:
    """The status/console line for an error: a GlyphError's own text, an OS error's reason ("disk
    full ..."), else the exception's type and text."""
    if isinstance(e, GlyphError):
        return str(e)
    if isinstance(e, OSError):
        return os_reason(e)
    return f"{type(e).__name__}: {e}"
