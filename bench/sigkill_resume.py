"""SIGKILL a live training process at random moments, resume it, and count what was lost.

    .venv/bin/python bench/sigkill_resume.py [--trials 6] [--seed 0]

Each trial trains lenet on a small synthetic course-layout set (tests/shapes_data.py: 200 train /
60 valid 28x28 images, batch 20, 1 thread) in a real ``python -m glyphcore train`` process, kills
it with SIGKILL 0.5-3 s after its first last.pt, resumes it with ``runs.resume`` for one more
epoch, and prints per trial: epochs finished at the kill, the epoch of last.pt (the resume point),
epochs lost (their difference), temporary files left in the run folder at the kill and after the
resume, and whether the resumed metrics.jsonl numbers its epochs 1..N without a gap or a repeat.
Temporary folders are left under the system temp folder (their path is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from shapes_data import lenet_train_argv, write_course_layout

from glyphcore import runs
from glyphcore.checkpoint import load_checkpoint

ENDED = ("done", "failed", "crashed", "diverged", "cancelled")


def _epochs(run: Path) -> list[int]:
    return [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"event": "epoch"' in x]


def trial(root: Path, run: Path, rng: random.Random) -> dict:
    argv = [sys.executable, "-m", "glyphcore", *lenet_train_argv(f"course:{root}", run, 500)]
    p = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (run / "last.pt").is_file():
        time.sleep(0.05)
    time.sleep(rng.uniform(0.5, 3.0))
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    done = max(_epochs(run))
    saved = load_checkpoint(run / "last.pt")["epoch"]
    orphans = [q.name for q in run.iterdir() if q.name.endswith(".tmp")]
    runs.resume(run, epochs=done + 1)
    deadline = time.monotonic() + 300
    while runs.read_status(run)["state"] not in ENDED and time.monotonic() < deadline:
        time.sleep(0.2)
    return {
        "epochs_done_at_kill": done,
        "last_pt_epoch": saved,
        "epochs_lost": done - saved,
        "tmp_at_kill": orphans,
        "tmp_after_resume": [q.name for q in run.iterdir() if q.name.endswith(".tmp")],
        "resumed_state": runs.read_status(run)["state"],
        "continuous": _epochs(run) == list(range(1, done + 2)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sigkill-resume-"))
    print(f"work folder: {work}")
    root = write_course_layout(work / "course", {"train": 200, "valid": 60})
    rng = random.Random(args.seed)
    results = []
    for i in range(args.trials):
        results.append(trial(root, work / f"run{i}", rng))
        print(i, results[-1], flush=True)
    lost = [r["epochs_lost"] for r in results]
    print(
        f"{len(results)} kills: epochs lost max {max(lost)}, total {sum(lost)}; "
        f"continuous metrics {sum(r['continuous'] for r in results)}/{len(results)}; "
        f"resumed done {sum(r['resumed_state'] == 'done' for r in results)}/{len(results)}"
    )


if __name__ == "__main__":
    main()
