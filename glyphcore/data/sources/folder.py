"""An image folder as a data source: ``folder:<root>``, one sub-folder of PNG/JPG per class (optionally
below split folders ``train``/``valid``/``test``); grayscale unless the images are in colour."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from glyphcore.data.imageset import ImageSet
from glyphcore.data.sources.base import (
    SPLIT_ORDER,
    class_list,
    file_index,
    folder_meta,
    folder_source,
    normalise_polarity,
    require_folder,
    sorted_splits,
    subdirs,
)
from glyphcore.errors import DataError
from glyphcore.frame import FRAME_SIZE

__all__ = ["IMAGE_EXTENSIONS", "SOURCE"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_FOLDER_LAYOUT = "<root>/<class>/*.png|jpg (or <root>/<split>/<class>/*.png|jpg)"


def _folder_splits(root: Path) -> dict[str, Path]:
    require_folder(root, "image", _FOLDER_LAYOUT)
    subs = subdirs(root)
    if not subs:
        raise DataError(f"image folder {root} has no class sub-folders: expected {_FOLDER_LAYOUT}")
    names = {p.name.lower() for p in subs}
    if names <= set(SPLIT_ORDER) and all(subdirs(p) for p in subs):
        return {p.name: p for p in subs}
    return {"all": root}


def _open_image(p: Path):
    try:
        with Image.open(p) as im:
            im.load()
            return im.copy()
    except Exception as e:
        raise DataError(f"image file {p} is corrupt or not an image ({e}): expected a PNG or JPG file") from e


def _to_gray_or_rgb(im, color: bool):
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels are background: flatten on white, then polarity makes it black.
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    return im.convert("RGB" if color else "L")


def _is_colour(im) -> bool:
    if im.mode in ("L", "1", "I", "F", "I;16", "LA"):
        return False
    rgb = np.asarray(im.convert("RGB"), np.int16)
    return bool(np.abs(rgb[..., 0] - rgb[..., 1]).max() > 8 or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 8)


def _load_folder(root: Path, split: str, source: str) -> ImageSet:
    splits = _folder_splits(root)
    if split not in splits:
        raise DataError(f"image folder {root} has no split {split!r}: found {sorted_splits(list(splits))}")
    class_dirs = subdirs(splits[split])
    if not class_dirs:
        raise DataError(f"split folder {splits[split]} has no class sub-folders: expected {_FOLDER_LAYOUT}")
    classes = class_list([d.name for d in class_dirs])
    index = {c: i for i, c in enumerate(classes)}
    files = [
        (p, index[d.name])
        for d in sorted(class_dirs, key=lambda d: index[d.name])
        for p in sorted(d.iterdir(), key=file_index)
        if p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    present = {lab for _, lab in files}
    empty = [d for d in class_dirs if index[d.name] not in present]
    if empty:  # the class would silently get no images of this split
        raise DataError(
            f"class folder {empty[0]} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}): "
            f"add its images or remove the folder"
        )
    if not files:
        raise DataError(f"image folder {splits[split]} holds no images: expected {_FOLDER_LAYOUT}")
    images = [_open_image(p) for p, _ in files]
    # Colour is kept (C=3) only when the images really are in colour, e.g. CIFAR-like photos.
    color = any(_is_colour(im) for im in images)
    size = Counter(im.size for im in images).most_common(1)[0][0]  # (W, H)
    c = 3 if color else 1
    out = np.empty((len(images), c, size[1], size[0]), np.uint8)
    for i, im in enumerate(images):
        im = _to_gray_or_rgb(im, color)
        if im.size != size:
            im = im.resize(size, Image.Resampling.BILINEAR)
        a = np.asarray(im)
        out[i] = a.transpose(2, 0, 1) if color else normalise_polarity(a)[None]
    labels = np.array([lab for _, lab in files], np.int64)
    meta = folder_meta(source, out, labels, root, c == 1 and size == (FRAME_SIZE, FRAME_SIZE))
    meta["resized_to"] = [size[1], size[0]]
    return ImageSet(out, labels, classes, source, split, None, meta)


SOURCE = folder_source("folder", "image folder", "<root>/<class>/*.png", _load_folder, _folder_splits, order=20)
