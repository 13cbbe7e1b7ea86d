"""``glyphcore sweep start|list|show|cancel``: the same settings once per point of a grid, as one thing."""

from __future__ import annotations

import argparse
import json
from typing import Any

from glyphcore.cli.compare import print_sweep, wait_and_report
from glyphcore.cli.text import terminal_text
from glyphcore.cli.train import add_config_flags, given_settings, positive_int
from glyphcore.errors import ConfigError

__all__ = ["add_sweep_commands"]

DEFAULT_FIRST_SEEDS = 3  # seeds of the first round of --until-decided
DEFAULT_MAX_SEEDS = 10  # the most seeds --until-decided adds up to


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
    from glyphcore.runs.sweep import launch_sweep, sweep_configs
    from glyphcore.train.config import coerce_value, field_specs, make_config

    given = given_settings(args)
    config = make_config(given.pop("preset", "report"), **given)
    specs = {s["name"]: s for s in field_specs()}
    grid = _parse_vary(args.vary or [])
    if not grid and not args.seeds:
        raise ConfigError("a sweep needs --vary SETTING=V1,V2 or --seeds N (or both)")
    typed = {k: [coerce_value(specs[k], v) for v in vals] if k in specs else vals for k, vals in grid.items()}
    if args.until_decided:
        return _until_decided(args, config, typed)
    if args.max_seeds is not None or args.baseline is not None or args.margin is not None:
        raise ConfigError("--max-seeds, --baseline and --margin go with --until-decided")
    sweep_configs(config, typed, args.seeds)  # every point is checked before anything starts
    sweep_id = launch_sweep(config, typed, parallel=args.parallel, name=args.name, seeds=args.seeds)
    print(sweep_id)
    if args.wait:
        wait_and_report(sweep_id)
    return 0


def _until_decided(args: argparse.Namespace, config: Any, grid: dict[str, list[Any]]) -> int:
    """``sweep start --until-decided``: rounds of seeds in the foreground, one line per round, then
    the verdicts over every round."""
    from glyphcore.runs.rounds import RoundResult, decide_in_rounds
    from glyphcore.runs.sweep import sweep_configs

    seeds = args.seeds or DEFAULT_FIRST_SEEDS
    max_seeds = args.max_seeds or max(seeds, DEFAULT_MAX_SEEDS)
    sweep_configs(config, grid, seeds)  # every point is checked before anything starts

    def report(result: RoundResult) -> None:
        kinds = ", ".join(f"{r['arm']}: {r['verdict']}" for r in result.verdicts)
        print(terminal_text(f"round {result.round} ({result.sweep_id}, seeds {result.seeds}): {kinds}"), flush=True)

    rounds = decide_in_rounds(
        config,
        grid,
        seeds=seeds,
        max_seeds=max_seeds,
        baseline=args.baseline,
        margin=args.margin,
        parallel=args.parallel,
        name=args.name,
        on_round=report,
    )
    print()
    print_sweep(rounds[-1].sweep_id)
    left = len(rounds[-1].undecided)
    if left:
        print(f"{left} comparison(s) still undecided after {max_seeds} seeds: raise --max-seeds or the --margin")
    return 0


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
    from glyphcore.runs.rounds import sweep_comparison
    from glyphcore.runs.sweep import read_sweep

    if args.json:
        sweep = read_sweep(args.sweep)
        report = sweep_comparison(args.sweep, baseline=args.baseline, margin=args.margin)
        print(
            json.dumps(
                {"sweep_id": sweep.sweep_id, "grid": sweep.grid, "parallel": sweep.parallel, **report},
                indent=1,
                default=str,
            )
        )
        return 0
    print_sweep(args.sweep, baseline=args.baseline, margin=args.margin)
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    from glyphcore.runs.sweep import cancel_sweep

    sweep = cancel_sweep(args.sweep, wait=args.wait)
    states = ", ".join(f"{r.run_id}: {r.state}" for r in sweep.runs)
    print(terminal_text(f"{sweep.sweep_id}: {states}"))
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
        metavar="SETTING=V1,V2",
        help="a setting and its values, e.g. activation=relu,silu,gelu (repeat for a grid)",
    )
    q.add_argument(
        "--seeds",
        type=positive_int,
        metavar="N",
        help="cross the grid with N seeds (--seed, --seed + 1, ...): each point becomes a group of replicates",
    )
    q.add_argument(
        "--until-decided",
        action="store_true",
        help="add one seed per round to the baseline and every undecided arm until each comparison is decided "
        f"(waits in the foreground; first round --seeds, default {DEFAULT_FIRST_SEEDS})",
    )
    q.add_argument(
        "--max-seeds",
        type=positive_int,
        metavar="N",
        help=f"with --until-decided: stop at N seeds (default {DEFAULT_MAX_SEEDS}); the intervals spend their "
        "error rate over the planned rounds (Bonferroni)",
    )
    q.add_argument("--baseline", help="with --until-decided: the baseline group, e.g. activation=relu (default: first)")
    q.add_argument("--margin", type=float, help="with --until-decided: equivalence margin (default 0.3 points)")
    q.add_argument("--parallel", type=int, help="runs at once (default: one per GPU, else 1)")
    q.add_argument("--name", help="a name for the sweep's runs")
    q.add_argument("--wait", action="store_true", help="wait until every run has ended and print the verdicts")
    add_config_flags(q)
    q.set_defaults(func=_cmd_start)
    q = ss.add_parser("list", help="every sweep, newest first")
    q.set_defaults(func=_cmd_list)
    q = ss.add_parser("show", help="a sweep's verdicts (every arm against a baseline), groups and runs")
    q.add_argument("sweep", help="sweep id")
    q.add_argument("--baseline", help="the baseline group: its label (e.g. activation=relu) or a run id in it")
    q.add_argument("--margin", type=float, help="equivalence margin (default: 0.3 points of accuracy)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_show)
    q = ss.add_parser("cancel", help="stop a sweep: its waiting runs never start, its running ones save last.pt")
    q.add_argument("sweep", help="sweep id")
    q.add_argument("--wait", type=float, default=30.0, help="seconds to wait for its runs to stop (default: 30)")
    q.set_defaults(func=_cmd_cancel)
    q = ss.add_parser("resume", help="restart the queue of a sweep whose runner is gone (its waiting runs start)")
    q.add_argument("sweep", help="sweep id")
    q.set_defaults(func=_cmd_resume)
