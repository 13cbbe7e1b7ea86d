"""Inference: user images into the glyph frame, checkpoints into warm predictors, and why a model decided.

One preprocessing function serves the Draw page, the upload box and the CLI::

    prepared = preprocess(canvas_rgba)            # or a PIL image, a file path, bytes
    if prepared.empty: ...                        # nothing drawn: say so, predict nothing
    predictor = load_predictor("starter")         # a run id, a run folder, "starter" or a .pt file
    [pred] = predictor.predict(prepared, topk=5)  # pred.label, pred.topk = [("A", 0.97), ...]

The canvas convention: a square image is the glyph frame scaled by ``side / FRAME_SIZE``, so its cap
line is at ``CAP_ROW * s`` and its baseline at ``BASELINE_ROW * s`` (the Draw page draws its guide lines
there). ``preprocess`` keeps the ink's vertical position and size, never crops to the ink box (that
would turn c into C), and only centres the ink horizontally, as the renderer centres every glyph.
A non-square image is padded with its background to a square first.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from glyphcore import runs
from glyphcore.checkpoint import load_checkpoint
from glyphcore.errors import CheckpointError, ConfigError, ImageInputError
from glyphcore.frame import FRAME_SIZE

__all__ = [
    "MAX_INPUT_PIXELS",
    "MIN_INK_FRACTION",
    "Prepared",
    "Prediction",
    "Predictor",
    "preprocess",
    "frame_to_tensor",
    "load_predictor",
    "checkpoint_path",
    "saliency",
    "feature_maps",
]

# Images above 50 megapixels are refused before they are decoded: a 20000 x 20000 PNG would need
# 400 MB (grey) to 1.6 GB (RGBA) of memory for a picture of one letter. Pillow's own bomb guard
# (Image.MAX_IMAGE_PIXELS, ~89 MP) only warns below twice its limit; ours is lower and an error.
MAX_INPUT_PIXELS = 50_000_000
_WORK_SIDE = 1024  # px: larger images are shrunk to this side (anti-aliased) before any other work
# A drawing whose ink covers less than 0.4% of the frame (40 of 10,000 px at >= 50% intensity: a
# click or a speck) is "empty": reported as such, never predicted. A 6 px-wide stroke across the
# cap height is ~360 px.
MIN_INK_FRACTION = 0.004
# Ink darker/brighter than its background by less than this (0-255) is noise, not a drawing.
_MIN_CONTRAST = 40
_CENTRE_LEVEL = 64  # ink >= 25% decides the horizontal extent used for centring

_MODE_TO_RGB = {"CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "RGBX": "RGB",
                "P": "RGBA", "PA": "RGBA", "LA": "RGBA", "La": "RGBA", "RGBa": "RGBA", "1": "L"}


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------


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
    """

    tensor: torch.Tensor
    preview: np.ndarray
    ink_fraction: float
    empty: bool
    inverted: bool = False
    source_size: tuple[int, int] = (0, 0)
    note: str = ""


def _describe(image: Any) -> str:
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return type(image).__name__


def _bomb_pixels(message: str) -> int | None:
    import re

    m = re.search(r"\((\d+) pixels\)", message)  # Pillow: "Image size (400000000 pixels) exceeds limit ..."
    return int(m.group(1)) if m else None


def _too_large(name: str, pixels: int | None, dims: str = "") -> ImageInputError:
    size = f"{dims}{pixels / 1e6:.0f} megapixels" if pixels else "too large to decode safely"
    return ImageInputError(
        f"{name} is {size}; the limit is {MAX_INPUT_PIXELS / 1e6:.0f} MP (one letter needs far fewer): "
        f"downscale it to about 1000 px a side and try again"
    )


def _open_image(image: Any) -> Image.Image:
    """A path, bytes, a file object or a PIL image -> a loaded PIL image (first frame)."""
    name = _describe(image)
    if isinstance(image, Image.Image):
        img = image
    else:
        if isinstance(image, (str, os.PathLike)):
            p = Path(image)
            if not p.exists():
                raise ImageInputError(f"{p} does not exist: give the path of an image file (PNG, JPEG, ...)")
            if p.is_dir():
                raise ImageInputError(f"{p} is a folder: give the path of an image file")
            src: Any = p
        elif isinstance(image, (bytes, bytearray, memoryview)):
            if len(image) == 0:
                raise ImageInputError("the uploaded file is empty (0 bytes): upload an image file")
            src = io.BytesIO(bytes(image))
            name = "the uploaded image"
        elif hasattr(image, "read"):
            src = image
            name = getattr(image, "name", "the uploaded image")
        else:
            raise ImageInputError(
                f"cannot read a {type(image).__name__} as an image: pass a canvas RGBA array, a PIL image, "
                f"a file path or the file's bytes"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
                img = Image.open(src)
        except UnidentifiedImageError:
            raise ImageInputError(
                f"{name} is not an image Pillow can read: use PNG, JPEG, GIF, BMP, WebP or TIFF"
            ) from None
        except Image.DecompressionBombError as e:
            raise _too_large(name, _bomb_pixels(str(e))) from None
        except OSError as e:
            raise ImageInputError(f"cannot read {name}: {e}") from None
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageInputError(f"{name} has no pixels ({w}x{h})")
    if w * h > MAX_INPUT_PIXELS:
        raise _too_large(name, w * h, f"{w}x{h} = ")
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)  # an animated GIF/PNG/WebP: the first frame
    if img.format == "JPEG" and max(w, h) > 2 * _WORK_SIDE:
        img.draft(img.mode, (_WORK_SIDE, _WORK_SIDE))  # let libjpeg decode at 1/2, 1/4 or 1/8 scale
    # Pillow decodes lazily: a truncated file fails here. LOAD_TRUNCATED_IMAGES stays False so a
    # half-received upload is reported, not silently padded with grey.
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageInputError(
            f"{name} is truncated or corrupt ({e}): save or upload the whole file again"
        ) from None
    except Image.DecompressionBombError as e:
        raise _too_large(name, _bomb_pixels(str(e))) from None
    return img


def _pil_to_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 H x W (grey), H x W x 3 (RGB) or H x W x 4 (RGBA)."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(img)
        a = a.astype(np.float32)
        if mode.startswith("I;16"):
            a /= 257.0  # 0..65535 -> 0..255
        elif mode == "I":
            top = float(a.max()) if a.size else 0.0
            a = a / (257.0 if top > 255 else 1.0) if top <= 65535 else a * (255.0 / top)
        else:  # "F": 0..1 floats, or 0..255
            top = float(np.nanmax(a)) if a.size else 0.0
            a = a * 255.0 if top <= 1.0 else a
        img = Image.fromarray(np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8), "L")
    elif mode in _MODE_TO_RGB:
        img = img.convert(_MODE_TO_RGB[mode])
    elif mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGBA")
    if max(img.size) > _WORK_SIDE:
        img = img.copy()
        img.thumbnail((_WORK_SIDE, _WORK_SIDE), Image.Resampling.BOX)
    return np.asarray(img)


def _as_array(image: Any) -> tuple[np.ndarray, tuple[int, int]]:
    """Any accepted input -> (uint8 H x W[x3|x4] array, (width, height) of the input)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        a = image
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
            raise ImageInputError(
                f"an image array must be H x W, H x W x 3 (RGB) or H x W x 4 (RGBA); got shape {a.shape}"
            )
        h, w = a.shape[:2]
        if h < 1 or w < 1:
            raise ImageInputError(f"the image array has no pixels (shape {a.shape})")
        if h * w > MAX_INPUT_PIXELS:
            raise ImageInputError(
                f"the image array is {w}x{h} = {w * h / 1e6:.0f} megapixels; the limit is "
                f"{MAX_INPUT_PIXELS / 1e6:.0f} MP: downscale it first"
            )
        if a.dtype != np.uint8:
            if a.dtype == np.bool_:
                a = a.astype(np.uint8) * 255
            elif np.issubdtype(a.dtype, np.floating):
                a = np.nan_to_num(a.astype(np.float32))
                a = np.clip(a * 255.0 if a.max(initial=0.0) <= 1.0 else a, 0, 255).astype(np.uint8)
            elif np.issubdtype(a.dtype, np.integer):
                top = int(a.max(initial=0))
                a = (a.astype(np.float32) / (257.0 if top > 255 else 1.0)).clip(0, 255).astype(np.uint8)
            else:
                raise ImageInputError(f"cannot use an image array of dtype {a.dtype}: use uint8 or floats in [0, 1]")
        if max(h, w) > _WORK_SIDE:
            mode = {2: "L", 3: "RGB", 4: "RGBA"}[a.shape[2] if a.ndim == 3 else 2]
            return _pil_to_array(Image.fromarray(np.ascontiguousarray(a), mode)), (w, h)
        return a, (w, h)
    img = _open_image(image)
    return _pil_to_array(img), img.size


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
        out[top:top + h, dst_x0:dst_x0 + n] = ink[:, src_x0:src_x0 + n]
    return out


def _resize(square: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 square -> uint8 (H, W), anti-aliased (area average when shrinking)."""
    h, w = size
    if square.shape == (h, w):
        return square
    method = Image.Resampling.BOX if square.shape[0] >= max(h, w) else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(square, "L").resize((w, h), method))


def frame_to_tensor(frame: np.ndarray, input_size: tuple[int, int] = (FRAME_SIZE, FRAME_SIZE),
                    in_channels: int = 1) -> torch.Tensor:
    """uint8 glyph(s) in the frame -> the float tensor a model sees.

    Args:
        frame: H x W or N x H x W or N x 1 x H x W uint8 (white ink on black).
        input_size: the model's (H, W); resized with anti-aliasing when it differs.
        in_channels: the model's channels; grey is repeated for RGB models.

    Returns:
        N x C x H x W float32 in [0, 1] (N = 1 for a single H x W frame).
    """
    a = np.asarray(frame)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 4:
        a = a[:, 0]
    size = (int(input_size[0]), int(input_size[1]))
    if a.shape[1:] != size:
        a = np.stack([_resize(np.ascontiguousarray(x), size) for x in a])
    if not a.flags.writeable or not a.flags.c_contiguous:  # PIL's arrays are read-only views
        a = np.array(a, order="C")
    t = torch.from_numpy(a).unsqueeze(1).float().div_(255.0)
    if in_channels != 1:
        t = t.expand(-1, in_channels, -1, -1).contiguous()
    return t


def preprocess(image: Any, input_size: int | tuple[int, int] = (FRAME_SIZE, FRAME_SIZE),
               in_channels: int = 1) -> Prepared:
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
    a, source_size = _as_array(image)
    ink, inverted, contrast = _ink_map(a)
    square = _centre_square(ink) if contrast >= _MIN_CONTRAST else np.zeros((max(ink.shape),) * 2, np.uint8)
    preview = _resize(square, (FRAME_SIZE, FRAME_SIZE))
    ink_fraction = float(np.count_nonzero(preview >= 128)) / preview.size
    note = ""
    if contrast < _MIN_CONTRAST:
        note = "nothing is drawn: the image has no ink that stands out from its background"
    elif ink_fraction < MIN_INK_FRACTION:
        note = (f"almost nothing is drawn ({ink_fraction:.2%} of the frame is ink; at least "
                f"{MIN_INK_FRACTION:.1%} is needed): draw a letter between the guide lines")
    if size == (FRAME_SIZE, FRAME_SIZE):
        tensor = frame_to_tensor(preview, size, in_channels)
    else:  # one resize from the full-resolution square, not two
        tensor = frame_to_tensor(_resize(square, size), size, in_channels)
    return Prepared(tensor=tensor, preview=preview, ink_fraction=ink_fraction, empty=bool(note),
                    inverted=inverted, source_size=(int(source_size[0]), int(source_size[1])), note=note)


# --------------------------------------------------------------------------------------------
# Predictor
# --------------------------------------------------------------------------------------------


@dataclass
class Prediction:
    """One image's answer.

    Attributes:
        label: the most probable class name.
        topk: [(class name, probability), ...], most probable first.
        probs: probabilities of every class (len(classes),), summing to 1.
    """

    label: str
    topk: list[tuple[str, float]]
    probs: np.ndarray = field(repr=False)


def checkpoint_path(run_ref: str | os.PathLike, which: str = "best") -> Path:
    """The checkpoint file a reference points at: a ``.pt`` file, or a run's best/last checkpoint.

    Raises:
        RunError: no such run.
        CheckpointError: the run has no such checkpoint yet (the message says why and what to do).
        ConfigError: ``which`` is neither "best" nor "last".
    """
    if which not in ("best", "last"):
        raise ConfigError(f"which must be 'best' or 'last', got {which!r}")
    p = Path(run_ref)
    if p.suffix in (".pt", ".pth") and not p.is_dir():
        if not p.is_file():
            raise CheckpointError(f"checkpoint {p} does not exist: give the path of a .pt file or a run id")
        return p
    run_dir = runs.resolve_run(run_ref)
    name = runs.BEST_CKPT if which == "best" else runs.LAST_CKPT
    path = run_dir / name
    if not path.is_file():
        state = _run_state(run_dir)
        other = run_dir / (runs.LAST_CKPT if which == "best" else runs.BEST_CKPT)
        hint = f"; it has {other.name} (use which={'last' if which == 'best' else 'best'})" if other.is_file() else ""
        raise CheckpointError(
            f"run {run_dir.name} has no {name} yet (state: {state}){hint}: a checkpoint is written at the "
            f"end of the first epoch; wait for it, or resume or retrain the run"
        )
    return path


def _run_state(run_dir: Path) -> str:
    try:
        return str(runs.read_status(run_dir).get("state", "unknown"))  # reconciled: a dead "running" is crashed
    except Exception:  # a message helper: never let a broken status.json hide the real error
        return "unknown"


class Predictor:
    """A model rebuilt from a checkpoint alone, in eval mode, ready for many predictions.

    Attributes:
        model: the ``nn.Module`` (eval mode, on ``device``).
        classes: class names, label i <-> classes[i].
        input_size: (H, W) the model takes.
        in_channels: channels the model takes.
        checkpoint: the checkpoint's metadata (everything but the weights and optimizer state).
        path: the checkpoint file.
        device: where the model lives.
    """

    def __init__(self, model: torch.nn.Module, ckpt: dict[str, Any], path: Path, device: torch.device) -> None:
        self.model = model
        self.classes: list[str] = list(ckpt["classes"])
        args = ckpt["model_args"]
        isz = args.get("input_size", FRAME_SIZE)
        self.input_size: tuple[int, int] = (int(isz), int(isz)) if isinstance(isz, int) else (int(isz[0]), int(isz[1]))
        self.in_channels = int(args.get("in_channels", 1))
        self.checkpoint = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer", "scheduler", "rng")}
        self.path = path
        self.device = device
        # One model serves every app session (st.cache_resource): saliency and feature maps hook into
        # it, so model calls take turns rather than see each other's hooks.
        self.lock = threading.RLock()

    @property
    def name(self) -> str:
        """A short label for the app: ``<run folder>/<file>``."""
        return f"{self.path.parent.name}/{self.path.name}"

    def prepare(self, image: Any) -> Prepared:
        """``preprocess`` for this model's input size and channels."""
        return preprocess(image, self.input_size, self.in_channels)

    def _batch(self, x: Any) -> torch.Tensor:
        if isinstance(x, Prepared):
            t = x.tensor
        elif isinstance(x, (list, tuple)) and x and all(isinstance(p, Prepared) for p in x):
            t = torch.cat([p.tensor for p in x])
        elif isinstance(x, torch.Tensor):
            if not 2 <= x.ndim <= 4:
                raise ImageInputError(f"predict takes an N x C x H x W tensor, got shape {tuple(x.shape)}")
            t = x.reshape((1,) * (4 - x.ndim) + tuple(x.shape))  # H x W or C x H x W -> a batch of one
            if t.dtype == torch.uint8:
                t = t.float().div_(255.0)
        else:
            raise ImageInputError(
                f"predict takes a Prepared (from preprocess), a list of them, or an N x C x H x W tensor; "
                f"got {type(x).__name__}"
            )
        if tuple(t.shape[1:]) != (self.in_channels, *self.input_size):
            raise ImageInputError(
                f"this model takes {self.in_channels} x {self.input_size[0]} x {self.input_size[1]} inputs, got "
                f"{tuple(t.shape[1:])}: prepare images with predictor.prepare(image)"
            )
        return t

    @torch.inference_mode()
    def logits(self, x: Any) -> torch.Tensor:
        """N x num_classes float32 logits for a batch (see :meth:`predict` for what ``x`` may be)."""
        t = self._batch(x).to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with self.lock:
            return self.model(t).float()

    @torch.inference_mode()
    def predict(self, x: Any, topk: int = 5) -> list[Prediction]:
        """Top-k class probabilities for each image of a batch.

        Args:
            x: a :class:`Prepared`, a list of them, or an N x C x H x W float tensor in [0, 1]
                (uint8 is scaled by 1/255).
            topk: how many classes to return per image (capped at the class count).

        Returns:
            One :class:`Prediction` per image.

        Raises:
            ImageInputError: an empty drawing (check ``prepared.empty`` first) or a wrong shape.
        """
        items = [x] if isinstance(x, Prepared) else x
        if isinstance(items, (list, tuple)):
            for p in items:
                if isinstance(p, Prepared) and p.empty:
                    raise ImageInputError(p.note or "the drawing is empty: draw a letter first")
        probs = self.logits(x).softmax(dim=1)
        k = max(1, min(int(topk), probs.shape[1]))
        top_p, top_i = probs.topk(k, dim=1)
        probs_np, top_p, top_i = probs.cpu().numpy(), top_p.cpu().tolist(), top_i.cpu().tolist()
        return [
            Prediction(label=self.classes[ii[0]], topk=[(self.classes[i], float(p)) for i, p in zip(ii, pp)],
                       probs=probs_np[n])
            for n, (pp, ii) in enumerate(zip(top_p, top_i))
        ]


def load_predictor(run_ref: str | os.PathLike, which: str = "best",
                   device: str | torch.device | None = None) -> Predictor:
    """Rebuild a model from its checkpoint alone and return it warm, in eval mode.

    Args:
        run_ref: a run id, a run folder, ``"starter"``, or the path of a ``.pt`` checkpoint.
        which: ``"best"`` (lowest validation loss) or ``"last"`` (the latest epoch).
        device: where to run; default the CPU (one drawing at a time is fastest there).

    Returns:
        A :class:`Predictor`; the app keeps it with ``st.cache_resource``.

    Raises:
        RunError: no such run.
        CheckpointError: no checkpoint yet, not a glyphcore checkpoint, an unknown model, a class
            list that does not fit the model, or weights that do not fit the architecture.
    """
    from glyphcore.models import create_model, list_models

    path = checkpoint_path(run_ref, which)
    ckpt = load_checkpoint(path)
    name, args, classes = ckpt["model_name"], ckpt["model_args"], ckpt["classes"]
    if not isinstance(args, dict) or not isinstance(classes, (list, tuple)) or not classes:
        raise CheckpointError(f"{path} has malformed model_args or classes: re-save it with glyphcore")
    if name not in list_models():
        raise CheckpointError(
            f"{path} holds a {name!r} model, which this glyphcore does not know (it knows "
            f"{', '.join(list_models())}): update glyphcore or retrain with a known model"
        )
    if int(args.get("num_classes", len(classes))) != len(classes):
        raise CheckpointError(
            f"{path} is inconsistent: the model has {args.get('num_classes')} outputs but the checkpoint lists "
            f"{len(classes)} classes; it cannot name its predictions"
        )
    try:
        model = create_model(name, **args)
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{path}: its {name} model cannot be rebuilt from its model_args ({e})") from None
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(
            f"{path}: its weights do not fit a {name} model with {args}: {' '.join(first[:3])[:400]}"
        ) from None
    dev = torch.device(device) if device is not None else torch.device("cpu")
    # channels_last: oneDNN's and cuDNN's fast convolution layout (about 2x on the CPU for seed_cnn);
    # training uses it too. Inputs are converted in Predictor.logits.
    model.to(dev, memory_format=torch.channels_last).eval()
    for p in model.parameters():
        p.requires_grad_(False)  # inference only; saliency asks for input gradients itself
    return Predictor(model, ckpt, path, dev)


# --------------------------------------------------------------------------------------------
# Why: saliency and feature maps
# --------------------------------------------------------------------------------------------


def _last_conv(model: torch.nn.Module) -> torch.nn.Module | None:
    last = None
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            last = m
    return last


def _normalise01(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float32))
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _target_index(predictor: Predictor, logits: torch.Tensor, target: int | str | None) -> int:
    if target is None:
        return int(logits.argmax(dim=1)[0])
    if isinstance(target, str):
        if target not in predictor.classes:
            raise ConfigError(f"unknown class {target!r}: this model knows {''.join(predictor.classes)[:80]}")
        return predictor.classes.index(target)
    if not 0 <= int(target) < len(predictor.classes):
        raise ConfigError(f"class index {target} is out of range 0..{len(predictor.classes) - 1}")
    return int(target)


def saliency(predictor: Predictor, prepared: Prepared | torch.Tensor, target: int | str | None = None,
             method: str = "gradcam", samples: int = 16, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """Where in the input the model looked for ``target`` (default: its prediction).

    Args:
        predictor: from :func:`load_predictor`.
        prepared: a :class:`Prepared` or a 1 x C x H x W tensor.
        target: class name or index to explain; None explains the predicted class.
        method: ``"gradcam"`` (Grad-CAM on the last conv layer, upsampled; falls back to
            ``"smoothgrad"`` for models without convolutions), ``"smoothgrad"`` (input gradients
            averaged over ``samples`` noisy copies, ``noise`` = std in input units) or
            ``"gradient"`` (plain input gradient magnitude).

    Returns:
        H x W float32 in [0, 1] over the model's input (H, W = ``predictor.input_size``).
    """
    if method not in ("gradcam", "smoothgrad", "gradient"):
        raise ConfigError(f"unknown saliency method {method!r}: use gradcam, smoothgrad or gradient")
    x = prepared.tensor if isinstance(prepared, Prepared) else prepared
    x = x[:1].to(predictor.device).float()
    with predictor.lock:
        return _saliency(predictor, x, target, method, samples, noise, seed)


def _saliency(predictor: Predictor, x: torch.Tensor, target: int | str | None, method: str, samples: int,
              noise: float, seed: int) -> np.ndarray:
    import torch.nn.functional as F

    model = predictor.model
    conv = _last_conv(model) if method == "gradcam" else None
    if method == "gradcam" and conv is None:
        method = "smoothgrad"  # a model without convolutions (an MLP): no feature map to weigh
    with torch.enable_grad():
        if conv is not None:
            store: dict[str, torch.Tensor] = {}

            def hook(_m: torch.nn.Module, _i: Any, out: torch.Tensor) -> None:
                out.retain_grad()
                store["a"] = out

            h = conv.register_forward_hook(hook)
            try:
                logits = model(x.clone().requires_grad_(True))
            finally:
                h.remove()
            idx = _target_index(predictor, logits, target)
            logits[0, idx].backward()
            act, grad = store["a"], store["a"].grad
            weights = grad.mean(dim=(2, 3), keepdim=True)  # 1 x C x 1 x 1: channel importance
            cam = F.relu((weights * act).sum(dim=1, keepdim=True))  # 1 x 1 x h x w
            cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
            return _normalise01(cam[0, 0].detach().cpu().numpy())
        with torch.no_grad():
            idx = _target_index(predictor, model(x), target)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        n = 1 if method == "gradient" else max(1, samples)
        total = torch.zeros_like(x)
        for _ in range(n):
            noisy = x if n == 1 else x + noise * torch.randn(x.shape, generator=gen).to(x.device)
            noisy = noisy.clone().requires_grad_(True)
            model(noisy)[0, idx].backward()
            total += noisy.grad.abs()
        sal = (total / n)[0].amax(dim=0, keepdim=True)[None]  # 1 x 1 x H x W, strongest channel
        if method == "smoothgrad":  # a 5x5 box blur turns pixel speckle into regions a person can read
            sal = F.avg_pool2d(sal, 5, stride=1, padding=2, count_include_pad=False)
        return _normalise01(sal[0, 0].cpu().numpy())


@torch.inference_mode()
def feature_maps(predictor: Predictor, prepared: Prepared | torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """The output of every conv layer for one input, in forward order.

    Returns:
        [(layer name, C x h x w float32 array), ...]; empty for a model without convolutions.
    """
    x = prepared.tensor if isinstance(prepared, Prepared) else prepared
    x = x[:1].to(predictor.device).float()
    out: list[tuple[str, np.ndarray]] = []
    hooks = []
    with predictor.lock:
        for name, m in predictor.model.named_modules():
            if isinstance(m, torch.nn.Conv2d):
                hooks.append(m.register_forward_hook(
                    lambda _m, _i, o, name=name: out.append((name, o[0].float().cpu().numpy()))
                ))
        try:
            predictor.model(x)
        finally:
            for h in hooks:
                h.remove()
    return out
