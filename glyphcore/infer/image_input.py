"""User images in: any path, bytes, file object, PIL image or array -> a uint8 array, safely.

Images above ``MAX_INPUT_PIXELS`` are refused before they are decoded; larger-than-needed images
are shrunk to ``WORK_SIDE`` first; truncated or corrupt files are reported, never padded.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from glyphcore.errors import ImageInputError

__all__ = ["MAX_INPUT_PIXELS", "WORK_SIDE", "open_image", "image_array"]

# Images above 50 megapixels are refused before they are decoded: a 20000 x 20000 PNG would need
# 400 MB (grey) to 1.6 GB (RGBA) of memory for a picture of one letter. Pillow's own bomb guard
# (Image.MAX_IMAGE_PIXELS, ~89 MP) only warns below twice its limit; ours is lower and an error.
MAX_INPUT_PIXELS = 50_000_000
WORK_SIDE = 1024  # px: larger images are shrunk to this side (anti-aliased) before any other work


_MODE_TO_RGB = {
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
    "RGBX": "RGB",
    "P": "RGBA",
    "PA": "RGBA",
    "LA": "RGBA",
    "La": "RGBA",
    "RGBa": "RGBA",
    "1": "L",
}


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


def open_image(image: Any) -> Image.Image:
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
        except (OSError, SyntaxError, ValueError) as e:  # ValueError: an oversized zTXt/iCCP chunk
            raise ImageInputError(f"cannot read {name}: {e}; save it again as a plain PNG or JPEG") from None
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageInputError(f"{name} has no pixels ({w}x{h})")
    if w * h > MAX_INPUT_PIXELS:
        raise _too_large(name, w * h, f"{w}x{h} = ")
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)  # an animated GIF/PNG/WebP: the first frame
    if img.format == "JPEG" and max(w, h) > 2 * WORK_SIDE:
        img.draft(img.mode, (WORK_SIDE, WORK_SIDE))  # let libjpeg decode at 1/2, 1/4 or 1/8 scale
    # Pillow decodes lazily: a truncated file fails here. LOAD_TRUNCATED_IMAGES stays False so a
    # half-received upload is reported, not silently padded with grey.
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageInputError(f"{name} is truncated or corrupt ({e}): save or upload the whole file again") from None
    except Image.DecompressionBombError as e:
        raise _too_large(name, _bomb_pixels(str(e))) from None
    return _upright(img)


_EXIF_ORIENTATION = 0x0112  # EXIF tag: how the camera was held (1 = upright)


def _upright(img: Image.Image) -> Image.Image:
    """Turn a photo the way its EXIF orientation says (a phone's portrait JPEG is stored sideways)."""
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError, TypeError):
        return img  # unreadable EXIF: the pixels as stored
    if orientation in (None, 1):
        return img
    return ImageOps.exif_transpose(img)


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
    if max(img.size) > WORK_SIDE:
        img = img.copy()
        img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    return np.asarray(img)


def image_array(image: Any) -> tuple[np.ndarray, tuple[int, int]]:
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
        if max(h, w) > WORK_SIDE:
            mode = {2: "L", 3: "RGB", 4: "RGBA"}[a.shape[2] if a.ndim == 3 else 2]
            return _pil_to_array(Image.fromarray(np.ascontiguousarray(a), mode)), (w, h)
        return a, (w, h)
    img = open_image(image)
    return _pil_to_array(img), img.size
