"""GPU timings of whole training runs on glyphs-52: the report's 15-epoch recipe and the fast preset.

    .venv/bin/python bench/gpu.py [--epochs N] [--no-compile] [--no-eager]

Each row is a real ``python -m glyphcore train`` process (as the app starts it), timed from start to
exit; its status.json gives the training-loop wall time (epochs, validation, save-best; compile
warm-up excluded and shown apart), the last epoch's training images/s, the peak GPU memory and the
best held-out-font validation accuracy. glyphs-52 is built first when it is missing (timed apart).

Targets (on an H200): report recipe <= 5 s of training loop with >= 99.0% accuracy; fast
preset >= 99.0% in <= 2 s; the whole process <= 20 s without compile time.

On a machine without CUDA this says so and exits 0: it measures nothing there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _run(cmd: list[str], env: dict[str, str]) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - t0, proc.stdout + proc.stderr


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: epochs override, which modes to run and an optional JSON file."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs (a quick check)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile(reduce-overhead) rows")
    p.add_argument("--no-eager", action="store_true", help="skip the rows without compile")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    return p.parse_args(argv)


def build_glyphs52(env: dict[str, str]) -> bool:
    """Builds glyphs-52 when it is missing, timed apart; False (with its output printed) if that fails."""
    code, build_s, out = _run([sys.executable, "-m", "glyphcore", "data", "build", "--if-missing"], env)
    if code != 0:
        print(out)
        print("could not build glyphs-52; see above")
        return False
    print(f"glyphs-52 ready ({build_s:.1f} s to check/build)", flush=True)
    return True


def train_row(run_dir: Path, recipe: str, mode: str, flags: list[str], env: dict[str, str]) -> dict:
    """One ``python -m glyphcore train`` process into ``run_dir``: its row, from its exit and status.json."""
    cmd = [sys.executable, "-m", "glyphcore", "train", "--run-dir", str(run_dir), "--progress", "off", *flags]
    code, wall, out = _run(cmd, env)
    status = json.loads((run_dir / "status.json").read_text()) if (run_dir / "status.json").exists() else {}
    row = {
        "recipe": recipe,
        "mode": mode,
        "exit": code,
        "state": status.get("state"),
        "loop_s": status.get("wall_seconds"),
        "process_s": wall,
        "compile_s": status.get("compile_seconds"),
        "images_per_s": status.get("images_per_s"),
        "gpu_peak_mib": status.get("gpu_peak_mib"),
        "best_val_acc": status.get("best_val_acc"),
        "best_epoch": status.get("best_epoch"),
        "epochs": status.get("epoch"),
    }
    if code != 0 or row["state"] != "done":
        print(f"{recipe}/{mode} ended {row['state']} (exit {code}):\n{out[-3000:]}", flush=True)
    else:
        print(f"{recipe}/{mode}: done", flush=True)
    return row


def train_rows(args: argparse.Namespace, env: dict[str, str]) -> list[dict]:
    """Every recipe in every mode asked for, one training process each, in a temporary folder."""
    recipes = [("report", ["--preset", "report"]), ("fast", ["--preset", "fast"])]
    modes = ([("eager", [])] if not args.no_eager else []) + (
        [("compile", ["--compile", "reduce-overhead"])] if not args.no_compile else []
    )
    extra = ["--epochs", str(args.epochs)] if args.epochs else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for recipe, flags in recipes:
            for mode, mflags in modes:
                run_dir = Path(tmp) / f"{recipe}-{mode}"
                rows.append(train_row(run_dir, recipe, mode, [*flags, *mflags, *extra], env))
    return rows


def print_rows(rows: list[dict]) -> None:
    """The table of rows, "-" where a figure is missing, then the targets."""

    def f(v, fmt):
        return format(v, fmt) if isinstance(v, int | float) else "-"

    print(
        f"\n{'recipe':<8} {'mode':<8} {'epochs':>6} {'loop s':>7} {'process s':>9} {'compile s':>9} "
        f"{'img/s':>9} {'peak GiB':>8} {'best val acc':>14}"
    )
    for r in rows:
        acc = f"{100 * r['best_val_acc']:.2f}% (ep {r['best_epoch']})" if r["best_val_acc"] is not None else "-"
        peak = r["gpu_peak_mib"] / 1024 if r["gpu_peak_mib"] else None
        print(
            f"{r['recipe']:<8} {r['mode']:<8} {f(r['epochs'], 'd'):>6} {f(r['loop_s'], '.2f'):>7} "
            f"{f(r['process_s'], '.1f'):>9} {f(r['compile_s'], '.1f'):>9} {f(r['images_per_s'], ',.0f'):>9} "
            f"{f(peak, '.2f'):>8} {acc:>14}"
        )
    print("\ntargets: report loop <= 5 s and >= 99.0%; fast <= 2 s and >= 99.0%; process - compile <= 20 s")


def main(argv: list[str] | None = None) -> int:
    """Checks for CUDA, builds the data if needed, times the runs and prints (and maybe saves) the rows."""
    args = parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print(
            "bench/gpu.py: no CUDA GPU on this machine (torch.cuda.is_available() is False); nothing measured. "
            "Run it on a CUDA machine."
        )
        return 0
    gpu = torch.cuda.get_device_name(0)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}  {gpu}  torch {torch.__version__}  "
        f"CUDA {torch.version.cuda}  python {sys.version.split()[0]}",
        flush=True,
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    if not build_glyphs52(env):
        return 1
    rows = train_rows(args, env)
    print_rows(rows)
    if args.json:
        args.json.write_text(json.dumps({"gpu": gpu, "torch": str(torch.__version__), "rows": rows}, indent=1))
    return 0 if all(r["state"] == "done" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
