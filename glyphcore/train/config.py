"""``TrainConfig``: every setting of a training run, its presets, and its command-line form.

This module imports neither torch nor numpy, so the CLI can build the ``train`` flags (one per
field, generated from the dataclass so that flags and fields never drift) and ``--help`` stays fast.
``glyphcore.train`` re-exports everything here; use it from there.

The defaults reproduce the report: seed_cnn with SiLU and BatchNorm, Adam at lr 2e-4, batch 50,
15 epochs, seed 42, on glyphs-52, save-best on validation loss.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from glyphcore.errors import ConfigError

__all__ = [
    "TrainConfig",
    "CHOICES",
    "PRESETS",
    "PRESET_NOTES",
    "RUNTIME_FIELDS",
    "RUNTIME_KEYS",
    "EXPOSURE",
    "MAX_OUTLIER_EXPOSURE",
    "make_config",
    "options_follow_model",
    "config_from_dict",
    "config_to_argv",
    "field_specs",
]

# The closed sets of values, in one place: TrainConfig's checks, the CLI flags and the app's menus
# read them from here. (Model and activation names live in glyphcore.models.)
CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adam", "adamw", "sgd"),
    "schedule": ("none", "cosine", "onecycle"),
    "augment": ("none", "light", "strong"),
    "amp": ("auto", "bf16", "off"),
    "compile": ("off", "default", "reduce-overhead"),
    "preset": ("report", "fast", "quick", "compare"),
}


MAX_OUTLIER_EXPOSURE = 10.0  # the exposure loss's weight: beyond this it drowns the letters' own loss


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field carrying its CLI help text (``metadata["help"]``)."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. The defaults are the report's recipe.

    Valid by construction: ``TrainConfig(...)``, ``make_config``, ``config_from_dict`` and
    ``dataclasses.replace`` all check every field (and coerce strings as the CLI does), or raise
    ConfigError naming the first bad field; the config is frozen, so it stays valid.

    Units are in each field's help (and on the right); ``python -m glyphcore train --help`` shows
    the same texts. Use ``make_config(preset, **overrides)`` to start from a preset.
    """

    # -- model ---------------------------------------------------------------------------------
    model: str = _f("seed_cnn", "model name (see `python -m glyphcore models list`)")
    activation: str = _f("silu", "activation name: relu silu elu leaky_relu sigmoid tanh gelu mish")
    batchnorm: bool = _f(True, "use the model's BatchNorm layers")
    dropout: float = _f(0.0, "dropout probability before the classifier's fully connected layers, [0, 1)")
    model_options: dict = _f({}, "model-specific options as JSON, e.g. '{\"depth\": 11}'")
    init_from: str | None = _f(None, "start from the weights of a run (id, folder, or .pt file): fine-tuning")
    # -- optimisation ----------------------------------------------------------------------------
    optimizer: str = _f("adam", "optimizer")
    lr: float = _f(2e-4, "peak learning rate per optimizer step (not scaled with the batch size)")
    momentum: float = _f(0.9, "SGD momentum (sgd only)")
    nesterov: bool = _f(False, "Nesterov momentum (sgd only)")
    weight_decay: float = _f(0.0, "weight decay: L2 for adam/sgd, decoupled for adamw")
    schedule: str = _f("none", "learning-rate schedule over all steps: none (constant), cosine, onecycle")
    label_smoothing: float = _f(0.0, "label smoothing of the training loss, [0, 1); validation loss uses none")
    augment: str = _f("none", "batched per-sample augmentation of training images")
    outlier_exposure: float = _f(
        0.0,
        "weight of the loss that pushes generated non-letters (scribbles, shapes, symbols; a quarter of each "
        "batch) toward no letter in particular, so the model can say 'not a letter'; 0 = off; letter data only",
    )
    batch_size: int = _f(50, "images per optimizer step (the global batch, over all processes)")
    eval_batch_size: int = _f(1000, "images per forward pass when evaluating")
    epochs: int = _f(15, "passes over the training set")
    seed: int = _f(42, "seed of the weights' initialisation, the shuffling and the augmentation")
    # -- data ------------------------------------------------------------------------------------
    data: str = _f("glyphs-52", "data source: glyphs-52, course:<root>, folder:<root>, torchvision:<NAME>")
    val_split: str = _f("auto", "split to validate on; auto = 'valid' if the source has it, else 'test'")
    # -- stopping and limits ---------------------------------------------------------------------
    patience: int | None = _f(None, "early stopping: epochs without a lower validation loss before stopping")
    time_budget_min: float | None = _f(None, "stop after this many minutes of training (wall clock)")
    param_budget: int | None = _f(None, "refuse to start a model with more trainable parameters than this")
    # -- machine ---------------------------------------------------------------------------------
    device: str = _f("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    amp: str = _f("auto", "mixed precision: auto (bf16 where the device runs it natively), bf16, off (fp32)")
    threads: int | None = _f(None, "CPU threads for torch (torch.set_num_threads); default: torch's choice")
    compile: str = _f("off", "torch.compile the model (reduce-overhead = CUDA graphs); compile time is reported apart")
    log_every: int = _f(25, "steps between train-loss records in metrics.jsonl (about one a second: a live curve)")
    preset: str = _f(
        "report", "starting point of the other settings: report (the report's recipe), fast, quick or compare"
    )

    def __post_init__(self) -> None:
        _check_config(self)


# A preset is a set of overrides of the defaults. "fast": a large batch, one-cycle schedule and label
# smoothing in bf16 -- built to reach the report's >= 99.0% held-out-font accuracy in a fraction
# of its steps on a GPU (15 x 832 steps at batch 50 -> 12 x 84 at batch 500).
# Every preset trains with outlier exposure (glyphcore.train.nonletters) at a weight of 0.02: on letter data
# it lets the model say "not a letter" to 82-97% of generated non-letters (17% without), at no measured
# cost in accuracy on fonts; clean drawn letters lose a little confidence (drawings' ECE 2.0% -> 2.4-8.5%)
# and, for the starter, 3 points of accuracy (docs/benchmarks.md, "Outlier exposure"; larger weights make
# drawn letters under-confident: 0.5 gave a drawings ECE of 30%). It is off by itself for other data, and
# a config without the field (runs made before) reads 0.
EXPOSURE = {"outlier_exposure": 0.02}
PRESETS: dict[str, dict[str, Any]] = {
    "report": {**EXPOSURE},
    "fast": {
        **EXPOSURE,
        "batch_size": 500,  # images per step
        "eval_batch_size": 5000,  # images per forward pass
        "optimizer": "adam",
        "lr": 3e-3,  # peak of the one-cycle schedule, per step
        "schedule": "onecycle",
        "label_smoothing": 0.1,
        "epochs": 12,
        "amp": "auto",  # bf16 where the device runs it natively
    },
    # "quick": the change-one-thing-and-compare loop on a laptop CPU. quick_cnn at widths 8-16-32 and
    # fc 512 (623,172 params: conv -> pool -> BN -> act stages, dropout before its two fc layers; twice
    # the training speed of its 16-32-64 default on the CPU), 3 epochs of batch 500 under a one-cycle
    # schedule to 8e-3, no label smoothing (calibration stays honest), no augmentation.
    # Measured 2026-12-02 on glyphs-52/2 (glyphs-52-8b327d5b45c3), a quiet 2-core AMD EPYC Zen 5
    # (AVX512-BF16, so bf16 autocast): 95.08-95.33% held-out-font validation accuracy (the report's
    # recipe, 15 epochs: 95.63% at its best epoch, 95.20% at its last) in about 30 s of training
    # loop, about one report-recipe epoch (docs/benchmarks.md, "The quick preset").
    "quick": {
        **EXPOSURE,
        "model": "quick_cnn",
        "model_options": {"widths": [8, 16, 32], "hidden": 512},  # channels per stage, fc width
        "dropout": 0.3,  # probability, before each fc layer
        "batch_size": 500,  # images per step
        "eval_batch_size": 5000,  # images per forward pass
        "optimizer": "adam",
        "lr": 8e-3,  # peak of the one-cycle schedule, per step
        "schedule": "onecycle",
        "epochs": 3,
        "amp": "auto",  # bf16 where the device runs it natively
        "log_every": 8,  # steps (~0.1 s each on 2 cores): about one loss point a second, ~30 a run
    },
}
# "compare": the quick recipe on a 50x50 average of the frame (quick_cnn's input_pool 2: a quarter
# of the convolutions' work) for 1 epoch, for comparisons of several settings x several seeds at
# about a third of a quick run's cost each. It must rank settings as the quick preset does
# (bench/compare_speed.py, docs/benchmarks.md "Comparisons").
PRESETS["compare"] = {
    **PRESETS["quick"],
    "model_options": {"widths": [8, 16, 32], "hidden": 512, "input_pool": 2},  # input_pool: k x k average
    "epochs": 1,
}

# What each preset is for, in a line (the Train page's menu, `train --help`).
PRESET_NOTES: dict[str, str] = {
    "report": "the report's recipe: seed_cnn, Adam 2e-4, batch 50, 15 epochs (8-10 min on 2 CPU cores)",
    "fast": "batch 500, one-cycle schedule, label smoothing, 12 epochs: the report's accuracy in fewer steps",
    "quick": "quick_cnn 8-16-32, batch 500, one-cycle, 3 epochs: change one thing and compare (~35 s on 2 cores)",
    "compare": "quick_cnn on a 50x50 average of the frame, 1 epoch: settings x seeds, a fifth of a quick run each",
}

MAX_SEED = 2**63 - 1  # torch.manual_seed takes a 64-bit seed; larger ones raise deep inside torch
MAX_THREADS = 1024  # torch threads; 100,000 crashes the process (threads = cores is the fast setting)
MAX_COUNT = 2**31 - 1  # batch sizes, epochs, steps between records, patience: int32 indexing and beyond sense

# The settings that say where and how a run runs, not what it trains: never a difference between
# two runs (comparisons, groups of seeds), never swept, and apart on the Train form.
RUNTIME_KEYS = ("device", "amp", "threads", "compile", "log_every", "eval_batch_size")
# Fields that may change when a run is resumed: how and where it runs, and how long.
RUNTIME_FIELDS = ("epochs", "patience", "time_budget_min", *RUNTIME_KEYS)


def _hints() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def field_specs() -> list[dict[str, Any]]:
    """One dict per TrainConfig field: name, type ("str"|"int"|"float"|"bool"|"dict"), optional
    (None allowed), default, help and choices. The CLI flags and the app's forms are built from it."""
    hints = _hints()
    specs = []
    for f in fields(TrainConfig):
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if args else hint
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[operator]
        specs.append(
            {
                "name": f.name,
                "type": getattr(base, "__name__", str(base)),
                "optional": optional,
                "default": default,
                "help": f.metadata.get("help", ""),
                "choices": CHOICES.get(f.name),
            }
        )
    return specs


def coerce_value(spec: dict[str, Any], value: Any) -> Any:
    """A value of field ``spec`` from Python or from a string (the CLI, JSON); ConfigError if not."""
    name, kind = spec["name"], spec["type"]
    if value is None or (spec["optional"] and isinstance(value, str) and value.strip().lower() in ("none", "")):
        if spec["optional"]:
            return None
        raise ConfigError(f"{name} cannot be empty (default {spec['default']!r})")
    try:
        if kind == "bool":
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return low in ("true", "1", "yes", "on")
            if not isinstance(value, bool | int):
                raise ValueError(value)
            return bool(value)
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind == "dict":
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    except (ValueError, TypeError, json.JSONDecodeError):
        example = (
            '{"depth": 11}' if kind == "dict" else {"bool": "true", "int": "3", "float": "0.001"}.get(kind, "text")
        )
        raise ConfigError(f"{name} must be a {kind} (e.g. {example}), got {value!r}") from None


def _check_config(config: TrainConfig) -> None:
    """Coerce every field to its type, then check its range (model and activation names are
    checked by the model registry when the model is built). Runs in ``TrainConfig.__post_init__``.

    Raises:
        ConfigError: the first bad field, with its allowed values.
    """
    specs = field_specs()
    for spec in specs:
        name = spec["name"]
        value = coerce_value(spec, getattr(config, name))
        object.__setattr__(config, name, value)  # frozen: the one place a field is set after __init__
        if spec["choices"] and value not in spec["choices"]:
            raise ConfigError(f"{name} must be one of {', '.join(spec['choices'])}; got {value!r}")

    for spec in specs:  # NaN and Inf pass every comparison below the wrong way: refuse them first
        v = getattr(config, spec["name"])
        if spec["type"] == "float" and v is not None and not math.isfinite(v):
            raise ConfigError(f"{spec['name']} must be a finite number, got {v!r}")
        if spec["type"] == "str" and v is not None and "\0" in v:  # no OS call can take it (paths, argv)
            raise ConfigError(f"{spec['name']} contains a NUL byte: type it again, got {v!r}")
    if not 0 <= config.seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer in 0..{MAX_SEED} (2**63 - 1), got {config.seed}")
    _check_bounds(config, specs)
    _check_ranges(config)


def _check_ranges(config: TrainConfig) -> None:
    """Refuse values outside their field's range: counts and rates above 0, probabilities in [0, 1)."""
    for name in ("batch_size", "eval_batch_size", "epochs", "log_every", "lr"):
        v = getattr(config, name)
        if v <= 0:
            raise ConfigError(f"{name} must be above 0, got {v!r}")
    for name in ("patience", "time_budget_min", "param_budget", "threads"):
        v = getattr(config, name)
        if v is not None and v <= 0:
            raise ConfigError(f"{name} must be above 0, got {v!r}")
    if not 0.0 <= config.dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {config.dropout}")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise ConfigError(f"label_smoothing must be in [0, 1), got {config.label_smoothing}")
    if not 0.0 <= config.outlier_exposure <= MAX_OUTLIER_EXPOSURE:
        raise ConfigError(
            f"outlier_exposure must be in [0, {MAX_OUTLIER_EXPOSURE:g}] (a loss weight; the presets' is "
            f"{EXPOSURE['outlier_exposure']:g}), "
            f"got {config.outlier_exposure}"
        )
    if config.weight_decay < 0:
        raise ConfigError(f"weight_decay must be >= 0, got {config.weight_decay}")
    if not 0.0 <= config.momentum < 1.0:
        raise ConfigError(f"momentum must be in [0, 1), got {config.momentum}")
    dev = config.device
    if not (dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps; got {dev!r}")
    if not config.data.strip():
        raise ConfigError("data must name a data source, e.g. glyphs-52")


def _check_bounds(config: TrainConfig, specs: list[dict[str, Any]]) -> None:
    """Refuse counts the code cannot really run (a thread count that crashes torch, sizes past int32)."""
    if config.threads is not None and config.threads > MAX_THREADS:
        raise ConfigError(f"threads must be at most {MAX_THREADS}, got {config.threads}: this machine has fewer cores")
    for spec in specs:
        v = getattr(config, spec["name"])
        if spec["type"] == "int" and spec["name"] not in ("seed", "param_budget") and v is not None and v > MAX_COUNT:
            raise ConfigError(f"{spec['name']} must be at most {MAX_COUNT:,}, got {v:,}")


def config_from_dict(values: dict[str, Any], *, ignore_unknown: bool = False) -> TrainConfig:
    """A validated TrainConfig from a dict (config.json, the app's form).

    Args:
        values: field name -> value; strings are parsed as the CLI does.
        ignore_unknown: skip keys that are not fields (config.json also holds dataset and versions).

    Raises:
        ConfigError: an unknown field (unless ignored) or a bad value.
    """
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - names)
    if unknown and not ignore_unknown:
        raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    return TrainConfig(**{k: v for k, v in values.items() if k in names})


def make_config(preset: str = "report", **overrides: Any) -> TrainConfig:
    """The config of ``preset`` with ``overrides`` on top, validated.

    >>> make_config("fast", epochs=4).batch_size
    500

    Raises:
        ConfigError: unknown preset or field, or a bad value.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    values = {**PRESETS[preset], **options_follow_model(PRESETS[preset], overrides), "preset": preset}
    return config_from_dict(values)


def options_follow_model(current: Mapping[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` to settings ``current``, with ``model_options`` reset to ``{}`` when they change the
    model and bring no options of their own: one model's options are not another's.

    >>> options_follow_model({"model": "quick_cnn", "model_options": {"hidden": 512}}, {"model": "lenet"})
    {'model': 'lenet', 'model_options': {}}
    """
    if "model_options" not in changes and changes.get("model", current.get("model")) != current.get("model"):
        return {**changes, "model_options": {}}
    return changes


def _flag_value(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return "none"
    return str(value)


def config_to_argv(config: TrainConfig) -> list[str]:
    """The ``train`` flags that rebuild ``config``: ``--preset P`` then every field that differs
    from that preset. ``make_config`` of the parsed flags gives back an equal config."""
    base = asdict(make_config(config.preset))
    argv = ["--preset", config.preset]
    for key, value in asdict(config).items():
        if key == "preset" or base[key] == value:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            argv += [flag, _flag_value(value)]
    return argv
