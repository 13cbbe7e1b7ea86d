"""Run processes: real detached training processes that are cancelled (SIGTERM), killed (SIGKILL),
resumed and deleted, on the tiny glyphs-52."""

from __future__ import annotations

import json
import os
import signal

import pytest
from run_folders import wait_for, wait_until_ended  # tests/run_folders.py

from glyphcore import paths, runs
from glyphcore.checkpoint import load_checkpoint
from glyphcore.errors import ConfigError, RunError
from glyphcore.runfolder import status as run_status
from glyphcore.train.config import make_config


def small(**kw):
    """The report's recipe on the tiny glyphs-52 (520 training images), for a few seconds: batch 5
    makes 104 steps an epoch; one thread keeps the machine free."""
    base = dict(epochs=3, batch_size=5, log_every=1, threads=1, lr=2e-3)
    return make_config(**{**base, **kw})


def log_of(run_id) -> str:
    return (paths.runs_dir() / run_id / runs.LOG_FILE).read_text()


# A sitecustomize.py that holds a Python process at start-up, before any glyphcore code runs, until
# the test lets it go: a training process in the state "running, still importing torch", made on
# purpose instead of hoped for after a sleep.
HOLD_AT_STARTUP = """
import os, time
_gate = os.environ.get("GLYPH_TEST_HOLD")
if _gate:
    open(_gate + ".reached", "w").close()
    while not os.path.exists(_gate):
        time.sleep(0.01)
"""


@pytest.fixture
def held_at_startup(tmp_path, monkeypatch):
    """Processes started from here on wait at start-up; returns the gate file (create it to release them)."""
    site = tmp_path / "hold-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HOLD_AT_STARTUP)
    gate = tmp_path / "gate"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("GLYPH_TEST_HOLD", str(gate))
    before = set(run_status.CHILD_PROCESSES)
    yield gate
    for pid in set(run_status.CHILD_PROCESSES) - before:  # a process the test did not end is ended here
        proc = run_status.CHILD_PROCESSES[pid]
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_run_cancelled_before_its_process_handles_signals_is_cancelled_not_crashed(
    runs_root, tiny_glyphs, held_at_startup
):
    """SIGTERM's default action kills a process that has not yet installed the handler (it is still
    importing): the store must report the run cancelled, from the cancel request it recorded."""
    run_id = runs.launch(small())
    wait_for(lambda: held_at_startup.with_name("gate.reached").exists(), timeout=60)
    raw = runs.read_json(runs_root / run_id / runs.STATUS_FILE)
    assert raw["state"] == "queued" and raw["launcher_pid"]  # the process never got to write "running"
    proc = run_status.CHILD_PROCESSES[raw["launcher_pid"]]
    status = runs.cancel(run_id, wait=30)
    assert proc.returncode == -signal.SIGTERM  # it really died of the signal, unhandled
    assert status["state"] == "cancelled" and status["message"] == "cancelled before training started"
    assert runs.list_runs()[0].state == "cancelled"
    assert not (runs_root / run_id / runs.LAST_CKPT).exists()  # nothing trained, nothing saved
    # Without the recorded request the same death is a crash: the request is what tells them apart.
    runs.update_status(runs_root / run_id, cancel_requested=None)
    assert runs.read_status(run_id)["state"] == "crashed"


@pytest.mark.slow
def test_a_run_cancelled_while_it_trains_saves_its_resume_point_and_says_so_itself(runs_root, tiny_glyphs):
    """Once the process writes "running" its SIGTERM handler is in place: it stops after the step,
    saves last.pt, writes "cancelled" itself and exits 0."""
    run_id = runs.launch(small())
    run_dir = runs_root / run_id
    wait_for(lambda: (runs.read_json(run_dir / runs.STATUS_FILE) or {}).get("state") == "running", timeout=120)
    proc = run_status.CHILD_PROCESSES[runs.read_status(run_id)["launcher_pid"]]
    status = runs.cancel(run_id, wait=60)
    assert proc.wait(timeout=30) == 0, log_of(run_id)
    raw = runs.read_json(run_dir / runs.STATUS_FILE)  # the process's own record, not a reconciliation
    assert raw["state"] == status["state"] == "cancelled" and raw["message"] != "cancelled before training started"
    assert load_checkpoint(run_dir / runs.LAST_CKPT)["step"] == raw["step"]
    end = runs.read_metrics(run_id)[-1]
    assert end["event"] == "end" and end["state"] == "cancelled"


@pytest.mark.slow
def test_cancel_stops_a_detached_run_cleanly_and_it_resumes(runs_root, tiny_glyphs):
    run_id = runs.launch(small(epochs=40), name="cancel me")
    assert "cancel-me" in run_id
    wait_for(lambda: runs.read_status(run_id)["step"] >= 110, timeout=120)  # into epoch 2
    status = runs.cancel(run_id, wait=60)
    assert status["state"] == "cancelled", log_of(run_id)
    last = load_checkpoint(runs_root / run_id / runs.LAST_CKPT)
    assert last["step"] == status["step"] and "optimizer" in last
    events = runs.read_metrics(run_id)
    assert events[-1]["event"] == "end" and events[-1]["state"] == "cancelled"
    with pytest.raises(RunError, match="not running"):
        runs.cancel(run_id)
    with pytest.raises(ConfigError, match="keeps its settings"):
        runs.resume(run_id, lr=1.0)

    runs.resume(run_id, epochs=last["epoch"] + 1)
    done = wait_until_ended(run_id)
    assert done["state"] == "done", log_of(run_id)
    events = runs.read_metrics(run_id)
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == list(range(1, last["epoch"] + 2))
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert steps == list(range(1, steps[-1] + 1))  # log_every=1: every step once, in order
    assert [e["state"] for e in events if e["event"] == "end"] == ["done"]
    with pytest.raises(RunError, match="done"):
        runs.resume(run_id)
    runs.delete(run_id)
    assert not (runs_root / run_id).exists()


@pytest.mark.slow
def test_a_killed_run_is_reported_crashed_and_resumes_with_continuous_metrics(runs_root, tiny_glyphs):
    run_id = runs.launch(small())
    run_dir = runs_root / run_id

    def in_epoch_2():
        lines = (run_dir / runs.METRICS_FILE).read_text().splitlines() if (run_dir / runs.METRICS_FILE).exists() else []
        recs = [json.loads(x) for x in lines]
        return any(r["event"] == "step" and r["epoch"] == 2 for r in recs)

    wait_for(in_epoch_2, timeout=120, every=0.01)
    pid = runs.read_status(run_id)["pid"]
    with pytest.raises(RunError, match="cancel it"):
        runs.delete(run_id)
    os.kill(pid, signal.SIGKILL)
    crashed = wait_until_ended(run_id, timeout=30)
    assert crashed["state"] == "crashed"
    before = runs.read_metrics(run_id)
    assert [e["epoch"] for e in before if e["event"] == "epoch"] == [1]  # killed mid-epoch 2
    assert any(e["event"] == "step" and e["epoch"] == 2 for e in before)

    runs.resume(run_id)
    done = wait_until_ended(run_id)
    assert done["state"] == "done" and done["epoch"] == 3, log_of(run_id)
    events = runs.read_metrics(run_id)
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2, 3]
    steps = [e["step"] for e in events if e["event"] == "step"]
    spe = done["steps_per_epoch"]
    assert spe == 104
    assert steps == list(range(1, 3 * spe + 1))  # no step twice, none missing
    assert [e["epoch"] for e in events if e["event"] == "step"] == [(s - 1) // spe + 1 for s in steps]
    assert [e["state"] for e in events if e["event"] == "end"] == ["done"]
    assert load_checkpoint(run_dir / runs.BEST_CKPT)["epoch"] == done["best_epoch"]


@pytest.mark.slow
def test_two_process_data_parallel_run_matches_one_process(runs_root, tiny_glyphs, tmp_path, monkeypatch):
    """torchrun + gloo on the CPU, as runs.launch starts it: one run folder in the usual format, a
    falling loss, and -- without BatchNorm, whose statistics each process takes over its half of
    the batch -- the metrics of one process with the same global batch: losses to 1e-4 relative,
    accuracy to one validation image (only the order of floating-point sums differs)."""
    from glyphcore.data import load_dataset
    from glyphcore.train import fit

    # lr 5e-4: at 2e-3 the first epochs are chaotic enough to amplify float-order differences to ~0.1%
    config = small(epochs=2, batch_size=20, log_every=2, batchnorm=False, amp="off", lr=5e-4)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # torchrun keeps its logs in a torchelastic_* folder there
    run_id = runs.launch(config, nproc=2)
    done = wait_until_ended(run_id, timeout=240)
    assert done["state"] == "done" and done["world_size"] == 2, log_of(run_id)
    events = runs.read_metrics(run_id)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]  # written once, by rank 0
    # the first step, then every 2nd (26 steps an epoch)
    assert [e["step"] for e in events if e["event"] == "step"] == [1, *range(2, 53, 2)]
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
    assert load_checkpoint(runs_root / run_id / runs.LAST_CKPT)["step"] == 52

    single = fit(config, None, train_set=load_dataset(config.data, "train"), val_set=load_dataset(config.data, "valid"))
    for ddp, one in zip(epochs, single.history):
        for key in ("train_loss", "val_loss"):
            assert ddp[key] == pytest.approx(one[key], rel=1e-4), key
        # a near-tie may flip with the order of float sums: at most one of the 208 images
        assert ddp["val_acc"] == pytest.approx(one["val_acc"], abs=1.5 / 208)
