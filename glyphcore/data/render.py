"""Render letters into the glyph frame, and the 52-letter render check.

Every font is scaled so that its cap height (the ink height of 'H') is ``CAP_HEIGHT`` px and its
baseline lands on ``BASELINE_ROW``; each letter is then centred horizontally on its ink. Lowercase
letters keep their true size and position (x-height letters sit on the baseline, descenders go below
it): a glyph is never cropped or scaled to its ink box. White (255) ink on black (0), uint8.

A font is used only if all 52 letters render non-empty and unlike its .notdef box (the glyph a font
draws for a code point it lacks), and its lowercase is not just its capitals (caps-only faces).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from glyphcore.data.fonts import FontInstance, SkippedFont, load_hershey, open_truetype
from glyphcore.errors import DataError
from glyphcore.frame import BASELINE_ROW, CAP_HEIGHT, CLASSES, FRAME_SIZE

__all__ = [
    "FontCheckError",
    "RenderedFonts",
    "render_letters",
    "render_glyph",
    "render_font_set",
    "ink_rows",
    "ink_cols",
]

INK = 128  # a pixel at or above this value counts as ink when measuring rows/columns
MIN_INK_PIXELS = 8  # fewer ink pixels than this: the letter is "empty"
# Code points that no Latin font maps: what a font draws for them is its .notdef box (or nothing).
NOTDEF_PROBES = ("\u0378", "\U0010fffd")
HERSHEY_SUPERSAMPLE = 4  # Hershey strokes are drawn at 4x and box-averaged down: anti-aliased lines
_CANVAS_W = 3 * FRAME_SIZE  # wide letters and italic overhangs must not be cut before centring
_ORIGIN_X = FRAME_SIZE  # pen origin of a raw render on the wide canvas


class FontCheckError(DataError):
    """A font failed the 52-letter render check (the message says which letter and why)."""


@dataclass
class RenderedFonts:
    """The fonts that passed the render check and their clean glyphs.

    Attributes:
        fonts: accepted font instances, in candidate order.
        images: uint8 array F x 52 x FRAME_SIZE x FRAME_SIZE, clean glyph of letter CLASSES[j] of
            font i at images[i, j].
        skipped: candidates that failed, each with its reason.
    """

    fonts: list[FontInstance]
    images: np.ndarray
    skipped: list[SkippedFont] = field(default_factory=list)


def ink_rows(img: np.ndarray, threshold: int = INK) -> tuple[int, int] | None:
    """(first, last) row holding ink (>= threshold) of a 2-D image, or None when it has none."""
    rows = np.flatnonzero((img >= threshold).any(axis=1))
    return (int(rows[0]), int(rows[-1])) if rows.size else None


def ink_cols(img: np.ndarray, threshold: int = 1) -> tuple[int, int] | None:
    """(first, last) column holding ink (>= threshold) of a 2-D image, or None when it has none."""
    cols = np.flatnonzero((img >= threshold).any(axis=0))
    return (int(cols[0]), int(cols[-1])) if cols.size else None


def _draw_text(font, text: str, height: int = FRAME_SIZE, baseline: int = BASELINE_ROW) -> np.ndarray:
    """Raw render of ``text`` with its pen origin at (_ORIGIN_X, baseline) on a wide canvas."""
    img = Image.new("L", (_CANVAS_W, height), 0)
    ImageDraw.Draw(img).text((_ORIGIN_X, baseline), text, font=font, fill=255, anchor="ls")
    return np.asarray(img)


def _cap_height(font) -> int | None:
    # A tall canvas with room above and below, so that a too-big first guess is not clipped.
    img = _draw_text(font, "H", height=4 * FRAME_SIZE, baseline=3 * FRAME_SIZE)
    r = ink_rows(img)
    return None if r is None else r[1] - r[0] + 1


def _fit_truetype(inst: FontInstance):
    """The font instance at the em size whose 'H' is CAP_HEIGHT px tall."""
    ref = 100.0  # px em size of the first measurement
    h = _cap_height(open_truetype(inst, ref))
    if not h:
        raise FontCheckError(f"{inst.name}: letter 'H' renders empty")
    size = ref * CAP_HEIGHT / h
    font = open_truetype(inst, size)
    # Hinting snaps heights to whole pixels: one correction step lands on CAP_HEIGHT (+-1 px).
    h2 = _cap_height(font)
    if h2 and h2 != CAP_HEIGHT:
        size *= CAP_HEIGHT / h2
        font = open_truetype(inst, size)
    return font


def _raw_truetype(inst: FontInstance) -> tuple[list[np.ndarray], list[np.ndarray]]:
    font = _fit_truetype(inst)
    letters = [_draw_text(font, c) for c in CLASSES]
    notdefs = [_draw_text(font, p) for p in NOTDEF_PROBES]
    return letters, notdefs


_HERSHEY_CACHE: dict[str, dict] = {}


def _hershey_glyphs(name: str) -> dict:
    if name not in _HERSHEY_CACHE:
        _HERSHEY_CACHE[name] = load_hershey(name).all_glyphs
    return _HERSHEY_CACHE[name]


def _raw_hershey(inst: FontInstance) -> list[np.ndarray]:
    """Hershey strokes drawn with a round pen of ``inst.pen_width`` px, scaled so that the ink of 'H'
    spans CAP_HEIGHT px with its bottom on the baseline."""
    glyphs = _hershey_glyphs(inst.file.split(":", 1)[1])
    pen = float(inst.pen_width or 3.0)
    h = glyphs.get("H")
    ys = [y for stroke in (h.strokes if h else []) for _, y in stroke]
    if not ys or max(ys) == min(ys):
        raise FontCheckError(f"{inst.name}: letter 'H' has no strokes")
    top, bottom = min(ys), max(ys)  # font units, y grows downwards
    scale = (CAP_HEIGHT - pen) / (bottom - top)  # px per font unit: the pen adds pen/2 on each side
    ss = HERSHEY_SUPERSAMPLE
    out = []
    for c in CLASSES:
        img = Image.new("L", (_CANVAS_W * ss, FRAME_SIZE * ss), 0)
        draw = ImageDraw.Draw(img)
        g = glyphs.get(c)
        r = pen * ss / 2
        for stroke in (g.strokes if g else []):
            pts = [((_ORIGIN_X + x * scale) * ss, (BASELINE_ROW - pen / 2 + (y - bottom) * scale) * ss)
                   for x, y in stroke]
            if len(pts) > 1:
                draw.line(pts, fill=255, width=max(1, round(pen * ss)), joint="curve")
            for px, py in (pts[0], pts[-1]):  # round pen tips
                draw.ellipse((px - r, py - r, px + r, py + r), fill=255)
        out.append(np.asarray(img.reduce(ss)))
    return out


def _centre(raw: np.ndarray) -> np.ndarray:
    """Cut the FRAME_SIZE-wide window of a raw render whose centre is the ink's horizontal centre."""
    cols = ink_cols(raw)
    left, right = cols if cols else (_ORIGIN_X, _ORIGIN_X + FRAME_SIZE - 1)
    start = int(round((left + right + 1) / 2 - FRAME_SIZE / 2))
    start = min(max(start, 0), _CANVAS_W - FRAME_SIZE)
    return np.ascontiguousarray(raw[:, start:start + FRAME_SIZE])


def render_letters(inst: FontInstance) -> np.ndarray:
    """Render the 52 letters of a font instance into the glyph frame, checking each.

    Args:
        inst: the font instance.

    Returns:
        uint8 array 52 x FRAME_SIZE x FRAME_SIZE; entry j is CLASSES[j].

    Raises:
        FontCheckError: a letter is empty or drawn as the font's .notdef box, or the lowercase letters
            are the capitals (the message names the letter).
        DataError: the font file fails to load.
    """
    if inst.source == "hershey":
        raw, notdefs = _raw_hershey(inst), list[np.ndarray]()
    else:
        raw, notdefs = _raw_truetype(inst)
    for c, img in zip(CLASSES, raw):
        if int((img >= INK).sum()) < MIN_INK_PIXELS:
            raise FontCheckError(f"{inst.name}: letter {c!r} renders empty (the font lacks it)")
        for nd in notdefs:
            if np.array_equal(img, nd):
                raise FontCheckError(f"{inst.name}: letter {c!r} renders as the font's missing-glyph box")
    same_case = sum(np.array_equal(raw[i], raw[i + 26]) for i in range(26))
    if same_case >= 13:
        raise FontCheckError(f"{inst.name}: {same_case} lowercase letters are drawn as capitals "
                             "(a caps-only face)")
    return np.stack([_centre(img) for img in raw])


def render_glyph(inst: FontInstance, letter: str) -> np.ndarray:
    """One clean letter of one font in the glyph frame (uint8 FRAME_SIZE x FRAME_SIZE, white on black).

    Raises:
        ValueError: ``letter`` is not one of the 52 classes.
        FontCheckError / DataError: as :func:`render_letters`.
    """
    if letter not in CLASSES:
        raise ValueError(f"unknown letter {letter!r}: expected one of A-Z a-z")
    return render_letters(inst)[CLASSES.index(letter)]


def render_font_set(
    candidates: list[FontInstance],
    progress: Callable[[int, int], None] | None = None,
) -> RenderedFonts:
    """Render every candidate; keep those that pass the check, record the others with their reason.

    Args:
        candidates: font instances, e.g. from :func:`glyphcore.data.fonts.discover_fonts`.
        progress: called as ``progress(done, total)`` after each candidate.

    Returns:
        RenderedFonts with the accepted fonts (in candidate order) and their clean glyphs.
    """
    fonts: list[FontInstance] = []
    images: list[np.ndarray] = []
    skipped: list[SkippedFont] = []
    for i, inst in enumerate(candidates):
        try:
            images.append(render_letters(inst))
            fonts.append(inst)
        except DataError as e:
            skipped.append(SkippedFont(inst.name, inst.file, str(e)))
        if progress is not None:
            progress(i + 1, len(candidates))
    stack = (np.stack(images) if images
             else np.zeros((0, len(CLASSES), FRAME_SIZE, FRAME_SIZE), np.uint8))
    return RenderedFonts(fonts, stack, skipped)
