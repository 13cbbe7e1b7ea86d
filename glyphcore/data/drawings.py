"""The personal drawings set: letters a user drew on the Draw page and kept, with their true labels.

Each kept drawing is one 100 x 100 PNG (white ink on black, in the glyph frame, exactly the preview
the model saw) in ``paths.data_dir()/drawings/``, named ``<label hex>_<UTC timestamp>_<random>.png``
(``61_20250101T120000123456Z_3f2a.png`` is an "a"), written atomically. Keeping a raw drawing (which
is preprocessed first) and scoring a run on the set live in :mod:`glyphcore.infer.drawings`.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from glyphcore import paths
from glyphcore.atomic import atomic_write
from glyphcore.data.imageset import ImageSet
from glyphcore.errors import DataError, ImageInputError
from glyphcore.frame import CLASSES, FRAME_SIZE, frame_dict

__all__ = [
    "DRAWINGS_DIR",
    "check_label",
    "drawings_dir",
    "save_drawing",
    "list_drawings",
    "drawings_stamp",
    "delete_drawing",
    "load_drawings",
]

DRAWINGS_DIR = "drawings"  # folder name under paths.data_dir()


def drawings_dir() -> Path:
    """The folder holding the kept drawings (it may not exist yet)."""
    return paths.data_dir() / DRAWINGS_DIR


def _label_of(path: Path) -> str | None:
    head = path.name.split("_", 1)[0]
    try:
        letter = chr(int(head, 16))
    except ValueError:
        return None
    return letter if letter in CLASSES else None


def check_label(label: Any) -> str:
    """The label of a drawing to keep, checked: one letter of A-Z a-z.

    Raises:
        ImageInputError: anything else.
    """
    if not isinstance(label, str) or label not in CLASSES:
        raise ImageInputError(f"cannot keep a drawing labelled {label!r}: the label must be one letter, A-Z or a-z")
    return label


def save_drawing(frame: Any, label: str) -> Path:
    """Write one drawing, already in the glyph frame, with its true label into the personal drawings set.

    Args:
        frame: uint8 100 x 100, white ink on black (a ``Prepared``'s preview).
        label: the letter the user meant, one of A-Z a-z.

    Returns:
        The path of the new PNG.

    Raises:
        ImageInputError: the label is not a letter, or the frame has another size.
    """
    check_label(label)
    frame = np.asarray(frame, dtype=np.uint8)
    if frame.shape != (FRAME_SIZE, FRAME_SIZE):
        raise ImageInputError(f"a kept drawing must be {FRAME_SIZE}x{FRAME_SIZE}, got {frame.shape}")
    folder = drawings_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{ord(label):02x}_{stamp}_{secrets.token_hex(2)}.png"
    with atomic_write(target, "wb") as f:
        Image.fromarray(frame, "L").save(f, format="PNG")
    return target


def list_drawings() -> list[tuple[Path, str]]:
    """The kept drawings as (path, label), oldest first (files with foreign names are skipped)."""
    folder = drawings_dir()
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.glob("*.png")):
        label = _label_of(p)
        if label is not None:
            out.append((p, label))
    return out


def drawings_stamp() -> tuple[str, ...]:
    """The kept drawings' file names: a cache key that changes when one is kept or deleted."""
    return tuple(p.name for p, _ in list_drawings())


def delete_drawing(path: str | os.PathLike) -> None:
    """Remove one kept drawing (only files inside the drawings folder).

    Raises:
        DataError: the path is not a kept drawing.
    """
    p = Path(path).resolve()
    if p.parent != drawings_dir().resolve() or p.suffix != ".png" or not p.is_file():
        raise DataError(f"{path} is not a kept drawing in {drawings_dir()}")
    p.unlink()


def load_drawings() -> ImageSet:
    """The personal drawings set as an ImageSet (source "drawings", split "drawings").

    Returns:
        ImageSet with uint8 N x 1 x 100 x 100 images (N may be 0), labels over the 52 letters, and
        ``meta["files"]`` listing each image's file name. Unreadable files are skipped and named
        in ``meta["skipped"]``.
    """
    images, labels, files, skipped = [], [], [], []
    for p, label in list_drawings():
        try:
            with Image.open(p) as im:
                a = np.asarray(im.convert("L"))
        except OSError as e:
            skipped.append(f"{p.name}: {e}")
            continue
        if a.shape != (FRAME_SIZE, FRAME_SIZE):
            skipped.append(f"{p.name}: {a.shape[1]}x{a.shape[0]}, not {FRAME_SIZE}x{FRAME_SIZE}")
            continue
        images.append(a)
        labels.append(CLASSES.index(label))
        files.append(p.name)
    arr = np.stack(images)[:, None] if images else np.zeros((0, 1, FRAME_SIZE, FRAME_SIZE), np.uint8)
    return ImageSet(
        images=arr,
        labels=np.asarray(labels, dtype=np.int64),
        classes=list(CLASSES),
        source="drawings",
        split="drawings",
        meta={"id": "drawings", "frame": frame_dict(), "files": files, "skipped": skipped},
    )
