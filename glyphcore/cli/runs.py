"""``glyphcore runs list|show|cancel|resume|delete|export-tb``: the run folders, headless."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from glyphcore.cli.text import terminal_text
from glyphcore.cli.train import add_config_flags, given_settings
from glyphcore.errors import RunError
from glyphcore.timefmt import date_text
from glyphcore.train.callbacks import CHANCE_NOTE_PREFIX
from glyphcore.train.config import RUNTIME_FIELDS

__all__ = ["add_runs_commands"]


def _number(value: Any) -> float | None:
    """A finite number from a record field, or None for a missing or wrong-type one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _say(line: str) -> None:
    """Print a line that holds text from a run's files (names, messages) as plain text."""
    print(terminal_text(line))


def _fmt_acc(a: Any) -> str:
    a = _number(a)
    return f"{100 * a:.2f}%" if a is not None else "-"


def _fmt(value: Any, spec: str) -> str:
    v = _number(value)
    return format(v, spec) if v is not None else "-"


def _cmd_runs_list(args: argparse.Namespace) -> int:
    from glyphcore import runs

    infos = runs.list_runs()
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=1, default=str))
        return 0
    if not infos:
        print("no runs yet: start one with `glyphcore train` (or --detach to run it in the background)")
        return 0
    rows: list[tuple[str, ...]] = [("RUN", "STATE", "MODEL", "ACT", "EPOCH", "BEST VAL ACC", "STARTED", "WHY")]
    for i in infos:
        # a run that ended badly says why (the error line of the run, not just its state)
        bad = i.state in ("failed", "crashed", "diverged") or i.message.startswith(CHANCE_NOTE_PREFIX)
        why = i.message[:80] if bad else ""
        rows.append(
            tuple(
                terminal_text(cell)  # names and messages come from files: never a terminal escape
                for cell in (
                    i.run_id,
                    i.state,
                    i.model or "-",
                    i.activation or "-",
                    f"{i.epoch}/{i.epochs or '-'}",
                    _fmt_acc(i.best_val_acc),
                    date_text(i.started, "-"),
                    why,
                )
            )
        )
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
        print(
            json.dumps(
                {"run": run_dir.name, "path": str(run_dir), "status": status, "config": config, "epochs": epochs},
                indent=1,
                default=str,
            )
        )
        return 0
    _say(f"run      {run_dir.name}  ({run_dir})")
    _say(f"state    {status['state']}  {status.get('message') or ''}".rstrip())
    params = f", {status['params']:,} parameters" if status.get("params") else ""

    def text(key: str) -> str:
        return config[key] if isinstance(config.get(key), str) else "-"

    _say(f"model    {text('model')} ({text('activation')}){params}")
    _say(f"data     {text('data')}   device {status.get('device') or '-'}")
    _say(
        f"progress epoch {status.get('epoch')}/{status.get('epochs')}, step {status.get('step')}, "
        f"{status.get('wall_seconds') or 0.0:.1f} s of training"
    )
    if status.get("best_epoch"):
        _say(
            f"best     epoch {status['best_epoch']}: val loss {_fmt(status.get('best_val_loss'), '.6f')}, "
            f"val acc {_fmt_acc(status.get('best_val_acc'))}"
        )
    for r in epochs[-max(args.last, 0) :] if args.last > 0 else []:
        epoch = r.get("epoch") if isinstance(r.get("epoch"), int) else "?"
        _say(
            f"  epoch {epoch:>3}  train loss {_fmt(r.get('train_loss'), '.4f')} acc {_fmt_acc(r.get('train_acc'))}  "
            f"val loss {_fmt(r.get('val_loss'), '.4f')} acc {_fmt_acc(r.get('val_acc'))}  "
            f"{_fmt(r.get('seconds'), '.1f')} s"
        )
    return 0


def _cmd_runs_cancel(args: argparse.Namespace) -> int:
    from glyphcore import runs

    status = runs.stop(args.run, wait=args.wait)  # a run waiting in a sweep is cancelled on its own
    _say(f"{args.run}: {status['state']}" + (f" ({status['message']})" if status.get("message") else ""))
    return 0


def _cmd_runs_resume(args: argparse.Namespace) -> int:
    from glyphcore import runs

    run_id = runs.resume(args.run, **given_settings(args))
    print(run_id)
    return 0


def _cmd_runs_delete(args: argparse.Namespace) -> int:
    from glyphcore import runs

    run_dir = runs.resolve_run(args.run)
    ok, why = runs.can_delete(runs.run_info(run_dir))
    if not ok:  # said before asking for the confirmation, not after it
        raise RunError(why)
    if not args.yes:
        raise RunError(f"this deletes {run_dir} and its checkpoints; pass --yes to confirm")
    runs.delete(run_dir)
    _say(f"deleted {run_dir}")
    return 0


def _cmd_runs_export_tb(args: argparse.Namespace) -> int:
    from glyphcore import runs
    from glyphcore.train.tensorboard import export_tb

    if bool(args.run) == args.all:
        raise RunError("name one run, or pass --all for every run (not both)")
    if args.run:
        print(export_tb(args.run, overwrite=args.overwrite))
        return 0
    for info in runs.list_runs():
        try:
            print(f"{info.run_id}: {export_tb(info.path, overwrite=args.overwrite)}")
        except RunError as e:  # an active run or an existing tb/: the others are still converted
            print(f"{info.run_id}: skipped ({e})")
    return 0


def add_runs_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``runs list|show|cancel|resume|delete|export-tb``."""
    p = sub.add_parser("runs", help="list, inspect, cancel, resume and delete training runs; TensorBoard files")
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
    q = rs.add_parser(
        "export-tb",
        help="write a run's metrics.jsonl as TensorBoard event files in <run>/tb/",
        description="Convert the metrics of runs trained without tensorboard into the event files "
        "a run writes itself when it is installed: tensorboard --logdir checkpoints.",
    )
    q.add_argument("run", nargs="?", help="run id, run folder, or starter")
    q.add_argument("--all", action="store_true", help="every run that has ended (others are skipped)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing tb/ folder")
    q.set_defaults(func=_cmd_runs_export_tb)
