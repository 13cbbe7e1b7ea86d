"""``python -m glyphcore train ...`` and ``runs list|show|cancel|resume|delete``.

The ``train`` flags are generated from the fields of ``TrainConfig`` (``train_config.field_specs``)
so that flags and settings never drift. torch is imported inside the handlers only, so ``--help``
stays fast. ``add_models_commands`` (``models list|summary``) is the models engineer's, re-exported
here for the dispatcher.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from glyphcore.errors import ConfigError, RunError
from glyphcore.models.commands import add_models_commands
from glyphcore.train_config import RUNTIME_FIELDS, field_specs

__all__ = ["add_train_commands", "add_runs_commands", "add_models_commands", "add_config_flags", "console_progress"]


def _converter(spec: dict[str, Any]):
    from glyphcore.train_config import _coerce

    def convert(text: str) -> Any:
        try:
            return _coerce(spec, text)
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
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
            continue
        metavar = "{" + ",".join(spec["choices"]) + "}" if spec["choices"] else spec["type"].upper()
        if spec["optional"]:
            metavar += "|none"
        group.add_argument(flag, dest=name, type=_converter(spec), default=argparse.SUPPRESS, metavar=metavar,
                           choices=spec["choices"], help=help_text)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    names = [s["name"] for s in field_specs()]
    return {k: getattr(args, k) for k in names if hasattr(args, k)}


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------


def console_progress(stream_out: Any = None, stream_err: Any = None, bar: bool | None = None) -> Any:
    """The CLI's callback (a ``glyphcore.train.Callback``; built here so that torch is imported only
    when training starts): the per-epoch line and log lines on stdout, a progress bar on stderr
    (only when stderr is a terminal, unless ``bar`` says otherwise)."""
    from glyphcore.train import Callback

    out = stream_out or sys.stdout
    err = stream_err or sys.stderr
    show_bar = err.isatty() if bar is None else bar

    class _Console(Callback):
        def __init__(self) -> None:
            self.pos = 0
            self.last_draw = 0.0

        def _messages(self, state: Any) -> None:
            for _, m in state.messages[self.pos:]:
                self._clear()
                print(m, file=out, flush=True)
            self.pos = len(state.messages)

        def _clear(self) -> None:
            if show_bar:
                err.write("\r\033[K")

        def on_fit_start(self, state: Any) -> None:
            self._messages(state)

        def on_step(self, state: Any) -> None:
            now = time.monotonic()
            if not show_bar or now - self.last_draw < 0.2:
                return
            self.last_draw = now
            total, done = state.steps_per_epoch, state.epoch_step
            width = 30
            filled = int(width * done / max(total, 1))
            err.write(f"\repoch {state.epoch + 1}/{state.config.epochs} [{'#' * filled}{'.' * (width - filled)}] "
                      f"{done}/{total} steps")
            err.flush()

        def on_log(self, state: Any, records: list[dict[str, Any]]) -> None:
            self._messages(state)

        def on_epoch_end(self, state: Any, r: dict[str, Any]) -> None:
            self._clear()
            part = " (partial)" if r.get("partial") else ""
            print(f"Epoch {r['epoch']}/{state.config.epochs}{part}  train loss {r['train_loss']:.6f} acc "
                  f"{100 * r['train_acc']:.2f}%  val loss {r['val_loss']:.6f} acc {100 * r['val_acc']:.2f}%  "
                  f"lr {r['lr']:.2e}  {r['seconds']:.1f} s  {r['images_per_s']:,.0f} img/s", file=out, flush=True)
            self._messages(state)

        def on_fit_end(self, state: Any, result: Any) -> None:
            self._clear()
            self._messages(state)

    return _Console()


def _cmd_train(args: argparse.Namespace) -> int:
    from glyphcore import paths, runs
    from glyphcore.train_config import config_from_dict, make_config

    given = _given(args)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.resume:
        if not args.run_dir:
            raise ConfigError("--resume needs --run-dir (the run folder to continue)")
        saved = runs.read_config(args.run_dir)
        base = config_from_dict(saved, ignore_unknown=True)
        changed = sorted(k for k, v in given.items() if k not in RUNTIME_FIELDS and getattr(base, k) != v)
        if changed:
            raise ConfigError(f"a resumed run keeps its settings; {', '.join(changed)} differ from its config.json. "
                              f"Only {', '.join(RUNTIME_FIELDS)} may change; start a new run to change the others")
        config = config_from_dict({**saved, **{k: v for k, v in given.items() if k in RUNTIME_FIELDS}},
                                  ignore_unknown=True)
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
    result = fit(config, run_dir, callbacks=callbacks, resume=args.resume, name=args.name, handle_signals=True)
    if rank == 0:
        print(f"{result.state}: {result.message}")
        print(f"run folder: {run_dir}")
    if world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    return 1 if result.state == "diverged" else 0


def add_train_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` (every TrainConfig field as a flag, plus --run-dir, --name, --resume, --detach)."""
    p = sub.add_parser(
        "train", help="train a model; the run folder goes under checkpoints/",
        description="Train a model. Defaults reproduce the report (seed_cnn, SiLU, Adam 2e-4, batch 50, 15 epochs, "
                    "seed 42, glyphs-52). Prints one line per epoch; a progress bar on stderr at a terminal. "
                    "Several GPUs: torchrun --nproc_per_node N -m glyphcore train --run-dir DIR ...",
    )
    p.add_argument("--run-dir", help="run folder to write (default: a new one under checkpoints/)")
    p.add_argument("--name", help="a name for the run (sanitised into the folder name)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last.pt")
    p.add_argument("--detach", action="store_true", help="start the run in the background and print its id")
    p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="progress bar on stderr (auto: when stderr is a terminal)")
    add_config_flags(p)
    p.set_defaults(func=_cmd_train)


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------


def _fmt_time(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


def _fmt_acc(a: float | None) -> str:
    return f"{100 * a:.2f}%" if a is not None else "-"


def _cmd_runs_list(args: argparse.Namespace) -> int:
    from glyphcore import runs

    infos = runs.list_runs()
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=1, default=str))
        return 0
    if not infos:
        print("no runs yet: start one with `python -m glyphcore train` (or --detach to run it in the background)")
        return 0
    rows = [("RUN", "STATE", "MODEL", "ACT", "EPOCH", "BEST VAL ACC", "STARTED")]
    for i in infos:
        rows.append((i.run_id, i.state, i.model or "-", i.activation or "-", f"{i.epoch}/{i.epochs or '-'}",
                     _fmt_acc(i.best_val_acc), _fmt_time(i.started)))
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def _cmd_runs_show(args: argparse.Namespace) -> int:
    from glyphcore import runs

    run_dir = runs.resolve_run(args.run)
    status = runs.read_status(run_dir)
    try:
        config = runs.read_config(run_dir)
    except RunError:
        config = {}
    epochs = [r for r in runs.read_metrics(run_dir) if r.get("event") == "epoch"]
    if args.json:
        print(json.dumps({"run": run_dir.name, "path": str(run_dir), "status": status, "config": config,
                          "epochs": epochs}, indent=1, default=str))
        return 0
    print(f"run      {run_dir.name}  ({run_dir})")
    print(f"state    {status['state']}  {status.get('message') or ''}".rstrip())
    params = f", {status['params']:,} parameters" if status.get("params") else ""
    print(f"model    {config.get('model', '-')} ({config.get('activation', '-')}){params}")
    print(f"data     {config.get('data', '-')}   device {status.get('device') or '-'}")
    print(f"progress epoch {status.get('epoch')}/{status.get('epochs')}, step {status.get('step')}, "
          f"{float(status.get('wall_seconds') or 0):.1f} s of training")
    if status.get("best_epoch"):
        print(f"best     epoch {status['best_epoch']}: val loss {status['best_val_loss']:.6f}, "
              f"val acc {_fmt_acc(status.get('best_val_acc'))}")
    for r in epochs[-args.last:]:
        print(f"  epoch {r['epoch']:>3}  train loss {r['train_loss']:.4f} acc {_fmt_acc(r['train_acc'])}  "
              f"val loss {r['val_loss']:.4f} acc {_fmt_acc(r['val_acc'])}  {r['seconds']:.1f} s")
    return 0


def _cmd_runs_cancel(args: argparse.Namespace) -> int:
    from glyphcore import runs

    status = runs.cancel(args.run, wait=args.wait)
    print(f"{args.run}: {status['state']}" + (f" ({status['message']})" if status.get("message") else ""))
    return 0


def _cmd_runs_resume(args: argparse.Namespace) -> int:
    from glyphcore import runs

    run_id = runs.resume(args.run, **_given(args))
    print(run_id)
    return 0


def _cmd_runs_delete(args: argparse.Namespace) -> int:
    from glyphcore import runs

    run_dir = runs.resolve_run(args.run)
    if not args.yes:
        raise RunError(f"this deletes {run_dir} and its checkpoints; pass --yes to confirm")
    runs.delete(run_dir)
    print(f"deleted {run_dir}")
    return 0


def add_runs_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``runs list|show|cancel|resume|delete``."""
    p = sub.add_parser("runs", help="list, inspect, cancel, resume and delete training runs")
    rs = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    q = rs.add_parser("list", help="every run, newest first, plus the starter model")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_runs_list)
    q = rs.add_parser("show", help="status, settings and the last epochs of a run")
    q.add_argument("run", help="run id, run folder, or starter")
    q.add_argument("--last", type=int, default=5, help="epochs to show (default: 5)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_runs_show)
    q = rs.add_parser("cancel", help="stop a running run (it saves last.pt and can be resumed)")
    q.add_argument("run")
    q.add_argument("--wait", type=float, default=30.0, help="seconds to wait for it to stop (default: 30)")
    q.set_defaults(func=_cmd_runs_cancel)
    q = rs.add_parser("resume", help="continue a cancelled or crashed run from its last.pt, in the background")
    q.add_argument("run")
    add_config_flags(q, only=RUNTIME_FIELDS)
    q.set_defaults(func=_cmd_runs_resume)
    q = rs.add_parser("delete", help="delete a run folder")
    q.add_argument("run")
    q.add_argument("--yes", action="store_true", help="confirm")
    q.set_defaults(func=_cmd_runs_delete)
