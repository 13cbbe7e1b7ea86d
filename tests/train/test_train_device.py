"""glyphcore.train.device: what a user notices about the device and precision a run gets.

The CPU facts are read from /proc/cpuinfo here, independently of glyphcore, and the "no GPU"
cases run in a child process with CUDA hidden (CUDA_VISIBLE_DEVICES=""), so they hold on a GPU
machine too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from glyphcore.errors import ConfigError
from glyphcore.train.device import describe_device, device_name, resolve_amp, resolve_device

linux_only = pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads /proc/cpuinfo (Linux)")


def _cpuinfo() -> tuple[str, set[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo."""
    name, flags = "", set()
    for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not name:
            name = value.strip()
        if key.strip() == "flags" and not flags:
            flags = set(value.split())
    return name, flags


def _without_cuda(code: str) -> dict:
    """Run ``code`` (which prints one JSON object) in a Python that sees no CUDA GPU."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cuda_without_a_gpu_is_refused_with_the_fix_and_auto_falls_back():
    got = _without_cuda(
        "import json\n"
        "from glyphcore.errors import ConfigError\n"
        "from glyphcore.train.device import resolve_device\n"
        "out = {'auto': resolve_device('auto').type}\n"
        "for name in ('cuda', 'cuda:0'):\n"
        "    try:\n"
        "        out[name] = str(resolve_device(name))\n"
        "    except ConfigError as e:\n"
        "        out[name] = 'ConfigError: ' + str(e)\n"
        "print(json.dumps(out))\n"
    )
    for name in ("cuda", "cuda:0"):
        assert got[name] == (
            "ConfigError: device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu"
        ), name
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    assert got["auto"] == ("mps" if mps else "cpu")


def test_a_device_name_torch_does_not_know_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown device 'tpu': use auto, cpu, cuda, cuda:N or mps"):
        resolve_device("tpu")
    assert resolve_device("cpu") == torch.device("cpu")


@linux_only
def test_auto_precision_on_the_cpu_is_bf16_exactly_when_the_cpu_has_bf16_units():
    _, flags = _cpuinfo()
    native = bool(flags & {"avx512_bf16", "amx_bf16"})
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) == (torch.bfloat16 if native else None)
    # asked for explicitly, each setting is what it says, whatever the CPU
    assert resolve_amp("bf16", cpu) == torch.bfloat16 and resolve_amp("off", cpu) is None


def test_bf16_on_apple_gpus_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="bf16 autocast is not supported on mps here; use --amp off"):
        resolve_amp("bf16", torch.device("mps"))
    assert resolve_amp("auto", torch.device("mps")) is None  # fp32 there


@linux_only
def test_a_cpu_run_names_its_thread_count_in_words():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert device_name(torch.device("cpu")).startswith("cpu (1 thread, ")
        torch.set_num_threads(2)
        assert device_name(torch.device("cpu")).startswith("cpu (2 threads, ")
    finally:
        torch.set_num_threads(before)


def test_the_cpu_summary_names_the_processor_and_its_cores():
    name, _ = _cpuinfo()
    info = _without_cuda(
        "import json\nfrom glyphcore.train.device import describe_device\nprint(json.dumps(describe_device()))\n"
    )
    if info["kind"] == "mps":
        pytest.skip("this machine has an Apple GPU")
    assert info["kind"] == "cpu" and info["memory_gib"] is None
    summary = info["summary"]
    assert summary.startswith(f"CPU: {name}, ") and f", {os.cpu_count()} cores, " in summary
    assert summary.endswith("(no GPU found)") and info["torch"] == torch.__version__


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_gpu_summary_names_the_gpu_and_its_memory():
    info = describe_device()
    props = torch.cuda.get_device_properties(0)
    assert info["kind"] == "cuda" and info["name"] == props.name
    assert info["summary"].startswith(f"CUDA GPU: {props.name}") and info["summary"].endswith(" GiB")
    assert abs(info["memory_gib"] - props.total_memory / 1024**3) < 0.1
    count = torch.cuda.device_count()
    with pytest.raises(ConfigError, match=rf"device cuda:{count} does not exist: {count} GPU\(s\) are visible"):
        resolve_device(f"cuda:{count}")


def test_cpu_runs_keep_freed_memory_where_glibc_is():
    import platform
    import sys

    from glyphcore.train import keep_freed_cpu_memory

    # True only when glibc took both settings; elsewhere there is nothing to tune
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_cpu_memory() is expected


def test_training_and_inference_resolve_devices_in_one_place():
    from glyphcore.infer.predictor import inference_device

    assert inference_device(None) == torch.device("cpu")  # one drawing at a time is fastest there
    for name in ("meta", "tpu"):  # torch knows "meta"; neither trains nor predicts here
        for resolve in (resolve_device, inference_device):
            with pytest.raises(ConfigError, match=r"unknown device .*: use auto, cpu, cuda, cuda:N or mps"):
                resolve(name)
