"""How far a run's answers can be trusted: calibration (ECE), the "is this a letter" judgement, off-guide notes.

    .venv/bin/python bench/trust.py --run RUN [--seeds 4] [--nonletters 40] [--json OUT]
    .venv/bin/python bench/trust.py --table --run RUN1 --run RUN2 ... [--json OUT]
    .venv/bin/python bench/trust.py --input-checks --run RUN1 --run RUN2 ...

``--table`` prints docs/benchmarks.md's table, one row per model (2,000 valid and test images, 312
drawings in the three canvas formats on seeds other than calibration's, 300 non-letters): accuracy, ECE
before/after on valid, test and drawings, letters judged "not a letter" and "unsure" (test, drawings),
non-letters flagged (unsure or not a letter; in brackets "not a letter" alone), and then the score
comparison (:func:`compare_scores`): per score and model, the share of held-out test letters / other
drawings / non-letters it flags.

Measured on the run's calibrated best.pt (``glyphcore calibrate RUN`` first, or a run trained since
calibration existed):

- ECE (15 bins) before / after calibration on the test split of its data set;
- on letters the model never saw: the machine's own fonts (``discover_fonts(("system",))``: glyphs-52 is
  built without them by default), rendered at one em size as real text is and cap-normalised, and
  synthetic mouse drawings (``glyphcore.testing.letter_strokes``, jitter 1, the three canvas formats);
- the share of real letters (fonts, drawings) judged not a letter, and of generated non-letters
  (``nonletter_strokes``: scribbles, symbols, shapes, hatching, zigzags, specks, random strokes) judged
  a letter, per kind; an empty drawing (a speck below the ink minimum) is never predicted and counts
  as not named;
- off the guide lines: how many hand-drawn letters get the note (false alarms), and how many small
  corner letters do;
- with ``--compare-scores``: the candidate scores of :func:`compare_scores` (calibrated top
  probability, energy ``-T logsumexp(logits / T)``, the Mahalanobis distance of each judged layer alone
  and of all of them, the stored contrast against generated non-letters, the stored judgement).
- with ``--input-checks`` (alone): checks on the model's input frame (ink share, ink box height, width
  and aspect, the box's ink share, ink per edge pixel, connected components) with ranges at the stated
  rate on valid + the calibration drawings, beside and OR-ed with the stored judgement
  (:func:`compare_input_checks`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glyphcore.data import load_dataset  # noqa: E402
from glyphcore.data.fonts import discover_fonts  # noqa: E402
from glyphcore.data.render import render_letters  # noqa: E402
from glyphcore.evaluate import evaluate_predictor  # noqa: E402
from glyphcore.frame import CLASSES  # noqa: E402
from glyphcore.infer import frame_to_tensor, load_predictor  # noqa: E402
from glyphcore.infer.calibration import expected_calibration_error, judged_outputs  # noqa: E402
from glyphcore.infer.judgement import FALSE_ALARM_RATE, calibration_drawings, threshold_for  # noqa: E402
from glyphcore.infer.letters import contrast_scores, judge_letters, unusualness  # noqa: E402
from glyphcore.infer.preprocess import recentre  # noqa: E402
from glyphcore.testing import CANVAS_STYLES, NONLETTER_KINDS, letter_strokes, nonletter_strokes, render_canvas  # noqa: E402


def _scores(pred, x: torch.Tensor, labels: np.ndarray | None) -> dict:
    """Accuracy, ECE before/after and the not-a-letter share for a batch of model inputs."""
    answers = []
    for s in range(0, x.shape[0], 512):
        answers += pred.predict(x[s : s + 512], topk=1)
    p_pred = np.array([a.topk[0][1] for a in answers])
    flagged = np.array([a.letter is False for a in answers])
    out: dict = {"n": len(answers), "not_a_letter": float(flagged.mean())}
    if labels is not None:
        with torch.inference_mode():
            raw = torch.cat([pred.logits(x[s : s + 512]).softmax(1) for s in range(0, x.shape[0], 512)]).max(1).values
        ok = np.array([CLASSES.index(a.label) for a in answers]) == labels
        out.update(
            accuracy=float(ok.mean()),
            ece_before=expected_calibration_error(raw.numpy(), ok),
            ece_after=expected_calibration_error(p_pred, ok),
        )
    return out


def _run(pred, images) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return judged_outputs(pred, images)  # logits and the judged features, pooled


def _subsample(pred, split: str, n: int, seed: int):
    data = load_dataset(pred.data_source, split)
    idx = np.sort(np.random.default_rng(seed).choice(len(data), min(n, len(data)), replace=False))
    return data.images[idx], np.asarray(data.labels)[idx]


def _prepared_nonletter(pred, kind: str, seed: int, style: int):
    """One generated non-letter of ``kind`` in canvas format ``style`` (mod 3), prepared as the Draw page does."""
    strokes = nonletter_strokes(kind, seed=seed)
    return pred.prepare(render_canvas(strokes, style=CANVAS_STYLES[style % len(CANVAS_STYLES)]))


def _nonletters(pred, n: int, seed: int = 100, kinds: list | None = None) -> torch.Tensor:
    """Generated non-letters, ``n // kinds`` of each kind, prepared as the Draw page does; ``kinds``, when
    given, gets each one's kind (an empty speck is never predicted, so it is left out)."""
    per = max(1, n // len(NONLETTER_KINDS))
    tensors = []
    for kind in NONLETTER_KINDS:
        for s in range(per):
            p = _prepared_nonletter(pred, kind, seed + s, s)
            if not p.empty:
                tensors.append(p.tensor)
                if kinds is not None:
                    kinds.append(kind)
    return torch.cat(tensors)


def _ece(z: torch.Tensor, y: np.ndarray, t: float) -> float:
    conf, pred = (z / t).softmax(1).max(1)
    return expected_calibration_error(conf.numpy(), pred.numpy() == y)


def trust_row(pred, n_test: int = 2000, n_drawn: int = 300, n_non: int = 300) -> dict:
    """One model's row: accuracy, ECE before/after on valid, test and drawings, letters judged not
    letters (test, drawings) and non-letters flagged, with the stored calibration (subsampled: minutes)."""
    t = pred.temperature
    sets = {
        "valid": _subsample(pred, "valid", n_test, 0),
        "test": _subsample(pred, "test", n_test, 1),
        # other seeds than the drawings calibration is fitted on (judgement.DRAWING_SEED)
        "drawings": calibration_drawings(pred, per_format=max(1, round(n_drawn / 156)), seed=31_000),
    }
    row: dict = {
        "run": pred.path.parent.name,
        "preset": (pred.checkpoint.get("config") or {}).get("preset"),
        "outlier_exposure": (pred.checkpoint.get("config") or {}).get("outlier_exposure", 0.0),
        "temperature": t,
    }
    for name, (x, y) in sets.items():
        z, f = _run(pred, x)
        row[f"acc_{name}"] = float((z.argmax(1).numpy() == y).mean())
        row[f"ece_{name}"] = (_ece(z, y, 1.0), _ece(z, y, t))
        if name != "valid":
            j = judge_letters(z, f, pred.calibration)
            row[f"not_letter_{name}"] = float(np.mean([r.startswith("not a letter") for r in j.reasons]))
            row[f"unsure_{name}"] = float(np.mean([r.startswith("unsure") for r in j.reasons]))
    kinds: list[str] = []
    j = judge_letters(*_run(pred, _nonletters(pred, n_non, kinds=kinds)), pred.calibration)
    row["nonletters_flagged"] = float(np.mean(~j.letter))  # unsure or not a letter: no letter named
    row["flagged_by_kind"] = {k: float(np.mean(~j.letter[np.array(kinds) == k])) for k in dict.fromkeys(kinds)}
    row["nonletters_not_letter"] = float(np.mean([r.startswith("not a letter") for r in j.reasons]))
    return row


def compare_scores(pred, rate: float = FALSE_ALARM_RATE) -> dict:
    """Candidate judgement scores (larger = less like a letter), measured on held-out letters and
    non-letters: the top probability and the energy thresholded at ``rate`` on the fitting letters
    (valid + the calibration drawings); the feature distances with the stored, cross-fitted
    thresholds: the penultimate layer alone, each convolution block alone, and all of them (the
    largest distance scaled to its threshold: the stored judgement); and the stored contrast of letters
    against the generated non-letters (:mod:`glyphcore.infer.contrast`) at its stored threshold."""
    spec, t = pred.calibration["letter"], pred.temperature
    layers = spec.get("layers") or {}

    def scores(images) -> dict:
        z, f = _run(pred, images)
        out = {
            "top_probability": -(z / t).softmax(1).max(1).values.numpy(),
            "energy": -(t * torch.logsumexp(z / t, 1)).numpy(),
        }
        for name in layers:  # each layer alone, as a multiple of its own threshold
            one = unusualness(f, {"layers": {name: layers[name]}, "max_score": 1.0})
            out[f"mahalanobis {name}"] = one[0].numpy()
        both = unusualness(f, spec)
        out["mahalanobis, all layers (stored)"] = both[0].numpy() / both[1]  # above 1: unusual
        contrast = contrast_scores(f, spec)
        if contrast is not None:  # the margin over its stored threshold: above 0, unusual
            out["contrast against non-letters (stored)"] = contrast[0].numpy() - contrast[1]
        return out

    fit = {"valid": scores(_subsample(pred, "valid", 3000, 0)[0]), "drawings": scores(calibration_drawings(pred)[0])}
    held = {
        "test": scores(_subsample(pred, "test", 2000, 1)[0]),
        "drawings": scores(calibration_drawings(pred, seed=31_000)[0]),
        "nonletters": scores(_nonletters(pred, 300)),
    }
    out = {}
    for name in fit["valid"]:
        stored = name.endswith("(stored)") or name.startswith("mahalanobis")  # cross-fitted thresholds, stored
        th = (
            (0.0 if name.startswith("contrast") else 1.0)
            if stored
            else threshold_for({s: fit[s][name] for s in fit}, rate)
        )
        out[name] = {k: float(np.mean(v[name] > th)) for k, v in held.items()}
    return out


def _components(mask: torch.Tensor, min_px: int = 4) -> np.ndarray:
    """Connected ink components (8-neighbour) per image of an N x H x W bool mask, those of at least
    ``min_px`` pixels: every ink pixel takes the largest label of its 3x3 neighbourhood until none changes."""
    n, h, w = mask.shape
    m = mask.unsqueeze(1).float()
    lab = torch.arange(1, h * w + 1, dtype=torch.float32).view(1, 1, h, w) * m
    while True:
        new = torch.nn.functional.max_pool2d(lab, 3, 1, 1) * m
        if torch.equal(new, lab):
            break
        lab = new
    counts = [torch.unique(lab[i, 0][mask[i]], return_counts=True)[1] for i in range(n)]
    return np.asarray([int((c >= min_px).sum()) for c in counts], dtype=np.float64)


def _extent(a: torch.Tensor) -> np.ndarray:
    """Per row of an N x L bool array, the span from its first to its last True, as a share of L."""
    idx = torch.arange(a.shape[1], dtype=torch.float32)
    lo = torch.where(a, idx, torch.tensor(1e9)).min(1).values
    hi = torch.where(a, idx, torch.tensor(-1.0)).max(1).values
    return ((hi - lo + 1).clamp_min(1) / a.shape[1]).numpy()


def input_measures(x: torch.Tensor) -> dict[str, np.ndarray]:
    """Checks on the model's input frame (N x C x H x W in [0, 1]), per image: the share of the frame
    that is ink (above 0.5), the ink box's height and width (shares of the frame), its aspect
    log(height / width), the share of the box that is ink, ink pixels per edge pixel (about half the
    stroke width, px) and the connected ink components (1000 images at a time: the labels are floats)."""
    parts = []
    for s in range(0, x.shape[0], 1000):
        m = x[s : s + 1000].float().mean(1) > 0.5
        ink = m.float().mean((1, 2)).numpy()
        height, width = _extent(m.any(2)), _extent(m.any(1))
        inner = -torch.nn.functional.max_pool2d(-m.float().unsqueeze(1), 3, 1, 1).squeeze(1) > 0.5
        edge = (m & ~inner).float().sum((1, 2)).numpy()
        parts.append(
            {
                "ink": ink,
                "height": height,
                "width": width,
                "aspect": np.log(height / width),
                "fill": ink / (height * width),
                "stroke": m.float().sum((1, 2)).numpy() / np.maximum(edge, 1),
                "components": _components(m),
            }
        )
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def compare_input_checks(pred, rate: float = FALSE_ALARM_RATE) -> dict:
    """Input-level checks beside the stored judgement: each check's accepted range lets through all
    but ``rate`` of the fitting letters (valid + the calibration drawings) per source and side (the
    components: above only); measured as the share flagged of held-out test letters, other drawings
    and non-letters, per check, for any check, and for any check OR the stored judgement."""

    def model_input(images) -> torch.Tensor:
        return (
            images if isinstance(images, torch.Tensor) else frame_to_tensor(images, pred.input_size, pred.in_channels)
        )

    fit = {"valid": _subsample(pred, "valid", 3000, 0)[0], "drawings": calibration_drawings(pred)[0]}
    held = {
        "test": _subsample(pred, "test", 2000, 1)[0],
        "drawings": calibration_drawings(pred, seed=31_000)[0],
        "nonletters": _nonletters(pred, 300),
    }
    fm = {k: input_measures(model_input(v)) for k, v in fit.items()}
    hx = {k: model_input(v) for k, v in held.items()}
    hm = {k: input_measures(v) for k, v in hx.items()}
    out: dict = {}
    any_check = {k: np.zeros(len(v["ink"]), dtype=bool) for k, v in hm.items()}
    for name in fm["valid"]:
        lo = -np.inf if name == "components" else min(np.quantile(v[name], rate) for v in fm.values())
        hi = max(np.quantile(v[name], 1 - rate) for v in fm.values())
        flags = {k: (v[name] < lo) | (v[name] > hi) for k, v in hm.items()}
        out[f"input: {name}"] = {k: float(f.mean()) for k, f in flags.items()}
        any_check = {k: any_check[k] | flags[k] for k in any_check}
    out["input: any check"] = {k: float(f.mean()) for k, f in any_check.items()}
    stored = {k: ~judge_letters(*_run(pred, x), pred.calibration).letter for k, x in hx.items()}
    out["stored judgement"] = {k: float(f.mean()) for k, f in stored.items()}
    out["stored judgement or any input check"] = {k: float((stored[k] | any_check[k]).mean()) for k in stored}
    return out


def _pct(v: float) -> str:
    return f"{100 * v:.2f}"


def print_table(rows: list[dict]) -> None:
    """The docs/benchmarks.md table: one row per model, grouped by preset."""
    print(
        "| preset | run | exposure | acc test / drawings | ECE valid before/after | ECE test before/after | ECE "
        "drawings before/after | not a letter: test / drawings | unsure: test / drawings | non-letters flagged "
        "(not a letter) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (str(r["preset"]), r["run"])):
        ece = [f"{_pct(r[f'ece_{k}'][0])} / {_pct(r[f'ece_{k}'][1])}" for k in ("valid", "test", "drawings")]
        print(
            f"| {r['preset']} | {r['run']} | {r.get('outlier_exposure') or 0:g} | {_pct(r['acc_test'])} / "
            f"{_pct(r['acc_drawings'])} | {' | '.join(ece)} | "
            f"{_pct(r['not_letter_test'])} / {_pct(r['not_letter_drawings'])} | "
            f"{_pct(r['unsure_test'])} / {_pct(r['unsure_drawings'])} | "
            f"{_pct(r['nonletters_flagged'])} ({_pct(r['nonletters_not_letter'])}) |"
        )


def print_kinds(rows: list[dict]) -> None:
    """Non-letters flagged per kind (%), one column per model."""
    kinds = list(rows[0].get("flagged_by_kind") or {})
    print("| kind | " + " | ".join(r["run"] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for k in kinds:
        print(
            f"| {k} | " + " | ".join(_pct((r.get("flagged_by_kind") or {}).get(k, float("nan"))) for r in rows) + " |"
        )


def print_scores(rows: list[dict]) -> None:
    """The score comparison: per score, per model, flagged test letters / other drawings / non-letters (%)."""
    names = list(dict.fromkeys(n for r in rows for n in r["compare_scores"]))
    print("| score | " + " | ".join(r["run"] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for n in names:
        cells = []
        for r in rows:
            c = r["compare_scores"].get(n)
            cells.append(" / ".join(f"{100 * c[k]:.2f}" for k in ("test", "drawings", "nonletters")) if c else "-")
        print(f"| {n} | " + " | ".join(cells) + " |")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: the runs, the mode (single run, --table, --input-checks) and the sizes measured."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--run",
        required=True,
        action="append",
        help="run id, run folder, 'starter' or a .pt file (repeat with --table)",
    )
    ap.add_argument("--table", action="store_true", help="only the per-model table (subsampled), for every --run")
    ap.add_argument("--seeds", type=int, default=4, help="hand-drawn drawings per letter and canvas format")
    ap.add_argument("--nonletters", type=int, default=40, help="drawings per non-letter kind")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--compare-scores", action="store_true", help="also compare candidate letter-judgement scores")
    ap.add_argument("--input-checks", action="store_true", help="only the input-level checks beside the judgement")
    return ap.parse_args(argv)


def _print_row(row: dict) -> None:
    """One model's figures as a JSON line, flushed: the next model takes minutes."""
    print(json.dumps(row), flush=True)


def _save(path: Path | None, figures: dict | list) -> None:
    """Writes the figures to ``--json``'s file, when one is given."""
    if path:
        path.write_text(json.dumps(figures, indent=1))


def _input_checks_mode(refs: list[str]) -> int:
    """--input-checks: per run, the input-level checks beside the stored judgement, then their table."""
    preds = [load_predictor(ref) for ref in refs]  # all first: a wrong reference fails before minutes of work
    rows = [{"run": pred.path.parent.name, "compare_scores": {}} for pred in preds]
    for row, pred in zip(rows, preds):
        row["compare_scores"] = compare_input_checks(pred)
        _print_row(row)
    print_scores(rows)
    return 0


def _table_mode(refs: list[str], json_out: Path | None) -> int:
    """--table: per run, its trust row and score comparison, then the docs/benchmarks.md tables."""
    rows = []
    for ref in refs:
        pred = load_predictor(ref)
        rows.append({**trust_row(pred), "compare_scores": compare_scores(pred)})
        _print_row(rows[-1])
    print_table(rows)
    print()
    print_kinds(rows)
    print()
    print_scores(rows)
    _save(json_out, rows)
    return 0


def _test_split(pred) -> dict:
    """The whole test split: accuracy and ECE before / after calibration."""
    test = evaluate_predictor(pred, load_dataset(pred.data_source, "test"))
    return {
        "test": {"n": test.n, "accuracy": test.accuracy, "ece_before": test.ece_uncalibrated, "ece_after": test.ece}
    }


def _system_fonts(pred) -> dict:
    """The machine's own fonts, at one em size and cap-normalised: scores, fonts and families per size mode."""
    fonts, _ = discover_fonts(("system",))  # not in glyphs-52 by default
    out = {}
    for mode in ("em", "cap"):
        imgs, labels, used = [], [], []
        for inst in fonts:
            try:
                imgs.append(render_letters(inst, mode))
            except Exception as e:  # noqa: BLE001 - a font that fails the render check is not measured
                print(f"skip {inst.name}: {e}", file=sys.stderr)
                continue
            labels.append(np.arange(52))
            used.append(inst.family)
        x = frame_to_tensor(np.concatenate(imgs), pred.input_size, pred.in_channels)
        out[f"system_fonts_{mode}"] = {
            **_scores(pred, x, np.concatenate(labels)),
            "fonts": len(used),
            "families": sorted(set(used)),
        }
    return out


def _drawn(pred, seeds: int) -> dict:
    """Hand-drawn letters in the three canvas formats: scores with and without I/l, share noted off the guides."""
    prepared, labels, placements = [], [], []
    for style in CANVAS_STYLES:
        for seed in range(seeds):
            for k, c in enumerate(CLASSES):
                p = pred.prepare(render_canvas(letter_strokes(c, jitter=1.0, seed=1000 * seed + k), style=style))
                prepared.append(p)
                labels.append(k)
                placements.append(p.placement.status if p.placement else "empty")
    x = torch.cat([p.tensor for p in prepared])
    lab = np.array(labels)
    keep = ~np.isin(lab, [CLASSES.index("I"), CLASSES.index("l")])
    return {
        "drawn": _scores(pred, x, lab),
        "drawn_without_I_l": _scores(pred, x[torch.from_numpy(keep)], lab[keep]),
        "drawn_off_guides": float(np.mean([s != "ok" for s in placements])),
    }


def _small_corner(pred) -> dict:
    """Small letters in a corner: does the note come, and does the centred reading help? Shares of those drawn."""
    hits, right_before, right_after, n = 0, 0, 0, 0
    for k, c in enumerate(CLASSES):
        small = [[(px * 0.3 + 12, py * 0.3 + 12) for px, py in s] for s in letter_strokes(c, jitter=1.0, seed=k)]
        p = pred.prepare(render_canvas(small))
        if p.empty:
            continue
        n += 1
        hits += bool(p.placement and p.placement.off)
        right_before += pred.predict(p)[0].label == c
        right_after += pred.predict(recentre(p))[0].label == c
    return {
        "small_corner": {"n": n, "noted": hits / n, "accuracy": right_before / n, "accuracy_centred": right_after / n}
    }


def _nonletter_judgements(pred, per_kind: int) -> dict:
    """Generated non-letters, ``per_kind`` of each: the share judged not a letter, per kind judged a letter / empty."""
    by_kind = {}
    total_named, total = 0, 0
    for kind in NONLETTER_KINDS:
        named, empty = 0, 0
        for seed in range(per_kind):
            p = _prepared_nonletter(pred, kind, seed, seed)
            if p.empty:  # an empty speck is never predicted: it counts as not named
                empty += 1
                continue
            named += pred.predict(p)[0].letter is not False
        by_kind[kind] = {"judged_letter": named / per_kind, "empty": empty / per_kind}
        total_named += named
        total += per_kind
    return {"nonletters": {"n": total, "judged_not_letter": 1 - total_named / total, "per_kind": by_kind}}


def main(argv: list[str] | None = None) -> int:
    """One run's trust figures as JSON, or with --table / --input-checks those tables for every run."""
    args = _parse_args(argv)
    torch.set_num_threads(2)
    if args.input_checks:
        return _input_checks_mode(args.run)
    if args.table:
        return _table_mode(args.run, args.json)
    pred = load_predictor(args.run[0])
    cal = pred.calibration or {}
    res: dict = {
        "run": str(pred.path),
        "temperature": pred.temperature,
        "fitted_on": cal.get("fitted_on"),
        **_test_split(pred),
        **_system_fonts(pred),
        **_drawn(pred, args.seeds),
        **_small_corner(pred),
        **_nonletter_judgements(pred, args.nonletters),
    }
    if args.compare_scores:
        res["compare_scores"] = compare_scores(pred)
    print(json.dumps(res, indent=1))
    _save(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
