"""``glyphcore train ...``: every TrainConfig field as a flag, plus --run-dir, --name, --resume, --detach.

The flags are generated from the fields of ``TrainConfig`` (``glyphcore.train.config.field_specs``)
so that flags and settings never drift. torch is imported inside the handler only, so ``--help``
stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from glyphcore.cli.progress import console_progress
from glyphcore.cli.recipes import add_recipe_flags, positive_int, recipe_train_config
from glyphcore.errors import ConfigError
from glyphcore.train.config import RUNTIME_FIELDS, coerce_value, field_specs

__all__ = ["add_train_commands", "add_config_flags", "given_settings", "positive_int"]


def _converter(spec: dict[str, Any]):

    def convert(text: str) -> Any:
        try:
            return coerce_value(spec, text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = spec["type"]  # argparse names the type in its error messages
    return convert


def add_config_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """One flag per TrainConfig field (``--batch-size 50``, ``--batchnorm/--no-batchnorm``); a flag
    not given is absent from the namespace (default SUPPRESS), so presets and saved configs apply."""
    group = parser.add_argument_group("training settings (defaults: the report's recipe)")
    for spec in field_specs():
        name = spec["name"]
        if only is not None and name not in only:
            continue
        flag = "--" + name.replace("_", "-")
        default = spec["default"]
        shown = json.dumps(default) if isinstance(default, dict) else default
        help_text = f"{spec['help']} (default: {shown})"
        if spec["type"] == "bool":
            group.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
            continue
        metavar = "{" + ",".join(spec["choices"]) + "}" if spec["choices"] else spec["type"].upper()
        if spec["optional"]:
            metavar += "|none"
        group.add_argument(
            flag,
            dest=name,
            type=_converter(spec),
            default=argparse.SUPPRESS,
            metavar=metavar,
            choices=spec["choices"],
            help=help_text,
        )


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    names = [s["name"] for s in field_specs()]
    return {k: getattr(args, k) for k in names if hasattr(args, k)}


def _cmd_train(args: argparse.Namespace) -> int:
    """``train``: the run folder (when it exists already) is claimed from the first check to the end
    of the fit (``glyphcore.train.rundir``): nothing of it is read or changed before that."""
    from glyphcore.runfolder import store
    from glyphcore.train.rundir import claimed_run_dir

    if args.seeds is not None and args.seeds > 1:
        return _train_seeds(args)
    own = bool(args.run_dir) and not args.detach and int(os.environ.get("RANK", "0")) == 0
    with claimed_run_dir(Path(args.run_dir) if own else None, create=False) as held:
        if held and not (args.resume or args.overwrite):
            store.refuse_if_cancelled(args.run_dir)  # a queued run cancelled while it was handed off
        if held:
            _refuse_over_results(Path(args.run_dir), resume=args.resume, overwrite=args.overwrite)
        return _train(args)


def _config_of(args: argparse.Namespace, given: dict[str, Any]) -> Any:
    """The run's TrainConfig: a preset with the flags on top, or (``--resume``) the run's
    config.json with the runtime-only flags on top; another flag that differs is refused."""
    from glyphcore import runs
    from glyphcore.train.config import config_from_dict, make_config

    if not args.resume and (args.recipe or args.from_scratch):
        return recipe_train_config(args, given)
    if not args.resume:
        return make_config(given.pop("preset", "report"), **given)
    if not args.run_dir:
        raise ConfigError("--resume needs --run-dir (the run folder to continue)")
    saved = runs.read_config(args.run_dir)
    runtime = {k: v for k, v in given.items() if k in RUNTIME_FIELDS}
    config = config_from_dict({**saved, **runtime}, ignore_unknown=True)
    changed = sorted(k for k, v in given.items() if k not in RUNTIME_FIELDS and getattr(config, k) != v)
    if changed:
        raise ConfigError(
            f"a resumed run keeps its settings; {', '.join(changed)} differ from its config.json. "
            f"Only {', '.join(RUNTIME_FIELDS)} may change; start a new run to change the others"
        )
    return config


def _train(args: argparse.Namespace) -> int:
    from glyphcore import paths, runs

    world = int(os.environ.get("WORLD_SIZE", "1"))
    config = _config_of(args, given_settings(args))
    if args.detach:
        if args.run_dir or args.resume:
            raise ConfigError("--detach starts a new run folder itself; use `runs resume` to continue a run")
        run_id = runs.launch(config, name=args.name)
        print(run_id)
        print(f"started in the background; follow it with `python -m glyphcore runs show {run_id}`", file=sys.stderr)
        return 0
    if args.run_dir:
        run_dir = args.run_dir
    elif world > 1:
        raise ConfigError("under torchrun pass --run-dir: every process must write to (or read) the same folder")
    else:
        run_dir = str(runs.new_run_dir(config.model, config.activation, args.name, root=paths.runs_dir()))

    from glyphcore.train import fit

    rank = int(os.environ.get("RANK", "0"))
    bar = {"on": True, "off": False}.get(args.progress)
    callbacks = [console_progress(bar=bar)] if rank == 0 else []
    if (args.allow_data_change or args.allow_config_change) and not args.resume:
        raise ConfigError("--allow-data-change and --allow-config-change only apply to --resume")
    result = fit(
        config,
        run_dir,
        callbacks=callbacks,
        resume=args.resume,
        name=args.name,
        handle_signals=True,
        allow_data_change=args.allow_data_change,
        allow_config_change=args.allow_config_change,
    )
    if rank == 0:
        print(f"{result.state}: {result.message}")
        print(f"run folder: {run_dir}")
    from glyphcore.train.distributed import Distributed

    Distributed.from_env().finish()
    return 1 if result.state == "diverged" else 0


def _train_seeds(args: argparse.Namespace) -> int:
    """``train --seeds N``: the N replicates as one sweep over the seed (seed, seed + 1, ...), in
    the background; without --detach, wait for them and print the group table. With ``--recipe``
    the recipe's setting (flags on top; not its sweep) launches as the gallery launches it, named
    after the recipe."""
    from glyphcore.cli.compare import wait_and_report
    from glyphcore.runs.recipes import launch_recipe
    from glyphcore.runs.sweep import launch_sweep

    if args.run_dir or args.resume:
        raise ConfigError("--seeds starts one run folder per seed itself; leave out --run-dir and --resume")
    config = _config_of(args, given_settings(args))
    if args.recipe:
        if args.name:
            raise ConfigError(
                "--name: the replicates of a recipe are named after it (so its gallery card finds them); "
                "leave out --name"
            )
        sweep_id = launch_recipe(args.recipe, from_scratch=args.from_scratch, seeds=args.seeds, config=config)
    else:
        sweep_id = launch_sweep(config, {}, name=args.name, seeds=args.seeds)
    print(sweep_id)
    if args.detach:
        print(f"started in the background; follow it with `python -m glyphcore sweep show {sweep_id}`", file=sys.stderr)
        return 0
    wait_and_report(sweep_id)
    return 0


def _refuse_over_results(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to train anew over a run's results unless ``--overwrite`` (which removes them first).

    Raises:
        RunError: results without --resume or --overwrite.
    """
    from glyphcore.errors import RunError
    from glyphcore.runfolder import store

    if resume or not store.run_has_results(run_dir):
        return
    if not overwrite:
        raise RunError(
            f"{run_dir} already holds a run (metrics or checkpoints): continue it with --resume, "
            f"train into another --run-dir, or pass --overwrite to replace it"
        )
    import shutil

    for name in (store.METRICS_FILE, store.BEST_CKPT, store.LAST_CKPT, store.STATUS_FILE):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / store.EVAL_DIR, ignore_errors=True)


def add_train_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` (every TrainConfig field as a flag, plus --run-dir, --name, --resume, --detach)."""
    p = sub.add_parser(
        "train",
        help="train a model; the run folder goes under checkpoints/",
        description="Train a model. Defaults reproduce the report (seed_cnn, SiLU, Adam 2e-4, batch 50, 15 epochs, "
        "seed 42, glyphs-52). Prints one line per epoch; a progress bar on stderr at a terminal. "
        "Several GPUs: torchrun --nproc_per_node N -m glyphcore train --run-dir DIR ...",
    )
    p.add_argument("--run-dir", help="run folder to write (default: a new one under checkpoints/)")
    p.add_argument("--name", help="a name for the run (sanitised into the folder name)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last.pt")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="train anew in an existing --run-dir, deleting its metrics, checkpoints and eval/ (never the starter)",
    )
    p.add_argument(
        "--allow-data-change",
        action="store_true",
        help="with --resume: continue even though the data set changed since the resume point",
    )
    p.add_argument(
        "--allow-config-change",
        action="store_true",
        help="with --resume: continue even though the run's settings (lr, batch, optimizer, ...) changed "
        "since its resume point",
    )
    p.add_argument("--detach", action="store_true", help="start the run in the background and print its id")
    p.add_argument(
        "--seeds",
        type=positive_int,
        metavar="N",
        help="train N replicates (seeds --seed, --seed + 1, ...) as one sweep; they compare as one group",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal)",
    )
    add_recipe_flags(p)
    add_config_flags(p)
    p.set_defaults(func=_cmd_train)
