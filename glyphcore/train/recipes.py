"""Recipes: every course report's experiment as a named, documented set-up, one command away.

A recipe is a layer over the presets of ``glyphcore.train.config``: a preset, a data source and the
settings on top of it (``recipe_config``), for the ablation reports the sweep grid the report ran,
and beside them what the report published (its figure and hardware) and what must be downloaded
first (data sets and ImageNet weights, with their sizes). Nothing here downloads unless asked
(``download_recipe``); offline, ``require_ready`` says what is missing, and a transfer recipe runs
without its ImageNet weights only when the user says so (``from_scratch=True``: the backbone starts
from a random initialisation, which is not the report's experiment).

Where a report does not state a setting (the MNIST and VGG reports' batch sizes, the CIFAR-100
scratch model), the recipe's ``notes`` say which values are ours. Published figures are only those
the reports state; ``None`` where a report's figure is not recorded here.

    >>> recipe_config("cifar100-resnet50", from_scratch=True).model_options["pretrained"]
    False
    >>> recipe_config("mnist-lenet-batchnorm").data
    'torchvision:MNIST'
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glyphcore.errors import ConfigError
from glyphcore.train.config import TrainConfig, make_config

if TYPE_CHECKING:  # torch is imported only when a recipe is timed
    from glyphcore.train.estimate import RunEstimate

__all__ = [
    "Recipe",
    "Download",
    "RECIPES",
    "list_recipes",
    "get_recipe",
    "recipe_config",
    "recipe_downloads",
    "missing_downloads",
    "require_ready",
    "download_recipe",
    "DATA_DOWNLOADS_MB",
    "DataShape",
    "DATA_SHAPES",
    "SPEED_TTL_S",
    "cached_estimate",
    "measure_recipe",
    "sweep_size",
]

# torchvision data sets a recipe may need -> the archive size in MB (10**6 bytes) torchvision fetches:
# MNIST's four gz files (9.91 + 0.03 + 1.65 + 0.005 MB), CIFAR's python-version tarballs.
DATA_DOWNLOADS_MB: dict[str, float] = {"MNIST": 11.6, "CIFAR10": 170.5, "CIFAR100": 169.0}
# where each lands under <data_dir>/torchvision once fetched (its presence = downloaded)
_DATA_MARKERS = {
    "MNIST": "MNIST/raw/train-images-idx3-ubyte",
    "CIFAR10": "cifar-10-batches-py",
    "CIFAR100": "cifar-100-python",
}


@dataclass(frozen=True)
class Download:
    """Something a recipe needs fetched before it can run.

    Attributes:
        kind: "data" (a torchvision data set) or "weights" (ImageNet weights of an architecture).
        name: the data set (``CIFAR100``) or the architecture (``resnet50``).
        size_mb: its size in MB (10**6 bytes).
        command: the command that fetches it.
    """

    kind: str
    name: str
    size_mb: float
    command: str


@dataclass(frozen=True)
class Recipe:
    """One report's experiment.

    Attributes:
        name: the recipe's name (``cifar100-resnet50``): ``train --recipe NAME``.
        title: one line for lists and cards.
        report: which report it reproduces.
        data: the data source (``torchvision:CIFAR100``); ``folder:`` recipes take the user's folder.
        settings: TrainConfig settings on top of ``preset`` (model, options, optimizer, ...).
        preset: the preset it starts from.
        sweep: for the ablation reports, setting -> the values the report compared (a sweep).
        published: the report's result in words (``99.03% validation accuracy after 15 epochs``).
        published_acc: the same as a percentage, or None where the report's figure is not recorded.
        published_split: the split the report's figure is measured on (``valid`` or ``test``), None
            where not recorded; a run's own figure is its best accuracy on the split it validates on
            (``valid`` where the data has one, else ``test``), so the two agree only when these do.
        hardware: what the report ran on and how long it took, as far as it says.
        notes: what the recipe sets that the report does not state, and anything to know before running.
    """

    name: str
    title: str
    report: str
    data: str
    settings: dict[str, Any]
    preset: str = "report"
    sweep: dict[str, list[Any]] | None = None
    published: str = "not recorded"
    published_acc: float | None = None
    published_split: str | None = None
    hardware: str = "not stated in the report"
    notes: str = ""

    @property
    def transfer(self) -> bool:
        """Whether it starts from ImageNet weights (``model_options.pretrained``)."""
        return bool(self.settings.get("model_options", {}).get("pretrained"))


def _transfer(arch: str, *, scratch_name: str = "") -> dict[str, Any]:
    """The CIFAR-100 report's transfer set-up on ``arch``: ImageNet weights, frozen backbone, global
    pooling, dropout 0.5 and a dense head of 256 (the chosen activation), Adam, batch 128, patience 25."""
    return {
        "model": arch,
        "activation": "relu",  # the activation the ImageNet weights were trained with
        "model_options": {"pretrained": True, "freeze_backbone": True, "head_hidden": 256},
        "dropout": 0.5,  # probability, before each of the head's two Linear layers
        "optimizer": "adam",
        "lr": 1e-3,  # per step, constant
        "batch_size": 128,  # images per step
        "epochs": 100,  # an upper bound: early stopping ends it
        "patience": 25,  # epochs without a lower validation loss
    }


_MNIST = {"model": "lenet", "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 10}
_MNIST_NOTES = (
    "LeNet-5 with BatchNorm (44,470 parameters). The report's optimizer, learning rate and batch size are "
    "not recorded here: Adam at 1e-3, batch 128, 10 epochs are ours. Launch runs the whole sweep."
)
_CIFAR100_NOTE = (
    "The report's Keras set-up: frozen ImageNet backbone, global average pooling, dropout, a dense head, "
    "Adam, batch 128, early stopping with patience 25 (the 256-unit head and lr 1e-3 are ours). "
)

#: every recipe, by name, in the order of the reports
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "glyph-report",
            "The glyph report: 3-conv BN+SiLU CNN on glyphs-52",
            "the glyph report",
            "glyphs-52",
            {},
            published="99.03% validation accuracy after 15 epochs (seed_cnn, 702,948 parameters)",
            published_acc=99.03,
            published_split="valid",
            hardware="Tesla T4, 14.2 min",
            notes="The report preset: seed_cnn, SiLU, BatchNorm, Adam 2e-4, batch 50, 15 epochs, seed 42. "
            "glyphs-52 is built on this machine (no download); its valid split holds unseen font families.",
        ),
        Recipe(
            "glyph-7layer",
            "The 7-layer report: 7-conv SiLU CNN on glyphs-52",
            "the 7-layer report",
            "glyphs-52",
            {"model": "deep_cnn", "activation": "silu"},
            published="96.9% validation accuracy",
            published_acc=96.9,
            published_split="valid",
            notes="deep_cnn (1,031,252 parameters) with the glyph report's optimizer, batch and epochs; the "
            "report's own training settings are not recorded here.",
        ),
        Recipe(
            "mnist-lenet-activation",
            "MNIST report: LeNet-5 activation ablation",
            "the MNIST report",
            "torchvision:MNIST",
            dict(_MNIST),
            sweep={"activation": ["relu", "sigmoid", "tanh", "elu", "silu"]},
            notes=_MNIST_NOTES,
        ),
        Recipe(
            "mnist-lenet-batchnorm",
            "MNIST report: LeNet-5 with and without BatchNorm",
            "the MNIST report",
            "torchvision:MNIST",
            dict(_MNIST),
            sweep={"batchnorm": [True, False]},
            notes=_MNIST_NOTES,
        ),
        Recipe(
            "mnist-lenet-optimizer",
            "MNIST report: LeNet-5 optimizer ablation",
            "the MNIST report",
            "torchvision:MNIST",
            dict(_MNIST),
            sweep={"optimizer": ["sgd", "adam", "adamw"]},
            notes=_MNIST_NOTES + " SGD uses momentum 0.9 at the same learning rate.",
        ),
        Recipe(
            "cifar10-vgg19",
            "MNIST report, part 2: VGG-19 on CIFAR-10",
            "the MNIST report",
            "torchvision:CIFAR10",
            {
                "model": "vgg",
                "model_options": {"depth": 19},
                "activation": "relu",
                "optimizer": "sgd",
                "lr": 0.05,
                "momentum": 0.9,
                "weight_decay": 5e-4,
                "schedule": "cosine",
                "batch_size": 128,
                "epochs": 30,
            },
            notes="The CIFAR VGG-19 with BatchNorm (20,040,522 parameters). SGD 0.05 with momentum, weight decay "
            "5e-4, a cosine schedule, batch 128 and 30 epochs are ours.",
        ),
        Recipe(
            "food3-resnet50",
            "The ResNet50 report: ImageNet ResNet-50 on a folder of photos (3 classes)",
            "the ResNet50 report",
            "folder:data/food-3",
            {
                **_transfer("resnet50"),
                "model_options": {"pretrained": True, "freeze_backbone": True, "resize": 224},
                "dropout": 0.2,
                "batch_size": 32,
                "epochs": 20,
                "patience": 5,
            },
            notes="Frozen ImageNet backbone, a new head, photos resized to 224 px. The report's food photos "
            "are not public: put yours in data/food-3/<split>/<class>/*.jpg (train and test splits) or pass "
            "--data folder:<root>. Dropout 0.2, batch 32, 20 epochs and patience 5 are ours.",
        ),
        Recipe(
            "cifar100-scratch",
            "The CIFAR-100 report: a CNN from scratch",
            "the CIFAR-100 report",
            "torchvision:CIFAR100",
            {
                "model": "vgg",
                "model_options": {"depth": 16},
                "activation": "relu",
                "dropout": 0.5,
                "optimizer": "adam",
                "lr": 1e-3,
                "batch_size": 128,
                "epochs": 100,
                "patience": 25,
            },
            published="51% test accuracy from scratch",
            published_acc=51.0,
            published_split="test",
            notes="The report's scratch CNN is not recorded here: the CIFAR VGG-16 with BatchNorm stands in, "
            "trained as the report's transfer models (Adam, batch 128, patience 25).",
        ),
        *(
            Recipe(
                f"cifar100-{arch}",
                f"The CIFAR-100 report: {label} transfer (frozen ImageNet backbone)",
                "the CIFAR-100 report",
                "torchvision:CIFAR100",
                _transfer(arch),
                published="67% test accuracy with ImageNet transfer (the report's best transfer model)",
                published_acc=67.0,
                published_split="test",
                notes=_CIFAR100_NOTE + note,
            )
            for arch, label, note in (
                ("vgg16_bn", "VGG16", "torchvision's VGG16 with BatchNorm stands in for Keras's VGG16."),
                ("resnet50", "ResNet-50", ""),
                ("densenet121", "DenseNet-121", ""),
            )
        ),
    )
}


def list_recipes() -> list[Recipe]:
    """Every recipe, in the order of the reports."""
    return list(RECIPES.values())


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; ConfigError listing the names if there is none."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)} (`glyphcore recipes list`)")
    return RECIPES[name]


def recipe_config(name: str, *, from_scratch: bool = False, **overrides: Any) -> TrainConfig:
    """The TrainConfig of recipe ``name`` (its preset + data + settings), with ``overrides`` on top.

    Args:
        name: a recipe name.
        from_scratch: a transfer recipe without its ImageNet weights: the whole net trains from a
            random initialisation (no frozen backbone).
        **overrides: TrainConfig settings that replace the recipe's (``data=...``, ``epochs=...``).

    Raises:
        ConfigError: unknown recipe, setting or value.
    """
    recipe = get_recipe(name)
    preset = overrides.pop("preset", recipe.preset)
    if preset != recipe.preset:
        raise ConfigError(f"recipe {name} starts from the {recipe.preset} preset: leave --preset out (got {preset!r})")
    values: dict[str, Any] = {"data": recipe.data, **recipe.settings, **overrides}
    if from_scratch:  # the whole net learns: a frozen random backbone would learn nothing
        options = {**values.get("model_options", {}), "pretrained": False}
        values["model_options"] = {**options, "freeze_backbone": False} if "freeze_backbone" in options else options
    return make_config(recipe.preset, **values)


def _data_name(source: str) -> str | None:
    """The torchvision data set a source names (``torchvision:MNIST`` -> ``MNIST``), else None."""
    kind, _, arg = source.partition(":")
    return arg if kind == "torchvision" and arg in DATA_DOWNLOADS_MB else None


def recipe_downloads(
    recipe: Recipe | str, *, from_scratch: bool = False, config: TrainConfig | None = None
) -> list[Download]:
    """What the recipe needs fetched, downloaded or not: its data set and its ImageNet weights.

    Args:
        recipe: a recipe or its name.
        from_scratch: leave the ImageNet weights out (the user trains the backbone from scratch).
        config: the config it will run with (another data source, other options), default the recipe's.
    """
    from glyphcore.models.imagenet import weights_file

    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    config = config or recipe_config(recipe.name, from_scratch=from_scratch)
    needs: list[Download] = []
    name = _data_name(config.data)
    if name is not None:
        needs.append(Download("data", name, DATA_DOWNLOADS_MB[name], f"python -m glyphcore data fetch {name}"))
    if config.model_options.get("pretrained") is True:
        size = weights_file(config.model).size_mb
        needs.append(Download("weights", config.model, size, f"python -m glyphcore models download {config.model}"))
    return needs


def _downloaded(item: Download) -> bool:
    from glyphcore.data.sources.torchvision_sets import torchvision_dir
    from glyphcore.models.imagenet import cached_weights

    if item.kind == "data":
        return (torchvision_dir() / _DATA_MARKERS[item.name]).exists()
    return cached_weights(item.name) is not None


def missing_downloads(
    recipe: Recipe | str, *, from_scratch: bool = False, config: TrainConfig | None = None
) -> list[Download]:
    """``recipe_downloads`` that are not on this machine yet (a damaged weights file raises ConfigError)."""
    return [d for d in recipe_downloads(recipe, from_scratch=from_scratch, config=config) if not _downloaded(d)]


def require_ready(recipe: Recipe | str, *, from_scratch: bool = False, config: TrainConfig | None = None) -> None:
    """Nothing to do when everything the recipe needs is here; otherwise ConfigError naming what is
    missing, its size, the command that fetches it -- and, for ImageNet weights, ``--from-scratch``."""
    missing = missing_downloads(recipe, from_scratch=from_scratch, config=config)
    if not missing:
        return
    name = recipe if isinstance(recipe, str) else recipe.name
    lines = [f"{d.kind} {d.name} ({d.size_mb:.1f} MB): {d.command}" for d in missing]
    total = sum(d.size_mb for d in missing)
    hint = f"; or `glyphcore recipes download {name}` fetches all of it ({total:.1f} MB)"
    if any(d.kind == "weights" for d in missing):
        hint += "; or pass --from-scratch to train the backbone without ImageNet weights (not the report's experiment)"
    raise ConfigError(f"recipe {name} needs downloads first: " + "; ".join(lines) + hint)


def download_recipe(recipe: Recipe | str, *, from_scratch: bool = False, announce: Any = print) -> list[Path]:
    """Fetch what ``recipe`` is missing, saying each item's size before it starts.

    Returns:
        Where each fetched item now is (a data folder or a weights file).

    Raises:
        ConfigError / DataError: a download failed (the message says why and what to do).
    """
    from glyphcore.data.sources import load_dataset
    from glyphcore.data.sources.torchvision_sets import torchvision_dir
    from glyphcore.models.imagenet import download_weights

    done: list[Path] = []
    for item in missing_downloads(recipe, from_scratch=from_scratch):
        if item.kind == "weights":
            done.append(download_weights(item.name, announce=announce))
            continue
        announce(f"downloading torchvision:{item.name}: {item.size_mb:.1f} MB to {torchvision_dir()}")
        for split in ("train", "test"):
            load_dataset(f"torchvision:{item.name}", split, download=True)
        done.append(torchvision_dir() / _DATA_MARKERS[item.name])
    return done


# --------------------------------------------------------------------------------------------
# this machine's time for a recipe: measured on request, kept for SPEED_TTL_S, never in a page's thread


@dataclass(frozen=True)
class DataShape:
    """What a recipe's data looks like, known before it is downloaded.

    Attributes:
        shape: one image, (C, H, W).
        classes: the class count.
        n_train: training images.
        n_val: validation images (the split a run validates on).
    """

    shape: tuple[int, int, int]
    classes: int
    n_train: int
    n_val: int


# the data sets as their sources publish them; glyphs-52 as built by default (valid = held-out fonts)
DATA_SHAPES: dict[str, DataShape] = {
    "glyphs-52": DataShape((1, 100, 100), 52, 41_600, 15_600),
    "torchvision:MNIST": DataShape((1, 28, 28), 10, 60_000, 10_000),
    "torchvision:CIFAR10": DataShape((3, 32, 32), 10, 50_000, 10_000),
    "torchvision:CIFAR100": DataShape((3, 32, 32), 100, 50_000, 10_000),
}
SPEED_TTL_S = 3600.0  # s a measured speed stands for: the machine's load changes, so it expires
_SPEEDS: dict[str, tuple[float, float]] = {}  # speed key -> (training images/s, time.time() when measured)


def _speed_config(name: str) -> TrainConfig:
    """The recipe's config as timed: the same model, batch and device, without loading ImageNet weights
    (the speed of a step does not depend on the weights' values)."""
    config = recipe_config(name)
    if config.model_options.get("pretrained") is True:
        config = recipe_config(name, model_options={**config.model_options, "pretrained": False})
    return config


def _speed_key(config: TrainConfig) -> str:
    keys = ("model", "activation", "batchnorm", "dropout", "model_options", "batch_size", "device", "amp", "threads")
    return json.dumps({k: getattr(config, k) for k in keys}, sort_keys=True)


def cached_estimate(name: str, now: float | None = None, seeds: int = 1) -> RunEstimate | None:
    """The ``RunEstimate`` of recipe ``name`` (with ``seeds`` replicates of each run: their total) from
    a speed measured here in the last ``SPEED_TTL_S``, or None when there is none (not measured yet,
    expired, or data whose size is not known before it is here)."""
    from glyphcore.train.estimate import estimate_run

    recipe = get_recipe(name)
    data = DATA_SHAPES.get(recipe.data)
    config = _speed_config(name)
    found = _SPEEDS.get(_speed_key(config))
    if data is None or found is None or (now or time.time()) - found[1] > SPEED_TTL_S:
        return None
    one = estimate_run(config, data.n_train, data.n_val, found[0])
    runs = sweep_size(recipe, seeds)  # a sweep runs one at a time: its runs' times add up
    return replace(one, seconds=one.seconds * runs, steps=one.steps * runs)


def sweep_size(recipe: Recipe, seeds: int = 1) -> int:
    """How many runs launching the recipe with ``seeds`` replicates starts: its sweep's points (or 1)
    times the seeds."""
    return (math.prod(len(v) for v in recipe.sweep.values()) if recipe.sweep else 1) * seeds


def measure_recipe(name: str) -> RunEstimate | None:
    """Time a few training steps of recipe ``name`` here (seconds, on this thread), keep the speed for
    ``cached_estimate`` and return the estimate; None for data whose size is not known in advance.

    Raises:
        ConfigError: a setting this machine cannot run (the run would fail the same way).
    """
    from glyphcore.train.estimate import measure_speed

    data = DATA_SHAPES.get(get_recipe(name).data)
    if data is None:
        return None
    config = _speed_config(name)
    _SPEEDS[_speed_key(config)] = (measure_speed(config, data.shape, data.classes), time.time())
    return cached_estimate(name)
