"""A run that fails says why: in its status, in `runs list`, and it is not offered a resume that
would fail the same way again. The device list offers only what this machine has."""

from __future__ import annotations

import subprocess
import sys

import pytest
from run_folders import wait_until_ended, write_run  # tests/run_folders.py

from glyphcore import runs
from glyphcore.cli import main
from glyphcore.errors import RunError
from glyphcore.train.config import make_config
from glyphcore.train.device import available_devices

no_gpu = pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="needs a machine without a CUDA GPU (asks for cuda and must fail)"
)


@no_gpu
def test_a_run_asking_for_a_missing_gpu_fails_with_the_reason_and_no_resume(tiny_glyphs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path / "runs"))
    run_id = runs.launch(make_config("report", device="cuda", epochs=1, threads=1))
    status = wait_until_ended(run_id)

    assert status["state"] == "failed"  # not "crashed": the process recorded why before it ended
    assert "no CUDA GPU is visible" in status["message"]
    assert not runs.can_resume(status)
    with pytest.raises(RunError, match="would fail the same way again"):
        runs.resume(run_id)
    assert main(["runs", "list"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith(run_id))
    assert "failed" in line and "no CUDA GPU is visible" in line


def test_a_crashed_run_reports_the_last_error_line_of_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that was a process and is gone
    run_dir = write_run(tmp_path, "crashed-run", state="running", pid=dead.pid)
    (run_dir / runs.LOG_FILE).write_text(
        'Epoch 1/3 ...\nTraceback (most recent call last):\n  File "x.py", line 1\n'
        "RuntimeError: DefaultCPUAllocator: not enough memory: you tried to allocate 123 bytes\n"
    )

    status = runs.read_status("crashed-run")

    assert status["state"] == "crashed"
    assert "RuntimeError: DefaultCPUAllocator: not enough memory" in status["message"]
    assert runs.can_resume(status)  # a crash may pass on a second try: resume is offered


def test_only_devices_this_machine_has_are_offered():
    import torch

    assert available_devices({"kind": "cpu", "count": 1}) == ["auto", "cpu"]
    assert available_devices({"kind": "cuda", "count": 1}) == ["auto", "cpu", "cuda"]
    assert available_devices({"kind": "cuda", "count": 2}) == ["auto", "cpu", "cuda", "cuda:0", "cuda:1"]
    assert available_devices({"kind": "mps", "count": 1}) == ["auto", "cpu", "mps"]
    assert ("cuda" in available_devices()) == torch.cuda.is_available()  # this machine


@pytest.mark.slow
def test_separately_launched_runs_each_get_their_own_gpu(tiny_glyphs, tmp_path, monkeypatch):
    # No GPU here: the GPU count is the one stand-in (the launched process then fails on "no CUDA GPU",
    # after the launcher has written its config).
    from glyphcore.runs import process

    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(process, "_visible_gpus", lambda: 2)
    # a run training on cuda:0 (a live process whose command line names glyphcore, as a trainer's does)
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m", "glyphcore.standin"])
    try:
        run_dir = write_run(tmp_path, "on-gpu-0", state="running", pid=busy.pid)
        runs.write_json_atomic(run_dir / runs.CONFIG_FILE, {**runs.read_config(run_dir), "device": "cuda:0"})
        assert runs.read_status("on-gpu-0")["state"] == "running"
        second = runs.launch(make_config("report", epochs=1))
        pinned = runs.launch(make_config("report", epochs=1, device="cpu"))
        assert runs.read_config(second)["device"] == "cuda:1"
        assert runs.read_config(pinned)["device"] == "cpu"  # a device the user chose is kept
        for run_id in (second, pinned):
            wait_until_ended(run_id)
    finally:
        busy.kill()
        busy.wait()


def test_a_done_run_whose_trainer_is_still_exiting_says_done_not_cancel(tmp_path, monkeypatch):
    from glyphcore.runfolder.lock import hold_trainer_lock, release_trainer_lock

    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    run_dir = write_run(tmp_path, "finished", state="done", epochs=3)
    hold_trainer_lock(run_dir)  # its trainer has written "done" and not exited yet
    try:
        with pytest.raises(RunError, match=r"is done and cannot be resumed\. Pass a larger epochs="):
            runs.resume("finished")
        with pytest.raises(RunError, match="being trained by another process"):
            runs.resume("finished", epochs=10)  # more epochs: that has to wait for the process to end
    finally:
        release_trainer_lock(run_dir)
    assert runs.read_status("finished")["state"] == "done"  # nothing was queued by the refusals
