"""Benchmark: glyphs-52 build speed (images/s) and cached load time.

    .venv/bin/python bench/data_build.py                      # full default build into a temp folder
    .venv/bin/python bench/data_build.py --font-dir /usr/share/fonts/truetype/dejavu   # plus a folder
    .venv/bin/python bench/data_build.py --threads 2 --keep /tmp/g52

Prints figures; writes nothing outside its temp folder (or --keep). Targets (2 cores): the
full default build (78,000 images with the "seen" split) in 30 s or less, a cached load in 0.5 s or less.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LOAD_SNIPPET = """
import time, sys
t0 = time.perf_counter()
from glyphcore.data import glyphs52_ready, load_dataset
t1 = time.perf_counter()
ready = glyphs52_ready()
sets = [load_dataset("glyphs-52", s) for s in ("train", "valid", "test", "seen")]
t2 = time.perf_counter()
touch = sum(int(s.images[-1].sum()) for s in sets)  # read one image of each split from disk
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.4f} {t3 - t2:.4f} {ready} {sum(len(s) for s in sets)}")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--font-dir",
        action="append",
        help="font folder(s) to use as well (an opt-in: the data set then differs between machines)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the cores free now)")
    parser.add_argument("--keep", help="build into this data folder and keep it (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="glyph-bench-"))
    os.environ["GLYPH_DATA_DIR"] = str(data_dir)
    import torch

    from glyphcore.data import build_glyphs52, read_manifest
    from glyphcore.data.build import build_threads

    threads = args.threads or build_threads()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}, {threads} torch thread(s)"
    )
    try:
        t0 = time.perf_counter()
        c0 = time.process_time()
        path = build_glyphs52(seed=args.seed, font_dirs=args.font_dir, threads=threads)
        secs = time.perf_counter() - t0
        cpu = time.process_time() - c0
        m = read_manifest(path)
        n = sum(m["counts"].values())
        print(
            f"build: {n:,} images ({', '.join(f'{k} {v:,}' for k, v in m['counts'].items())}) "
            f"in {secs:.1f} s wall, {cpu:.1f} s CPU -> {n / secs:,.0f} images/s"
        )
        print(
            f"fonts: {len(m['fonts'])} instances in {len(m['families'])} design families "
            f"({len(m['skipped'])} skipped); id {m['id']}"
        )
        size = sum(f.stat().st_size for f in path.iterdir()) / 2**20
        print(f"disk: {size:,.0f} MiB in {path}")

        # Cached load, in a fresh process as the app or a training run would do it.
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        out = subprocess.run(
            [sys.executable, "-c", LOAD_SNIPPET], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        imp, load, touch, ready, total = float(out[0]), float(out[1]), float(out[2]), out[3], int(out[4])
        print(
            f"cached load (fresh process): glyphs52_ready() + load_dataset() of all 4 splits "
            f"({total:,} images) in {load:.3f} s; first image of each split read in {touch:.4f} s; "
            f"import glyphcore.data {imp:.2f} s; ready={ready}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
