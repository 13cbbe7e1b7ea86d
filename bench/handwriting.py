"""Held-out handwriting and script families against print families: exact accuracy and letters judged letters.

    .venv/bin/python bench/handwriting.py RUN [RUN ...] [--split test] [--data glyphs-52] [--json OUT]

For each run (a run id or folder, ``starter``, or a ``.pt``), on one split of a glyphs-52 build (default
the local one, its test split: design families no run trained on), per design family: its style, how
many glyphs, the share named exactly right, and the share judged a letter by the run's stored judgement
(neither "unsure" nor "not a letter"). Then the pooled figures the handwriting targets are stated on:
the script / handwriting families ("script" style) and the print families (every other style), each
also counted with look-alikes merged (I/l and the size-only case pairs; then I/l and any case pair), and, with
two or more runs, each run's change on print against the first run's.

The families are those of the data set the split comes from, so give runs trained on the same build
(or a build whose held-out families none of the runs trained on: the manifest says which split each
family is in).
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
from glyphcore.evaluate.metrics import case_pairs, merged_accuracy  # noqa: E402
from glyphcore.evaluate.result import per_family_rows  # noqa: E402
from glyphcore.frame import AMBIGUOUS_PAIRS  # noqa: E402
from glyphcore.infer import load_predictor  # noqa: E402
from glyphcore.infer.calibration import judged_outputs  # noqa: E402
from glyphcore.infer.letters import judge_letters  # noqa: E402

HANDWRITING_STYLE = "script"  # glyphcore.data.fonts: handwriting and script faces


def look_alike_merges(classes: list[str]) -> dict[str, list[tuple[str, str]] | str]:
    """Ceilings beside exact: a letter counted right when named as its look-alike (I/l and the case pairs
    that differ only in size: c/C, o/O, ...), or as I/l or either of its cases: a single glyph cannot always
    tell these apart."""
    return {"I/l+size_only": "I/l+size_only", "any case or I/l": case_pairs(classes) + list(AMBIGUOUS_PAIRS)}


def family_table(run: str, data: str, split: str) -> dict:
    """One run's per-family figures and the pooled handwriting / print figures on ``split`` of ``data``."""
    pred = load_predictor(run)
    ds = load_dataset(data, split)
    logits, feats = judged_outputs(pred, ds.images)
    labels, preds = np.asarray(ds.labels), logits.argmax(1).numpy()
    right = preds == labels
    j = judge_letters(logits, feats, pred.calibration)
    judged = j.letter if j is not None else np.ones(labels.size, dtype=bool)
    fonts = [(f["family"], f["style"]) for f in ds.meta["fonts"]]
    font_ids = np.asarray(ds.font_ids)
    family = np.array([f[0] for f in fonts], dtype=object)[font_ids]
    style = np.array([f[1] for f in fonts], dtype=object)[font_ids]
    rows = [
        {k: r[k] for k in ("family", "style", "n")}
        | {"exact": r["accuracy"], "judged_letter": float(judged[family == r["family"]].mean())}
        for r in per_family_rows(labels, preds, font_ids, fonts, list(pred.classes))
    ]
    hand = style == HANDWRITING_STYLE
    merges = look_alike_merges(list(pred.classes))
    pooled = {
        group: {"n": int(m.sum()), "exact": float(right[m].mean()), "judged_letter": float(judged[m].mean())}
        | {name: merged_accuracy(labels[m], preds[m], list(pred.classes), pairs) for name, pairs in merges.items()}
        for group, m in (("handwriting", hand), ("print", ~hand), ("all", np.ones_like(hand)))
        if m.any()
    }
    return {"run": str(pred.path), "data": ds.meta.get("id"), "split": split, "families": rows, "pooled": pooled}


def print_tables(tables: list[dict]) -> None:
    """The per-family table (one column pair per run), then the pooled figures."""
    print(
        "| family | style | n | " + " | ".join(f"run {i + 1} exact / judged letter" for i in range(len(tables))) + " |"
    )
    print("|---|---|---|" + "---|" * len(tables))
    by_run = [{r["family"]: r for r in t["families"]} for t in tables]
    for row in sorted(tables[0]["families"], key=lambda r: (r["style"] != HANDWRITING_STYLE, r["exact"])):
        cells = [f"{b[row['family']]['exact']:.2%} / {b[row['family']]['judged_letter']:.2%}" for b in by_run]
        print(f"| {row['family']} | {row['style']} | {row['n']} | " + " | ".join(cells) + " |")
    print()
    for i, t in enumerate(tables):
        p = t["pooled"]
        line = ", ".join(
            f"{g} {v['exact']:.2%} exact ({v['I/l+size_only']:.2%} with I/l and size-only case pairs, "
            f"{v['any case or I/l']:.2%} with any case pair and I/l), "
            f"{v['judged_letter']:.2%} judged letters (n {v['n']})"
            for g, v in p.items()
        )
        change = ""
        if i and "print" in p and "print" in tables[0]["pooled"]:
            change = (
                f"; print {100 * (p['print']['exact'] - tables[0]['pooled']['print']['exact']):+.2f} points vs run 1"
            )
        print(f"run {i + 1} ({t['run']}, {t['data']} {t['split']}): {line}{change}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run ids, run folders, 'starter' or .pt files")
    ap.add_argument("--data", default="glyphs-52", help="the data set (default: the local glyphs-52)")
    ap.add_argument("--split", default="test", help="the split to measure (default: test)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    tables = [family_table(r, args.data, args.split) for r in args.runs]
    print_tables(tables)
    if args.json:
        args.json.write_text(json.dumps(tables, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
