"""Writing a data set in the course layout (``<root>/<split>/<hex>/<i>_<hex>.npy``), the form the
course project's own data came in; ``course:<root>`` reads it back."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from glyphcore.data.imageset import ImageSet
from glyphcore.data.sources import list_splits, load_dataset
from glyphcore.data.sources.glyphs52 import GLYPHS52
from glyphcore.errors import DataError

__all__ = ["export_course_layout"]


def export_course_layout(
    out_root: str | Path,
    source: str = GLYPHS52,
    splits: list[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Path:
    """Write a data set in the course layout ``<out_root>/<split>/<hex>/<i>_<hex>.npy`` (2-D uint8).

    ``i`` runs over the whole split (as in the course set, e.g. ``valid/5a/1775_5a.npy``). The
    export is written into a temporary folder and renamed into place.

    Args:
        out_root: the folder to create; it must not exist yet, or be empty.
        source: a source spec whose classes are single characters (glyphs-52 by default).
        splits: which splits (default: all of the source's).
        progress: called as ``progress(done, total, split)``.

    Returns:
        ``out_root``.

    Raises:
        DataError: out_root is a non-empty folder, the source is missing, or a class name is not a
            single character (no hex folder name exists for it).
    """
    out_root = Path(out_root).expanduser()
    if out_root.exists() and (not out_root.is_dir() or any(out_root.iterdir())):
        raise DataError(f"export folder {out_root} already exists and is not empty: expected a new folder")
    sets = [load_dataset(source, s) for s in (list(splits) if splits else list_splits(source))]
    for s in sets:
        bad = [c for c in s.classes if len(c) != 1]
        if bad:
            raise DataError(
                f"{source} has class names {bad[:3]} that are not single characters: the "
                "course layout names class folders by one character's hex code"
            )
        if s.images.shape[1] != 1:
            raise DataError(
                f"{source} has {s.images.shape[1]}-channel images: the course layout holds 2-D grayscale arrays"
            )
    tmp = out_root.parent / f".{out_root.name}.tmp-{secrets.token_hex(4)}-{os.getpid()}"
    try:
        _write_course(tmp, sets, progress)
        if out_root.exists():
            out_root.rmdir()  # empty, checked above
        out_root.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_root


def _write_course(folder: Path, sets: list[ImageSet], progress: Callable[[int, int, str], None] | None) -> None:
    """Write the splits' images as ``<folder>/<split>/<hex>/<i>_<hex>.npy``, reporting every 1,000."""
    total = sum(len(s) for s in sets)
    done = 0
    for s in sets:
        hexes = [format(ord(c), "02x") for c in s.classes]
        for h in set(hexes[int(lab)] for lab in np.unique(s.labels)):
            (folder / s.split / h).mkdir(parents=True, exist_ok=True)
        for i in range(len(s)):
            h = hexes[int(s.labels[i])]
            np.save(folder / s.split / h / f"{i}_{h}.npy", np.ascontiguousarray(s.images[i, 0]))
            done += 1
            if progress is not None and (done % 1000 == 0 or done == total):
                progress(done, total, s.split)
