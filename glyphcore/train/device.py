"""Where a run computes: device and precision policy, the CPU allocator setting, device-resident data.

``resolve_device`` (from ``glyphcore.devices``, the one resolver) / ``resolve_amp`` turn the ``device``
and ``amp`` settings into a torch device and an autocast dtype; ``DeviceData`` holds a split as ONE
uint8 tensor on that device and cuts batches from it there; ``describe_device`` tells a person what
this machine offers (the home page, the CLI).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import warnings
from typing import Any

import numpy as np
import torch

from glyphcore.devices import resolve_device
from glyphcore.errors import ConfigError, DataError

__all__ = [
    "resolve_device",
    "resolve_amp",
    "cpu_has_native_bf16",
    "keep_freed_cpu_memory",
    "DeviceData",
    "epoch_permutation",
    "aug_seed",
    "device_name",
    "describe_device",
    "available_devices",
]


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
        font_ids: the image set's font per image (host memory), or None; with ``meta`` (its manifest's
            facts, e.g. ``"fonts"``), what calibration folds and checks by font family.
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
            raise DataError(
                f"the {getattr(image_set, 'split', '')} split of {getattr(image_set, 'source', '')} is empty"
            )
        # A read-only memmap backs the tensor as it is: batches are gathered from it (never written),
        # so the process starts without copying the split (0.6 GB for glyphs-52: 0.7-2 s of start-up
        # on 2 cores) and the pages are shared with the OS's file cache. On a GPU it is copied
        # straight onto the device.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "the given NumPy array is not writable"
            host = torch.from_numpy(images)
        self.images = host.to(device)
        self.labels = torch.from_numpy(labels.astype(np.int64)).to(device)
        self.device = device
        self.font_ids, self.meta = getattr(image_set, "font_ids", None), getattr(image_set, "meta", None)

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


# torch generators take seeds below 2**64: derived seeds wrap there (any seed up to MAX_SEED runs; the
# seeds that never reach it derive exactly as before)
_SEED_SPACE = 2**64


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The shuffle of epoch ``epoch`` (1-based): the same for every process and every resume."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % _SEED_SPACE)
    return torch.randperm(n, generator=g)


def aug_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of epoch ``epoch``'s augmentation draws in process ``rank``."""
    return ((seed * 1_000_003 + epoch) * 7919 + 104_729 * (rank + 1)) % _SEED_SPACE


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'' if n == 1 else 's'}, {platform.processor() or platform.machine()})"
    return str(device)


_GIB = 1024**3


def describe_device() -> dict:
    """Describe the best device torch can use here: a CUDA GPU, Apple MPS, or the CPU.

    Imports torch (about a second): call it once and cache the answer.

    Returns:
        A dict with:
        ``kind`` ("cuda" | "mps" | "cpu"); ``name`` (e.g. "NVIDIA H200", "Apple MPS", the CPU's model
        or "CPU"); ``memory_gib`` (float, total memory of GPU 0 in GiB; None for MPS/CPU);
        ``count`` (number of CUDA GPUs, 1 otherwise); ``cpu_count`` (logical cores);
        ``torch_threads`` (torch's intra-op threads); ``torch`` (version string);
        ``bf16`` (bool: bf16 autocast is supported); ``summary`` (one line for a person).
    """
    import torch

    info: dict = {
        "kind": "cpu",
        "name": _cpu_name(),
        "memory_gib": None,
        "count": 1,
        "cpu_count": os.cpu_count() or 1,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "bf16": False,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            kind="cuda",
            name=props.name,
            memory_gib=round(props.total_memory / _GIB, 1),
            count=torch.cuda.device_count(),
            bf16=bool(torch.cuda.is_bf16_supported()),
        )
        more = f" (x{info['count']})" if info["count"] > 1 else ""
        info["summary"] = f"CUDA GPU: {props.name}{more}, {info['memory_gib']} GiB"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        info.update(kind="mps", name="Apple MPS")
        info["summary"] = "Apple MPS (Metal) GPU"
    else:
        info["summary"] = (
            f"CPU: {info['name']}, {info['cpu_count']} cores, {info['torch_threads']} torch threads (no GPU found)"
        )
    return info


def available_devices(info: dict | None = None) -> list[str]:
    """The ``device`` settings this machine can run: ``auto`` and ``cpu`` always, ``cuda`` (and
    ``cuda:N`` for each of several GPUs) where CUDA sees a GPU, ``mps`` on Apple silicon.

    Args:
        info: ``describe_device()``'s answer, when the caller has it (it imports torch).
    """
    info = info if info is not None else describe_device()
    devices = ["auto", "cpu"]
    if info.get("kind") == "cuda":
        count = int(info.get("count") or 1)
        devices += ["cuda"] + ([f"cuda:{i}" for i in range(count)] if count > 1 else [])
    elif info.get("kind") == "mps":
        devices.append("mps")
    return devices


def _cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "CPU"
