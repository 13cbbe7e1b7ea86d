"""The course layout as a data source, and the export into it.

``course:<root>`` reads ``<root>/<split>/<hex>/<i>_<hex>.npy``: class folders named by the hex ASCII
code of the letter (``41`` -> ``A``, ``5a`` -> ``Z``, ``7a`` -> ``z``), one 2-D uint8 or float array per
image, either polarity (normalised to white on black). A root whose sub-folders are class folders is
one split, ``all``. :func:`glyphcore.data.export.export_course_layout` writes a source in this layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from glyphcore.data.imageset import ImageSet
from glyphcore.data.sources.base import (
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

__all__ = ["COURSE_LAYOUT", "SOURCE"]

COURSE_LAYOUT = "<root>/<split>/<hex>/<i>_<hex>.npy (e.g. valid/5a/1775_5a.npy: a 2-D uint8 or float array)"
_HEX_NAME = re.compile(r"^[0-9a-fA-F]{2,6}$")


def _hex_class(folder: Path) -> str:
    if not _HEX_NAME.match(folder.name):
        raise DataError(
            f"class folder {folder} is not named by a hex ASCII code: expected e.g. '41' for "
            f"'A' or '7a' for 'z' ({COURSE_LAYOUT})"
        )
    code = int(folder.name, 16)
    if not (0x20 < code < 0x110000) or not chr(code).isprintable():
        raise DataError(
            f"class folder {folder} names code {code:#x}, not a printable character: "
            f"expected e.g. '41' for 'A' ({COURSE_LAYOUT})"
        )
    return chr(code)


def _course_splits(root: Path) -> dict[str, Path]:
    """split name -> folder. A root whose sub-folders are class folders is one split, "all"."""
    require_folder(root, "course", COURSE_LAYOUT)
    subs = subdirs(root)
    if not subs:
        raise DataError(f"course folder {root} has no sub-folders: expected {COURSE_LAYOUT}")
    if all(_HEX_NAME.match(p.name) for p in subs) and not any(subdirs(p) for p in subs):
        return {"all": root}
    return {p.name: p for p in subs}


def _course_files(root: Path, split: str) -> tuple[list[tuple[Path, int]], list[str]]:
    """The split's .npy files with their labels, in class order, and the class list."""
    splits = _course_splits(root)
    if split not in splits:
        raise DataError(f"course folder {root} has no split {split!r}: found {sorted_splits(list(splits))}")
    split_dir = splits[split]
    class_dirs = subdirs(split_dir)
    if not class_dirs:
        raise DataError(f"split folder {split_dir} is empty: expected class folders ({COURSE_LAYOUT})")
    chars = [_hex_class(d) for d in class_dirs]
    classes = class_list(chars)
    index = {c: i for i, c in enumerate(classes)}
    files: list[tuple[Path, int]] = []
    for d, ch in sorted(zip(class_dirs, chars), key=lambda t: index[t[1]]):
        npys = sorted(d.glob("*.npy"), key=file_index)
        if not npys:  # the class would silently get no images of this split
            raise DataError(
                f"class folder {d} holds no .npy files: add its images or remove the folder ({COURSE_LAYOUT})"
            )
        files += [(p, index[ch]) for p in npys]
    if not files:
        raise DataError(f"split folder {split_dir} holds no .npy files: expected {COURSE_LAYOUT}")
    return files, classes


def _read_npy(p: Path, shape: tuple[int, ...] | None) -> np.ndarray:
    """One image file, checked: 2-D, uint8/float/bool, finite, and the split's size (``shape``, once known)."""
    try:
        a = np.load(p, allow_pickle=False)
    except Exception as e:  # truncated file, not .npy, pickled object array...
        raise DataError(
            f"{p} is not a readable .npy array ({e}): expected a 2-D uint8 or float array saved with numpy.save"
        ) from e
    if a.ndim != 2:
        raise DataError(f"{p} has shape {a.shape}: expected a 2-D image array (H x W)")
    if not (a.dtype == np.uint8 or a.dtype.kind == "f" or a.dtype == np.bool_):
        raise DataError(f"{p} has dtype {a.dtype}: expected uint8 (0-255) or float (0-1 or 0-255)")
    if shape is not None and a.shape != shape:
        raise DataError(
            f"{p} has shape {a.shape} but the other images are {shape}: expected every "
            "image of a split to have the same size"
        )
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{p} contains NaN or infinite values: expected finite pixel values")
    return a


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """0-255 uint8. Per file: floats in [0, 1] are scaled to 0-255; a file with floats beyond 1 is taken
    as 0-255 already (one 0-255 file among 0-1 files must not darken all the others)."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    float_scale = 255.0 if float(a.max()) <= 1.0 else 1.0
    return np.clip(np.rint(a.astype(np.float64) * float_scale), 0, 255).astype(np.uint8)


def _load_course(root: Path, split: str, source: str) -> ImageSet:
    files, classes = _course_files(root, split)
    arrays: list[np.ndarray] = []
    for p, _ in files:
        arrays.append(_read_npy(p, arrays[0].shape if arrays else None))
    shape = arrays[0].shape
    images = np.empty((len(arrays), 1, *shape), np.uint8)
    for i, a in enumerate(arrays):
        images[i, 0] = normalise_polarity(_to_uint8(a))
    labels = np.array([lab for _, lab in files], np.int64)
    meta = folder_meta(source, images, labels, root, shape == (FRAME_SIZE, FRAME_SIZE))
    return ImageSet(images, labels, classes, source, split, None, meta)


SOURCE = folder_source("course", "course .npy folder", "<root>/<split>/<hex>/<i>_<hex>.npy", _load_course,
                       _course_splits, order=10)  # fmt: skip
