"""The run store: run folders, metrics reading, reconciliation of a status with the process table."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from run_folders import write_run

from glyphcore import paths, runs
from glyphcore.errors import RunError


def test_run_ids_are_safe_unique_folder_names(runs_root):
    assert runs.sanitize_name("  my run/../../etc  ") == "my-run-..-..-etc"
    assert runs.sanitize_name("résumé; rm -rf ~") == "r-sum-rm-rf"
    a = runs.new_run_dir("seed_cnn", "silu", "../../evil name")
    b = runs.new_run_dir("seed_cnn", "silu", "../../evil name")
    assert a.parent == b.parent == runs_root and a != b
    assert a.name.endswith("-seed_cnn-silu-evil-name") and b.name == a.name + "-2"


def test_read_metrics_is_incremental_and_tolerates_a_torn_last_line(runs_root):
    d = runs.new_run_dir("m", "a")
    runs.write_status(d, {"state": "done"})
    log = runs.MetricsLog(d)
    log.append({"event": "step", "epoch": 1, "step": 1, "loss": 2.0})
    first = runs.read_metrics(d.name)
    assert [r["step"] for r in first] == [1] and first.offset == log.offset and not first.reset
    log.append({"event": "step", "epoch": 1, "step": 2, "loss": float("nan")})
    with open(d / runs.METRICS_FILE, "a") as f:
        f.write('{"event": "step", "epoch": 1, "st')  # a writer in the middle of a line
    more = runs.read_metrics(d.name, since_offset=first.offset)
    assert [r["step"] for r in more] == [2] and more[0]["loss"] is None  # NaN is written as null
    assert runs.read_metrics(d.name, since_offset=more.offset) == []
    # A resumed run cuts records off: a reader past the end starts over, and is told so.
    log.truncate(first.offset)
    again = runs.read_metrics(d.name, since_offset=more.offset)
    assert again.reset and [r["step"] for r in again] == [1]
    log.close()


def test_a_running_status_whose_process_is_gone_is_reported_crashed(runs_root):
    d = runs.new_run_dir("m", "a")
    (d / runs.CONFIG_FILE).write_text(json.dumps({"model": "lenet", "activation": "relu"}))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    runs.write_status(d, {"state": "running", "pid": gone.pid})
    status = runs.read_status(d.name)
    assert status["state"] == "crashed" and "resume" in status["message"]
    info = runs.list_runs()[0]
    assert info.run_id == d.name and info.state == "crashed" and info.model == "lenet"
    runs.write_status(d, {"state": "running", "pid": os.getpid()})  # alive, but not a training process
    assert runs.read_status(d.name)["state"] == "crashed"


def test_list_runs_includes_the_starter_run(runs_root, tmp_path, monkeypatch):
    starter = tmp_path / "repo" / "checkpoints" / "starter"
    starter.mkdir(parents=True)
    runs.write_json_atomic(starter / runs.CONFIG_FILE, {"model": "seed_cnn", "activation": "silu"})
    runs.write_status(starter, {"state": "done", "best_val_acc": 0.99})
    monkeypatch.setattr(paths, "starter_dir", lambda: starter)
    d = runs.new_run_dir("lenet", "relu")
    runs.write_status(d, {"state": "done"})
    listed = runs.list_runs()
    assert [r.run_id for r in listed] == [d.name, "starter"] and listed[1].is_starter
    with pytest.raises(RunError, match="cannot be deleted"):
        runs.delete("starter")


def test_a_folder_that_is_not_a_run_is_refused(runs_root, tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunError, match="not a run folder"):
        runs.read_status(tmp_path / "plain")
    with pytest.raises(RunError, match="runs list"):
        runs.cancel("no-such-run")


def test_a_run_folder_is_told_from_a_folder_that_only_holds_a_config(tmp_path):
    run = write_run(tmp_path, "run", epochs=2)
    assert runs.looks_like_run(run)
    runs.check_run_dir_claimable(run)  # a run's own entries only: may be continued
    runs.check_run_dir_claimable(tmp_path / "new")  # absent: may be created
    (tmp_path / "empty").mkdir()
    runs.check_run_dir_claimable(tmp_path / "empty")
    (run / "notes.txt").write_text("mine")
    assert not runs.looks_like_run(run)
    with pytest.raises(RunError, match=r"not a run folder \(it holds notes.txt\)"):
        runs.check_run_dir_claimable(run)
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(RunError, match="symlink"):
        runs.check_run_dir_claimable(tmp_path / "link")


def test_status_numbers_outside_their_range_are_unknown_and_named():
    from glyphcore.runfolder.store import typed_status

    status = typed_status(
        {"pid": 2**31, "started": 1e300, "best_val_acc": 1.5, "epoch": -1, "world_size": 0, "state": "odd"}
    )
    assert status["pid"] is None and status["started"] is None and status["best_val_acc"] is None
    assert status["epoch"] == 0 and status["world_size"] == 1 and status["state"] == "unknown"
    assert set(status["bad_fields"]) == {"pid", "started", "best_val_acc", "epoch", "world_size", "state"}
    good = typed_status({"pid": 4321, "started": 1.8e9, "best_val_acc": 0.5, "epoch": 3, "state": "done"})
    assert good["bad_fields"] == [] and good["pid"] == 4321 and good["best_val_acc"] == 0.5
