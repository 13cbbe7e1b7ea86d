"""glyphcore's CPU training throughput with glibc's default malloc vs with freed memory kept
(``glyphcore.train.keep_freed_cpu_memory``, which every CPU run calls), each in fresh processes.

    .venv/bin/python bench/cpu_allocator.py [--rounds 3] [--steps 100]

Recipes: the report's (seed_cnn, batch 50, Adam) in fp32 and, where the CPU computes bf16
natively, with bf16 autocast; and the fast preset (batch 500, bf16 where native). Each round starts
one process per (recipe, allocator) in turn, so a neighbour's burst on a shared machine hits both
allocators alike; each process runs ``fit`` for one epoch (``steps`` steps of batch 50, or 24 steps
of the fast preset's 500), twice, and reports its best training images/s (bench/train_cpu.py's
glyphcore measurement). Prints every process's figure and the medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

RECIPES = ("report fp32", "report bf16", "fast preset")


def child(allocator: str, recipe: str, steps: int) -> None:
    import train_cpu

    import glyphcore.train

    if allocator == "default":
        glyphcore.train.keep_freed_cpu_memory = lambda: False  # fit looks the name up at call time
    if recipe == "fast preset":
        run = train_cpu.glyphcore_runner(24, None, None, preset="fast")
    else:
        run = train_cpu.glyphcore_runner(steps, "off" if recipe.endswith("fp32") else "bf16", None)
    print(max(run() for _ in range(2)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--child", nargs=2, metavar=("ALLOCATOR", "RECIPE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(*args.child, args.steps)
        return 0
    from glyphcore.train import cpu_has_native_bf16

    recipes = RECIPES if cpu_has_native_bf16() else ("report fp32", "fast preset")
    figures: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for recipe in recipes:
            for allocator in ("default", "kept"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", allocator, recipe, "--steps", str(args.steps)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                figures.setdefault((recipe, allocator), []).append(float(out.strip().splitlines()[-1]))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"{'recipe':<12} {'allocator':<10} {'median img/s':>12}  every process")
    for recipe in recipes:
        for allocator in ("default", "kept"):
            xs = figures[(recipe, allocator)]
            print(
                f"{recipe:<12} {allocator:<10} {statistics.median(xs):>12,.0f}  " + ", ".join(f"{x:,.0f}" for x in xs)
            )
        gain = statistics.median(figures[(recipe, "kept")]) / statistics.median(figures[(recipe, "default")])
        print(f"{'':<12} kept / default: {gain:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
