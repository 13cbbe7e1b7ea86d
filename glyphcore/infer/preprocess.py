"""The ONE way uint8 images become model input: user drawings into the glyph frame, frames into tensors.

The canvas convention: a square image is the glyph frame scaled by ``side / FRAME_SIZE``, so its cap
line is at ``CAP_ROW * s`` and its baseline at ``BASELINE_ROW * s`` (the Draw page draws its guide lines
there). ``preprocess`` keeps the ink's vertical position and size, never crops to the ink box (that
would turn c into C), and only centres the ink horizontally, as the renderer centres every glyph.
A non-square image is padded with its background to a square first. ``frame_to_tensor`` is what
every reader of glyph arrays (evaluation, nearest glyphs, activation statistics, kept drawings)
calls to make a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from glyphcore.frame import BASELINE_ROW, CAP_HEIGHT, FRAME_SIZE
from glyphcore.infer.image_input import image_array

__all__ = ["MIN_INK_FRACTION", "Placement", "Prepared", "placement_of", "preprocess", "recentre", "frame_to_tensor"]

# A drawing whose ink covers less than 0.4% of the frame (40 of 10,000 px at >= 50% intensity: a
# click or a speck) is "empty": reported as such, never predicted. A 6 px-wide stroke across the
# cap height is ~360 px.
MIN_INK_FRACTION = 0.004
# Ink darker/brighter than its background by less than this (0-255) is noise, not a drawing.
_MIN_CONTRAST = 40
_CENTRE_LEVEL = 64  # ink >= 25% decides the horizontal extent used for centring
# Where letters sit in the frame (frame px): every letter is at least about half the cap height tall
# (x-height letters: ~0.70 of it; a lowercase drawn small between the lines still ~0.5), and none is
# taller than the cap line to the bottom of the descenders (~1.35). Ink outside these bounds, or whose
# bottom floats far above the baseline or whose top sinks below it, is "off the guides".
_MIN_INK_HEIGHT = 0.45 * CAP_HEIGHT  # 27 px
_MAX_INK_HEIGHT = 1.40 * CAP_HEIGHT  # 84 px: more than the cap line to the frame's bottom edge
_MAX_FLOAT = 0.35 * CAP_HEIGHT  # 21 px: ink bottom above the baseline by more than this floats


@dataclass(frozen=True)
class Placement:
    """Where the ink sits against the guide lines (the frame's cap line and baseline).

    Attributes:
        top, bottom: first and last ink rows in the frame (px; bottom inclusive).
        height: ink height in px (``bottom - top + 1``); the cap height is 60.
        status: ``"ok"``, ``"small"``, ``"large"``, ``"high"`` (bottom far above the baseline) or
            ``"low"`` (all of it below the baseline).
        message: a sentence for the user when ``status`` is not ``"ok"``, else "".
    """

    top: int
    bottom: int
    height: int
    status: str
    message: str = ""

    @property
    def off(self) -> bool:
        """The ink is far off the guide lines: a centred reading (``recentre``) is worth offering."""
        return self.status != "ok"


def placement_of(preview: np.ndarray) -> Placement | None:
    """Judge a 100 x 100 frame's ink box against the cap line and baseline; None for no ink."""
    rows = np.flatnonzero(preview.max(axis=1) >= 128)
    if rows.size == 0:
        return None
    top, bottom = int(rows[0]), int(rows[-1])
    h = bottom - top + 1
    cap = f"the guide lines are {CAP_HEIGHT} px apart"
    if h < _MIN_INK_HEIGHT:
        status, msg = (
            "small",
            (
                f"the drawing is small for the guide lines ({h} px tall, {100 * h / CAP_HEIGHT:.0f}% "
                f"of the cap height; {cap}): the model reads letters drawn between them"
            ),
        )
    elif h > _MAX_INK_HEIGHT:
        status, msg = (
            "large",
            (
                f"the drawing is far larger than the guide lines ({h} px tall, "
                f"{100 * h / CAP_HEIGHT:.0f}% of the cap height; {cap})"
            ),
        )
    elif bottom < BASELINE_ROW - _MAX_FLOAT:
        status, msg = "high", (f"the drawing floats {BASELINE_ROW - bottom} px above the baseline: letters stand on it")
    elif top > BASELINE_ROW:
        status, msg = "low", "the drawing lies entirely below the baseline: letters stand on it"
    else:
        status, msg = "ok", ""
    return Placement(top=top, bottom=bottom, height=h, status=status, message=msg)


@dataclass
class Prepared:
    """A user image in the glyph frame, ready for a model.

    Attributes:
        tensor: 1 x C x H x W float32 in [0, 1]: exactly what the model sees (white ink on black).
        preview: FRAME_SIZE x FRAME_SIZE uint8 (100 x 100), the drawing in the glyph frame.
        ink_fraction: share of frame pixels that are ink (>= 50% intensity), 0..1.
        empty: nothing (or nearly nothing) is drawn; such an input must not be predicted.
        inverted: the input had dark ink on a light background (it was inverted).
        source_size: (width, height) of the input in px.
        note: why the input is empty, or "" (for a message in the app or CLI).
        placement: where the ink sits against the guide lines (None when empty).
        recentred: this is the centred reading of another input (``recentre``).
    """

    tensor: torch.Tensor
    preview: np.ndarray
    ink_fraction: float
    empty: bool
    inverted: bool = False
    source_size: tuple[int, int] = (0, 0)
    note: str = ""
    placement: Placement | None = None
    recentred: bool = False


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 -> H x W float32 luminance (ITU-R 601, as Pillow's convert("L"))."""
    return rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114)


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def _ink_map(a: np.ndarray) -> tuple[np.ndarray, bool, int]:
    """uint8 image -> (ink H x W uint8 with ink = high and background = 0, inverted?, contrast 0-255).

    Transparent images (the canvas's default: black strokes on a transparent background) take their
    ink from alpha times the colour's distance from the background it would show against; opaque
    ones take the background level from the border (the median, robust to ink touching an edge)
    and measure ink as the distance from it, in whichever direction the border says.
    """
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3]
        if alpha.min() < 255:  # some transparency: alpha says where the ink is
            rgb = a[..., :3]
            if not rgb.any():  # the canvas's default: pure black strokes, coverage in alpha
                ink = alpha
                dark = True
            else:
                lum = _luminance(rgb)
                af = alpha.astype(np.float32) / 255.0
                weight = float(af.sum())
                dark = weight == 0 or float((lum * af).sum()) / weight < 128
                ink = np.rint(af * ((255.0 - lum) if dark else lum)).astype(np.uint8)
            contrast = int(ink.max())
            return ink, dark, contrast
        a = a[..., :3]
    g = a if a.ndim == 2 else np.rint(_luminance(a)).astype(np.uint8)
    bg = int(np.median(_border(g)))
    inverted = bg > 127
    if inverted:
        ink = np.subtract(bg, g, dtype=np.int16).clip(0, 255).astype(np.uint8) if bg < 255 else 255 - g
    else:
        ink = np.subtract(g, bg, dtype=np.int16).clip(0, 255).astype(np.uint8) if bg > 0 else g
    contrast = int(ink.max())
    if 0 < contrast < 255 and contrast >= _MIN_CONTRAST:
        # faint ink (a pencil scan, a grey background): stretch so its strongest stroke is white
        ink = np.rint(ink.astype(np.float32) * (255.0 / contrast)).astype(np.uint8)
    return ink, inverted, contrast


def _centre_square(ink: np.ndarray) -> np.ndarray:
    """Pad to a square (background 0) and shift the ink so its horizontal extent is centred.

    The vertical position is kept: the square is the frame (its rows are the frame's rows scaled).
    """
    h, w = ink.shape
    side = max(h, w)
    cols = np.flatnonzero(ink.max(axis=0) >= _CENTRE_LEVEL)
    if cols.size == 0:
        cols = np.flatnonzero(ink.max(axis=0))
    top = (side - h) // 2
    if cols.size == 0:
        left = (side - w) // 2
    else:
        # centre of the ink's extent, in the padded square's columns
        centre2 = int(cols[0]) + int(cols[-1]) + 1  # 2 x centre, in source columns
        left = (side - centre2) // 2
    if h == side and left == 0:
        return ink
    out = np.zeros((side, side), dtype=np.uint8)
    # copy the part of the source that lands inside the square (ink never falls out: its extent is
    # at most the square's side and it is centred)
    src_x0, dst_x0 = max(0, -left), max(0, left)
    n = min(w - src_x0, side - dst_x0)
    if n > 0:
        out[top : top + h, dst_x0 : dst_x0 + n] = ink[:, src_x0 : src_x0 + n]
    return out


def _resize(square: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 square -> uint8 (H, W), anti-aliased (area average when shrinking)."""
    h, w = size
    if square.shape == (h, w):
        return square
    method = Image.Resampling.BOX if square.shape[0] >= max(h, w) else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(square, "L").resize((w, h), method))


def frame_to_tensor(
    frame: np.ndarray, input_size: tuple[int, int] = (FRAME_SIZE, FRAME_SIZE), in_channels: int = 1
) -> torch.Tensor:
    """uint8 image(s) -> the float tensor a model sees: the one conversion every reader of image
    arrays uses (evaluation, nearest glyphs, activation statistics, kept drawings, preprocess).

    Args:
        frame: H x W, N x H x W or N x C x H x W uint8 (glyphs: white ink on black; C = 3 for
            colour data such as CIFAR). A read-only memmap slice is fine (it is copied).
        input_size: the model's (H, W); resized with anti-aliasing when it differs (grey glyphs
            through Pillow's box/bicubic filters, as a canvas drawing is; colour through torch).
        in_channels: the model's channels; grey is repeated for RGB models.

    Returns:
        N x C x H x W float32 in [0, 1] (N = 1 for a single H x W frame).
    """
    a = np.asarray(frame)
    if a.ndim == 2:
        a = a[None]
    size = (int(input_size[0]), int(input_size[1]))
    if a.ndim == 4 and a.shape[1] != 1:  # colour images
        t = torch.from_numpy(np.array(a, dtype=np.float32, order="C")).div_(255.0)
        if tuple(t.shape[-2:]) != size:
            t = torch.nn.functional.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
        return t
    if a.ndim == 4:
        a = a[:, 0]
    if a.shape[1:] != size:
        a = np.stack([_resize(np.ascontiguousarray(x), size) for x in a])
    if not a.flags.writeable or not a.flags.c_contiguous:  # memmaps and PIL's arrays are read-only views
        a = np.array(a, order="C")
    t = torch.from_numpy(a).unsqueeze(1).float().div_(255.0)
    if in_channels != 1:
        t = t.expand(-1, in_channels, -1, -1).contiguous()
    return t


def preprocess(
    image: Any, input_size: int | tuple[int, int] = (FRAME_SIZE, FRAME_SIZE), in_channels: int = 1
) -> Prepared:
    """Turn a drawing or an image into the glyph frame and the exact tensor a model sees.

    Args:
        image: the RGBA ``image_data`` of streamlit-drawable-canvas (H x W x 4 uint8: black strokes
            on transparent, white on black, or black on white), any numpy image (H x W, H x W x 3,
            H x W x 4; uint8, bool or floats in [0, 1]), a PIL image of any mode (L, RGB, RGBA, P,
            CMYK, I;16, ...; an animated one gives its first frame), a file path, or the file's bytes.
        input_size: the model's input side or (H, W) in px (``predictor.input_size``).
        in_channels: the model's input channels (``predictor.in_channels``).

    Returns:
        A :class:`Prepared`: ``tensor`` (1 x C x H x W), ``preview`` (100 x 100 uint8), ``empty``
        (check it: an empty drawing is not to be predicted), ``ink_fraction``.

    Raises:
        ImageInputError: not an image, truncated, too large, or an array of the wrong shape.
    """
    size = (input_size, input_size) if isinstance(input_size, int) else (int(input_size[0]), int(input_size[1]))
    a, source_size = image_array(image)
    ink, inverted, contrast = _ink_map(a)
    square = _centre_square(ink) if contrast >= _MIN_CONTRAST else np.zeros((max(ink.shape),) * 2, np.uint8)
    preview = _resize(square, (FRAME_SIZE, FRAME_SIZE))
    ink_fraction = float(np.count_nonzero(preview >= 128)) / preview.size
    note = ""
    if contrast < _MIN_CONTRAST:
        note = "nothing is drawn: the image has no ink that stands out from its background"
    elif ink_fraction < MIN_INK_FRACTION:
        note = (
            f"almost nothing is drawn ({ink_fraction:.2%} of the frame is ink; at least "
            f"{MIN_INK_FRACTION:.1%} is needed): draw a letter between the guide lines"
        )
    if size == (FRAME_SIZE, FRAME_SIZE):
        tensor = frame_to_tensor(preview, size, in_channels)
    else:  # one resize from the full-resolution square, not two
        tensor = frame_to_tensor(_resize(square, size), size, in_channels)
    return Prepared(
        tensor=tensor,
        preview=preview,
        ink_fraction=ink_fraction,
        empty=bool(note),
        inverted=inverted,
        source_size=(int(source_size[0]), int(source_size[1])),
        note=note,
        placement=None if note else placement_of(preview),
    )


def recentre(prepared: Prepared) -> Prepared:
    """The centred reading of a drawing: its ink scaled so its height is the cap height, its bottom on
    the baseline, centred horizontally (what a letter drawn along the guide lines looks like).

    Lowercase letters lose their size this way (a small o becomes an O-sized o): the centred reading is
    offered beside the original answer, not instead of it.

    Args:
        prepared: from :func:`preprocess` (not empty).

    Returns:
        A new :class:`Prepared` for the same model input size and channels, ``recentred`` True.
    """
    if prepared.empty or prepared.placement is None:
        return prepared
    p = prepared.preview
    rows = np.flatnonzero(p.max(axis=1) >= _CENTRE_LEVEL)
    cols = np.flatnonzero(p.max(axis=0) >= _CENTRE_LEVEL)
    crop = p[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = CAP_HEIGHT / h
    new_h, new_w = CAP_HEIGHT, max(1, round(w * scale))
    if new_w > FRAME_SIZE - 4:  # a very wide drawing: fit the frame's width instead (2 px margins)
        scale = (FRAME_SIZE - 4) / w
        new_h, new_w = max(1, round(h * scale)), FRAME_SIZE - 4
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(crop), "L").resize((new_w, new_h), method))
    out = np.zeros((FRAME_SIZE, FRAME_SIZE), np.uint8)
    top = BASELINE_ROW - new_h  # bottom on the baseline
    left = (FRAME_SIZE - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    _, c, ih, iw = prepared.tensor.shape
    return Prepared(
        tensor=frame_to_tensor(out, (ih, iw), c),
        preview=out,
        ink_fraction=float(np.count_nonzero(out >= 128)) / out.size,
        empty=False,
        inverted=prepared.inverted,
        source_size=prepared.source_size,
        placement=placement_of(out),
        recentred=True,
    )
