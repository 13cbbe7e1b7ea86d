"""How long each report's recipe would take on this machine, from its measured training speed.

    .venv/bin/python bench/recipes.py [NAME ...]

For each recipe (all by default) ``glyphcore.train.recipes.measure_recipe`` times a few real
optimizer steps of the recipe's model at its batch size on random images of its data's shape (the
ImageNet weights are not needed: a step costs the same whatever the weights), and
``glyphcore.train.estimate.estimate_run`` turns the speed into the whole run's time (every epoch,
validation and start-up; a sweep's runs one after another). Early stopping can end a run sooner:
the CIFAR-100 recipes' 100 epochs are an upper bound. The photo-folder recipe's data size is the
user's, so it gets a speed but no time. Prints the load average beside the figures: on a shared
machine the speed is the speed of that moment.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from glyphcore.timefmt import clock_text  # noqa: E402
from glyphcore.train.recipes import RECIPES, measure_recipe, sweep_size  # noqa: E402


def main(names: list[str]) -> None:
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    print("| recipe | runs | training images/s | whole run here |")
    print("|---|---|---|---|")
    for name in names or list(RECIPES):
        start = time.perf_counter()
        estimate = measure_recipe(name)
        took = time.perf_counter() - start
        if estimate is None:
            print(f"| {name} | 1 | - (its data is the user's folder) | - |")
            continue
        print(
            f"| {name} | {sweep_size(RECIPES[name])} | {estimate.images_per_s:,.0f} | "
            f"{clock_text(estimate.seconds)} |  (timed in {took:.0f} s)",
            flush=True,
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
