"""The one place a device name becomes a ``torch.device``: training and inference both resolve here.

Names: ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda`` (this process's GPU under torchrun),
``cuda:N`` and ``mps``. A device this machine does not have is a ``ConfigError`` naming the fix.
"""

from __future__ import annotations

import torch

from glyphcore.errors import ConfigError

__all__ = ["resolve_device", "DEVICE_TYPES"]

DEVICE_TYPES = ("cpu", "cuda", "mps")  # what the app runs on; torch knows more (xla, meta, ...)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(
    name: str | torch.device | None = "auto", local_rank: int = 0, *, default: str = "auto"
) -> torch.device:
    """``name`` as a torch device on this machine.

    Args:
        name: auto, cpu, cuda, cuda:N, mps or a torch.device; None means ``default``.
        local_rank: this process's index on the machine (torchrun); picks the GPU of ``auto`` and ``cuda``.
        default: the name None stands for (inference defaults to cpu: one drawing is fastest there).

    Raises:
        ConfigError: an unknown device, or one this machine lacks (e.g. cuda without a GPU).
    """
    name = default if name is None else name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type not in DEVICE_TYPES:
        raise ConfigError(f"unknown device {str(name)!r}: use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        elif dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name} does not exist: {torch.cuda.device_count()} GPU(s) are visible")
    if dev.type == "mps" and not _mps_available():
        raise ConfigError("device mps was asked for but Metal is not available here; use --device auto or cpu")
    return dev
