"""``glyphcore compare RUN_OR_SWEEP...``: groups of seed replicates, and every arm against a baseline
with its paired interval and verdict in words (the same table ``sweep show`` leads with).

Everything printed that comes from a file (run ids, settings, messages) goes through
:func:`glyphcore.cli.text.terminal_text`, so a crafted file cannot move the cursor or retitle the terminal.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from glyphcore.cli.text import terminal_text

__all__ = [
    "add_compare_commands",
    "print_table",
    "collect_runs",
    "print_verdict_report",
    "print_sweep",
    "wait_and_report",
]

VERDICT_COLUMNS = ("arm", "baseline", "n_pairs", "mean_diff", "low", "high", "verdict")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.3g}"
    return terminal_text(value)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    """Rows as aligned text columns (``-`` for None), every cell neutralised for the terminal."""
    if not rows:
        print("(no rows)")
        return
    cols = list(columns or rows[0])
    table = [[terminal_text(c) for c in cols]] + [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def collect_runs(refs: Iterable[str]) -> tuple[list[Any], int]:
    """The RunInfo of every run named, and the planned looks of the comparison: a sweep id gives its
    runs (every round's, for a round of an until-decided sweep, whose looks count), a run id or
    folder the run.

    Raises:
        RunError: a reference that is neither a sweep nor a run.
    """
    from glyphcore import paths, runs
    from glyphcore.runs.rounds import planned_looks_of, series_sweeps
    from glyphcore.runs.sweep import SWEEPS_DIR, read_sweep

    infos: dict[str, Any] = {}
    looks = 1
    for ref in refs:
        record = paths.runs_dir() / SWEEPS_DIR / f"{runs.sanitize_name(ref, max_len=200)}.json"
        if record.is_file() and "/" not in ref:
            sweep_ids, plan = series_sweeps(ref)
            looks = max(looks, planned_looks_of(plan))
            found = [i for s in sweep_ids for i in read_sweep(s).runs]
        else:
            found = [runs.run_info(runs.resolve_run(ref))]
        infos.update({i.run_id: i for i in found})
    return list(infos.values()), looks


def print_verdict_report(report: Mapping[str, Any]) -> None:
    """Per metric, the verdict table (one line per arm, then its sentence); the caption; the groups."""
    for metric in report["metrics"]:
        rows = [r for r in report["verdicts"] if r["metric"] == metric]
        if not rows:
            continue
        unit = rows[0]["unit"]
        print(f"Verdicts on {terminal_text(metric)} (differences arm - baseline{' in ' + unit if unit else ''})")
        print_table(rows, VERDICT_COLUMNS)
        for row in rows:
            print(f"- {terminal_text(row['sentence'])}")
            if row["left_out"]:
                print(f"  {terminal_text(row['left_out'])}")
        print()
    if report["verdicts"]:
        print(report["method"])
        print()
    elif report["groups"]:
        print("One group: nothing to compare (runs that differ only in seed are one group).")
    print("Groups (runs equal but for the seed)")
    print_table(report["groups"])


def wait_and_report(sweep_id: str) -> None:
    """Wait until every run of the sweep has ended, then print its verdicts, groups and runs."""
    from glyphcore.runs.rounds import wait_for_sweep

    t0 = time.monotonic()
    wait_for_sweep(sweep_id)
    print_sweep(sweep_id)
    print(f"sweep {sweep_id} ended after {time.monotonic() - t0:.1f} s")


def print_sweep(sweep_id: str, baseline: str | None = None, margin: float | None = None) -> None:
    """The verdict table first (every arm against the baseline group), then the groups, then the runs."""
    from glyphcore.runs.rounds import sweep_comparison

    report = sweep_comparison(sweep_id, baseline, margin)
    print_verdict_report(report)
    print()
    rounds = f" (rounds: {', '.join(report['sweeps'])})" if len(report["sweeps"]) > 1 else ""
    print(terminal_text(f"Runs{rounds}"))
    print_table(report["runs"])


def _cmd_compare(args: argparse.Namespace) -> int:
    from glyphcore.runs.groups import DEFAULT_METRICS, compare_runs

    infos, looks = collect_runs(args.refs)
    metrics = args.metric or DEFAULT_METRICS
    report = compare_runs(infos, baseline=args.baseline, metrics=metrics, margin=args.margin, looks=looks)
    if args.json:
        print(json.dumps(report, indent=1, default=str))
        return 0
    print_verdict_report(report)
    return 0


def _margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the margin is a number (e.g. 0.3), got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"the margin must be 0 or more, got {text!r}")
    return value


def add_compare_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``compare RUN_OR_SWEEP... [--baseline NAME] [--metric M] [--margin X] [--json]``."""
    p = sub.add_parser(
        "compare",
        help="group runs by their settings and give every arm a verdict against a baseline",
        description="Runs equal but for the seed form a group (mean, sd, n). Every other group is compared with "
        "the baseline group paired by seed: the mean difference, its 95%% interval (Bonferroni-corrected over "
        "the arms) and a verdict: better, worse, no difference (within the margin) or undecided (add seeds).",
    )
    p.add_argument("refs", nargs="+", metavar="RUN_OR_SWEEP", help="run ids, run folders or sweep ids")
    p.add_argument("--baseline", help="the baseline group: its label (e.g. activation=relu) or a run id in it")
    p.add_argument(
        "--metric",
        action="append",
        help="what to judge, repeatable: best_val_acc, best_val_loss (the default: both) or any metric of "
        "status.json or the last epoch record (e.g. val_acc, wall_seconds)",
    )
    p.add_argument(
        "--margin",
        type=_margin,
        help="equivalence margin of the first metric, in its shown unit (default: 0.3 points of accuracy, "
        "0.01 of loss)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_compare)
