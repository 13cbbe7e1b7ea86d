"""``glyphcore sweep start|list|show|cancel``: the same settings once per point of a grid, as one thing."""

from __future__ import annotations

import argparse
import json
import time

from glyphcore.cli.text import terminal_text
from glyphcore.cli.train import add_config_flags, given_settings
from glyphcore.errors import ConfigError

__all__ = ["add_sweep_commands"]


def _parse_vary(items: list[str]) -> dict[str, list[str]]:
    """``["activation=relu,silu", "lr=1e-3,2e-3"]`` -> {"activation": ["relu", "silu"], "lr": [...]}."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not values.strip():
            raise ConfigError(f"--vary takes SETTING=V1,V2,... (e.g. activation=relu,silu), got {item!r}")
        grid.setdefault(key, []).extend(v.strip() for v in values.split(",") if v.strip())
    return grid


def _cmd_start(args: argparse.Namespace) -> int:
    from glyphcore.runs.sweep import launch_sweep, read_sweep, sweep_configs
    from glyphcore.train.config import coerce_value, field_specs, make_config

    given = given_settings(args)
    config = make_config(given.pop("preset", "report"), **given)
    specs = {s["name"]: s for s in field_specs()}
    grid = _parse_vary(args.vary)
    typed = {k: [coerce_value(specs[k], v) for v in vals] if k in specs else vals for k, vals in grid.items()}
    sweep_configs(config, typed)  # every point is checked before anything starts
    sweep_id = launch_sweep(config, typed, parallel=args.parallel, name=args.name)
    print(sweep_id)
    if not args.wait:
        return 0
    t0 = time.monotonic()
    while read_sweep(sweep_id).active:
        time.sleep(1.0)
    _print_table(sweep_id)
    print(f"sweep {sweep_id} ended after {time.monotonic() - t0:.1f} s")
    return 0


def _print_table(sweep_id: str) -> None:
    from glyphcore.runs.sweep import sweep_table

    rows = sweep_table(sweep_id)
    if not rows:
        print("(no runs)")
        return
    cols = list(rows[0])
    table = [cols] + [["-" if r[c] is None else str(r[c]) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _cmd_list(args: argparse.Namespace) -> int:
    from glyphcore.runs.sweep import list_sweeps

    sweeps = list_sweeps()
    if not sweeps:
        print("no sweeps yet: start one with `glyphcore sweep start --vary activation=relu,silu`")
    for s in sweeps:
        done = sum(r.state not in ("queued", "running") for r in s.runs)
        gone = sum(bool(r.status.get("runner_gone")) for r in s.runs)
        grid = "; ".join(f"{k}={','.join(map(str, v))}" for k, v in s.grid.items()) or "grid unknown"
        stalled = f"  {gone} waiting, runner gone: `glyphcore sweep resume {s.sweep_id}`" if gone else ""
        print(terminal_text(f"{s.sweep_id}  {done}/{len(s.runs)} finished  {grid}{stalled}"))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from glyphcore.runs.sweep import read_sweep, sweep_table

    if args.json:
        sweep = read_sweep(args.sweep)
        print(
            json.dumps(
                {
                    "sweep_id": sweep.sweep_id,
                    "grid": sweep.grid,
                    "parallel": sweep.parallel,
                    "runs": sweep_table(sweep),
                },
                indent=1,
                default=str,
            )
        )
        return 0
    _print_table(args.sweep)
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    from glyphcore.runs.sweep import cancel_sweep

    sweep = cancel_sweep(args.sweep, wait=args.wait)
    states = ", ".join(f"{r.run_id}: {r.state}" for r in sweep.runs)
    print(f"{sweep.sweep_id}: {states}")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from glyphcore.runs.sweep import resume_sweep

    sweep = resume_sweep(args.sweep)
    print(terminal_text(f"{sweep.sweep_id}: a new runner starts its waiting runs"))
    return 0


def add_sweep_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``sweep start|list|show|cancel``."""
    p = sub.add_parser("sweep", help="train the same settings once per value of one or more settings")
    ss = p.add_subparsers(dest="sweep_command", required=True, metavar="ACTION")
    q = ss.add_parser(
        "start",
        help="start a sweep in the background and print its id",
        description="One run per point of the grid of --vary settings; on a CPU one at a time "
        "(--parallel for more), with several GPUs one run per GPU.",
    )
    q.add_argument(
        "--vary",
        action="append",
        required=True,
        metavar="SETTING=V1,V2",
        help="a setting and its values, e.g. activation=relu,silu,gelu (repeat for a grid)",
    )
    q.add_argument("--parallel", type=int, help="runs at once (default: one per GPU, else 1)")
    q.add_argument("--name", help="a name for the sweep's runs")
    q.add_argument("--wait", action="store_true", help="wait until every run has ended and print the table")
    add_config_flags(q)
    q.set_defaults(func=_cmd_start)
    q = ss.add_parser("list", help="every sweep, newest first")
    q.set_defaults(func=_cmd_list)
    q = ss.add_parser("show", help="a sweep's results table")
    q.add_argument("sweep", help="sweep id")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_show)
    q = ss.add_parser("cancel", help="stop a sweep: its waiting runs never start, its running ones save last.pt")
    q.add_argument("sweep", help="sweep id")
    q.add_argument("--wait", type=float, default=30.0, help="seconds to wait for its runs to stop (default: 30)")
    q.set_defaults(func=_cmd_cancel)
    q = ss.add_parser("resume", help="restart the queue of a sweep whose runner is gone (its waiting runs start)")
    q.add_argument("sweep", help="sweep id")
    q.set_defaults(func=_cmd_resume)
