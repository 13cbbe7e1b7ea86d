"""Draw-to-predict latency and evaluation speed. Prints figures; asserts nothing.

    .venv/bin/python bench/predict_latency.py                       # the starter model
    .venv/bin/python bench/predict_latency.py --run RUN --calls 500
    .venv/bin/python bench/predict_latency.py --untrained seed_cnn  # no run needed (same cost)

1. Latency: a 280 x 280 RGBA canvas array (a synthetic mouse drawing, the component's default
   black-on-transparent format) -> ``infer.preprocess`` -> ``Predictor.predict(topk=5)``, on the
   CPU with 1 torch thread, as the Draw page does it. p50/p95 over ``--calls`` calls after a
   warm-up, split into preprocessing and model. Target: p95 <= 5 ms.
2. Evaluation speed: ``evaluate.evaluate_predictor`` over the whole test split of the run's data
   set (images/s, big batches, no gradients), on the CPU and, when there is one, the GPU. Skipped
   when the data set is not built.
"""

from __future__ import annotations

import argparse
import atexit
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _predictor(args: argparse.Namespace):
    from glyphcore.infer import load_predictor

    if not args.untrained:
        return load_predictor(args.run, device="cpu")
    from glyphcore.testing import untrained_checkpoint

    folder = tempfile.mkdtemp(prefix="glyph-bench-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return load_predictor(untrained_checkpoint(Path(folder) / "untrained.pt", args.untrained), device="cpu")


def bench_latency(predictor, calls: int, warmup: int = 50) -> dict[str, float]:
    """p50/p95 in ms of canvas -> top-5 (and of its two halves)."""
    from glyphcore.frame import CLASSES
    from glyphcore.testing import letter_strokes, render_canvas

    canvases = [render_canvas(letter_strokes(c, jitter=1.0, seed=i)) for i, c in enumerate(CLASSES)]
    for i in range(warmup):
        predictor.predict(predictor.prepare(canvases[i % len(canvases)]), topk=5)
    total, prep, model = [], [], []
    for i in range(calls):
        canvas = canvases[i % len(canvases)]
        t0 = time.perf_counter()
        x = predictor.prepare(canvas)
        t1 = time.perf_counter()
        predictor.predict(x, topk=5)
        t2 = time.perf_counter()
        total.append(t2 - t0)
        prep.append(t1 - t0)
        model.append(t2 - t1)
    out = {}
    for name, v in (("total", total), ("preprocess", prep), ("model+top5", model)):
        ms = np.asarray(v) * 1000
        out[f"{name}_p50_ms"] = float(np.percentile(ms, 50))
        out[f"{name}_p95_ms"] = float(np.percentile(ms, 95))
    return out


def bench_eval(predictor, source: str, split: str, device: str) -> dict[str, float] | None:
    """images/s of a full pass over ``source``/``split`` on ``device``."""
    from glyphcore.errors import GlyphError
    from glyphcore.evaluate import evaluate_predictor
    from glyphcore.infer import load_predictor

    try:
        from glyphcore.data import load_dataset

        data = load_dataset(source, split)
    except (GlyphError, ImportError) as e:
        print(f"evaluation speed: skipped ({e})")
        return None
    p = load_predictor(predictor.path, device=device)
    evaluate_predictor(p, _head(data, 2000))  # warm-up (cuDNN autotune, allocator)
    r = evaluate_predictor(p, data)
    return {"images": r.n, "seconds": r.seconds, "images_per_s": r.images_per_s, "accuracy": r.accuracy}


def _head(data, n):
    from dataclasses import replace

    return replace(data, images=data.images[:n], labels=data.labels[:n])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="starter", help="run id, folder, 'starter' or .pt (default: starter)")
    ap.add_argument("--untrained", metavar="MODEL", help="benchmark an untrained MODEL instead of a run")
    ap.add_argument("--calls", type=int, default=500, help="timed predictions (default: 500)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for the latency part (default: 1)")
    ap.add_argument("--split", default="test", help="split for the evaluation speed (default: test)")
    ap.add_argument("--no-eval", action="store_true", help="skip the evaluation speed")
    args = ap.parse_args()

    import torch

    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    predictor = _predictor(args)
    print(f"model: {predictor.checkpoint.get('model_name')} from {predictor.path}")
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    lat = bench_latency(predictor, args.calls)
    print(
        f"draw-to-predict latency (280x280 RGBA canvas -> top-5, CPU, {torch.get_num_threads()} thread, "
        f"{args.calls} calls):"
    )
    print(f"  total       p50 {lat['total_p50_ms']:.2f} ms   p95 {lat['total_p95_ms']:.2f} ms   (target p95 <= 5 ms)")
    print(f"  preprocess  p50 {lat['preprocess_p50_ms']:.2f} ms   p95 {lat['preprocess_p95_ms']:.2f} ms")
    print(f"  model+top5  p50 {lat['model+top5_p50_ms']:.2f} ms   p95 {lat['model+top5_p95_ms']:.2f} ms")
    if args.no_eval:
        return 0
    cfg = predictor.checkpoint.get("config") or {}
    source = str(cfg.get("data") or "glyphs-52")
    torch.set_num_threads(default_threads)  # evaluation uses torch's default threads, as the app does
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        r = bench_eval(predictor, source, args.split, dev)
        if r is None:
            break
        print(
            f"evaluation speed on {source}/{args.split} ({dev}, {torch.get_num_threads()} CPU threads): "
            f"{r['images']} images in {r['seconds']:.2f} s = {r['images_per_s']:,.0f} images/s "
            f"(accuracy {100 * r['accuracy']:.2f}%)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
