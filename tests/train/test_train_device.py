"""glyphcore.device: the device line of the home page."""

from __future__ import annotations

import torch

from glyphcore.train.device import describe_device


def test_describes_the_device_torch_would_use():
    info = describe_device()
    if torch.cuda.is_available():
        assert info["kind"] == "cuda" and info["memory_gib"] > 0
        assert info["name"] == torch.cuda.get_device_name(0) and "GiB" in info["summary"]
    elif torch.backends.mps.is_available():
        assert info["kind"] == "mps"
    else:
        assert info["kind"] == "cpu" and info["memory_gib"] is None
        assert info["summary"].startswith("CPU: ") and f"{info['cpu_count']} cores" in info["summary"]
    assert info["torch"] == torch.__version__
