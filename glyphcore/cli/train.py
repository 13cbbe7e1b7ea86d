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
from glyphcore.errors import ConfigError
from glyphcore.train.config import RUNTIME_FIELDS, coerce_value, field_specs

__all__ = ["add_train_commands", "add_config_flags", "given_settings"]


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
    """``train``: the run folder's trainer lock (when it exists already) is held from the first check
    to the end of the fit."""
    from glyphcore.runs.lock import release_trainer_lock

    held: list[Path] = []
    try:
        return _train(args, held)
    finally:
        for run_dir in held:
            release_trainer_lock(run_dir)


def _train(args: argparse.Namespace, held: list[Path]) -> int:
    from glyphcore import paths, runs
    from glyphcore.train.config import config_from_dict, make_config

    given = given_settings(args)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.run_dir and not args.detach and int(os.environ.get("RANK", "0")) == 0:
        # first: nothing of the folder is read or changed before this process holds its lock
        _claim_existing(Path(args.run_dir), resume=args.resume, overwrite=args.overwrite, held=held)
    if args.resume:
        if not args.run_dir:
            raise ConfigError("--resume needs --run-dir (the run folder to continue)")
        saved = runs.read_config(args.run_dir)
        base = config_from_dict(saved, ignore_unknown=True)
        changed = sorted(k for k, v in given.items() if k not in RUNTIME_FIELDS and getattr(base, k) != v)
        if changed:
            raise ConfigError(
                f"a resumed run keeps its settings; {', '.join(changed)} differ from its config.json. "
                f"Only {', '.join(RUNTIME_FIELDS)} may change; start a new run to change the others"
            )
        config = config_from_dict(
            {**saved, **{k: v for k, v in given.items() if k in RUNTIME_FIELDS}}, ignore_unknown=True
        )
    else:
        preset = given.pop("preset", "report")
        config = make_config(preset, **given)
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
    if args.allow_data_change and not args.resume:
        raise ConfigError("--allow-data-change only applies to --resume")
    result = fit(
        config,
        run_dir,
        callbacks=callbacks,
        resume=args.resume,
        name=args.name,
        handle_signals=True,
        allow_data_change=args.allow_data_change,
    )
    if rank == 0:
        print(f"{result.state}: {result.message}")
        print(f"run folder: {run_dir}")
    if world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    return 1 if result.state == "diverged" else 0


def _claim_existing(run_dir: Path, *, resume: bool, overwrite: bool, held: list[Path]) -> None:
    """Take the run folder's trainer lock for this process, then refuse to train anew over a run's
    results unless ``--overwrite`` (which removes them first). The starter is never overwritten.

    Raises:
        RunError: a file, the starter, a live run (locked), or results without --resume/--overwrite.
    """
    from glyphcore import paths
    from glyphcore.errors import RunError
    from glyphcore.runs import store
    from glyphcore.runs.lock import hold_trainer_lock

    if "\0" in str(run_dir):
        raise RunError("--run-dir contains a NUL byte: pass a plain folder path")
    store.check_run_dir_claimable(run_dir)  # a file, a link, or a folder that is not a run: refused
    if run_dir.exists() and run_dir.resolve() == paths.starter_dir().resolve():
        raise RunError(
            "the starter run is read-only, even with --overwrite: train into another folder "
            "(fine-tune it with --init-from starter)"
        )
    if not run_dir.exists():
        return  # a new folder: fit creates and locks it
    hold_trainer_lock(run_dir)  # fit takes it again; released when the command ends
    held.append(run_dir)
    if not (resume or overwrite):
        store.refuse_if_cancelled(run_dir)  # a queued run cancelled while it was being handed off
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
    p.add_argument("--detach", action="store_true", help="start the run in the background and print its id")
    p.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal)",
    )
    add_config_flags(p)
    p.set_defaults(func=_cmd_train)
