"""All 8 activations x 3 seeds with the verdict table, against ONE report-recipe epoch timed in the same run.

    .venv/bin/python bench/compare_speed.py [--seeds 3] [--threads 2] [--quick-dir DIR] [--out FILE]
    .venv/bin/python bench/compare_speed.py --from FILE --quick-dir DIR    # the verdicts again, no training

The data set is loaded once; every run is a real ``glyphcore.train.fit`` in this process (no run
folder: no checkpoints, no end-of-run calibration, no process start-up), one after another:
  report epoch   the report's recipe for ONE epoch (training-loop wall time: the epoch and its
                 validation on the 15,600 held-out-font images), timed before AND after the grid;
                 the reference is their mean, so a neighbour's burst on a shared machine hits both;
  grid           the ``compare`` preset for every activation x seed, in wall-clock seconds from the
                 first run's start to the last run's end (model builds included).
The figure is grid / reference (target <= 8, moonshot <= 4). Then the verdict table: every
activation against relu, paired by seed, best validation accuracy in points, Bonferroni over the 7
arms (``glyphcore.stats``, ``glyphcore.runs.groups``' default margin), and beside it the same table of
the quick preset's runs in ``--quick-dir`` (a sweep of 8 activations x 5 seeds; its done runs only):
a decided verdict of the compare recipe must be the quick recipe's verdict.

glyphs-52 must be built (``python -m glyphcore data build``) in GLYPH_DATA_DIR.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from glyphcore import runs, stats  # noqa: E402
from glyphcore.models.activations import ACTIVATION_NAMES  # noqa: E402

TARGET_RATIO = 8.0  # the grid / one report epoch
MOONSHOT_RATIO = 4.0  # "moonshot 4 x": 4 report epochs
BASELINE = "relu"


def _fit_seconds(config: Any, data: tuple[Any, Any]) -> tuple[float, Any]:
    from glyphcore.train import fit

    t0 = time.perf_counter()
    result = fit(config, train_set=data[0], val_set=data[1])
    if result.state != "done":
        what = f"{config.preset} {config.activation} seed {config.seed}"
        raise SystemExit(f"{what} ended {result.state}: {result.message}")
    return time.perf_counter() - t0, result


def report_epoch(threads: int, data: tuple[Any, Any]) -> float:
    """The training-loop wall time (s) of one report-recipe epoch."""
    from glyphcore.train import make_config

    _, result = _fit_seconds(make_config("report", epochs=1, threads=threads), data)
    print(f"  report epoch: {result.wall_seconds:.1f} s (val acc {100 * result.best_val_acc:.2f}%)", flush=True)
    return float(result.wall_seconds)


def grid(
    seeds: list[int], threads: int, data: tuple[Any, Any], activations: tuple[str, ...] = ACTIVATION_NAMES
) -> tuple[float, dict[str, dict[int, float]]]:
    """Every activation x seed with the compare preset: (wall seconds, {activation: {seed: best val acc %}})."""
    from glyphcore.train import make_config

    accs: dict[str, dict[int, float]] = {a: {} for a in ACTIVATION_NAMES}
    t0 = time.perf_counter()
    for seed in seeds:  # seed-major: a stopped bench still has whole seeds of every activation
        for act in activations:
            s, result = _fit_seconds(make_config("compare", activation=act, seed=seed, threads=threads), data)
            accs[act][seed] = 100 * float(result.best_val_acc)
            so_far = time.perf_counter() - t0
            print(
                f"  {act:<10} seed {seed}: {accs[act][seed]:.2f}% in {s:.1f} s (grid so far {so_far:.0f} s)", flush=True
            )
    return time.perf_counter() - t0, accs


def quick_accuracies(folder: Path) -> dict[str, dict[int, float]]:
    """{activation: {seed: best val acc %}} of the done runs of a folder of quick-preset run folders."""
    accs: dict[str, dict[int, float]] = {a: {} for a in ACTIVATION_NAMES}
    for run in sorted(p for p in folder.iterdir() if (p / "config.json").is_file()):
        status = runs.read_status(run)
        config = runs.read_json(run / "config.json") or {}
        acc = status.get("best_val_acc")
        if status.get("state") != "done" or config.get("preset") != "quick" or not isinstance(acc, float):
            continue
        if config.get("activation") in accs and isinstance(config.get("seed"), int):
            accs[config["activation"]][config["seed"]] = 100 * acc
    return accs


def verdicts(accs: dict[str, dict[int, float]]) -> dict[str, stats.Verdict]:
    """Each activation against relu: paired by seed, Bonferroni over the arms, at 95% together."""
    from glyphcore.runs.groups import metric_spec

    margin = metric_spec("best_val_acc").margin
    arms = [a for a in ACTIVATION_NAMES if a != BASELINE]
    confidence = stats.bonferroni_confidence(0.95, len(arms))
    out = {}
    for arm in arms:
        paired = sorted(set(accs[arm]) & set(accs[BASELINE]))
        interval = stats.paired_interval(
            [accs[arm][s] for s in paired], [accs[BASELINE][s] for s in paired], confidence
        )
        out[arm] = stats.verdict(interval, margin, "best val acc", arm, BASELINE, confidence=0.95)
    return out


def print_verdicts(compare: dict[str, dict[int, float]], quick: dict[str, dict[int, float]]) -> int:
    """The two tables side by side; returns how many decided compare verdicts the quick runs contradict."""
    mine, theirs = verdicts(compare), verdicts(quick)
    print(f"\nVerdicts against {BASELINE} (paired by seed, Bonferroni over {len(mine)} arms, 95% together):")
    print(f"{'arm':<11}{'compare (n)':<26}{'quick (n)':<26}agree")
    disagree = 0
    for arm, v in mine.items():
        n_c = len(set(compare[arm]) & set(compare[BASELINE]))
        n_q = len(set(quick[arm]) & set(quick[BASELINE]))
        decided = v.kind in ("better", "worse", "no difference")
        same = v.kind == theirs[arm].kind
        mark = "yes" if same else ("NO" if decided else "(compare undecided)")
        disagree += decided and not same
        print(f"{arm:<11}{f'{v.kind} ({n_c})':<26}{f'{theirs[arm].kind} ({n_q})':<26}{mark}")
    for v in mine.values():
        print(f"  compare: {v.sentence}")
    for v in theirs.values():
        print(f"  quick:   {v.sentence}")
    print(f"decided compare verdicts the quick runs contradict or leave undecided: {disagree}")
    return disagree


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3, help="seeds 1..N of every activation (default 3)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the machine's cores)")
    p.add_argument("--quick-dir", type=Path, help="run folders of the quick preset over the 8 activations x seeds")
    p.add_argument(
        "--activations",
        default=",".join(ACTIVATION_NAMES),
        help="a part of the grid only (comma-separated): its seconds per run, scaled to the 8 activations",
    )
    p.add_argument("--out", type=Path, help="write the figures and accuracies as JSON here")
    p.add_argument("--from", dest="from_file", type=Path, help="read the accuracies from an --out file: no training")
    args = p.parse_args(argv)
    if args.from_file:
        saved = json.loads(args.from_file.read_text())
        compare = {a: {int(s): v for s, v in d.items()} for a, d in saved["accuracies"].items()}
    else:
        compare = measure(args)
    if args.quick_dir:
        print_verdicts(compare, quick_accuracies(args.quick_dir))
    return 0


def measure(args: argparse.Namespace) -> dict[str, dict[int, float]]:
    """Train the reference epochs and the grid; print the figures; returns the grid's accuracies."""
    from glyphcore.data import load_dataset

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}")
    t0 = time.perf_counter()
    data = (load_dataset("glyphs-52", "train"), load_dataset("glyphs-52", "valid"))
    print(f"data loaded once in {time.perf_counter() - t0:.1f} s", flush=True)
    before = report_epoch(args.threads, data)
    activations = tuple(a for a in args.activations.split(",") if a)
    part, accs = grid(list(range(1, args.seeds + 1)), args.threads, data, activations)
    seconds = part * len(ACTIVATION_NAMES) / len(activations)  # the whole grid, scaled from its part
    if len(activations) < len(ACTIVATION_NAMES):
        print(f"\n{len(activations)} of {len(ACTIVATION_NAMES)} activations trained in {part:.1f} s, scaled up")
    after = report_epoch(args.threads, data)
    reference = (before + after) / 2
    ratio = seconds / reference
    print(f"\nreport epoch (mean of before/after): {reference:.1f} s")
    print(f"{len(ACTIVATION_NAMES)} activations x {args.seeds} seeds (compare preset): {seconds:.1f} s")
    print(f"ratio: {ratio:.2f} report epochs (target <= {TARGET_RATIO:g}, moonshot <= {MOONSHOT_RATIO:g})")
    for act, by_seed in accs.items():
        mean, sd = stats.mean_sd(list(by_seed.values()))
        if mean is None:
            continue  # not trained (--activations)
        print(f"  {act:<10} mean {mean:.2f}%  sd {sd if sd is not None else float('nan'):.2f}  n {len(by_seed)}")
    if args.out:
        figures = {"report_epoch_s": [before, after], "grid_s": seconds, "ratio": ratio, "threads": args.threads}
        args.out.write_text(json.dumps({**figures, "accuracies": accs}, indent=1))
    return accs


if __name__ == "__main__":
    raise SystemExit(main())
