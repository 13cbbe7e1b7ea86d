"""The personal drawings set: letters a user drew on the Draw page and kept, with their true labels.

Each kept drawing is one 100 x 100 PNG (white ink on black, in the glyph frame, exactly the preview
the model saw) in ``paths.data_dir()/drawings/``, named ``<label hex>_<UTC timestamp>_<random>.png``
(``61_20250101T120000123456Z_3f2a.png`` is an "a"), written atomically. Every run can be scored on
the set (the Runs page shows it as a column).
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from glyphcore import paths
from glyphcore.atomic import atomic_write
from glyphcore.errors import CheckpointError, DataError, ImageInputError
from glyphcore.frame import CLASSES, FRAME_SIZE, frame_dict

__all__ = ["DRAWINGS_DIR", "drawings_dir", "keep_drawing", "list_drawings", "drawings_stamp", "delete_drawing",
           "load_drawings", "score_run_on_drawings"]

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


def keep_drawing(prepared_or_image: Any, label: str) -> Path:
    """Save a drawing with its true label into the personal drawings set.

    Args:
        prepared_or_image: a :class:`glyphcore.infer.Prepared` (its 100 x 100 preview is kept), or
            anything :func:`glyphcore.infer.preprocess` accepts (a canvas array, an image, a path).
        label: the letter the user meant, one of A-Z a-z.

    Returns:
        The path of the new PNG.

    Raises:
        ImageInputError: the label is not a letter, or the drawing is empty.
    """
    from glyphcore.infer import Prepared, preprocess

    if not isinstance(label, str) or label not in CLASSES:
        raise ImageInputError(f"cannot keep a drawing labelled {label!r}: the label must be one letter, A-Z or a-z")
    prepared = prepared_or_image if isinstance(prepared_or_image, Prepared) else preprocess(prepared_or_image)
    if prepared.empty:
        raise ImageInputError(f"nothing to keep: {prepared.note or 'the drawing is empty'}")
    frame = np.asarray(prepared.preview, dtype=np.uint8)
    if frame.shape != (FRAME_SIZE, FRAME_SIZE):
        raise ImageInputError(f"a kept drawing must be {FRAME_SIZE}x{FRAME_SIZE}, got {frame.shape}")
    folder = drawings_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
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


def load_drawings() -> Any:
    """The personal drawings set as an ImageSet (source "drawings", split "drawings").

    Returns:
        ImageSet with uint8 N x 1 x 100 x 100 images (N may be 0), labels over the 52 letters, and
        ``meta["files"]`` listing each image's file name. Unreadable files are skipped and named
        in ``meta["skipped"]``.
    """
    from glyphcore.data import ImageSet

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
    arr = (np.stack(images)[:, None] if images else np.zeros((0, 1, FRAME_SIZE, FRAME_SIZE), np.uint8))
    return ImageSet(
        images=arr, labels=np.asarray(labels, dtype=np.int64), classes=list(CLASSES), source="drawings",
        split="drawings", meta={"id": "drawings", "frame": frame_dict(), "files": files, "skipped": skipped},
    )


def score_run_on_drawings(run_ref: Any, which: str = "best") -> dict[str, Any]:
    """Accuracy of a run on the personal drawings set.

    Args:
        run_ref: a run id, a run folder, ``"starter"``, a ``.pt`` file, or a loaded Predictor.
        which: "best" or "last" checkpoint.

    Returns:
        ``{"accuracy": float | None (None when there are no drawings), "n": int, "correct": int,
        "seconds": float}``.

    Raises:
        RunError, CheckpointError: no such run or checkpoint; a model whose classes are not the
            52 letters (it cannot name a drawn letter).
    """
    import torch

    from glyphcore.infer import Predictor, frame_to_tensor, load_predictor

    t0 = time.perf_counter()
    predictor = run_ref if isinstance(run_ref, Predictor) else load_predictor(run_ref, which)
    missing = [c for c in CLASSES if c not in predictor.classes]
    if missing:
        raise CheckpointError(
            f"{predictor.name} was trained on other classes ({''.join(map(str, predictor.classes))[:60]}): "
            f"it cannot be scored on drawn letters"
        )
    data = load_drawings()
    n = len(data)
    if n == 0:
        return {"accuracy": None, "n": 0, "correct": 0, "seconds": time.perf_counter() - t0}
    # the drawings are model-space labels of CLASSES; map them to the model's own class order
    to_model = np.asarray([predictor.classes.index(c) for c in CLASSES])
    y = to_model[data.labels]
    correct = 0
    with torch.inference_mode():
        for s in range(0, n, 512):
            x = frame_to_tensor(data.images[s:s + 512], predictor.input_size, predictor.in_channels)
            pred = predictor.model(x.to(predictor.device)).argmax(dim=1).cpu().numpy()
            correct += int(np.sum(pred == y[s:s + 512]))
    return {"accuracy": correct / n, "n": n, "correct": correct, "seconds": time.perf_counter() - t0}
