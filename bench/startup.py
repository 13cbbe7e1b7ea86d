"""Launch -> first curve point: how long a run launched from the app takes to show its first loss.

    .venv/bin/python bench/startup.py [--preset quick] [--rounds 3]

Each round launches a real detached run (``glyphcore.runs.launch``, as the Train page's Launch
does) on the built glyphs-52 (GLYPH_DATA_DIR) into a temporary runs folder, and times, from the
launch call: the process recording "running", the first "step" record in metrics.jsonl (the live
curve's first point), and the first images/s in status.json; then it cancels the run. As a
reference for this machine's load, the same round times a bare ``python -c "import torch"``.
Prints every round and the medians; asserts nothing.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _status(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def _has_step(run_dir: Path) -> bool:
    try:
        return any(json.loads(line).get("event") == "step" for line in (run_dir / "metrics.jsonl").open())
    except (OSError, ValueError):
        return False


def one_round(preset: str) -> dict[str, float]:
    from glyphcore import runs
    from glyphcore.train import make_config

    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    marks = {"import torch alone": time.perf_counter() - t}
    with tempfile.TemporaryDirectory() as root:
        os.environ["GLYPH_RUNS_DIR"] = root
        t0 = time.perf_counter()
        run_id = runs.launch(make_config(preset, epochs=1))
        marks["launch call"] = time.perf_counter() - t0
        run_dir = Path(root) / run_id
        deadline = t0 + 120
        while time.perf_counter() < deadline and len(marks) < 5:
            status = _status(run_dir)
            now = time.perf_counter() - t0
            if "running" not in marks and status.get("state") == "running":
                marks["running"] = now
            if "first curve point" not in marks and _has_step(run_dir):
                marks["first curve point"] = now
            if "images/s shown" not in marks and status.get("images_per_s"):
                marks["images/s shown"] = now
            if status.get("state") in ("failed", "done", "crashed"):
                break
            time.sleep(0.05)
        try:
            runs.cancel(run_id, wait=30)
        except Exception:  # noqa: BLE001 (it may have ended already)
            pass
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    for i in range(args.rounds):
        marks = one_round(args.preset)
        rounds.append(marks)
        print(f"round {i + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in marks.items()), flush=True)
    keys = list(rounds[0])
    print(
        "median: " + ", ".join(f"{k} {statistics.median(r.get(k, float('nan')) for r in rounds):.2f} s" for k in keys)
    )


if __name__ == "__main__":
    main()
