"""The glyph frame: the one place where the geometry of a glyph image is defined.

Every built-in glyph is a 100x100 uint8 image, white glyph (255) on black (0). Capital letters sit
between the cap line and the baseline; lowercase letters keep their true size and position, so c/C,
o/O, s/S, x/X differ by size and height. Never crop a glyph to its ink box. The renderer, the Draw
page's guide lines and the canvas preprocessing all read these numbers from here.
"""

from __future__ import annotations

import string

__all__ = [
    "FRAME_SIZE",
    "BASELINE_ROW",
    "CAP_ROW",
    "CAP_HEIGHT",
    "X_HEIGHT_ROW",
    "EM_SIZE",
    "CLASSES",
    "CASE_PAIRS_SIZE_ONLY",
    "AMBIGUOUS_PAIRS",
    "CANVAS_SIZE",
    "STROKE_WIDTH",
    "frame_dict",
    "guide_rows",
]

FRAME_SIZE = 100  # px, square
BASELINE_ROW = 78  # row of the baseline (bottom of capitals and of x-height letters)
CAP_ROW = 18  # row of the cap line (top of capitals)
CAP_HEIGHT = BASELINE_ROW - CAP_ROW  # 60 px
# Guide line for the top of x-height letters (a, c, e, o, x ...). Typical Latin faces put the
# x-height at about 0.70 of the cap height; only the Draw page's guide and the previews use it.
X_HEIGHT_ROW = BASELINE_ROW - round(0.70 * CAP_HEIGHT)  # 42 px above the baseline -> row 36
# Em size in px of glyphs-52's "em" size mode: real text is set at one type size, not at one cap
# height, so a share of the data set renders each font at this em, its capitals as tall as its design
# makes them, on the same baseline. The built-in fonts' cap heights are 0.58-0.82 em (scripts up to
# 0.91), so 80 px gives capitals of about 46-66 px (a typical 0.70 em: 56 px), and lowercase at the
# font's own x-height; a typical descender (0.22 em = 18 px) still fits the 21 rows below the baseline.
EM_SIZE = 80

# The Draw page's canvas: the frame scaled by CANVAS_SIZE / FRAME_SIZE (2.8).
CANVAS_SIZE = 280  # px, the Draw page's square canvas
STROKE_WIDTH = 18  # px on a 280 px canvas (about 6.4 px in the 100 px frame)

# 52 classes, in the course set's order: A-Z then a-z (label i <-> CLASSES[i]).
CLASSES: list[str] = list(string.ascii_uppercase + string.ascii_lowercase)

# Case pairs whose letters differ by size only in most faces (merged in the "size-only" metric).
CASE_PAIRS_SIZE_ONLY: list[tuple[str, str]] = [(c.upper(), c) for c in "cosuvwxz"]
# Pairs that are the same stroke in many sans faces: 100% accuracy is impossible on them.
AMBIGUOUS_PAIRS: list[tuple[str, str]] = [("I", "l")]


def frame_dict() -> dict:
    """The frame as a plain dict, stored in every checkpoint and data set manifest."""
    return {
        "size": FRAME_SIZE,
        "baseline_row": BASELINE_ROW,
        "cap_row": CAP_ROW,
        "x_height_row": X_HEIGHT_ROW,
        "polarity": "white-on-black",
    }


def guide_rows(canvas_size: int = CANVAS_SIZE) -> dict[str, float]:
    """Canvas rows (px from the top) of the guide lines for a square canvas of ``canvas_size``.

    The canvas is the glyph frame scaled by ``canvas_size / FRAME_SIZE``; the Draw page draws its
    guide lines at these rows and ``infer.preprocess`` maps them back onto the frame's rows.
    """
    s = canvas_size / FRAME_SIZE
    return {"cap": CAP_ROW * s, "x_height": X_HEIGHT_ROW * s, "baseline": BASELINE_ROW * s}
