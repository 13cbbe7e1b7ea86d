"""Evaluation metrics, plain numpy, on any labels.

Confusion matrices have the actual class on rows and the prediction on columns, like sklearn's and
fastai's. ``confusion_matrix``, ``per_class_metrics``, ``most_confused``, ``top_losses``,
``merged_accuracy``, ``case_swap_share`` and ``compare_predictions`` (run A vs run B).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from glyphcore.errors import DataError
from glyphcore.frame import AMBIGUOUS_PAIRS, CASE_PAIRS_SIZE_ONLY

__all__ = [
    "MERGES",
    "TopLoss",
    "Comparison",
    "confusion_matrix",
    "normalize_confusion",
    "per_class_metrics",
    "most_confused",
    "top_losses",
    "merged_accuracy",
    "case_pairs",
    "case_swap_share",
    "compare_predictions",
    "accuracy_line",
]


def case_pairs(classes: list[str]) -> list[tuple[str, str]]:
    """(upper, lower) for every letter of ``classes`` whose other case is also a class."""
    return [(c, c.lower()) for c in classes if c.isalpha() and c.isupper() and c.lower() in classes]


# Named groups of classes that count as one in a merged accuracy. "case_insensitive" is computed
# from the class list (every letter whose other case is also a class).
MERGES: dict[str, list[tuple[str, str]] | None] = {
    "case_insensitive": None,
    "I/l": list(AMBIGUOUS_PAIRS),
    "size_only": list(CASE_PAIRS_SIZE_ONLY),
    "I/l+size_only": list(AMBIGUOUS_PAIRS) + list(CASE_PAIRS_SIZE_ONLY),
}


# --------------------------------------------------------------------------------------------
# Metrics (plain numpy)
# --------------------------------------------------------------------------------------------


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Counts of (actual, predicted) pairs.

    Args:
        y_true: int labels, shape (N,).
        y_pred: int predictions, shape (N,).
        n: number of classes.

    Returns:
        n x n int64 array; ``cm[i, j]`` = samples of class i predicted as j (rows sum to support).

    Raises:
        ValueError: shapes differ or a label is outside 0..n-1.
    """
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n):
        raise ValueError(f"labels must lie in 0..{n - 1}")
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n)


def normalize_confusion(cm: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix: each row sums to 1 (a class with no samples stays 0)."""
    cm = np.asarray(cm, dtype=np.float64)
    support = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, support, out=np.zeros_like(cm), where=support > 0)


def per_class_metrics(cm: np.ndarray, classes: list[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class, from a confusion matrix.

    A ratio with a zero denominator (a class never predicted, or with no samples) is 0.0, as
    sklearn's ``zero_division=0``.

    Returns:
        One dict per class, in class order: ``{"class", "precision", "recall", "f1", "support",
        "predicted", "correct"}`` (support = actual count, predicted = predicted count).
    """
    cm = np.asarray(cm, dtype=np.int64)
    if cm.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix {cm.shape} does not match {len(classes)} classes")
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    out = []
    for i, c in enumerate(classes):
        prec = tp[i] / predicted[i] if predicted[i] else 0.0
        rec = tp[i] / support[i] if support[i] else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out.append(
            {
                "class": c,
                "precision": float(prec),
                "recall": float(rec),
                "f1": float(f1),
                "support": int(support[i]),
                "predicted": int(predicted[i]),
                "correct": int(tp[i]),
            }
        )
    return out


def most_confused(cm: np.ndarray, classes: list[str], min_count: int = 1) -> list[tuple[str, str, int]]:
    """Off-diagonal cells with at least ``min_count`` samples, most frequent first (fastai's most_confused).

    Returns:
        [(actual, predicted, count), ...] sorted by count (descending), then by class order.
    """
    cm = np.asarray(cm)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    i, j = np.nonzero(off >= max(1, int(min_count)))
    order = sorted(zip(i.tolist(), j.tolist()), key=lambda ij: (-int(off[ij]), ij[0], ij[1]))
    return [(classes[a], classes[b], int(off[a, b])) for a, b in order]


class TopLoss(NamedTuple):
    """One sample among the largest losses."""

    index: int  # type: ignore[assignment]  # position in the split (shadows tuple.index on purpose)
    actual: str
    predicted: str
    loss: float  # cross-entropy, nats
    p_true: float  # probability given to the actual class
    p_pred: float  # probability of the prediction


def top_losses(
    loss: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: list[str],
    k: int = 16,
    *,
    p_true: np.ndarray | None = None,
    p_pred: np.ndarray | None = None,
    actual: str | None = None,
    predicted: str | None = None,
) -> list[TopLoss]:
    """The ``k`` samples with the largest loss (ties: lower index first), optionally within one cell.

    Args:
        loss: per-sample loss (N,).
        y_true, y_pred: int labels and predictions (N,).
        classes: class names.
        k: how many to return.
        p_true, p_pred: per-sample probabilities of the actual and predicted class (N,); NaN when absent.
        actual, predicted: restrict to samples of this actual and/or predicted class (a confusion cell).

    Returns:
        [TopLoss(index, actual, predicted, loss, p_true, p_pred), ...], largest loss first.
    """
    loss = np.asarray(loss, dtype=np.float64)
    t, p = np.asarray(y_true), np.asarray(y_pred)
    mask = np.ones(loss.shape, dtype=bool)
    if actual is not None:
        mask &= t == classes.index(actual)
    if predicted is not None:
        mask &= p == classes.index(predicted)
    idx = np.flatnonzero(mask)
    idx = idx[np.lexsort((idx, -loss[idx]))][: max(0, int(k))]
    pt = np.asarray(p_true) if p_true is not None else np.full(loss.shape, np.nan)
    pp = np.asarray(p_pred) if p_pred is not None else np.full(loss.shape, np.nan)
    return [
        TopLoss(int(i), classes[int(t[i])], classes[int(p[i])], float(loss[i]), float(pt[i]), float(pp[i])) for i in idx
    ]


def _group_ids(classes: list[str], pairs: list[tuple[str, str]]) -> np.ndarray:
    """Class index -> group id, where each pair (a, b) puts b into a's group (pairs not in classes are ignored)."""
    gid = np.arange(len(classes))
    pos = {c: i for i, c in enumerate(classes)}
    for a, b in pairs:
        if a in pos and b in pos:
            gid[gid == gid[pos[b]]] = gid[pos[a]]
    return gid


def merged_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], pairs: list[tuple[str, str]] | str
) -> float:
    """Accuracy when the classes of each pair count as one (e.g. I and l).

    Args:
        y_true, y_pred: int labels and predictions (N,).
        classes: class names.
        pairs: [(a, b), ...], or the name of one of ``MERGES`` ("case_insensitive", "I/l",
            "size_only", "I/l+size_only"). Pairs naming a class that is not in ``classes`` are ignored.

    Returns:
        Share of samples whose prediction is in the group of their actual class (0.0 for no samples).
    """
    if isinstance(pairs, str):
        if pairs not in MERGES:
            raise ValueError(f"unknown merge {pairs!r}: use one of {', '.join(MERGES)}")
        named = MERGES[pairs]
        pairs = named if named is not None else case_pairs(classes)
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if t.size == 0:
        return 0.0
    gid = _group_ids(classes, pairs)
    return float(np.mean(gid[t] == gid[p]))


def case_swap_share(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> float:
    """Share of the errors that only swap the case of the right letter (c for C, L for l).

    Returns:
        case-swap errors / all errors; 0.0 when there are no errors.
    """
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    wrong = t != p
    n_wrong = int(wrong.sum())
    if n_wrong == 0:
        return 0.0
    gid = _group_ids(classes, case_pairs(classes))
    return float(np.sum(wrong & (gid[t] == gid[p]))) / n_wrong


def accuracy_line(accuracy: float, n: int, split: str) -> str:
    """The report's line: ``Accuracy of the network on the 15600 test images: 99.03%``."""
    return f"Accuracy of the network on the {n} {split} images: {100.0 * accuracy:.2f}%"


@dataclass
class Comparison:
    """Where two evaluations of the same split disagree.

    Attributes:
        indices: sample positions where the two predictions differ (ascending).
        labels: actual labels at those positions.
        pred_a, pred_b: the two predictions there.
        counts: ``both_right``, ``only_a_right``, ``only_b_right``, ``both_wrong_same``,
            ``both_wrong_different`` over the whole split.
        classes: class names.
    """

    indices: np.ndarray
    labels: np.ndarray
    pred_a: np.ndarray
    pred_b: np.ndarray
    counts: dict[str, int]
    classes: list[str]

    def rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The disagreements as dicts ``{index, actual, pred_a, pred_b}`` for a table."""
        n = len(self.indices) if limit is None else min(limit, len(self.indices))
        c = self.classes
        return [
            {
                "index": int(self.indices[i]),
                "actual": c[int(self.labels[i])],
                "pred_a": c[int(self.pred_a[i])],
                "pred_b": c[int(self.pred_b[i])],
            }
            for i in range(n)
        ]


def compare_predictions(a: Any, b: Any) -> Comparison:
    """Run A against run B on the same split: where their predictions differ.

    Args:
        a, b: :class:`EvalResult` objects (or anything with ``labels``, ``preds`` and ``classes``).

    Raises:
        DataError: the two were not made on the same samples (different sizes, labels or classes).
    """
    if list(a.classes) != list(b.classes):
        raise DataError("the two runs have different class lists: they cannot be compared sample by sample")
    la, lb = np.asarray(a.labels), np.asarray(b.labels)
    if la.shape != lb.shape or not np.array_equal(la, lb):
        raise DataError(
            f"the two evaluations are not of the same samples ({la.size} vs {lb.size} images, or other labels): "
            f"evaluate both runs on the same data set and split"
        )
    pa, pb = np.asarray(a.preds), np.asarray(b.preds)
    ra, rb = pa == la, pb == la
    differ = np.flatnonzero(pa != pb)
    counts = {
        "both_right": int(np.sum(ra & rb)),
        "only_a_right": int(np.sum(ra & ~rb)),
        "only_b_right": int(np.sum(~ra & rb)),
        "both_wrong_same": int(np.sum(~ra & ~rb & (pa == pb))),
        "both_wrong_different": int(np.sum(~ra & ~rb & (pa != pb))),
    }
    return Comparison(differ, la[differ], pa[differ], pb[differ], counts, list(a.classes))
