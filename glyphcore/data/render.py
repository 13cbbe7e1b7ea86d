"""Render letters into the glyph frame, and the 52-letter render check.

Two size modes (SIZE_MODES), both with the baseline on ``BASELINE_ROW`` and each letter centred
horizontally on its ink:

- ``cap``: the font is scaled so that its cap height (the ink height of 'H') is ``CAP_HEIGHT`` px;
- ``em``: the font is set at one em size, ``EM_SIZE`` px, as real text is: its capitals are as tall as
  its design makes them and its lowercase sit at its own x-height.

Lowercase letters keep their true size and position (x-height letters sit on the baseline, descenders
go below it): a glyph is never cropped or scaled to its ink box. White (255) ink on black (0), uint8.

A font is used only if all 52 letters render non-empty and unlike its .notdef box (the glyph a font
draws for a code point it lacks), and its lowercase is not its capitals: neither the same drawing
(caps-only faces) nor the capitals' shapes drawn smaller (small-caps faces).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from glyphcore.data.fonts import FontInstance, SkippedFont, load_hershey, open_truetype
from glyphcore.data.hands import hand, hand_strokes
from glyphcore.errors import DataError
from glyphcore.frame import BASELINE_ROW, CAP_HEIGHT, CLASSES, EM_SIZE, FRAME_SIZE

__all__ = [
    "SIZE_MODES",
    "FontCheckError",
    "RenderedFonts",
    "render_letters",
    "render_glyph",
    "render_font_set",
    "ink_rows",
    "ink_cols",
    "small_caps_letters",
]

SIZE_MODES: tuple[str, ...] = ("cap", "em")  # cap-normalised frame; one em size (EM_SIZE px)

INK = 128  # a pixel at or above this value counts as ink when measuring rows/columns
MIN_INK_PIXELS = 8  # fewer ink pixels than this: the letter is "empty"
# Code points that no Latin font maps: what a font draws for them is its .notdef box (or nothing).
NOTDEF_PROBES = ("\u0378", "\U0010fffd")
HERSHEY_SUPERSAMPLE = 4  # Hershey strokes are drawn at 4x and box-averaged down: anti-aliased lines
# The Hershey fonts' em in font units: their glyphs are designed on a 32-unit body (the Roman
# simplex's capitals are 21 units tall, 0.66 em), so the em mode draws them at EM_SIZE / 32 px a unit.
HERSHEY_EM_UNITS = 32
# Letters whose lowercase is a different shape from the capital in any real text face: when most of
# them are the capital's shape (scaled to the same box), the face is small caps.
SMALL_CAPS_PROBES = "abdefghmnqrty"
SMALL_CAPS_IOU = 0.75  # shape overlap (intersection over union, 24x24 ink boxes) that counts as "same"
SMALL_CAPS_SHARE = 0.5  # more than this share of SMALL_CAPS_PROBES the same: a small-caps face
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
            font i at images[i, j], cap-normalised ("cap" size mode).
        skipped: candidates that failed, each with its reason.
        em_images: the same glyphs at one em size ("em" size mode), or None when not asked for.
    """

    fonts: list[FontInstance]
    images: np.ndarray
    skipped: list[SkippedFont] = field(default_factory=list)
    em_images: np.ndarray | None = None


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
    """The font instance at the em size whose 'H' is CAP_HEIGHT px tall (or the nearest to it)."""
    ref = 100.0  # px em size of the first measurement
    h = _cap_height(open_truetype(inst, ref))
    if not h:
        raise FontCheckError(f"{inst.name}: letter 'H' renders empty")
    size = ref * CAP_HEIGHT / h
    font = open_truetype(inst, size)
    # Hinting snaps heights to whole pixels, some faces in steps of several: up to three correction
    # steps (one is enough for most), keeping the size that comes nearest to CAP_HEIGHT.
    h2 = _cap_height(font) or CAP_HEIGHT
    best = (abs(h2 - CAP_HEIGHT), font)
    for _ in range(3):
        if h2 == CAP_HEIGHT:
            break
        size *= CAP_HEIGHT / h2
        font = open_truetype(inst, size)
        h2 = _cap_height(font) or CAP_HEIGHT
        if abs(h2 - CAP_HEIGHT) < best[0]:
            best = (abs(h2 - CAP_HEIGHT), font)
    return best[1]


def _raw_truetype(inst: FontInstance, size_mode: str = "cap") -> tuple[list[np.ndarray], list[np.ndarray]]:
    font = _fit_truetype(inst) if size_mode == "cap" else open_truetype(inst, EM_SIZE)
    letters = [_draw_text(font, c) for c in CLASSES]
    notdefs = [_draw_text(font, p) for p in NOTDEF_PROBES]
    return letters, notdefs


_HERSHEY_CACHE: dict[str, dict] = {}


def _hershey_glyphs(name: str) -> dict:
    if name not in _HERSHEY_CACHE:
        _HERSHEY_CACHE[name] = load_hershey(name).all_glyphs
    return _HERSHEY_CACHE[name]


def _raw_hershey(inst: FontInstance, size_mode: str = "cap") -> list[np.ndarray]:
    """Hershey strokes drawn with a round pen of ``inst.pen_width`` px, scaled so that the ink of 'H'
    spans CAP_HEIGHT px ("cap") or the font's em is EM_SIZE px ("em"), with the bottom of 'H' on the
    baseline. The pen keeps its width in both modes, as a real pen does. A synthetic hand
    (``inst.hand``) first reshapes each letter's strokes (:func:`glyphcore.data.hands.hand_strokes`)."""
    glyphs = _hershey_glyphs(inst.file.split(":", 1)[1])
    pen = float(inst.pen_width or 3.0)
    h = glyphs.get("H")
    ys = [y for stroke in (h.strokes if h else []) for _, y in stroke]
    if not ys or max(ys) == min(ys):
        raise FontCheckError(f"{inst.name}: letter 'H' has no strokes")
    top, bottom = min(ys), max(ys)  # font units, y grows downwards
    if size_mode == "cap":
        scale = (CAP_HEIGHT - pen) / (bottom - top)  # px per font unit: the pen adds pen/2 on each side
    else:
        scale = EM_SIZE / HERSHEY_EM_UNITS
    ss = HERSHEY_SUPERSAMPLE
    writer = hand(inst.hand) if inst.hand is not None else None
    out = []
    for c in CLASSES:
        img = Image.new("L", (_CANVAS_W * ss, FRAME_SIZE * ss), 0)
        draw = ImageDraw.Draw(img)
        g = glyphs.get(c)
        r = pen * ss / 2
        strokes = list(g.strokes) if g else []
        if writer is not None:
            strokes = hand_strokes(strokes, writer, c, scale, bottom)
        for stroke in strokes:
            pts = [
                ((_ORIGIN_X + x * scale) * ss, (BASELINE_ROW - pen / 2 + (y - bottom) * scale) * ss) for x, y in stroke
            ]
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
    return np.ascontiguousarray(raw[:, start : start + FRAME_SIZE])


def _ink_box_mask(img: np.ndarray, side: int = 24) -> np.ndarray | None:
    """The ink of a letter cut to its ink box and resized to side x side, as booleans (None: no ink)."""
    rows, cols = ink_rows(img), ink_cols(img, INK)
    if rows is None or cols is None:
        return None
    box = Image.fromarray(img[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1])
    return np.asarray(box.resize((side, side), Image.Resampling.BILINEAR)) >= INK


def small_caps_letters(letters: list[np.ndarray] | np.ndarray) -> list[str]:
    """The letters of SMALL_CAPS_PROBES whose lowercase has its capital's shape, each scaled to its
    own ink box (a small-caps face draws them so; a text face does not).

    Args:
        letters: the 52 renders of one font, in CLASSES order (any size, same for all).

    Returns:
        Those letters (lowercase), in SMALL_CAPS_PROBES order.
    """
    out = []
    for c in SMALL_CAPS_PROBES:
        lo = _ink_box_mask(np.asarray(letters[CLASSES.index(c)]))
        up = _ink_box_mask(np.asarray(letters[CLASSES.index(c.upper())]))
        if lo is None or up is None:
            continue
        union = int((lo | up).sum())
        if union and (lo & up).sum() / union >= SMALL_CAPS_IOU:
            out.append(c)
    return out


def render_letters(inst: FontInstance, size_mode: str = "cap", check: bool = True) -> np.ndarray:
    """Render the 52 letters of a font instance into the glyph frame, checking each.

    Args:
        inst: the font instance.
        size_mode: one of SIZE_MODES: "cap" (cap height CAP_HEIGHT px) or "em" (em EM_SIZE px).
        check: run the render check (off for a font that already passed it in another size mode).

    Returns:
        uint8 array 52 x FRAME_SIZE x FRAME_SIZE; entry j is CLASSES[j].

    Raises:
        FontCheckError: a letter is empty or drawn as the font's .notdef box, or the lowercase letters
            are the capitals or their small-caps copies (the message names the letter).
        DataError: the font file fails to load.
        ValueError: an unknown size mode.
    """
    if size_mode not in SIZE_MODES:
        raise ValueError(f"unknown size mode {size_mode!r}: expected one of {SIZE_MODES}")
    if inst.source == "hershey":
        raw, notdefs = _raw_hershey(inst, size_mode), list[np.ndarray]()
    else:
        raw, notdefs = _raw_truetype(inst, size_mode)
    if check:
        for c, img in zip(CLASSES, raw):
            if int((img >= INK).sum()) < MIN_INK_PIXELS:
                raise FontCheckError(f"{inst.name}: letter {c!r} renders empty (the font lacks it)")
            for nd in notdefs:
                if np.array_equal(img, nd):
                    raise FontCheckError(f"{inst.name}: letter {c!r} renders as the font's missing-glyph box")
        same_case = sum(np.array_equal(raw[i], raw[i + 26]) for i in range(26))
        if same_case >= 13:
            raise FontCheckError(f"{inst.name}: {same_case} lowercase letters are drawn as capitals (a caps-only face)")
        small = small_caps_letters(raw)
        if len(small) > SMALL_CAPS_SHARE * len(SMALL_CAPS_PROBES):
            raise FontCheckError(
                f"{inst.name}: lowercase {''.join(small)!r} are the capitals' shapes drawn smaller (a small-caps face)"
            )
    return np.stack([_centre(img) for img in raw])


def render_glyph(inst: FontInstance, letter: str, size_mode: str = "cap") -> np.ndarray:
    """One clean letter of one font in the glyph frame (uint8 FRAME_SIZE x FRAME_SIZE, white on black).

    Raises:
        ValueError: ``letter`` is not one of the 52 classes, or an unknown size mode.
        FontCheckError / DataError: as :func:`render_letters`.
    """
    if letter not in CLASSES:
        raise ValueError(f"unknown letter {letter!r}: expected one of A-Z a-z")
    return render_letters(inst, size_mode)[CLASSES.index(letter)]


def render_font_set(
    candidates: list[FontInstance],
    progress: Callable[[int, int], None] | None = None,
    em: bool = False,
) -> RenderedFonts:
    """Render every candidate; keep those that pass the check, record the others with their reason.

    Args:
        candidates: font instances, e.g. from :func:`glyphcore.data.fonts.discover_fonts`.
        progress: called as ``progress(done, total)`` after each candidate.
        em: also render the accepted fonts at one em size (``em_images``).

    Returns:
        RenderedFonts with the accepted fonts (in candidate order) and their clean glyphs.
    """
    fonts: list[FontInstance] = []
    images: list[np.ndarray] = []
    em_images: list[np.ndarray] = []
    skipped: list[SkippedFont] = []
    for i, inst in enumerate(candidates):
        try:
            cap = render_letters(inst)
            if em:
                em_images.append(render_letters(inst, "em", check=False))
            images.append(cap)
            fonts.append(inst)
        except DataError as e:
            skipped.append(SkippedFont(inst.name, inst.file, str(e)))
        if progress is not None:
            progress(i + 1, len(candidates))
    empty = np.zeros((0, len(CLASSES), FRAME_SIZE, FRAME_SIZE), np.uint8)
    stack = np.stack(images) if images else empty
    em_stack = (np.stack(em_images) if em_images else empty) if em else None
    return RenderedFonts(fonts, stack, skipped, em_stack)
