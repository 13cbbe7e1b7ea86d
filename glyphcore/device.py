"""The compute device this machine offers, described for people (the app's home page, the CLI).

Training picks its device itself (glyphcore.train); this module only reports what is there.
"""

from __future__ import annotations

import os

__all__ = ["describe_device"]

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
