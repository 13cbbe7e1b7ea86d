"""Fault injection: every number of every run file at extreme values, special files where a regular
file is expected, and terminal escapes in names. One damaged file makes that one item "unknown";
the other runs and sweeps are listed as usual, and nothing raises, hangs or prints an escape.

Real files in a runs folder of the test's own, the real CLI (in process, and as a process where a
hang is what could fail).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_folders import write_run

from glyphcore import cli, runs
from glyphcore.runs import sweep as sweeps

WORKTREE = Path(__file__).resolve().parents[2]

STATUS_FIELDS = [
    "pid",
    "launcher_pid",
    "pid_start",
    "started",
    "ended",
    "updated",
    "cancel_requested",
    "epoch",
    "epochs",
    "step",
    "steps_per_epoch",
    "best_epoch",
    "best_val_loss",
    "best_val_acc",
    "params",
    "wall_seconds",
    "world_size",
]
# As they stand in the JSON text: each is out of range (or of the wrong type) for every field above
# (1e40: above float32's largest value, the largest loss a diverging run can record).
EXTREMES = ["2147483648e300", "1e300", "-1", "1" + "0" * 40, "NaN", "-Infinity", "true", '"12"']


@pytest.fixture
def root(runs_dir) -> Path:
    write_run(runs_dir, "good", epochs=2, started=time.time() - 100)
    return runs_dir


def _damage(run: Path, name: str, field: str, raw: str) -> None:
    """Set one field of a JSON file to ``raw`` JSON text (NaN and Infinity included)."""
    data = json.loads((run / name).read_text())
    data[field] = "__X__"
    (run / name).write_text(json.dumps(data).replace('"__X__"', raw))


def _listed_and_shown(capsys) -> dict[str, runs.RunInfo]:
    infos = {i.run_id: i for i in runs.list_runs()}
    assert cli.main(["runs", "list"]) == 0
    assert cli.main(["runs", "show", "bad"]) == 0
    assert cli.main(["runs", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "bad" in out
    return infos


@pytest.mark.parametrize("raw", EXTREMES)
@pytest.mark.parametrize("field", STATUS_FIELDS)
def test_a_status_field_at_an_extreme_is_unknown_for_that_run_only(root, field, raw, capsys):
    bad = write_run(root, "bad", epochs=2, state="running", pid=os.getpid())
    _damage(bad, "status.json", field, raw)
    infos = _listed_and_shown(capsys)
    assert infos["good"].state == "done" and infos["good"].best_val_acc is not None
    status = infos["bad"].status
    assert field in status["bad_fields"] and status[field] == runs.STATUS_DEFAULTS[field]
    assert field in infos["bad"].message
    # the commands that act on one run say what they can, in one line
    for argv in (["runs", "cancel", "bad", "--wait", "0"], ["runs", "delete", "bad", "--yes"]):
        assert cli.main(argv) in (0, 2)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) <= 1 and not any("Traceback" in line for line in err)


def test_a_pid_above_the_c_int_range_breaks_no_command(root, capsys):
    """The case of the report: "pid": 2147483648 raised OverflowError in every list and command."""
    bad = write_run(root, "bad", epochs=2, state="running")
    _damage(bad, "status.json", "pid", "2147483648")
    _damage(bad, "status.json", "launcher_pid", "2147483648")
    infos = _listed_and_shown(capsys)
    assert infos["bad"].state == "crashed"  # no live process can be behind it
    assert cli.main(["runs", "cancel", "bad", "--wait", "0"]) == 2
    assert "not running" in capsys.readouterr().err
    assert cli.main(["runs", "delete", "bad", "--yes"]) == 0
    assert not bad.exists() and (root / "good").is_dir()


def test_a_start_time_of_1e300_keeps_the_list_in_order(root, capsys):
    bad = write_run(root, "bad", epochs=2)
    _damage(bad, "status.json", "started", "1e300")
    infos = _listed_and_shown(capsys)
    assert infos["bad"].started is not None and infos["bad"].started < 4.2e9  # config.json's created instead


def test_an_unknown_state_or_a_huge_message_is_shown_as_such(root, capsys):
    bad = write_run(root, "bad", epochs=2)
    _damage(bad, "status.json", "state", '"<script>alert(1)</script>"')
    _damage(bad, "status.json", "message", json.dumps("x" * 1_000_000))
    infos = _listed_and_shown(capsys)
    assert infos["bad"].state == "unknown" and len(infos["bad"].message) < 5000


METRIC_FIELDS = ["epoch", "step", "train_loss", "val_loss", "val_acc", "seconds", "time", "event"]


@pytest.mark.parametrize("raw", ["1e999", "NaN", "-5", "1" + "0" * 30, '{"a": 1}'])
@pytest.mark.parametrize("field", METRIC_FIELDS)
def test_a_metrics_record_at_an_extreme_breaks_no_reader(root, field, raw, capsys):
    from glyphcore.runs import monitor

    bad = write_run(root, "bad", epochs=2)
    lines = (bad / "metrics.jsonl").read_text().splitlines()
    epoch_line = next(i for i, line in enumerate(lines) if '"epoch"' in line and '"val_loss"' in line)
    rec = json.loads(lines[epoch_line])
    rec[field] = "__X__"
    lines[epoch_line] = json.dumps(rec).replace('"__X__"', raw)
    (bad / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    records = runs.read_metrics("bad")
    assert len(records) == len(lines)
    for r in records:  # strict JSON again: nothing non-finite or out of a float's range is handed on
        json.dumps(r, allow_nan=False)
        assert not (isinstance(r.get("epoch"), int) and r["epoch"] < 0)
    monitor.run_progress(runs.run_info(bad))
    assert cli.main(["runs", "show", "bad", "--last", "5"]) == 0
    assert "epoch" in capsys.readouterr().out


SWEEP_FIELDS = {
    "parallel": ['"abc"', "0", "1e300", "-3", "true", "[1]"],
    "grid": ['"abc"', "5", '{"lr": 5}', "[1, 2]", "null"],
    "devices": ["5", '"cuda"', '{"a": 1}'],
    "created": ['"x"', "1e300", "NaN", "-1"],
    "runner_pid": ["2147483648", '"1"', "-1", "1e300"],
    "name": ["5", "[1]"],
    "runs": ["5", '"good"', '[1, null, {}, "../../etc"]'],
}


@pytest.mark.parametrize(
    ("field", "raw"), [(f, v) for f, values in SWEEP_FIELDS.items() for v in values], ids=lambda x: str(x)[:12]
)
def test_a_damaged_sweep_record_leaves_every_other_sweep_listed(root, field, raw, capsys):
    folder = root / sweeps.SWEEPS_DIR
    folder.mkdir()
    record = {
        "sweep_id": "s",
        "grid": {"activation": ["relu"]},
        "runs": ["good"],
        "parallel": 1,
        "devices": ["cpu"],
        "created": time.time(),
        "runner_pid": None,
        "name": None,
    }
    (folder / "s-good.json").write_text(json.dumps({**record, "sweep_id": "s-good"}))
    (folder / "s-bad.json").write_text(
        json.dumps({**record, "sweep_id": "s-bad", field: "__X__"}).replace('"__X__"', raw)
    )
    listed = {s.sweep_id: s for s in sweeps.list_sweeps()}
    assert "s-good" in listed and listed["s-good"].runs[0].run_id == "good"
    if "s-bad" in listed:  # an unreadable record is left out; a readable one has only sane values
        s = listed["s-bad"]
        assert s.parallel >= 1 and isinstance(s.grid, dict) and all(isinstance(d, str) for d in s.devices)
        assert all(r.path.parent == root for r in s.runs)
    assert cli.main(["sweep", "list"]) == 0
    assert "s-good" in capsys.readouterr().out


def _special(path: Path, kind: str) -> None:
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")


@pytest.mark.parametrize("kind", ["fifo", "folder", "devzero"])
def test_special_files_where_run_files_belong_never_hang(root, kind, tmp_path):
    """A FIFO blocks a plain open() forever and /dev/zero never ends: the commands must finish."""
    bad = write_run(root, "bad", epochs=2, state="done")
    for name in ("status.json", "train.log", "metrics.jsonl"):
        _special(bad / name, kind)
    cfg = write_run(root, "bad-config", epochs=2)
    _special(cfg / "config.json", kind)
    env = {**os.environ, "PYTHONPATH": str(WORKTREE), "GLYPH_RUNS_DIR": str(root)}
    for argv in (["runs", "list"], ["runs", "show", "bad"], ["runs", "show", "bad-config"]):
        proc = subprocess.run(
            [sys.executable, "-m", "glyphcore", *argv], env=env, capture_output=True, text=True, timeout=120
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.returncode in (0, 2) and len(proc.stderr.strip().splitlines()) <= 1
        if argv[1] == "list":
            assert "good" in proc.stdout and "bad" in proc.stdout


def test_terminal_escapes_in_names_and_messages_are_never_printed(root, capsys):
    evil = "\x1b]0;owned\x07\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07\x9b31m"
    bad = write_run(root, f"run{evil}x", epochs=2, state="failed")
    _damage(bad, "status.json", "message", json.dumps(f"boom{evil}"))
    _damage(bad, "config.json", "model", json.dumps(f"lenet{evil}"))
    assert cli.main(["runs", "list"]) == 0
    assert cli.main(["runs", "show", bad.name]) == 0
    assert cli.main(["runs", "show", "no-such-run" + evil]) == 2
    out = capsys.readouterr()
    for text in (out.out, out.err):
        assert not any(ch in text for ch in "\x1b\x07\x9b"), repr(text)
    assert "boom" in out.out  # the text is kept, only the controls go (a repr in a message shows them as \\x1b)


def test_terminal_text_removes_every_kind_of_control():
    from glyphcore.cli.text import terminal_text

    assert terminal_text("a\x1b[31mred\x1b[0m b") == "ared b"
    assert terminal_text("t\x1b]0;title\x07x\x1b]8;;http://x\x1b\\y") == "txy"
    assert terminal_text("c\x00\x08\x7f\x9d\x9bd\te\nf") == "cd\te\nf"
    assert terminal_text("Grüße ok") == "Grüße ok"
