"""Synthetic mouse drawings for tests and benchmarks: letters drawn on the Draw page's canvas the way a person would.

Tests, benchmarks and browser tests need drawings without a person. A letter is taken from a
single-stroke Hershey font (PyPI ``Hershey-Fonts``), scaled so that its cap height spans the
canvas's cap line to baseline (the guide lines the Draw page shows, from ``glyphcore.frame``),
centred near the middle of the canvas, and optionally disturbed like a hand on a mouse (size,
slant, rotation, placement, strokes that do not quite meet, tremor). ``render_canvas`` turns the
strokes into the RGBA array that streamlit-drawable-canvas returns as ``image_data``.

    strokes = letter_strokes("g", seed=3, jitter=1.0)     # list of polylines in canvas pixels
    rgba = render_canvas(strokes)                         # 280 x 280 x 4 uint8, black on transparent

``nonletter_strokes`` draws what is not a letter, for the "is this a letter" judgement: scribbles,
symbols (# @ & % + = ? * $ from the same pen), shapes (squares, triangles, stars, spirals, hatching,
zigzags), specks and random strokes. A circle is left out on purpose: a circle IS an o.

``untrained_checkpoint`` writes the checkpoint of a freshly initialised (seeded) model, for tests and
benchmarks of the path from file to answer where the weights do not matter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from glyphcore.data.hands import resample_polyline
from glyphcore.frame import BASELINE_ROW, CANVAS_SIZE, CAP_ROW, CLASSES, FRAME_SIZE, STROKE_WIDTH, guide_rows

__all__ = [
    "HERSHEY_FACES",
    "CANVAS_STYLES",
    "NONLETTER_KINDS",
    "NONLETTER_SYMBOLS",
    "letter_strokes",
    "nonletter_strokes",
    "render_canvas",
    "untrained_checkpoint",
]

# Single-stroke faces: the simplex ones look like a careful hand; more faces = more variety.
HERSHEY_FACES = ("futural", "rowmans")
CANVAS_STYLES = ("default", "white_on_black", "black_on_white")
# What nonletter_strokes draws. Symbols whose shape is a letter in some hand are left out (| is an
# l, 0 an O, x-like crosses an x); + and = are kept: no letter is a cross with equal arms or two bars.
NONLETTER_SYMBOLS = "#@&%+=?*$"
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
    scale, aspect, shear, angle, dx, dy = _hand(rng, j, canvas_size, s)
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
            pts = _tremor(pts + rng.normal(0, 1.0 * s * j, size=2), rng, s * j)  # strokes miss each other a little
        out.append(_on_canvas(pts, canvas_size))
    return out


def _tremor(pts: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """A hand-drawn path: densified into mouse-move events, shaken by tremor, rounded to whole pixels.

    The tremor is a moving average of white noise along the path: 9 events (~27 px) of correlation,
    sd about 0.5 frame px per unit of ``amount`` (canvas px per frame px x jitter; 1.4 canvas px at 280).
    """
    pts = resample_polyline(pts, step=3.0)  # canvas px between mouse-move events
    noise = rng.normal(0, 0.5 * amount * 3.0, size=(len(pts) + 8, 2))
    kernel = np.ones(9) / 9
    smooth = np.stack([np.convolve(noise[:, k], kernel, mode="valid") for k in range(2)], axis=1)
    return np.round(pts + smooth[: len(pts)])  # mouse events arrive in whole pixels


def _on_canvas(pts: np.ndarray, canvas_size: int) -> list[tuple[float, float]]:
    """A stroke as canvas events: clipped (the canvas gets no events from outside itself)."""
    pts = np.clip(pts, 0, canvas_size - 1)
    return [(float(a), float(b)) for a, b in pts]


def _hand(rng: np.random.Generator, j: float, canvas_size: int, s: float) -> tuple[float, ...]:
    """A person's placement of one letter: (scale, aspect, shear, angle in rad, dx, dy in canvas px);
    all neutral for ``j == 0``. ``s`` is canvas px per frame px."""
    if not j:
        return 1.0, 1.0, 0.0, 0.0, 0.0, 0.0
    scale = math.exp(rng.normal(0, 0.08 * j))
    aspect = math.exp(rng.normal(0, 0.08 * j))
    shear = rng.normal(0, 0.08 * j)  # italic-like slant, dx per dy
    angle = math.radians(rng.normal(0, 3.0 * j))
    dx = rng.normal(0, 0.06 * canvas_size * j)  # people rarely draw dead centre
    dy = rng.normal(0, 1.5 * s * j)  # about 1.5 frame px off the baseline
    return scale, aspect, shear, angle, dx, dy


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


def _polygon(n: int, r: float, rot: float, star: bool = False) -> np.ndarray:
    """A closed regular polygon (or an n-pointed star) around (0, 0), radius ``r``."""
    k = 2 * n if star else n
    ang = rot + np.arange(k + 1) * 2 * math.pi / k
    rad = np.where(np.arange(k + 1) % 2 == 1, 0.42 * r, r) if star else np.full(k + 1, r)
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)


def nonletter_strokes(
    kind: str, canvas_size: int = CANVAS_SIZE, *, seed: int | None = None, jitter: float = 1.0
) -> list[list[tuple[float, float]]]:
    """Strokes of a drawing that is not a letter, sized and placed as a person would between the guides.

    Args:
        kind: one of ``NONLETTER_KINDS``: "scribble" (a random tangle), "symbol" (one of
            ``NONLETTER_SYMBOLS`` from a Hershey pen), "square", "triangle", "star", "spiral", "hatching"
            (parallel strokes), "zigzag", "speck" (a few tiny dots), "random_strokes" (4-7 straight lines).
        canvas_size: the canvas side in px.
        seed: random seed (shape, size, placement, tremor).
        jitter: hand tremor and placement noise, as in :func:`letter_strokes`.

    Returns:
        One polyline per pen stroke in canvas pixels.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind not in NONLETTER_KINDS:
        raise ValueError(f"unknown non-letter kind {kind!r}: use one of {NONLETTER_KINDS}")
    rng = np.random.default_rng(seed)
    s = canvas_size / FRAME_SIZE
    rows = guide_rows(canvas_size)
    cap_h = (BASELINE_ROW - CAP_ROW) * s
    size = cap_h * float(rng.uniform(0.6, 1.05))  # about as tall as a letter drawn between the guides
    cx = canvas_size / 2 + rng.normal(0, 0.05 * canvas_size * jitter)
    cy = rows["baseline"] - size / 2 + rng.normal(0, 1.5 * s * jitter)
    polys, symbol_cy = _NONLETTER_SHAPES[kind](rng, size, cap_h, rows["baseline"])
    cy = cy if symbol_cy is None else symbol_cy
    out: list[list[tuple[float, float]]] = []
    for p in polys:
        pts = p + np.array([cx, cy])
        if jitter and len(pts) > 1:
            pts = _tremor(pts, rng, s * jitter)
        out.append(_on_canvas(pts, canvas_size))
    return out


# A shape: (rng, size, cap height, baseline row) -> (polylines around (0, 0), the centre row to use or
# None for the default). Each draws from the generator in a fixed order, so a seed gives one drawing.
Shape = Callable[[np.random.Generator, float, float, float], tuple[list[np.ndarray], float | None]]


def _scribble(rng: np.random.Generator, size: float, _cap: float, _base: float) -> tuple[list[np.ndarray], None]:
    n = int(rng.integers(25, 60))
    pts = np.cumsum(rng.normal(0, size * 0.25, size=(n, 2)), axis=0)
    span = pts.max(axis=0) - pts.min(axis=0)
    return [(pts - (pts.max(axis=0) + pts.min(axis=0)) / 2) * (size / np.maximum(span, 1e-6))], None  # a letter's box


def _symbol(rng: np.random.Generator, _size: float, cap_h: float, base: float) -> tuple[list[np.ndarray], float]:
    ch = NONLETTER_SYMBOLS[int(rng.integers(len(NONLETTER_SYMBOLS)))]
    face = HERSHEY_FACES[int(rng.integers(len(HERSHEY_FACES)))]
    opts = _hershey(face).render_options
    unit = cap_h / (float(opts["base_line"]) - float(opts["cap_line"]))
    st = [np.asarray(p, dtype=np.float64) for p in _glyph_strokes(ch, face)]
    allp = np.concatenate(st)
    mid = (allp.min(axis=0) + allp.max(axis=0)) / 2
    polys = [(p - mid) * unit * float(rng.uniform(0.85, 1.1)) for p in st]
    return polys, base - (float(opts["base_line"]) - mid[1]) * unit  # the symbol's own height on the line


def _spiral(rng: np.random.Generator, size: float, _cap: float, _base: float) -> tuple[list[np.ndarray], None]:
    t = np.linspace(0, float(rng.uniform(2.0, 3.5)) * 2 * math.pi, 200)
    r = size / 2 * t / t[-1]
    return [np.stack([r * np.cos(t), r * np.sin(t)], axis=1)], None


def _hatching(rng: np.random.Generator, size: float, _cap: float, _base: float) -> tuple[list[np.ndarray], None]:
    n = int(rng.integers(4, 8))
    ang = float(rng.uniform(0, math.pi))
    d = np.array([math.cos(ang), math.sin(ang)])
    nrm = np.array([-d[1], d[0]])
    offs = [(i - (n - 1) / 2) * size / n for i in range(n)]
    return [np.stack([nrm * off - d * size / 2, nrm * off + d * size / 2]) for off in offs], None


def _zigzag(rng: np.random.Generator, size: float, _cap: float, _base: float) -> tuple[list[np.ndarray], None]:
    n = int(rng.integers(9, 14))  # fewer teeth would be a W or an M
    xs = np.linspace(-size / 2, size / 2, n)
    ys = np.where(np.arange(n) % 2 == 0, -size / 2, size / 2) * float(rng.uniform(0.4, 1.0))
    pts = np.stack([xs, ys], axis=1)
    return [pts[:, ::-1] if rng.random() < 0.5 else pts], None  # half of them vertical


def _speck(rng: np.random.Generator, size: float, _cap: float, _base: float) -> tuple[list[np.ndarray], None]:
    return [rng.normal(0, size / 3, size=2)[None] for _ in range(int(rng.integers(1, 4)))], None


def _random_strokes(rng: np.random.Generator, size: float, _cap: float, _base: float) -> tuple[list[np.ndarray], None]:
    # at least 4 (two or three random lines are often an x, a t, a k or an A)
    return [rng.uniform(-size / 2, size / 2, size=(2, 2)) for _ in range(int(rng.integers(4, 8)))], None


_NONLETTER_SHAPES: dict[str, Shape] = {
    "scribble": _scribble,
    "symbol": _symbol,
    "square": lambda rng, size, _c, _b: ([_polygon(4, size * 0.62, math.pi / 4 + rng.normal(0, 0.08))], None),
    "triangle": lambda rng, size, _c, _b: ([_polygon(3, size * 0.6, -math.pi / 2 + rng.normal(0, 0.1))], None),
    "star": lambda rng, size, _c, _b: (
        [_polygon(int(rng.integers(5, 7)), size * 0.55, -math.pi / 2 + rng.normal(0, 0.1), star=True)],
        None,
    ),
    "spiral": _spiral,
    "hatching": _hatching,
    "zigzag": _zigzag,
    "speck": _speck,
    "random_strokes": _random_strokes,
}
NONLETTER_KINDS = tuple(_NONLETTER_SHAPES)  # what nonletter_strokes draws


def untrained_checkpoint(
    path: str | os.PathLike,
    model_name: str = "seed_cnn",
    classes: list[str] | tuple[str, ...] | str = CLASSES,
    *,
    input_size: int = FRAME_SIZE,
    in_channels: int = 1,
    seed: int = 0,
    **extra: Any,
) -> Path:
    """Write the checkpoint (glyphcore.checkpoint format) of a seeded, untrained ``model_name``.

    Args:
        path: the ``.pt`` file to write.
        model_name: a registered model; classes: its labels (one output each).
        input_size, in_channels: its input; seed: the torch seed of its initial weights.
        extra: entries added to (or replacing) the payload, e.g. ``state_dict=`` or ``epoch=``.

    Returns:
        The path written.
    """
    import torch

    from glyphcore.checkpoint import save_checkpoint
    from glyphcore.frame import frame_dict
    from glyphcore.models import create_model

    torch.manual_seed(seed)
    m = create_model(model_name, num_classes=len(classes), in_channels=in_channels, input_size=input_size)
    payload = {
        "model_name": m.glyph_name,
        "model_args": m.glyph_args,
        "classes": list(classes),
        "frame": frame_dict(),
        "config": {"data": "glyphs-52", "model": model_name},
        "state_dict": m.state_dict(),
        **extra,
    }
    return save_checkpoint(payload, path)
