"""TensorBoard events: a real fit writes them live, ``runs export-tb`` converts a run folder, and both
read back with TensorBoard's own reader as the records of metrics.jsonl; without tensorboard a fit
writes none and says so once."""

from __future__ import annotations

import json
import logging
import shutil
import sys

import pytest

from glyphcore import runs
from glyphcore.errors import ConfigError, RunError
from glyphcore.train import tensorboard as tb

FLOAT32_REL = 1e-6  # event files store scalars as float32


def read_events(tb_dir):
    """TensorBoard's reader over a tb/ folder: {tag: [(step, value, wall_time)]}, the hparams plugin's records."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0, "tensors": 0})  # 0: keep every event
    acc.Reload()
    scalars = {tag: [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    plugin = {tag: HParamsPluginData.FromString(content) for tag, content in acc.PluginTagToContent("hparams").items()}
    return scalars, plugin


def expected_scalars(records):
    """{tag: [(step, value)]} that the layout makes of metrics.jsonl records."""
    out: dict[str, list] = {}
    for r in records:
        tags = tb.STEP_TAGS if r.get("event") == "step" else tb.EPOCH_TAGS if r.get("event") == "epoch" else {}
        for field, tag in tags.items():
            out.setdefault(tag, []).append((r["step"], r[field]))
    return out


def assert_events_match_the_run(run_dir):
    """The events of ``run_dir/tb`` hold every step and epoch value of metrics.jsonl, the config's
    settings as hparams and status.json's best epoch as the final metrics."""
    records = list(runs.read_metrics(run_dir))
    status, config = runs.read_status(run_dir), runs.read_config(run_dir)
    scalars, plugin = read_events(run_dir / tb.TB_DIR)
    expected = expected_scalars(records)
    assert set(expected) == set(tb.STEP_TAGS.values()) | set(tb.EPOCH_TAGS.values())
    assert set(scalars) == set(expected) | set(tb.METRIC_TAGS.values())
    for tag, points in expected.items():
        assert [s for s, _, _ in scalars[tag]] == [s for s, _ in points], tag
        assert [v for _, v, _ in scalars[tag]] == pytest.approx([v for _, v in points], rel=FLOAT32_REL), tag
    last_step = max(r["step"] for r in records if r.get("event") == "step")
    best_acc = pytest.approx(status["best_val_acc"], rel=FLOAT32_REL)
    assert scalars["hparams/best_val_acc"][-1][:2] == (last_step, best_acc)
    assert scalars["hparams/best_val_loss"][-1][1] == pytest.approx(status["best_val_loss"], rel=FLOAT32_REL)

    hp = plugin["_hparams_/session_start_info"].session_start_info.hparams
    assert hp["lr"].number_value == pytest.approx(config["lr"])
    assert hp["batch_size"].number_value == config["batch_size"]
    assert hp["activation"].string_value == config["activation"]
    assert hp["patience"].string_value == str(config["patience"]).lower()  # optional: text, "none" when unset
    assert "model_options" not in hp  # not a scalar
    metric_tags = {m.name.tag for m in plugin["_hparams_/experiment"].experiment.metric_infos}
    assert metric_tags == set(tb.METRIC_TAGS.values())
    return scalars


@pytest.fixture
def fitted(tiny_glyphs, tmp_path):
    """A real 2-epoch fit on the tiny glyphs (11 steps per epoch, a step-loss record every 3)."""
    from glyphcore.train import fit, make_config

    run_dir = tmp_path / "runs" / "tb-fit"
    result = fit(make_config("report", epochs=2, lr=2e-3, threads=1, device="cpu", seed=0, log_every=3), run_dir)
    assert result.state == "done"
    return run_dir


@pytest.mark.slow
def test_a_fit_writes_its_metrics_hparams_and_final_metrics_as_events(fitted):
    scalars = assert_events_match_the_run(fitted)
    assert [s for s, _, _ in scalars["epoch/val_acc"]] == [11, 22]  # at the global step each epoch ended on
    # the run's first step (a live curve's first point at once), every 3rd global step, each epoch's last
    assert [s for s, _, _ in scalars["step/train_loss"]] == [1, 3, 6, 9, 11, 12, 15, 18, 21, 22]


@pytest.mark.slow
def test_export_tb_of_a_fitted_run_gives_the_live_events(fitted, tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(fitted.parent))
    live, _ = read_events(fitted / tb.TB_DIR)
    copy = fitted.parent / "tb-copy"
    shutil.copytree(fitted, copy, ignore=shutil.ignore_patterns(tb.TB_DIR))
    tb.export_tb("tb-copy")
    converted = assert_events_match_the_run(copy)
    assert {t: [p[:2] for p in v] for t, v in converted.items()} == {t: [p[:2] for p in v] for t, v in live.items()}


@pytest.mark.slow
def test_a_resumed_fit_drops_the_events_after_its_resume_point(tiny_glyphs, tmp_path):
    from glyphcore.train import fit, make_config

    run_dir = tmp_path / "resumed"
    cfg = {"lr": 2e-3, "threads": 1, "device": "cpu", "seed": 0, "log_every": 3}
    fit(make_config("report", epochs=1, **cfg), run_dir)
    # An abandoned timeline: events a crashed session wrote after the resume point (the end of epoch 1).
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run_dir / tb.TB_DIR)) as w:
        w.add_scalar("step/train_loss", 123.0, 15)
        w.add_scalar("epoch/val_loss", 123.0, 20)
    fit(make_config("report", epochs=2, **cfg), run_dir, resume=True)
    scalars = assert_events_match_the_run(run_dir)
    assert 123.0 not in [v for points in scalars.values() for _, v, _ in points]


def test_export_tb_converts_a_run_folder_and_keeps_an_existing_one(tmp_path, monkeypatch, capsys):
    from run_folders import write_run  # tests/run_folders.py

    from glyphcore.cli import main

    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    run_dir = write_run(tmp_path, "old-run", epochs=3, patience=4)
    assert main(["runs", "export-tb", "old-run"]) == 0
    assert str(run_dir / "tb") in capsys.readouterr().out
    scalars = assert_events_match_the_run(run_dir)
    records = [r for r in runs.read_metrics(run_dir) if r.get("event") == "step"]
    # the records' own times
    assert [t for _, _, t in scalars["step/train_loss"]] == pytest.approx([r["time"] for r in records])

    marker = run_dir / "tb" / "keep-me"
    marker.write_text("x")
    with pytest.raises(RunError, match="--overwrite"):
        tb.export_tb("old-run")
    assert main(["runs", "export-tb", "old-run"]) == 2
    assert "exists: pass --overwrite" in capsys.readouterr().err
    assert marker.exists()
    assert main(["runs", "export-tb", "old-run", "--overwrite"]) == 0
    assert not marker.exists()
    assert_events_match_the_run(run_dir)
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_export_tb_all_converts_ended_runs_and_skips_the_rest(tmp_path, monkeypatch, capsys, standin_process):
    from run_folders import write_run

    from glyphcore import paths
    from glyphcore.cli import main

    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(paths, "starter_dir", lambda: tmp_path / "no-starter")
    write_run(tmp_path, "a", epochs=2, started=1.0)
    write_run(tmp_path, "b", epochs=2, started=2.0)
    write_run(tmp_path, "live", state="running", pid=standin_process(), started=3.0)  # training now
    assert runs.read_status("live")["state"] == "running"
    (tmp_path / "b" / "tb").mkdir()
    assert main(["runs", "export-tb", "--all"]) == 0
    out = capsys.readouterr().out
    assert_events_match_the_run(tmp_path / "a")
    assert not list((tmp_path / "b" / "tb").iterdir())  # kept: it existed
    assert not (tmp_path / "live" / "tb").exists()
    assert "b: skipped" in out and "--overwrite" in out and "live: skipped" in out
    assert main(["runs", "export-tb", "a", "--all"]) == 2  # one or the other
    with pytest.raises(RunError, match="running"):
        tb.export_tb("live")


@pytest.mark.slow
def test_without_tensorboard_a_fit_writes_no_events_and_says_so_once(tiny_glyphs, tmp_path, monkeypatch, caplog):
    from glyphcore.train import default_callbacks, fit, make_config

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what an environment without the package gives
    monkeypatch.setattr(tb, "_said_off", False)
    assert not tb.tensorboard_installed()
    caplog.set_level(logging.WARNING, logger=tb.__name__)
    config = make_config("report", epochs=1, lr=2e-3, threads=1, device="cpu", seed=0)
    assert fit(config, tmp_path / "plain").state == "done"
    assert not (tmp_path / "plain" / tb.TB_DIR).exists()
    assert not any(isinstance(cb, tb.TensorBoardWriter) for cb in default_callbacks(config, tmp_path / "x", 0))
    assert [r.getMessage() for r in caplog.records] == ["TensorBoard logs off: pip install tensorboard"]
    with pytest.raises(ConfigError, match=r"pip install glyph-explorer\[tensorboard\]"):
        tb.export_tb(tmp_path / "plain")
    assert json.loads((tmp_path / "plain" / "status.json").read_text())["state"] == "done"
