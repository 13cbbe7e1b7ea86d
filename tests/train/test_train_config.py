"""glyphcore.train.config: presets, the field table the CLI and the app are built from, value
coercion, the errors of bad settings, and the command-line form of a config."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from dataclasses import asdict, fields, replace

import pytest

from glyphcore.cli.train import add_config_flags
from glyphcore.errors import ConfigError
from glyphcore.train.config import (
    CHOICES,
    EXPOSURE,
    PRESETS,
    TrainConfig,
    coerce_value,
    config_from_dict,
    config_to_argv,
    field_specs,
    make_config,
)


def spec(name: str) -> dict:
    return next(s for s in field_specs() if s["name"] == name)


def parse_flags(argv: list[str]) -> TrainConfig:
    """``argv`` through the real ``train`` flags, then make_config as the train command does."""
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    given = vars(parser.parse_args(argv))
    return make_config(given.pop("preset", "report"), **given)


def test_the_report_preset_is_the_defaults_with_exposure_and_fast_overrides_exactly_its_keys():
    # the defaults are the report's recipe (and what a config.json without the field means); every
    # preset adds outlier exposure, the report preset nothing else
    assert make_config() == make_config("report") == replace(TrainConfig(), **EXPOSURE)
    assert TrainConfig().outlier_exposure == 0.0 and all(p["outlier_exposure"] > 0 for p in PRESETS.values())
    fast, report = asdict(make_config("fast")), asdict(make_config("report"))
    changed = {k for k in fast if fast[k] != report[k]}
    assert changed == {k for k, v in PRESETS["fast"].items() if report[k] != v} | {"preset"}
    assert all(fast[k] == v for k, v in PRESETS["fast"].items())
    # an override wins over the preset, and the rest of the preset stays
    tuned = make_config("fast", lr=1e-3)
    assert tuned.lr == 1e-3 and tuned.batch_size == PRESETS["fast"]["batch_size"] and tuned.preset == "fast"
    with pytest.raises(ConfigError, match=r"unknown preset 'turbo': choose one of report, fast"):
        make_config("turbo")


def test_field_specs_describe_every_field_with_its_type_default_and_choices():
    specs = field_specs()
    assert [s["name"] for s in specs] == [f.name for f in fields(TrainConfig)]
    defaults = asdict(TrainConfig())
    for s in specs:
        assert s["default"] == defaults[s["name"]] and s["help"], s["name"]
        assert s["choices"] == CHOICES.get(s["name"]), s["name"]
    kinds = {s["name"]: (s["type"], s["optional"]) for s in specs}
    assert kinds["batchnorm"] == ("bool", False) and kinds["batch_size"] == ("int", False)
    assert kinds["lr"] == ("float", False) and kinds["model_options"] == ("dict", False)
    assert kinds["patience"] == ("int", True) and kinds["time_budget_min"] == ("float", True)
    assert kinds["init_from"] == ("str", True) and kinds["device"] == ("str", False)
    # a dict default is a fresh dict for every config, not one shared by all
    a, b = TrainConfig(), TrainConfig()
    a.model_options["depth"] = 11
    assert b.model_options == {} and spec("model_options")["default"] == {}


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("batchnorm", "false", False),
        ("batchnorm", "On", True),
        ("batchnorm", "0", False),
        ("batchnorm", 1, True),
        ("batch_size", "64", 64),
        ("batch_size", 64.0, 64),
        ("lr", "1e-3", 1e-3),
        ("lr", 2, 2.0),
        ("model_options", '{"depth": 11}', {"depth": 11}),
        ("patience", "none", None),
        ("patience", "", None),
        ("patience", "3", 3),
        ("time_budget_min", "None", None),
        ("init_from", "starter", "starter"),
        ("model", "lenet", "lenet"),
    ],
)
def test_values_from_the_command_line_or_json_become_the_fields_type(name, text, value):
    got = coerce_value(spec(name), text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("batchnorm", "maybe", r"batchnorm must be a bool \(e.g. true\), got 'maybe'"),
        ("batch_size", "6.5", r"batch_size must be a int \(e.g. 3\), got '6.5'"),
        ("batch_size", 6.5, r"batch_size must be a int"),
        ("batch_size", True, r"batch_size must be a int"),  # True is not a number of images
        ("lr", "fast", r"lr must be a float \(e.g. 0.001\), got 'fast'"),
        ("model_options", "[1, 2]", r"model_options must be a dict \(e.g. \{\"depth\": 11\}\)"),
        ("model_options", "{depth: 11}", r"model_options must be a dict"),
        ("batch_size", None, r"batch_size cannot be empty \(default 50\)"),
        ("model", 3, r"model must be a str"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_with_an_example(name, text, message):
    with pytest.raises(ConfigError, match=message):
        coerce_value(spec(name), text)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, r"batch_size must be above 0, got 0"),
        ({"lr": -1e-3}, r"lr must be above 0, got -0.001"),
        ({"patience": 0}, r"patience must be above 0, got 0"),
        ({"threads": -2}, r"threads must be above 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"label_smoothing": -0.1}, r"label_smoothing must be in \[0, 1\)"),
        ({"weight_decay": -1e-4}, r"weight_decay must be >= 0, got -0.0001"),
        ({"momentum": 1.5}, r"momentum must be in \[0, 1\), got 1.5"),
        ({"optimizer": "rmsprop"}, r"optimizer must be one of adam, adamw, sgd; got 'rmsprop'"),
        ({"augment": "extreme"}, r"augment must be one of none, light, strong"),
        ({"device": "tpu"}, r"device must be auto, cpu, cuda, cuda:N or mps; got 'tpu'"),
        ({"device": "cuda:x"}, r"device must be auto, cpu, cuda, cuda:N or mps"),
        ({"data": "  "}, r"data must name a data source, e.g. glyphs-52"),
        ({"epochs": "many"}, r"epochs must be a int"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_field_and_what_is_allowed(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config(**overrides)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda **bad: TrainConfig(**bad), id="TrainConfig"),
        pytest.param(lambda **bad: make_config("quick", **bad), id="make_config"),
        pytest.param(lambda **bad: config_from_dict(bad), id="config_from_dict"),
        pytest.param(lambda **bad: dataclasses.replace(make_config(), **bad), id="dataclasses.replace"),
    ],
)
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"epochs": 0}, r"epochs must be above 0, got 0"),
        ({"lr": float("nan")}, r"lr must be a finite number, got nan"),
        ({"schedule": "step"}, r"schedule must be one of none, cosine, onecycle; got 'step'"),
        ({"batch_size": "lots"}, r"batch_size must be a int \(e.g. 3\), got 'lots'"),
    ],
)
def test_every_way_to_make_a_config_refuses_a_bad_value_naming_the_field(build, bad, message):
    with pytest.raises(ConfigError, match=message):
        build(**bad)


def test_a_config_is_coerced_on_construction_and_cannot_be_changed_after():
    c = TrainConfig(epochs="3", batchnorm="off", lr="0.01")  # strings as the CLI and a form give them
    assert (c.epochs, c.batchnorm, c.lr) == (3, False, 0.01)
    assert dataclasses.replace(c, seed="7").seed == 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.epochs = -1  # type: ignore[misc]  # a changed field would skip the checks


def test_a_config_from_a_dict_parses_strings_and_refuses_unknown_keys():
    c = config_from_dict({"epochs": "3", "batchnorm": "off", "patience": "none", "model_options": '{"k": 1}'})
    assert (c.epochs, c.batchnorm, c.patience, c.model_options) == (3, False, None, {"k": 1})
    with pytest.raises(ConfigError, match=r"unknown training setting\(s\) colour, epoch; valid: activation, "):
        config_from_dict({"epoch": 3, "colour": "red"})
    saved = {**asdict(c), "run_id": "x", "dataset": {"id": "glyphs-52"}}  # config.json holds more than fields
    assert config_from_dict(saved, ignore_unknown=True) == c


@pytest.mark.parametrize(
    "config",
    [
        make_config(),
        make_config("fast"),
        make_config("fast", batch_size=50, schedule="none"),
        make_config(
            batchnorm=False,
            nesterov=True,
            model_options={"depth": 11, "pool": True},
            patience=3,
            init_from="starter",
            time_budget_min=0.5,
            device="cuda:1",
            lr=3e-4,
        ),
        make_config("fast", patience=2, amp="off", threads=1),
    ],
    ids=["report", "fast", "fast with report values", "every kind of field", "fast with runtime settings"],
)
def test_config_to_argv_round_trips_through_the_train_flags(config):
    argv = config_to_argv(config)
    assert argv[:2] == ["--preset", config.preset]
    assert parse_flags(argv) == config
    # only what differs from the preset is spelled out, each flag once
    base = asdict(make_config(config.preset))
    differing = {k for k, v in asdict(config).items() if k != "preset" and base[k] != v}
    flags = [a for a in argv[2:] if a.startswith("--")]
    assert len(flags) == len(set(flags)) == len(differing)
    assert {f.removeprefix("--no-").removeprefix("--").replace("-", "_") for f in flags} == differing


def test_the_argv_survives_a_real_process_command_line():
    """The flags go to the training process as an argv list: each value must arrive as one word."""
    config = make_config(model_options={"note": "two words", "depth": 11}, init_from="my run/best.pt")
    code = (
        "import sys, json; from dataclasses import asdict; import argparse\n"
        "from glyphcore.cli.train import add_config_flags\n"
        "from glyphcore.train.config import make_config\n"
        "p = argparse.ArgumentParser(); add_config_flags(p); g = vars(p.parse_args(sys.argv[1:]))\n"
        "print(json.dumps(asdict(make_config(g.pop('preset', 'report'), **g))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *config_to_argv(config)], capture_output=True, text=True, timeout=60, check=True
    )
    assert config_from_dict(json.loads(out.stdout)) == config
