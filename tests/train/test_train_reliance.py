"""Runs you can rely on, trainer side: resume refuses changed settings, a run at chance says so,
settings are refused where the code cannot run them, and the live curve gets its points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from shapes_data import lenet_train_argv, shapes_set, write_course_layout

from glyphcore import cli, runs
from glyphcore.errors import ConfigError
from glyphcore.train import fit, make_config
from glyphcore.train.config import MAX_SEED


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> str:
    return f"course:{write_course_layout(tmp_path_factory.mktemp('course'), {'train': 40, 'valid': 20})}"


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return shapes_set(100, seed=0), shapes_set(40, seed=1, split="valid")


def lenet(**kw):
    base = dict(model="lenet", epochs=1, batch_size=20, lr=2e-3, threads=1, data="shapes", device="cpu")
    return make_config(**{**base, **kw})


def _edit_config(run: Path, **changes) -> None:
    path = run / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.slow
def test_resume_refuses_an_edited_config_json_unless_allowed(course, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(lenet_train_argv(course, run, 1, "--lr", "2e-3")) == 0
    _edit_config(run, lr=0.5, batch_size=7, augment="strong")
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--run-dir", str(run), "--epochs", "2", "--progress", "off"]) == 2
    err = capsys.readouterr().err
    assert "lr 0.002 -> 0.5" in err and "batch_size 20 -> 7" in err and "--allow-config-change" in err
    assert runs.read_status(run)["epoch"] == 1  # nothing trained on with the edited settings

    _edit_config(run, lr=2e-3, batch_size=20, augment="none", optimizer="sgd")  # a changed optimizer: no KeyError
    argv = ["train", "--resume", "--run-dir", str(run), "--epochs", "2", "--progress", "off"]
    assert cli.main([*argv, "--allow-config-change"]) == 0
    logs = [r["message"] for r in runs.read_metrics(run) if r.get("event") == "log"]
    assert any("optimizer sgd" not in m and "The optimizer changed (adam -> sgd)" in m for m in logs)
    status = runs.read_status(run)
    assert (status["state"], status["epoch"]) == ("done", 2)


def test_a_run_no_better_than_chance_is_flagged(data, runs_dir, capsys):
    run = runs_dir / "at-chance"
    result = fit(lenet(lr=10.0), run, train_set=data[0], val_set=data[1])
    classes = len(data[0].classes)
    assert result.best_val_acc <= 1.5 / classes  # the premise: lr 10 learned nothing
    status = runs.read_status(run)
    assert status["message"].startswith("no better than chance") and "try a lower learning rate" in status["message"]
    assert result.chance is not None and f"1/{classes}" in result.chance
    logs = [r["message"] for r in runs.read_metrics(run) if r.get("event") == "log"]
    assert not any(m.startswith("Validation loss decreased") for m in logs)  # no good news at chance
    assert any("no better than chance" in m for m in logs)
    capsys.readouterr()
    assert cli.main(["runs", "list"]) == 0
    assert "no better than chance" in capsys.readouterr().out


def test_a_learning_run_is_not_flagged(data, tmp_path):
    train = shapes_set(400, seed=2)
    result = fit(lenet(epochs=3, lr=5e-3), tmp_path / "run", train_set=train, val_set=data[1])
    assert result.best_val_acc > 1.5 / len(data[0].classes) and result.chance is None
    assert not runs.read_status(tmp_path / "run")["message"].startswith("no better than chance")


def test_the_largest_seed_trains_with_augmentation(data):
    result = fit(lenet(seed=MAX_SEED, augment="light"), train_set=data[0], val_set=data[1])
    assert result.state == "done" and result.epochs_run == 1


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("threads", 100_000, "threads must be at most 1024"),
        ("batch_size", 2**40, "batch_size must be at most"),
        ("epochs", 2**31, "epochs must be at most"),
        ("seed", MAX_SEED + 1, "seed must be an integer in 0.."),
        ("lr", float("inf"), "lr must be a finite number"),
    ],
)
def test_settings_the_code_cannot_run_are_refused_before_anything_starts(setting, value, words):
    with pytest.raises(ConfigError, match=words):
        lenet(**{setting: value})


def test_threads_past_the_bound_are_refused_by_the_command_without_a_crash(course, tmp_path, capsys):
    assert cli.main(lenet_train_argv(course, tmp_path / "run", 1, "--threads", "100000")) == 2
    assert "threads must be at most 1024" in capsys.readouterr().err


def test_the_quick_preset_logs_a_live_curve_not_a_few_dots(tmp_path):
    # The quick preset's epoch on glyphs-52 is 84 steps of 500 images: the same 84 steps here,
    # of 5 images, must give a step point every few steps (a point about every second on 2 cores).
    quick = make_config("quick")
    steps_per_epoch = 84
    train = shapes_set(steps_per_epoch * 5, seed=0)
    config = lenet(epochs=2, batch_size=5, log_every=quick.log_every)
    fit(config, tmp_path / "run", train_set=train, val_set=shapes_set(20, seed=1, split="valid"))
    steps = [r for r in runs.read_metrics(tmp_path / "run") if r.get("event") == "step"]
    assert len(steps) >= 2 * steps_per_epoch // 10  # at least a point per 10 steps, each epoch
    assert make_config("compare").log_every == quick.log_every
