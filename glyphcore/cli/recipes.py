"""``glyphcore recipes list|show|download|launch``: every report's experiment, headless.

``train --recipe NAME`` (in ``glyphcore.cli.train``) trains a recipe in the foreground through
``recipe_train_config`` here; ``recipes launch NAME`` starts it in the background, as a sweep for the
ablation recipes; ``--seeds N`` on either launches N replicates as one sweep
(``glyphcore.runs.recipes.launch_recipe``, as the gallery's "Launch with 3 seeds"). Nothing is
downloaded except by ``recipes download`` (or ``models download``), which says each item's size
before it starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from glyphcore.errors import ConfigError
from glyphcore.train.config import TrainConfig
from glyphcore.train.recipes import get_recipe, list_recipes, recipe_config, recipe_downloads, require_ready

__all__ = ["add_recipes_commands", "add_recipe_flags", "recipe_train_config", "positive_int"]


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--seeds 3``). Here, below ``train`` and
    ``sweep``, which take it too."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def add_recipe_flags(parser: argparse.ArgumentParser) -> None:
    """``--recipe NAME`` and ``--from-scratch`` (for ``train`` and ``recipes launch``)."""
    parser.add_argument(
        "--recipe", metavar="NAME", help="start from a report's recipe (`glyphcore recipes list`); flags override it"
    )
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="a transfer recipe without its ImageNet weights: the whole net trains from random weights",
    )


def recipe_train_config(args: argparse.Namespace, given: dict[str, Any]) -> TrainConfig:
    """The config of ``--recipe`` with the given flags on top, once everything it needs is here.

    Raises:
        ConfigError: unknown recipe or setting, or a download missing (says which and how to get it).
    """
    if not args.recipe:
        raise ConfigError("--from-scratch applies to a transfer recipe: add --recipe NAME (`glyphcore recipes list`)")
    config = recipe_config(args.recipe, from_scratch=args.from_scratch, **given)
    require_ready(args.recipe, from_scratch=args.from_scratch, config=config)
    recipe = get_recipe(args.recipe)
    if recipe.sweep:
        grid = ", ".join(f"{k} in {v}" for k, v in recipe.sweep.items())
        print(
            f"note: the report compared {grid}; `glyphcore recipes launch {recipe.name}` runs all of them",
            file=sys.stderr,
        )
    return config


def _cmd_list(args: argparse.Namespace) -> int:
    for r in list_recipes():
        figure = f"{r.published_acc:g}%" if r.published_acc is not None else "-"
        print(f"{r.name:24} {figure:>7}  {r.title}")
    print("\nshow one with `glyphcore recipes show NAME`; train it with `glyphcore train --recipe NAME`")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    r = get_recipe(args.name)
    config = recipe_config(r.name)
    if args.json:
        print(json.dumps({**asdict(r), "config": asdict(config)}, indent=2, default=str))
        return 0
    print(f"{r.name}: {r.title}\nreport:    {r.report}\npublished: {r.published}\nhardware:  {r.hardware}")
    print(f"data:      {r.data}\nmodel:     {config.model} {json.dumps(config.model_options)}")
    settings = {k: v for k, v in r.settings.items() if k not in ("model", "model_options")}
    print(f"settings:  preset {r.preset} + {json.dumps(settings)}")
    if r.sweep:
        print(f"sweep:     {json.dumps(r.sweep)}")
    for d in recipe_downloads(r):
        print(f"download:  {d.kind} {d.name}, {d.size_mb:.1f} MB ({d.command})")
    print(f"notes:     {r.notes}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from glyphcore.train.recipes import download_recipe, missing_downloads

    missing = missing_downloads(args.name, from_scratch=args.from_scratch)
    if not missing:
        print(f"everything {args.name} needs is here")
        return 0
    total = sum(d.size_mb for d in missing)
    print(f"{args.name} needs {total:.1f} MB: " + ", ".join(f"{d.name} ({d.size_mb:.1f} MB)" for d in missing))
    for path in download_recipe(args.name, from_scratch=args.from_scratch):
        print(f"ready: {path}")
    return 0


def _cmd_launch(args: argparse.Namespace) -> int:
    from glyphcore.runs.recipes import launch_recipe

    recipe = get_recipe(args.name)
    launched = launch_recipe(recipe.name, from_scratch=args.from_scratch, seeds=args.seeds)
    print(launched)
    if recipe.sweep or args.seeds > 1:
        what = "the report's sweep" if recipe.sweep else "the recipe"
        seeds = f" x {args.seeds} seeds" if args.seeds > 1 else ""
        print(f"{what}{seeds}, one run at a time; follow it with `glyphcore sweep show {launched}`")
    else:
        print(f"started in the background; follow it with `glyphcore runs show {launched}`")
    return 0


def add_recipes_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``recipes list|show|download|launch`` to the top-level sub-parsers."""
    p = sub.add_parser("recipes", help="every report's experiment: list, show, download, launch")
    rsub = p.add_subparsers(dest="recipes_command", required=True, metavar="ACTION")
    rsub.add_parser("list", help="the recipes and the reports' figures").set_defaults(func=_cmd_list)
    show = rsub.add_parser("show", help="one recipe: settings, sweep, published figure, downloads")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="as JSON, with the whole TrainConfig")
    show.set_defaults(func=_cmd_show)
    down = rsub.add_parser("download", help="fetch the data and ImageNet weights a recipe needs (sizes first)")
    down.add_argument("name")
    down.add_argument("--from-scratch", action="store_true", help="leave the ImageNet weights out")
    down.set_defaults(func=_cmd_download)
    launch = rsub.add_parser("launch", help="start a recipe in the background (the ablations: their sweep)")
    launch.add_argument("name")
    launch.add_argument("--from-scratch", action="store_true", help="a transfer recipe without ImageNet weights")
    launch.add_argument(
        "--seeds",
        type=positive_int,
        default=1,
        metavar="N",
        help="N replicates of every run (consecutive seeds from the recipe's) as one sweep; they compare as a group",
    )
    launch.set_defaults(func=_cmd_launch)
