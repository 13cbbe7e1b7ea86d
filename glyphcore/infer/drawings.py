"""Drawings a user kept, from the model's side: keeping a raw drawing (preprocessed first) and
scoring a run on the personal drawings set (stored by :mod:`glyphcore.data.drawings`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from glyphcore.data.drawings import check_label, load_drawings, save_drawing
from glyphcore.errors import CheckpointError, ImageInputError
from glyphcore.frame import CLASSES
from glyphcore.infer.predictor import Predictor, load_predictor
from glyphcore.infer.preprocess import Prepared, preprocess

__all__ = ["keep_drawing", "score_run_on_drawings"]

_BATCH = 512  # drawings per forward pass when scoring


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
    check_label(label)
    prepared = prepared_or_image if isinstance(prepared_or_image, Prepared) else preprocess(prepared_or_image)
    if prepared.empty:
        raise ImageInputError(f"nothing to keep: {prepared.note or 'the drawing is empty'}")
    return save_drawing(prepared.preview, label)


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
    pred = predictor.run(data.images, batch_size=_BATCH).logits.argmax(dim=1).numpy()
    correct = int(np.sum(pred == y))
    return {"accuracy": correct / n, "n": n, "correct": correct, "seconds": time.perf_counter() - t0}
