"""``glyphcore evaluate RUN``, ``glyphcore predict --run RUN IMAGE...`` and ``glyphcore calibrate RUN``.

torch and the engine are imported inside the handlers so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from glyphcore.cli.progress import ProgressBar
from glyphcore.cli.text import terminal_text

__all__ = ["add_eval_commands"]


def add_eval_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate``, ``predict`` and ``calibrate`` to the CLI's sub-command parsers."""
    p = sub.add_parser(
        "evaluate",
        help="evaluate a run on a split: accuracy, top confusions; writes the run's eval/",
        description="Evaluate a run's checkpoint on a split of its data set. Prints the accuracy line "
        "and the most-confused pairs and stores the full result in <run>/eval/<split>/ "
        "(reused until the checkpoint changes).",
    )
    p.add_argument("run", metavar="RUN", help="run id, run folder, 'starter', or a .pt checkpoint")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint (default: best)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="most-confused pairs to print (default: 10)")
    p.add_argument("--force", action="store_true", help="recompute even if eval/ holds a result for this checkpoint")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: a GPU when there is one)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=_evaluate)

    q = sub.add_parser(
        "predict",
        help="name the letter in image files (the Draw page's preprocessing)",
        description="Predict the class of each image with a run's model. Images go through the same "
        "preprocessing as the Draw page (ink found whatever the polarity, mapped into the "
        "glyph frame). An empty image is an error, not a guess.",
    )
    q.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    q.add_argument("--run", default="starter", help="run id, run folder, 'starter' (default) or a .pt checkpoint")
    q.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint (default: best)")
    q.add_argument("--topk", type=int, default=5, help="classes to list per image (default: 5)")
    q.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per image per line: {"file", "pred", "topk": [[class, p], ...], '
        '"letter": true|false|null, "reason"?, "placement"?}; probabilities are calibrated '
        'when the checkpoint is; "letter" is null when it has no fitted judgement',
    )
    q.set_defaults(func=_predict)

    c = sub.add_parser(
        "calibrate",
        help="fit a run's confidence calibration (temperature, letter judgement); rewrites best.pt",
        description="Fit the temperature that makes a run's probabilities calibrated, and the thresholds of "
        'its "is this a letter" judgement, on a split of the data set it was trained on (default: '
        "its validation split), and store them in the checkpoint (rewritten atomically; the weights "
        "are unchanged). Training does this itself at the end of a fit; this is for older runs and "
        "the starter.",
    )
    c.add_argument("run", metavar="RUN", help="run id, run folder, 'starter', or a .pt checkpoint")
    c.add_argument("--split", default=None, help="split to fit on (default: the run's validation split)")
    c.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint (default: best)")
    c.add_argument("--device", default=None, help="cpu, cuda, ... (default: cpu)")
    c.add_argument("--json", action="store_true", help="print the calibration as one JSON object")
    c.set_defaults(func=_calibrate)


def _evaluate(args: argparse.Namespace) -> int:
    from glyphcore.evaluate import evaluate_run
    from glyphcore.infer.predictor import inference_device

    if args.device is not None:
        inference_device(args.device)  # a bogus or absent device is refused before any work
    bar = ProgressBar()
    progress = (lambda done, total: bar(done, total, "evaluating")) if bar.tty and not args.json else None
    r = evaluate_run(
        args.run, split=args.split, which=args.which, force=args.force, device=args.device, progress=progress
    )
    if r.not_saved:
        print(f"warning: {r.not_saved}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    **r.summary(),
                    "cached": r.cached,
                    "eval_dir": str(r.out_dir) if r.out_dir else None,
                    "not_saved": r.not_saved or None,
                }
            )
        )
        return 0
    print(r.accuracy_line)
    m = r.merged
    print(
        f"case-insensitive: {100 * m['case_insensitive']:.2f}%   I/l merged: {100 * m['I/l']:.2f}%   "
        f"I/l + size-only pairs merged: {100 * m['I/l+size_only']:.2f}%   "
        f"case swaps: {100 * r.case_swap_share:.1f}% of {int((r.labels != r.preds).sum())} errors"
    )
    pairs = r.most_confused()[: max(0, args.top)]
    if pairs:
        print("most confused (actual -> predicted: count):")
        for a, b, c in pairs:
            print(f"  {a} -> {b}: {c}")
    how = "read from" if r.cached else "written to"
    speed = f", {r.images_per_s:,.0f} images/s on {r.device}" if not r.cached else ""
    if r.out_dir is not None:
        print(f"results {how} {r.out_dir}{speed}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from glyphcore.errors import ConfigError, ImageInputError
    from glyphcore.infer import load_predictor

    if args.topk < 1:
        raise ConfigError(f"--topk must be at least 1, got {args.topk}")
    predictor = load_predictor(args.run, which=args.which)
    failed = 0
    for path in args.images:
        try:
            prepared = predictor.prepare(path)
            if prepared.empty:
                raise ImageInputError(f"{path}: {prepared.note}")
            [pred] = predictor.predict(prepared, topk=args.topk)
        except ImageInputError as e:
            failed += 1
            msg = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"
            if args.json:
                print(json.dumps({"file": path, "error": msg}), flush=True)
            print(f"error: {terminal_text(msg)}", file=sys.stderr)
            continue
        if args.json:
            out = {
                "file": path,
                "pred": pred.label,
                "topk": [[c, round(p, 6) if math.isfinite(p) else None] for c, p in pred.topk],  # strict JSON
                "letter": pred.letter,
            }
            if pred.reason:
                out["reason"] = pred.reason
            if prepared.placement is not None and prepared.placement.off:
                out["placement"] = prepared.placement.message
            print(json.dumps(out), flush=True)
        else:
            tops = "  ".join(f"{c} {100 * p:.1f}%" for c, p in pred.topk)
            judged = f"   [{pred.reason}]" if pred.reason else ""
            print(terminal_text(f"{path}: {pred.label}   ({tops}){judged}"), flush=True)  # class names from a file
    return 2 if failed else 0


def _calibrate(args: argparse.Namespace) -> int:
    from glyphcore import runs
    from glyphcore.checkpoint import load_checkpoint
    from glyphcore.data import load_dataset
    from glyphcore.infer.calibration import calibrate_checkpoint
    from glyphcore.infer.judgement import family_groups
    from glyphcore.infer.predictor import inference_device

    dev = inference_device(args.device)
    path = runs.checkpoint_path(args.run, args.which)
    ckpt = load_checkpoint(path)
    cfg_raw, ds_raw = ckpt.get("config"), ckpt.get("dataset")
    cfg: dict = cfg_raw if isinstance(cfg_raw, dict) else {}
    ds: dict = ds_raw if isinstance(ds_raw, dict) else {}
    source = str(cfg.get("data") or ds.get("source") or "glyphs-52")
    split = args.split or str(cfg.get("val_split") or "auto")
    if split == "auto":  # as training chose it: valid when the source has it, else test
        from glyphcore.data import list_splits

        have = list_splits(source)
        split = "valid" if "valid" in have else "test"
    data = load_dataset(source, split)
    if list(data.classes) != list(ckpt["classes"]):
        from glyphcore.errors import DataError

        raise DataError(f"{source}/{split} has other classes than {path}: calibrate on the data the run was trained on")
    cal = calibrate_checkpoint(path, data.images, data.labels, split=split, device=dev, groups=family_groups(data))
    if args.json:
        print(json.dumps(_calibration_json(path, cal)))
        return 0
    print(f"calibrated {path} on {source}/{split} ({cal['n']:,} images): temperature {cal['temperature']:.4f}")
    print(
        f"ECE (15 bins): {100 * cal['ece_before']:.2f}% -> {100 * cal['ece_after']:.2f}%   "
        f"NLL: {cal['nll_before']:.4f} -> {cal['nll_after']:.4f}"
    )
    from glyphcore.infer.judgement import calibration_sentence

    print(calibration_sentence("the synthetic drawings", cal.get("ece_drawings_before"), cal.get("ece_drawings_after")))
    fitted = cal.get("temperature_fitted")
    if fitted is not None and abs(fitted - cal["temperature"]) > 1e-6:
        print(
            f"the NLL fit, temperature {fitted:.4f}, made the ECE of a font family or of the drawings worse: "
            f"kept {cal['temperature']:.4f}, shrunk toward 1 until none gets worse"
        )
    print(_judgement_line(cal.get("letter") or {}))
    return 0


def _calibration_json(path: object, cal: dict) -> dict:
    """What ``calibrate --json`` prints: the calibration without its tensors (per layer its threshold)."""
    letter = cal.get("letter") or {}
    contrast = letter.get("contrast") or {}
    return {
        "checkpoint": str(path),
        **{k: v for k, v in cal.items() if k != "letter"},
        "letter": {
            **{k: v for k, v in letter.items() if k not in ("means", "precision", "layers", "contrast")},
            "layer_scales": {n: f.get("scale") for n, f in (letter.get("layers") or {}).items()},
            **(
                {"contrast": {k: v for k, v in contrast.items() if isinstance(v, str | int | float | list)}}
                if contrast
                else {}
            ),
        },
    }


def _judgement_line(letter: dict) -> str:
    """The letter judgement's thresholds in one line."""
    dist, layers = letter.get("max_distance"), letter.get("layers") or {}
    rate, sources = letter.get("false_alarm_rate"), letter.get("sources") or {}
    unusual = (
        f", unusual features beyond each layer's own Mahalanobis distance ({len(layers)} layers, thresholds "
        f"cross-fitted over {letter.get('folds')} folds)"
        if layers
        else f", unusual features beyond squared distance {dist:.1f} (Mahalanobis)"
        if dist is not None
        else ""
    )
    contrast = letter.get("contrast") or {}
    if contrast:
        unusual += f", or more like generated non-letters than letters ({contrast.get('nonletters')} contrasted)"
    return (
        f"letter judgement: unsure below {100 * letter['min_confidence']:.1f}% confidence"
        + unusual
        + (f"; each rejects at most {100 * rate:.1f}% of the letters of {' and '.join(sources)}" if rate else "")
    )
