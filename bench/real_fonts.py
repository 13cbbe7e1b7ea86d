"""A run on letters it never saw: real fonts that are not in glyphs-52, and hand-drawn letters.

    .venv/bin/python bench/real_fonts.py [RUN] [--drawn-per-letter 6]

1. Real fonts: every face this machine's font folders have (``discover_fonts(("system",))``; glyphs-52
   is built from packaged fonts only, so none of them is in it) that passes the 52-letter render check,
   rendered the way a user's text looks: one em size for all fonts, baseline on row 78, no per-font
   cap-height normalisation (glyphcore's "em" size mode), no jitter. Reported: exact accuracy,
   accuracy with I/l and the size-only case pairs merged, and per design family.
2. Hand-drawn: synthetic mouse drawings (glyphcore.testing) of all 52 letters in the canvas's three
   formats, through the Draw page's preprocessing; the stick-shaped I and l are left out of the
   accuracy (the same stroke: no model can tell them apart), as in the first measurement of drawings.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _parse_args() -> argparse.Namespace:
    """The command line: the run and the hand-drawn drawings per letter and canvas format."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="starter")
    parser.add_argument("--drawn-per-letter", type=int, default=6)
    return parser.parse_args()


def _most_confused(pairs: Counter[tuple[str, str]]) -> str:
    """The line naming the ten commonest (truth -> answer) mistakes, with their counts."""
    return "  most confused: " + ", ".join(f"{a}->{b} {n}" for (a, b), n in pairs.most_common(10))


def _system_font_letters() -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """The machine's own faces that pass the render check, at one em size: images, labels, each letter's family."""
    from glyphcore.data.fonts import discover_fonts
    from glyphcore.data.render import FontCheckError, render_letters
    from glyphcore.frame import CLASSES

    fonts, _ = discover_fonts(("system",))
    images, labels, families = [], [], []
    for inst in fonts:
        try:
            letters = render_letters(inst, "em")
        except FontCheckError:
            continue
        images.append(letters)
        labels += list(range(len(CLASSES)))
        families += [inst.family] * len(CLASSES)
    return images, np.asarray(labels), families


def _print_real_fonts(predictor: Any, images: list[np.ndarray], y: np.ndarray, families: list[str]) -> None:
    """Prints the accuracy on the real fonts: exact, with I/l and size-only pairs merged, per family."""
    from glyphcore.evaluate import merged_accuracy
    from glyphcore.frame import CLASSES
    from glyphcore.infer import frame_to_tensor

    if not images:
        print("real fonts: this machine has no font of its own that renders the 52 letters")
        return
    x = frame_to_tensor(np.concatenate(images), predictor.input_size, predictor.in_channels)
    pred = predictor.logits(x).argmax(1).numpy()
    merged = merged_accuracy(y, pred, CLASSES, "I/l+size_only")
    print(
        f"real fonts not in glyphs-52: {len(images)} faces of {len(set(families))} families, {len(y)} letters: "
        f"exact {100 * np.mean(pred == y):.2f}%, I/l + size-only merged {100 * merged:.2f}%"
    )
    by_family: dict[str, list[bool]] = defaultdict(list)
    for fam, ok in zip(families, pred == y):
        by_family[fam].append(bool(ok))
    for fam, oks in sorted(by_family.items()):
        print(f"  {fam:<24s} {100 * np.mean(oks):6.2f}%  ({len(oks)})")
    print(_most_confused(Counter((CLASSES[t], CLASSES[p]) for t, p in zip(y, pred) if t != p)))


def _print_hand_drawn(predictor: Any, per_letter: int) -> None:
    """Prints the accuracy on hand-drawn letters (I and l left out), per canvas format and over all of them."""
    from glyphcore.frame import CLASSES
    from glyphcore.testing import CANVAS_STYLES, letter_strokes, render_canvas

    right = total = 0
    drawn_pairs: Counter[tuple[str, str]] = Counter()
    for style in CANVAS_STYLES:
        prepared, truth = [], []
        for k, letter in enumerate(CLASSES):
            for i in range(per_letter):
                rgba = render_canvas(letter_strokes(letter, jitter=1.0, seed=1000 * k + i), style=style)
                prepared.append(predictor.prepare(rgba))
                truth.append(k)
        preds = [p.label for p in predictor.predict(prepared, topk=1)]
        keep = [j for j, t in enumerate(truth) if CLASSES[t] not in ("I", "l")]
        ok = sum(preds[j] == CLASSES[truth[j]] for j in keep)
        right, total = right + ok, total + len(keep)
        drawn_pairs.update((CLASSES[truth[j]], preds[j]) for j in keep if preds[j] != CLASSES[truth[j]])
        print(f"hand-drawn ({style}): {100 * ok / len(keep):.2f}% of {len(keep)} (I and l left out)")
    print(f"hand-drawn, all formats: {100 * right / total:.2f}% of {total}")
    print(_most_confused(drawn_pairs))


def main() -> None:
    """Prints the run's accuracy on the machine's real fonts and on hand-drawn letters."""
    args = _parse_args()

    import torch

    from glyphcore.infer import load_predictor

    torch.set_num_threads(2)
    predictor = load_predictor(args.run)
    images, y, families = _system_font_letters()
    print(f"{args.run}: {predictor.name}")
    _print_real_fonts(predictor, images, y, families)
    _print_hand_drawn(predictor, args.drawn_per_letter)


if __name__ == "__main__":
    main()
