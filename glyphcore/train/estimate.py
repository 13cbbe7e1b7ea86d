"""How long a run will take, before it starts: measured on this machine, not guessed.

``measure_speed`` times a few real optimizer steps of the config's model at its batch size, device
and precision on random images of the data's shape (after one warm-up step); ``estimate_run``
turns that speed into the seconds of a whole run: every epoch's training images, plus validation
(a forward pass costs about a third of a training step per image), plus the process start-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from glyphcore.train.config import TrainConfig, validate_config
from glyphcore.train.device import keep_freed_cpu_memory, resolve_amp, resolve_device
from glyphcore.train.factories import build_model, make_optimizer

__all__ = ["RunEstimate", "measure_speed", "estimate_run", "STARTUP_S", "EVAL_COST"]

STARTUP_S = 4.0  # s from Launch to the first step: python, torch and the data set load (measured 3-5 s)
EVAL_COST = 1 / 3  # a validation image costs about a third of a training image (forward only)


@dataclass(frozen=True)
class RunEstimate:
    """The expected length of a run.

    Attributes:
        seconds: whole run, start-up and validation included.
        images_per_s: the measured training speed it rests on.
        steps: optimizer steps in all.
    """

    seconds: float
    images_per_s: float
    steps: int


def measure_speed(config: TrainConfig, shape: tuple[int, int, int], num_classes: int, steps: int = 3) -> float:
    """Training images per second of ``config`` on this machine, from ``steps`` timed optimizer
    steps (after one untimed warm-up step) on random images of ``shape`` (C, H, W).

    Raises:
        ConfigError: a setting the model or the device cannot take (the run would fail the same way).
    """
    config = validate_config(replace(config))
    device = resolve_device(config.device)
    amp = resolve_amp(config.amp, device)
    if device.type == "cpu":
        keep_freed_cpu_memory()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        torch.manual_seed(0)
        model = build_model(config, shape[0], (shape[1], shape[2]), num_classes)
        model = model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        optimizer = make_optimizer(config, model, device)
        x = torch.rand((config.batch_size, *shape), device=device).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, num_classes, (config.batch_size,), device=device)
        model.train()
        t0 = 0.0
        for i in range(steps + 1):
            if i == 1:  # the first step allocates and picks kernels: not timed
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
            with torch.autocast(device.type, dtype=amp) if amp is not None else torch.enable_grad():
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    return steps * config.batch_size / max(seconds, 1e-9)


def estimate_run(config: TrainConfig, n_train: int, n_val: int, images_per_s: float) -> RunEstimate:
    """The seconds of a whole run of ``config`` on ``n_train`` training and ``n_val`` validation
    images at ``images_per_s`` (``measure_speed``'s figure); a time budget caps it."""
    steps_per_epoch = -(-n_train // config.batch_size)
    per_epoch = n_train / images_per_s + EVAL_COST * n_val / images_per_s
    training = config.epochs * per_epoch
    if config.time_budget_min is not None:  # the run stops there (and validates the epoch it cut short)
        training = min(training, 60.0 * config.time_budget_min + EVAL_COST * n_val / images_per_s)
    return RunEstimate(STARTUP_S + training, images_per_s, steps_per_epoch * config.epochs)
