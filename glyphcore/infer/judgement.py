"""The letters the judgement and the temperature are fitted on, the thresholds at a stated false-alarm rate,
and what calibration did to a split, in words.

A threshold taken as a percentile of the validation split alone rejects exactly that share of validation
letters, and more of everything further from glyphs-52's fonts: hand-drawn letters sit further from the
fonts in a model's features than held-out fonts do (measured in ``bench/trust.py``: for a quick-preset run,
the 95th percentile of validation rejected 20% of clean synthetic drawings). So each threshold is chosen on
letters from more than one source, the held-out font families of the validation split and synthetic
drawings in the three canvas formats (:func:`calibration_drawings`), and lets through all but the stated
share of EACH source (:func:`threshold_for`): the false-alarm rate holds for fonts and drawings alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from glyphcore.frame import CLASSES
from glyphcore.infer.predictor import Predictor
from glyphcore.testing import CANVAS_STYLES, letter_strokes, render_canvas

__all__ = [
    "DRAWINGS_PER_FORMAT",
    "DRAWING_SEED",
    "FALSE_ALARM_RATE",
    "calibration_drawings",
    "calibration_sentence",
    "family_groups",
    "pooled_weights",
    "threshold_for",
]

# The stated share of real letters each score may reject, per source (fonts, drawings). Two scores (the
# feature distance and the calibrated confidence) together reject at most twice this.
FALSE_ALARM_RATE = 0.005
DRAWINGS_PER_FORMAT = 2  # drawings per letter and canvas format: 52 x 3 x 2 = 312 letters
DRAWING_SEED = 770_000  # far from the seeds bench/trust.py and the tests measure on
# |ECE change| below this (in ECE units, 0..1) is reported as no change: 0.05 percentage points
_NO_CHANGE = 0.0005


def calibration_drawings(
    predictor: Predictor, per_format: int = DRAWINGS_PER_FORMAT, seed: int = DRAWING_SEED
) -> tuple[torch.Tensor, np.ndarray] | None:
    """Synthetic drawings of every letter the model knows, in the three canvas formats, prepared as
    the Draw page does.

    Args:
        predictor: the model the drawings are prepared for (its input size, channels and classes).
        per_format: drawings per letter and canvas format.
        seed: the first drawing's seed; the same seed gives the same drawings.

    Returns:
        ``(inputs, labels)``: N x C x H x W model inputs and their N indices in the model's classes;
        None for a model that knows no letter (digits, shapes, photos: nothing to draw).
    """
    index = {c: i for i, c in enumerate(predictor.classes)}
    tensors, labels = [], []
    for s, style in enumerate(CANVAS_STYLES):
        for r in range(per_format):
            for k, c in enumerate(CLASSES):
                if c not in index:
                    continue
                strokes = letter_strokes(c, jitter=1.0, seed=seed + 1000 * r + 100 * s + k)
                p = predictor.prepare(render_canvas(strokes, style=style))
                if not p.empty:
                    tensors.append(p.tensor)
                    labels.append(index[c])
    return (torch.cat(tensors), np.asarray(labels, dtype=np.int64)) if tensors else None


def threshold_for(scores_by_source: Mapping[str, Any], rate: float = FALSE_ALARM_RATE) -> float:
    """The lowest threshold that rejects at most ``rate`` of the letters of every source.

    Args:
        scores_by_source: per source (e.g. "valid", "drawings"), the scores of its letters; larger
            means less like a letter.
        rate: the stated false-alarm rate, 0..1.

    Returns:
        The largest of the sources' ``1 - rate`` quantiles (a score above it: rejected).

    Raises:
        ValueError: no source with scores, or a rate outside [0, 1).
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"the false-alarm rate must be in [0, 1), got {rate}")
    per_source = [np.asarray(s, dtype=np.float64).ravel() for s in scores_by_source.values()]
    per_source = [s[np.isfinite(s)] for s in per_source]
    if not any(s.size for s in per_source):
        raise ValueError("no letters to choose a threshold on")
    return float(max(np.quantile(s, 1.0 - rate, method="higher") for s in per_source if s.size))


def family_groups(data: Any) -> np.ndarray | None:
    """The font family of each letter of a split (an int id per family), or None when the data set does
    not record fonts (only glyphs-52 does): calibration folds and checks by family, the axis on which
    valid and test differ.

    Args:
        data: an :class:`glyphcore.data.ImageSet` (its ``font_ids`` and ``meta["fonts"]``).
    """
    font_ids, fonts = getattr(data, "font_ids", None), (getattr(data, "meta", None) or {}).get("fonts")
    if font_ids is None or not isinstance(fonts, list) or not fonts:
        return None
    if isinstance(font_ids, torch.Tensor):
        font_ids = font_ids.cpu().numpy()  # a data set kept on the GPU for training
    ids = np.asarray(font_ids, dtype=np.int64).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= len(fonts)):
        return None  # font ids that point outside the list: fold letter by letter instead
    names = [
        str(f.get("family")) if isinstance(f, dict) else str(f[0]) if isinstance(f, list | tuple) else "" for f in fonts
    ]
    family = {n: i for i, n in enumerate(dict.fromkeys(names))}
    return np.asarray([family[names[i]] for i in range(len(fonts))], dtype=np.int64)[ids]


def pooled_weights(sizes: Mapping[str, int]) -> dict[str, float]:
    """Per-sample weights that give every source the same total weight (a mean of 1 over all samples)."""
    total, k = sum(sizes.values()), sum(1 for n in sizes.values() if n)
    return {name: total / (k * n) if n else 0.0 for name, n in sizes.items()}


def calibration_sentence(split: str, ece_before: float | None, ece_after: float | None) -> str:
    """Whether calibration helped on a split, and by how much, in one sentence.

    Args:
        split: the split's name ("test", "valid", "drawings", ...).
        ece_before: ECE (0..1) of the raw softmax; None when unknown.
        ece_after: ECE (0..1) of the calibrated probabilities; None when unknown.

    Returns:
        e.g. "On test, calibration helped: ECE 2.90% -> 0.80% (2.10 points lower)."
    """
    ok = [v is not None and math.isfinite(v) and 0.0 <= v <= 1.0 for v in (ece_before, ece_after)]
    if not all(ok):
        return f"On {split}, whether calibration helped is unknown: no valid ECE before and after."
    before, after = float(ece_before), float(ece_after)  # type: ignore[arg-type]
    figures = f"ECE {before:.2%} -> {after:.2%}"
    change = after - before
    if abs(change) < _NO_CHANGE:
        return f"On {split}, calibration made no real difference: {figures}."
    if change < 0:
        return f"On {split}, calibration helped: {figures} ({-100 * change:.2f} points lower)."
    return f"On {split}, calibration made it worse: {figures} ({100 * change:.2f} points higher)."
