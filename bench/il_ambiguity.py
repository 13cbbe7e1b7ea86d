"""How separable I and l are in glyphs-52, font family by family, and where a run's errors fall.

    .venv/bin/python bench/il_ambiguity.py [--data DIR] [--run RUN_DIR --split valid]

In sans faces I and l are the same vertical bar; the glyph frame keeps l's true height (cap line at
row 18, l's ascender a few px above it), so height is the only cue there (serif and mono faces have
serifs or a tail besides), and the data set's per-sample jitter (scale, aspect, stroke weight,
rotation) blurs it. For every family that has both letters
in a split this prints the ink height of its I and l images (rows with a pixel >= 128) and the
errors of the best height threshold: the fewest I/l mistakes any classifier that looks at height
alone can make there. With ``--run`` it also counts the run's cached evaluation errors
(``python -m glyphcore evaluate RUN --split SPLIT`` writes them) by family and by true -> predicted.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glyphcore.data import glyphs52_dir  # noqa: E402


def ink_height(img: np.ndarray) -> int:
    rows = np.flatnonzero(img.max(axis=1) >= 128)
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="glyphs-52 folder (default: the built one)")
    p.add_argument("--splits", nargs="+", default=["train", "valid", "test"])
    p.add_argument("--run", type=Path, default=None, help="run folder with a cached evaluation")
    p.add_argument("--split", default="valid", help="split of the run's evaluation (default valid)")
    args = p.parse_args(argv)
    folder = args.data or glyphs52_dir()
    manifest = json.loads((folder / "manifest.json").read_text())
    fonts = {f["id"]: f for f in manifest["fonts"]}
    classes = manifest["classes"]
    big_i, small_l = classes.index("I"), classes.index("l")
    print(f"{manifest['id']}: jitter {manifest['jitter']}")
    print(f"\n{'split':<6} {'family':<18} {'I height':>14} {'l height':>14} {'best height threshold':>24}")
    for split in args.splits:
        images = np.load(folder / f"{split}_images.npy", mmap_mode="r")
        labels = np.load(folder / f"{split}_labels.npy")
        family = np.array([fonts[int(i)]["family"] for i in np.load(folder / f"{split}_fonts.npy")])
        for fam in sorted(set(family)):
            h = {
                c: np.array([ink_height(images[i, 0]) for i in np.flatnonzero((labels == c) & (family == fam))])
                for c in (big_i, small_l)
            }
            if not (h[big_i].size and h[small_l].size):
                continue
            errors, t = min(((h[big_i] >= t).sum() + (h[small_l] < t).sum(), t) for t in range(101))
            n = h[big_i].size + h[small_l].size
            print(
                f"{split:<6} {fam:<18} {h[big_i].mean():>6.1f} sd {h[big_i].std():.1f} "
                f"{h[small_l].mean():>6.1f} sd {h[small_l].std():.1f} "
                f"{errors:>6} of {n:<4} (l if >= {t} px)"
            )
    if args.run:
        pred = np.load(args.run / "eval" / args.split / "predictions.npy")
        font_ids = np.load(folder / f"{args.split}_fonts.npy")
        wrong = np.flatnonzero(pred["pred"] != pred["label"])
        by_family, by_pair = collections.Counter(), collections.Counter()
        for i in wrong:
            fam = fonts[int(font_ids[i])]["family"]
            pair = f"{classes[pred['label'][i]]}->{classes[pred['pred'][i]]}"
            by_family[fam] += 1
            by_pair[(fam, pair)] += 1
        print(
            f"\n{args.run} on {args.split}: {wrong.size} errors of {pred.size} "
            f"({1 - wrong.size / pred.size:.2%} accuracy)"
        )
        for fam, n in by_family.most_common():
            il = sum(v for (f, pair), v in by_pair.items() if f == fam and pair in ("I->l", "l->I"))
            top = ", ".join(f"{pair} {v}" for (f, pair), v in by_pair.most_common() if f == fam)[:90]
            print(f"  {fam:<18} {n:>4} errors, {il:>3} of them I<->l: {top}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
