"""How far a run's answers can be trusted: calibration (ECE), the "is this a letter" judgement, off-guide notes.

    .venv/bin/python bench/trust.py --run RUN [--seeds 4] [--nonletters 40] [--json OUT]

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
- with ``--compare-scores``: four candidate scores for the judgement (calibrated top probability,
  energy, cosine distance to class centroids, Mahalanobis distance to class means), each thresholded at
  the 95th and 99th percentile of 6,000 validation letters, and what they flag of drawn letters, system
  font letters and non-letters (the reason the Mahalanobis distance was chosen).
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
from glyphcore.infer.calibration import expected_calibration_error  # noqa: E402
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


def compare_scores(pred, fonts) -> dict:
    """Flag rates of candidate judgement scores (larger = less like a letter) at validation percentiles."""
    import torch.nn.functional as F

    from glyphcore.infer.letters import nearest_class_distances

    def run(images):
        out = pred.run(images, features=("penultimate",))
        return out.logits, out.features["penultimate"]

    val = load_dataset(pred.data_source, "valid")
    idx = np.sort(np.random.default_rng(0).choice(len(val), min(6000, len(val)), replace=False))
    zv, fv = run(val.images[idx])
    yv = torch.as_tensor(np.asarray(val.labels)[idx]).long()
    cents = F.normalize(torch.stack([F.normalize(fv[yv == c], dim=1).mean(0) for c in range(len(CLASSES))]), dim=1)
    spec, t = pred.calibration["letter"], pred.temperature

    def outputs(prepared):
        return run(torch.cat([p.tensor for p in prepared if not p.empty]))

    def scores(z, f):
        return {
            "top_probability": -(z / t).softmax(1).max(1).values.numpy(),
            "energy": -(t * torch.logsumexp(z / t, 1)).numpy(),
            "cosine_centroid": (1 - (F.normalize(f, dim=1) @ cents.T).max(1).values).numpy(),
            "mahalanobis": nearest_class_distances(f, spec["means"], spec["precision"])[0].numpy(),
        }

    drawn = [
        pred.prepare(render_canvas(letter_strokes(c, jitter=1.0, seed=7000 + 3 * k + s), style=CANVAS_STYLES[s]))
        for k, c in enumerate(CLASSES)
        for s in range(3)
    ]
    non = [
        pred.prepare(render_canvas(nonletter_strokes(kind, seed=500 + s), style=CANVAS_STYLES[s % 3]))
        for kind in NONLETTER_KINDS
        for s in range(20)
    ]
    font_imgs = np.concatenate([render_letters(i, "em") for i in fonts[::2]])
    zf, ff = run(font_imgs)
    sv, sd, sn, sf = scores(zv, fv), scores(*outputs(drawn)), scores(*outputs(non)), scores(zf, ff)
    out = {}
    for name in sv:
        for q in (0.95, 0.99):
            th = np.quantile(sv[name], q)
            out[f"{name}@val{int(q * 100)}"] = {
                "drawn": float(np.mean(sd[name] > th)),
                "fonts": float(np.mean(sf[name] > th)),
                "nonletters": float(np.mean(sn[name] > th)),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run id, run folder, 'starter' or a .pt file")
    ap.add_argument("--seeds", type=int, default=4, help="hand-drawn drawings per letter and canvas format")
    ap.add_argument("--nonletters", type=int, default=40, help="drawings per non-letter kind")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--compare-scores", action="store_true", help="also compare candidate letter-judgement scores")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    pred = load_predictor(args.run)
    cal = pred.calibration or {}
    res: dict = {"run": str(pred.path), "temperature": pred.temperature, "fitted_on": cal.get("fitted_on")}

    test = evaluate_predictor(pred, load_dataset(pred.data_source, "test"))
    res["test"] = {"n": test.n, "accuracy": test.accuracy, "ece_before": test.ece_uncalibrated, "ece_after": test.ece}

    # the machine's fonts: not in glyphs-52 by default
    fonts, _ = discover_fonts(("system",))
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
        res[f"system_fonts_{mode}"] = {
            **_scores(pred, x, np.concatenate(labels)),
            "fonts": len(used),
            "families": sorted(set(used)),
        }

    # hand-drawn letters in the three canvas formats
    prepared, labels, placements = [], [], []
    for style in CANVAS_STYLES:
        for seed in range(args.seeds):
            for k, c in enumerate(CLASSES):
                p = pred.prepare(render_canvas(letter_strokes(c, jitter=1.0, seed=1000 * seed + k), style=style))
                prepared.append(p)
                labels.append(k)
                placements.append(p.placement.status if p.placement else "empty")
    x = torch.cat([p.tensor for p in prepared])
    lab = np.array(labels)
    res["drawn"] = _scores(pred, x, lab)
    keep = ~np.isin(lab, [CLASSES.index("I"), CLASSES.index("l")])
    res["drawn_without_I_l"] = _scores(pred, x[torch.from_numpy(keep)], lab[keep])
    res["drawn_off_guides"] = float(np.mean([s != "ok" for s in placements]))

    # small letters in a corner: does the note come, and does the centred reading help?
    from glyphcore.infer.preprocess import recentre

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
    res["small_corner"] = {"n": n, "noted": hits / n, "accuracy": right_before / n, "accuracy_centred": right_after / n}

    # non-letters
    per_kind = {}
    total_named, total = 0, 0
    for kind in NONLETTER_KINDS:
        named, empty = 0, 0
        for seed in range(args.nonletters):
            style = CANVAS_STYLES[seed % len(CANVAS_STYLES)]
            p = pred.prepare(render_canvas(nonletter_strokes(kind, seed=seed), style=style))
            if p.empty:
                empty += 1
                continue
            named += pred.predict(p)[0].letter is not False
        per_kind[kind] = {"judged_letter": named / args.nonletters, "empty": empty / args.nonletters}
        total_named += named
        total += args.nonletters
    res["nonletters"] = {"n": total, "judged_not_letter": 1 - total_named / total, "per_kind": per_kind}

    if args.compare_scores:
        res["compare_scores"] = compare_scores(pred, fonts)
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
