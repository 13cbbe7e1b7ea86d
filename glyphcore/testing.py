"""Synthetic mouse drawings for tests and benchmarks: letters drawn on the Draw page's canvas the way a person would.

Tests, benchmarks and browser tests need drawings without a person. A letter is taken from a
single-stroke Hershey font (PyPI ``Hershey-Fonts``), scaled so that its cap height spans the
canvas's cap line to baseline (the guide lines the Draw page shows, from ``glyphcore.frame``),
centred near the middle of the canvas, and optionally disturbed like a hand on a mouse (size,
slant, rotation, placement, strokes that do not quite meet, tremor). ``render_canvas`` turns the
strokes into the RGBA array that streamlit-drawable-canvas returns as ``image_data``.

    strokes = letter_strokes("g", seed=3, jitter=1.0)     # list of polylines in canvas pixels
    rgba = render_canvas(strokes)                         # 280 x 280 x 4 uint8, black on transparent
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from glyphcore.frame import BASELINE_ROW, CANVAS_SIZE, CAP_ROW, CLASSES, FRAME_SIZE, STROKE_WIDTH, guide_rows

__all__ = [
    "HERSHEY_FACES",
    "CANVAS_STYLES",
    "letter_strokes",
    "render_canvas",
]

# Single-stroke faces: the simplex ones look like a careful hand; more faces = more variety.
HERSHEY_FACES = ("futural", "rowmans")
CANVAS_STYLES = ("default", "white_on_black", "black_on_white")
_SUPERSAMPLE = 4  # strokes are drawn 4x larger, then box-filtered: anti-aliased like a browser canvas


@lru_cache(maxsize=len(HERSHEY_FACES))
def _hershey(face: str):
    from HersheyFonts import HersheyFonts

    font = HersheyFonts()
    try:
        font.load_default_font(face)
    except Exception as e:  # the package raises plain Exception for unknown names
        raise ValueError(f"unknown Hershey face {face!r}: use one of {HERSHEY_FACES}") from e
    return font


@lru_cache(maxsize=4 * 52)
def _glyph_strokes(letter: str, face: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    """The letter's strokes in font units (y grows downward), plus the face's cap/base lines."""
    font = _hershey(face)
    return tuple(tuple((float(x), float(y)) for x, y in s) for s in font.strokes_for_text(letter))


def _densify(points: np.ndarray, step: float) -> np.ndarray:
    """Resample a polyline so consecutive points are at most ``step`` apart (mouse events)."""
    if len(points) < 2:
        return points
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:]):
        n = max(1, int(math.ceil(float(np.hypot(*(b - a))) / step)))
        t = np.arange(1, n + 1, dtype=np.float64)[:, None] / n
        out.append(a + (b - a) * t)
    return np.concatenate(out)


def letter_strokes(
    letter: str,
    canvas_size: int = CANVAS_SIZE,
    *,
    jitter: float = 0.0,
    seed: int | None = None,
    face: str | None = None,
) -> list[list[tuple[float, float]]]:
    """Strokes of ``letter`` drawn on a square canvas along the Draw page's guide lines.

    Capitals run from the cap line to the baseline; lowercase letters keep their x-height,
    ascenders and descenders, as a person would draw them between the guide lines.

    Args:
        letter: one of A-Z a-z.
        canvas_size: the canvas side in px (the Draw page uses 280).
        jitter: 0 = exactly on the guide lines, centred; 1 = a typical person with a mouse
            (size +-8%, aspect +-8%, slant and rotation of a few degrees, a few px off the lines,
            strokes that miss each other by about a pixel, hand tremor). Larger values exaggerate.
        seed: random seed for the jitter (and the face when ``face`` is None).
        face: a Hershey face name; None picks one of ``HERSHEY_FACES`` from the seed.

    Returns:
        One polyline per pen stroke, each a list of (x, y) canvas pixels (floats; y grows down).

    Raises:
        ValueError: ``letter`` is not one of the 52 classes, or ``face`` is unknown.
    """
    if letter not in CLASSES:
        raise ValueError(f"cannot draw {letter!r}: letter_strokes draws one of A-Z a-z")
    rng = np.random.default_rng(seed)
    if face is None:
        face = HERSHEY_FACES[int(rng.integers(len(HERSHEY_FACES)))] if seed is not None else HERSHEY_FACES[0]
    opts = _hershey(face).render_options
    cap_u, base_u = float(opts["cap_line"]), float(opts["base_line"])
    strokes_u = [np.asarray(s, dtype=np.float64) for s in _glyph_strokes(letter, face)]
    xs = np.concatenate([s[:, 0] for s in strokes_u])
    cx_u = (xs.min() + xs.max()) / 2

    s = canvas_size / FRAME_SIZE  # canvas px per frame px
    unit = (BASELINE_ROW - CAP_ROW) * s / (base_u - cap_u)  # canvas px per font unit
    rows = guide_rows(canvas_size)

    j = float(jitter)
    scale = math.exp(rng.normal(0, 0.08 * j)) if j else 1.0
    aspect = math.exp(rng.normal(0, 0.08 * j)) if j else 1.0
    shear = rng.normal(0, 0.08 * j) if j else 0.0  # italic-like slant, dx per dy
    angle = math.radians(rng.normal(0, 3.0 * j)) if j else 0.0
    dx = rng.normal(0, 0.06 * canvas_size * j) if j else 0.0  # people rarely draw dead centre
    dy = rng.normal(0, 1.5 * s * j) if j else 0.0  # about 1.5 frame px off the baseline
    cos, sin = math.cos(angle), math.sin(angle)

    out: list[list[tuple[float, float]]] = []
    for st in strokes_u:
        # Font units -> offsets from the glyph's bottom-centre (centre of its width, on the baseline),
        # which is where a person anchors a letter; scale, slant and rotate about that point.
        u = (st[:, 0] - cx_u) * unit * scale * aspect
        v = (st[:, 1] - base_u) * unit * scale
        u = u - shear * v
        x = cos * u - sin * v + canvas_size / 2 + dx
        y = sin * u + cos * v + rows["baseline"] + dy
        pts = np.stack([x, y], axis=1)
        if j:
            pts = pts + rng.normal(0, 1.0 * s * j, size=2)  # strokes miss each other a little
            pts = _densify(pts, step=3.0)  # canvas px between mouse-move events
            # Tremor: smooth random offsets along the path (a moving average of white noise).
            # 9 events (~27 px) of correlation; sd about 0.5 frame px (1.4 canvas px at 280).
            noise = rng.normal(0, 0.5 * s * j * 3.0, size=(len(pts) + 8, 2))
            kernel = np.ones(9) / 9
            smooth = np.stack([np.convolve(noise[:, k], kernel, mode="valid") for k in range(2)], axis=1)
            pts = pts + smooth[: len(pts)]
            pts = np.round(pts)  # mouse events arrive in whole pixels
        pts = np.clip(pts, 0, canvas_size - 1)  # the canvas gets no events from outside itself
        out.append([(float(a), float(b)) for a, b in pts])
    return out


def render_canvas(
    strokes: list[list[tuple[float, float]]],
    canvas_size: int = CANVAS_SIZE,
    stroke_width: float = STROKE_WIDTH,
    style: str = "default",
) -> np.ndarray:
    """Paint strokes like streamlit-drawable-canvas's free-draw brush and return its ``image_data``.

    Strokes have round caps and joins and anti-aliased edges (drawn at 4x, box-filtered), as a
    browser canvas paints them.

    Args:
        strokes: polylines of (x, y) canvas pixels, e.g. from :func:`letter_strokes`.
        canvas_size: the canvas side in px.
        stroke_width: the brush width in canvas px.
        style: ``"default"``: the component's default, black strokes (RGB 0) whose alpha is the
            coverage, on a fully transparent background (RGBA 0); ``"white_on_black"``: white
            strokes on an opaque black background; ``"black_on_white"``: black on opaque white.

    Returns:
        ``canvas_size x canvas_size x 4`` uint8 RGBA array.
    """
    if style not in CANVAS_STYLES:
        raise ValueError(f"unknown canvas style {style!r}: use one of {CANVAS_STYLES}")
    k = _SUPERSAMPLE
    big = Image.new("L", (canvas_size * k, canvas_size * k), 0)
    draw = ImageDraw.Draw(big)
    w = stroke_width * k
    r = w / 2
    for stroke in strokes:
        pts = [(x * k, y * k) for x, y in stroke]
        if len(pts) > 1:
            draw.line(pts, fill=255, width=max(1, round(w)), joint="curve")
        for x, y in (pts[0], pts[-1]) if pts else ():  # round caps (and a dot for a single click)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    cov = np.asarray(big.resize((canvas_size, canvas_size), Image.Resampling.BOX))
    rgba = np.empty((canvas_size, canvas_size, 4), dtype=np.uint8)
    if style == "default":
        rgba[..., :3] = 0
        rgba[..., 3] = cov
    elif style == "white_on_black":
        rgba[..., :3] = cov[..., None]
        rgba[..., 3] = 255
    else:
        rgba[..., :3] = (255 - cov)[..., None]
        rgba[..., 3] = 255
    return rgba
