"""``python -m glyphcore train`` and ``runs ...``: flags generated from TrainConfig, output, errors."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields

import pytest
from shapes_data import write_course_layout

from glyphcore import runs
from glyphcore.cli import main
from glyphcore.cli.train import add_config_flags
from glyphcore.train.config import TrainConfig, config_to_argv, field_specs, make_config


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return write_course_layout(tmp_path_factory.mktemp("course"), {"train": 120, "valid": 40})


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def parse_config(argv: list[str]) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    given = vars(parser.parse_args(argv))
    return make_config(given.pop("preset", "report"), **given)


def test_every_config_field_is_a_flag_and_the_defaults_are_the_reports():
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    flags = {a.dest for a in parser._actions}
    assert {f.name for f in fields(TrainConfig)} <= flags
    c = TrainConfig()
    assert (c.model, c.activation, c.optimizer, c.lr, c.batch_size, c.epochs, c.seed, c.data) == (
        "seed_cnn",
        "silu",
        "adam",
        2e-4,
        50,
        15,
        42,
        "glyphs-52",
    )
    assert c.batchnorm and c.dropout == 0 and c.schedule == "none" and c.param_budget is None


def test_flags_set_every_field_and_config_to_argv_round_trips():
    changed = dict(
        model="lenet",
        activation="relu",
        batchnorm=False,
        dropout=0.25,
        model_options={"pool": True},
        init_from="starter",
        optimizer="sgd",
        lr=0.1,
        momentum=0.8,
        nesterov=True,
        weight_decay=1e-4,
        schedule="cosine",
        label_smoothing=0.1,
        outlier_exposure=0.3,
        augment="strong",
        batch_size=64,
        eval_batch_size=512,
        epochs=3,
        seed=1,
        data="torchvision:MNIST",
        val_split="test",
        patience=2,
        time_budget_min=1.5,
        param_budget=100_000,
        device="cpu",
        amp="off",
        threads=1,
        compile="default",
        log_every=7,
        preset="report",
    )
    assert set(changed) == {s["name"] for s in field_specs()}
    config = make_config(**{k: v for k, v in changed.items() if k != "preset"})
    assert asdict(config) == changed
    assert parse_config(config_to_argv(config)) == config
    fast = make_config("fast", epochs=4)
    assert fast.batch_size == 500 and fast.schedule == "onecycle" and fast.label_smoothing > 0
    assert parse_config(config_to_argv(fast)) == fast
    assert parse_config(["--patience", "none", "--no-batchnorm"]).batchnorm is False


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--optimizer", "rmsprop"], "invalid choice"),
        (["--batch-size", "ten"], "batch_size must be a int"),
        (["--model-options", "{oops"], "model_options must be a dict"),
    ],
)
def test_bad_flags_are_refused_with_the_allowed_values(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_config(argv)
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_train_prints_epoch_lines_and_writes_the_run(tiny_glyphs, runs_root, capsys):
    run_dir = runs_root / "cli-run"
    code = main(
        ["train", "--run-dir", str(run_dir), "--epochs", "2", "--lr", "0.002", "--threads", "1", "--progress", "off"]
    )  # the report's recipe on (a tiny) glyphs-52, but 2 epochs
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Training seed_cnn (702,948 parameters)" in out
    assert "Epoch 1/2  train loss" in out and "Epoch 2/2" in out
    assert "Validation loss decreased (inf --> " in out
    assert runs.read_status(run_dir)["state"] == "done"

    assert main(["runs", "list"]) == 0
    listing = capsys.readouterr().out
    assert "cli-run" in listing and "done" in listing and "seed_cnn" in listing
    assert main(["runs", "show", str(run_dir)]) == 0
    assert "epoch 2/2" in capsys.readouterr().out
    assert main(["runs", "show", str(run_dir), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"]["state"] == "done" and len(shown["epochs"]) == 2

    assert main(["train", "--run-dir", str(run_dir), "--resume", "--lr", "1"]) == 2
    assert "keeps its settings; lr differ" in capsys.readouterr().err
    assert main(["runs", "cancel", str(run_dir)]) == 2
    assert "not running" in capsys.readouterr().err
    assert main(["runs", "delete", str(run_dir)]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["runs", "delete", str(run_dir), "--yes"]) == 0
    assert not run_dir.exists()


def test_train_errors_are_one_line_not_a_traceback(course, runs_root, capsys):
    code = main(["train", "--model", "nope", "--data", f"course:{course}", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: unknown model 'nope'") and "seed_cnn" in err
    code = main(["train", "--model", "lenet", "--param-budget", "1000", "--data", f"course:{course}"])
    err = capsys.readouterr().err
    assert code == 2 and "above the budget of 1,000" in err
