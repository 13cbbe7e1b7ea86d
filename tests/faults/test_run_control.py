"""Fault injection: nothing lost without a flag, nothing written or deleted through a link, no live
run deleted, and sweeps that keep their queue (a killed runner, a queued run cancelled on its own,
one run at a time across sweeps).

Real run folders, real training processes (lenet on tiny synthetic data, one CPU thread) and real
signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_folders import wait_for, write_run
from shapes_data import lenet_train_argv, write_course_layout

from glyphcore import cli, runs
from glyphcore.errors import RunError
from glyphcore.runs import sweep as sweeps
from glyphcore.train.config import make_config

WORKTREE = Path(__file__).resolve().parents[2]
LONG = 100_000  # epochs: a run that outlasts every test that cancels or kills it (500 took 22 s here, less on CI)


@pytest.fixture
def course(tmp_path) -> str:
    return f"course:{write_course_layout(tmp_path / 'course', {'train': 40, 'valid': 20})}"


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(WORKTREE), "GLYPH_RUNS_DIR": str(root)}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    return err[0]


# ------------------------------------------------------------------------------------------------
# Nothing the user made is overwritten or deleted
# ------------------------------------------------------------------------------------------------


def test_train_refuses_an_existing_folder_that_is_not_a_run(course, tmp_path, capsys):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n")
    (project / "config.json").write_text('{"theme": "dark"}\n')
    (project / "status.json").write_text('{"build": "green"}\n')
    before = _snapshot(project)
    for extra in ((), ("--overwrite",), ("--resume",)):
        assert cli.main(lenet_train_argv(course, project, 1, *extra)) == 2
        _one_line_error(capsys, "not a run folder", "src")
        assert _snapshot(project) == before


def test_delete_removes_only_run_folders_inside_the_runs_folder(runs_dir, tmp_path, capsys):
    inside = runs_dir / "project"  # a folder with a config.json, but not a run
    (inside / "src").mkdir(parents=True)
    (inside / "config.json").write_text("{}")
    (inside / "status.json").write_text("{}")
    (inside / "src" / "main.py").write_text("x = 1\n")
    assert cli.main(["runs", "delete", str(inside), "--yes"]) == 2
    _one_line_error(capsys, "does not look like a run folder")
    outside = write_run(tmp_path / "elsewhere", "a-run", epochs=2)  # a whole run, but not in the runs folder
    assert cli.main(["runs", "delete", str(outside), "--yes"]) == 2
    _one_line_error(capsys, "not a folder inside the runs folder")
    (runs_dir / "link").symlink_to(outside)  # a link in the runs folder to a run elsewhere
    assert cli.main(["runs", "delete", "link", "--yes"]) == 2
    _one_line_error(capsys, "not a folder inside the runs folder")
    assert (inside / "src" / "main.py").is_file() and (outside / "config.json").is_file()
    ok = write_run(runs_dir, "real", epochs=2)
    assert runs.can_delete(runs.run_info(ok)) == (True, "")
    assert cli.main(["runs", "delete", "real", "--yes"]) == 0 and not ok.exists()


def test_delete_never_follows_a_link_inside_a_run(runs_dir, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    run = write_run(runs_dir, "copied", epochs=2)
    (run / "eval").symlink_to(precious, target_is_directory=True)
    runs.delete("copied")
    assert not run.exists() and (precious / "thesis.tex").read_text() == "years of work"


@pytest.mark.slow
def test_resume_never_writes_through_a_link_in_the_run_folder(course, runs_dir, tmp_path):
    run = runs_dir / "r"
    assert cli.main(lenet_train_argv(course, run, 1)) == 0
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "cancelled"}))
    outside = tmp_path / "outside.txt"
    outside.write_text("not the run's\n" * 100)
    (run / "train.log").unlink(missing_ok=True)
    (run / "train.log").symlink_to(outside)
    with pytest.raises(RunError, match="could not start"):
        runs.resume("r")
    assert outside.read_text() == "not the run's\n" * 100
    # the metrics log is truncated back to the resume point on resume: never a file elsewhere
    (run / "train.log").unlink()
    (run / "status.json").write_text(json.dumps({**status, "state": "cancelled"}))
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(outside)
    runs.resume("r")
    wait_for(lambda: runs.read_status("r")["state"] not in runs.ACTIVE_STATES, timeout=240, every=0.2)
    assert outside.read_text() == "not the run's\n" * 100
    assert (run / "metrics.jsonl").is_symlink()


FIT_SCRIPT = f"""
import sys
from glyphcore.train import fit
from glyphcore.train.config import make_config
config = make_config("report", model="lenet", data=sys.argv[1], epochs={LONG}, batch_size=20, threads=1,
                     device="cpu", lr=2e-3)
fit(config, sys.argv[2])
"""


@pytest.mark.slow
def test_a_run_trained_from_python_is_live_and_cannot_be_deleted(course, runs_dir, capsys):
    """As in a notebook: glyphcore.train.fit in a process that is not `python -m glyphcore`."""
    run = runs_dir / "notebook"
    proc = subprocess.Popen(
        [sys.executable, "-c", FIT_SCRIPT, course, str(run)],
        cwd=WORKTREE,
        env=_env(runs_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (run / "best.pt").is_file(), timeout=240, every=0.2)
        info = runs.run_info(run)
        assert info.state == "running", info.message
        ok, why = runs.can_delete(info)
        assert not ok and "cancel it first" in why
        assert cli.main(["runs", "delete", "notebook", "--yes"]) == 2
        _one_line_error(capsys, "cancel it first")
        assert (run / "best.pt").is_file() and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    assert runs.read_status(run)["state"] == "crashed"  # its process is gone: now it may go
    assert runs.can_delete(runs.run_info(run))[0]


# ------------------------------------------------------------------------------------------------
# Sweeps keep their queue
# ------------------------------------------------------------------------------------------------


def _states(sweep_id: str) -> list[str]:
    return [r.state for r in sweeps.read_sweep(sweep_id).runs]


@pytest.mark.slow
def test_a_sweep_keeps_its_queue_through_cancel_a_killed_runner_and_another_sweep(course, runs_dir, capsys):
    base = make_config("report", model="lenet", data=course, epochs=LONG, batch_size=20, threads=1, device="cpu")
    a = sweeps.launch_sweep(base, {"lr": [1e-3, 2e-3, 3e-3]}, parallel=1)
    b = None
    try:
        first, second, third = sweeps.read_sweep(a).runs
        wait_for(lambda: runs.read_status(first.path)["state"] == "running", timeout=240, every=0.2)
        # another sweep set to 1 at a time waits for the slot, whichever runner holds it
        b = sweeps.launch_sweep(base, {"lr": [4e-3]}, parallel=1)
        time.sleep(6)  # s: several of its runner's polls
        assert _states(b) == ["queued"] and _states(a)[0] == "running"
        # a queued run is cancelled on its own: the runner (whose pid it carries) is not signalled
        runner_a = sweeps.read_sweep(a).runner_pid
        assert cli.main(["runs", "cancel", third.run_id, "--wait", "0"]) == 0
        assert runs.read_status(third.path)["state"] == "cancelled" and runs.pid_alive(runner_a)
        # the runner dies while a run waits: the run stays queued, says so, and the list is honest
        os.kill(runner_a, signal.SIGKILL)
        wait_for(lambda: runs.read_status(second.path).get("runner_gone"), timeout=30, every=0.2)
        assert runs.read_status(second.path)["state"] == "queued"
        capsys.readouterr()
        assert cli.main(["sweep", "list"]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(a))
        assert "3/3 finished" not in line and "runner gone" in line and f"sweep resume {a}" in line
        # still one at a time: the orphaned training process keeps the slot
        assert _states(b) == ["queued"]
        assert cli.main(["sweep", "resume", a]) == 0
        assert runs.pid_alive(sweeps.read_sweep(a).runner_pid)
        wait_for(lambda: not runs.read_status(second.path)["runner_gone"], timeout=60, every=0.2)  # claimed again
    finally:
        for sweep_id in (a, b):
            if sweep_id is not None:
                try:
                    sweeps.cancel_sweep(sweep_id, wait=60)
                except RunError:
                    pass
    assert runs.read_status(third.path)["state"] == "cancelled"
    assert not any(s in runs.ACTIVE_STATES for s in _states(a) + _states(b))


@pytest.mark.slow
def test_a_cancel_during_the_hand_off_is_never_lost(course, runs_dir):
    """The runner checks that a run still waits, then starts it: a cancel landing in between used to
    be overwritten by the child's "running". Here the test holds the waiting run's status lock while
    the runner comes to hand it off, cancels it then, and lets go: the run must never start."""
    from glyphcore.runfolder.lock import status_lock

    base = make_config("report", model="lenet", data=course, epochs=LONG, batch_size=20, threads=1, device="cpu")
    sweep_id = sweeps.launch_sweep(base, {"lr": [1e-3, 2e-3]}, parallel=1)
    try:
        first, second = sweeps.read_sweep(sweep_id).runs
        wait_for(lambda: runs.read_status(first.path)["state"] == "running", timeout=240, every=0.2)
        with status_lock(second.path):
            runs.cancel(first.path, wait=60)
            time.sleep(3)  # s: the runner sees the first run end and comes to hand off the second
            sweeps.cancel_queued(second.path)  # the cancel lands in the middle of the hand-off
        time.sleep(5)  # s: time for a wrongly started run to write its status
        assert runs.read_status(second.path)["state"] == "cancelled"
        assert not (second.path / "metrics.jsonl").exists()  # it never started
    finally:
        try:
            sweeps.cancel_sweep(sweep_id, wait=60)
        except RunError:
            pass


def test_delete_says_a_run_is_live_before_asking_for_confirmation(runs_dir, capsys):
    live = write_run(runs_dir, "live", state="running", pid=os.getpid())
    from glyphcore.runfolder.lock import hold_trainer_lock, release_trainer_lock

    hold_trainer_lock(live)  # as the training process does for its whole life
    try:
        assert cli.main(["runs", "delete", "live"]) == 2  # no --yes: the refusal comes first
        _one_line_error(capsys, "being trained right now", "cancel it first")
    finally:
        release_trainer_lock(live)
    assert cli.main(["runs", "delete", "live"]) == 2
    _one_line_error(capsys, "--yes")


def test_a_training_process_handed_a_cancelled_run_does_not_start_it(course, runs_dir, capsys):
    """The other side of the hand-off: whatever started it, a trainer finds the cancel and stands by it."""
    run = write_run(runs_dir, "waiting", state="queued", epochs=2, epochs_done=0)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "sweep": "a-sweep", "sweep_index": 0}))
    sweeps.cancel_queued(run)
    before = _snapshot(run)
    assert cli.main(lenet_train_argv(course, run, 1)) == 2
    _one_line_error(capsys, "was cancelled", "runs resume")
    assert runs.read_status(run)["state"] == "cancelled"
    assert {k: v for k, v in _snapshot(run).items() if not k.startswith(".")} == {
        k: v for k, v in before.items() if not k.startswith(".")
    }
