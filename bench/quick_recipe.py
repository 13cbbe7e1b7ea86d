"""The quick preset against the report's recipe, on glyphs-52, in fresh training processes.

    .venv/bin/python bench/quick_recipe.py [--rounds 1] [--sweep] [--threads N]

Each figure comes from a real ``python -m glyphcore train`` process (its own run folder under a
temporary directory, read back from status.json and metrics.jsonl):
  report epoch   the report's recipe (seed_cnn, batch 50, Adam 2e-4, ``amp=auto``) for ONE epoch:
                 its training-loop wall time (status.json ``wall_seconds``: the epoch, its validation
                 on the 15,600 held-out-font images and its checkpoints);
  quick          the ``quick`` preset, whole: the same wall time over all its epochs, the best
                 held-out-font validation accuracy, training images/s.
Rounds alternate the two processes, so a neighbour's burst on a shared machine hits both; the ratio
quick / report epoch is printed per round and for the medians. Targets (the quick preset's):
ratio <= 2.0 (moonshot <= 1.0) with >= 99.0% validation accuracy.

``--sweep`` then trains the quick preset once per activation (relu silu elu leaky_relu sigmoid tanh
gelu mish), one ``python -m glyphcore train`` process after another as a queued sweep runs them, and
prints each accuracy and the sweep's total wall time, process start-up included (target <= 5 min).

glyphs-52 is built first (``python -m glyphcore data build``) only when GLYPH_DATA_DIR has none.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from glyphcore import runs  # noqa: E402
from glyphcore.data import glyphs52_ready  # noqa: E402
from glyphcore.models.activations import ACTIVATION_NAMES  # noqa: E402

TARGET_RATIO = 2.0  # quick's whole loop / one report epoch
MOONSHOT_RATIO = 1.0
TARGET_ACC = 0.990  # held-out-font valid accuracy
SWEEP_TARGET_S = 300.0  # 8 activations, start-up included


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def train(run_dir: Path, args: list[str]) -> dict:
    """Run one training process to its end; return its figures (wall times in s, acc as a fraction)."""
    argv = runs.train_argv(run_dir, args)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True)
    process_s = time.perf_counter() - t0
    status = runs.read_status(run_dir)
    if proc.returncode != 0 or status.get("state") != "done":
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise SystemExit(f"training {' '.join(args)} ended {status.get('state')}: " + " | ".join(tail))
    epochs = [r for r in runs.read_metrics(run_dir) if r.get("event") == "epoch"]
    return {
        "wall_s": float(status["wall_seconds"]),
        "process_s": process_s,
        "epochs": len(epochs),
        "best_acc": float(status["best_val_acc"]),
        "best_epoch": status.get("best_epoch"),
        "images_per_s": statistics.median(r["images_per_s"] for r in epochs),
        "train_s": sum(r["seconds"] for r in epochs),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=1, help="report-epoch / quick pairs, alternated (default 1)")
    p.add_argument("--sweep", action="store_true", help="also train the quick preset once per activation")
    p.add_argument("--threads", type=int, default=None, help="torch threads of every training process")
    args = p.parse_args(argv)
    if not glyphs52_ready():
        print("glyphs-52 not found in GLYPH_DATA_DIR: building it", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "glyphcore", "data", "build"], cwd=ROOT, env=_env(), check=True)
    extra = ["--threads", str(args.threads)] if args.threads else []
    load = lambda: os.getloadavg()[0]  # noqa: E731
    print(
        f"{os.cpu_count()} CPUs, load average {load():.1f} at the start; every row is a fresh "
        f"`python -m glyphcore train` process",
        flush=True,
    )
    pairs = []
    with tempfile.TemporaryDirectory(prefix="quick-recipe-") as tmp:
        tmp_path = Path(tmp)
        for r in range(args.rounds):
            report = train(tmp_path / f"report-{r}", ["--epochs", "1", *extra])
            quick = train(tmp_path / f"quick-{r}", ["--preset", "quick", *extra])
            pairs.append((report, quick))
            print(
                f"round {r + 1}: report epoch {report['wall_s']:.1f} s ({report['images_per_s']:,.0f} img/s, "
                f"valid {100 * report['best_acc']:.2f}%); quick {quick['wall_s']:.1f} s over {quick['epochs']} "
                f"epochs ({quick['images_per_s']:,.0f} img/s, process {quick['process_s']:.1f} s), best valid "
                f"{100 * quick['best_acc']:.2f}% (epoch {quick['best_epoch']}); ratio "
                f"{quick['wall_s'] / report['wall_s']:.2f}; load {load():.1f}",
                flush=True,
            )
        report_s = statistics.median(a["wall_s"] for a, _ in pairs)
        quick_s = statistics.median(b["wall_s"] for _, b in pairs)
        acc = min(b["best_acc"] for _, b in pairs)
        ratio = quick_s / report_s
        print(
            f"\nmedian: report epoch {report_s:.1f} s, quick whole loop {quick_s:.1f} s: ratio {ratio:.2f} "
            f"(target <= {TARGET_RATIO:g}: {'met' if ratio <= TARGET_RATIO else 'NOT met'}; moonshot <= "
            f"{MOONSHOT_RATIO:g}: {'met' if ratio <= MOONSHOT_RATIO else 'not met'}); quick valid accuracy "
            f"{100 * acc:.2f}% (target >= {100 * TARGET_ACC:.1f}%: {'met' if acc >= TARGET_ACC else 'NOT met'})"
        )
        if args.sweep:
            t0 = time.perf_counter()
            rows = []
            for act in ACTIVATION_NAMES:
                res = train(tmp_path / f"sweep-{act}", ["--preset", "quick", "--activation", act, *extra])
                rows.append((act, res))
                print(
                    f"  {act:<11} valid {100 * res['best_acc']:.2f}% (epoch {res['best_epoch']}), loop "
                    f"{res['wall_s']:.1f} s, process {res['process_s']:.1f} s",
                    flush=True,
                )
            total = time.perf_counter() - t0
            print(
                f"sweep of {len(rows)} activations: {total:.0f} s in all, start-up included (target <= "
                f"{SWEEP_TARGET_S:.0f} s: {'met' if total <= SWEEP_TARGET_S else 'NOT met'}); load {load():.1f}"
            )
            print(json.dumps({a: round(100 * r["best_acc"], 2) for a, r in rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
