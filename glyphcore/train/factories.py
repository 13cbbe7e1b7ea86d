"""What a TrainConfig builds: the model, the optimizer and the learning rate of every step."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.train.config import CHOICES, TrainConfig

__all__ = ["build_model", "count_params", "make_optimizer", "lr_at", "ONECYCLE_WARMUP"]

ONECYCLE_WARMUP = 0.25  # fraction of all steps spent rising to the peak lr (onecycle)
ONECYCLE_DIV = 25.0  # onecycle starts at peak / 25 ...
ONECYCLE_FINAL_DIV = 1e4  # ... and ends at peak / 25 / 1e4 (torch's OneCycleLR defaults)


def build_model(
    config: TrainConfig,
    in_channels: int,
    input_size: tuple[int, int],
    num_classes: int,
    *,
    weights_from_file: bool = False,
) -> nn.Module:
    """The model of ``config`` for images C x H x W and ``num_classes`` classes.

    Args:
        weights_from_file: the weights will be replaced by a checkpoint's (a resume point or
            ``init_from``): the model's recorded options (resnet18's ``pretrained``) are forced off,
            so that nothing is downloaded or loaded from torch hub for weights about to be overwritten.

    Raises:
        ConfigError: unknown model, activation or option, or a size the model cannot take (from
            ``glyphcore.models.create_model``, whose messages list the valid values).
    """
    from glyphcore.models import create_model, model_entry

    options = dict(config.model_options)
    if weights_from_file:
        options.update(model_entry(config.model).recorded)
    return create_model(
        config.model,
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=input_size,
        activation=config.activation,
        batchnorm=config.batchnorm,
        dropout=config.dropout,
        **options,
    )


def count_params(model: nn.Module) -> int:
    """Trainable parameters (the report's 702,948 for seed_cnn)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_optimizer(config: TrainConfig, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD over the trainable parameters (in ``param_groups``, each with its
    ``lr_scale``); the fused kernels where the device has them (CUDA, CPU: one kernel for all
    parameters), else torch's default (foreach)."""
    from glyphcore.models import param_groups  # a transfer model's backbone may take a lower lr

    params = param_groups(model, config.lr)
    if not any(g["params"] for g in params):
        raise ConfigError(f"{config.model} has no trainable parameters (everything is frozen)")
    cls: type[torch.optim.Optimizer]
    kw: dict[str, Any]
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
