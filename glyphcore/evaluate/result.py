"""``EvalResult``: a model's answers on one split, with the figures derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glyphcore.evaluate.metrics import (
    MERGES,
    TopLoss,
    accuracy_line,
    case_swap_share,
    merged_accuracy,
    most_confused,
    normalize_confusion,
    per_class_metrics,
    top_losses,
)
from glyphcore.infer.calibration import expected_calibration_error, reliability_bins

__all__ = ["EvalResult", "per_family_rows"]


def per_family_rows(
    labels: np.ndarray, preds: np.ndarray, font_ids: np.ndarray | None, fonts: list[tuple[str, str]], classes: list[str]
) -> list[dict[str, Any]]:
    """Accuracy per design family, worst first (see :attr:`EvalResult.per_family`)."""
    if font_ids is None or not fonts or font_ids.shape != labels.shape:
        return []
    family_of = np.array([f[0] for f in fonts], dtype=object)
    fam = family_of[font_ids]
    rows = []
    for name in sorted(set(fam.tolist())):
        m = fam == name
        lab, pr = labels[m], preds[m]
        styles = sorted({fonts[i][1] for i in np.unique(font_ids[m]) if fonts[i][1]})
        wrong = lab != pr
        top = ""
        if wrong.any():
            pairs, counts = np.unique(np.stack([lab[wrong], pr[wrong]], 1), axis=0, return_counts=True)
            a, b = pairs[int(np.argmax(counts))]
            top = f"{classes[int(a)]} -> {classes[int(b)]} x {int(counts.max())}"
        rows.append(
            {
                "family": str(name),
                "style": ", ".join(styles),
                "fonts": int(np.unique(font_ids[m]).size),
                "n": int(m.sum()),
                "errors": int(wrong.sum()),
                "accuracy": float(np.mean(~wrong)),
                "accuracy_il_size_merged": merged_accuracy(lab, pr, classes, "I/l+size_only"),
                "top_confusion": top,
            }
        )
    rows.sort(key=lambda r: (r["accuracy"], r["family"]))
    return rows


@dataclass
class EvalResult:
    """A model's answers on one split, with the figures derived from them.

    Attributes:
        classes: class names (label i <-> classes[i]).
        split: the split evaluated ("test", "valid", ...).
        labels, preds: int64 (N,) actual classes and predictions.
        p_true, p_pred: float32 (N,) probability of the actual class and of the prediction.
        loss: float32 (N,) cross-entropy per sample, nats.
        confusion: K x K int64 counts (rows actual, columns predicted).
        checkpoint: the checkpoint file evaluated.
        which: "best" or "last".
        run_dir: the run folder (None for a bare .pt file).
        out_dir: the folder the result is stored in (None when not stored).
        dataset: {"source", "id", "hash"} of the data evaluated on.
        seconds: wall time of the evaluation pass (of the original computation when cached).
        images_per_s: evaluation speed.
        device: where it ran.
        cached: True when read back from ``eval/`` instead of computed.
        not_saved: why the result could not be stored in ``eval/`` (a read-only or full disk), or "".
        p_pred_raw: float32 (N,) the top probability before calibration (T = 1), or None.
        font_ids: int64 (N,) each sample's font (index into ``fonts``), or None when the data has none.
        fonts: [(design family, style), ...] per font of the data set (its manifest).
        temperature: the calibration temperature the probabilities were computed with (1.0: none).
    """

    classes: list[str]
    split: str
    labels: np.ndarray
    preds: np.ndarray
    p_true: np.ndarray
    p_pred: np.ndarray
    loss: np.ndarray
    confusion: np.ndarray
    checkpoint: Path | None = None
    which: str = "best"
    run_dir: Path | None = None
    out_dir: Path | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    images_per_s: float = 0.0
    device: str = ""
    cached: bool = False
    not_saved: str = ""
    p_pred_raw: np.ndarray | None = None
    font_ids: np.ndarray | None = None
    fonts: list[tuple[str, str]] = field(default_factory=list)
    temperature: float = 1.0

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.labels.size)

    @property
    def accuracy(self) -> float:
        """Share of samples predicted right."""
        return float(np.mean(self.labels == self.preds)) if self.n else 0.0

    @property
    def mean_loss(self) -> float:
        """Mean cross-entropy, nats."""
        return float(np.mean(self.loss)) if self.n else 0.0

    @property
    def accuracy_line(self) -> str:
        """``Accuracy of the network on the 15600 test images: 99.03%``."""
        return accuracy_line(self.accuracy, self.n, self.split)

    @property
    def confusion_normalized(self) -> np.ndarray:
        """Row-normalised confusion matrix (each actual class's row sums to 1)."""
        return normalize_confusion(self.confusion)

    @property
    def per_class(self) -> list[dict[str, Any]]:
        """Precision, recall, F1, support per class (see :func:`per_class_metrics`)."""
        return per_class_metrics(self.confusion, self.classes)

    @property
    def merged(self) -> dict[str, float]:
        """Accuracy with each group of ``MERGES`` counted as one class."""
        return {name: merged_accuracy(self.labels, self.preds, self.classes, name) for name in MERGES}

    @property
    def case_swap_share(self) -> float:
        """Share of the errors that are case swaps of the right letter."""
        return case_swap_share(self.labels, self.preds, self.classes)

    @property
    def ece(self) -> float:
        """Expected calibration error (15 bins) of the probabilities shown (calibrated), 0..1."""
        return expected_calibration_error(self.p_pred, self.labels == self.preds)

    @property
    def ece_uncalibrated(self) -> float | None:
        """ECE of the model's raw softmax (T = 1); None when not recorded."""
        if self.p_pred_raw is None:
            return None
        return expected_calibration_error(self.p_pred_raw, self.labels == self.preds)

    def reliability(self, calibrated: bool = True) -> list[dict[str, float]]:
        """The reliability diagram's bins (see :func:`glyphcore.infer.calibration.reliability_bins`)."""
        conf = self.p_pred if calibrated or self.p_pred_raw is None else self.p_pred_raw
        return reliability_bins(conf, self.labels == self.preds)

    @property
    def per_family(self) -> list[dict[str, Any]]:
        """Accuracy per design family (the data set's generalisation axis), worst first: one row per
        family with ``family``, ``style``, ``n``, ``errors``, ``accuracy``, ``accuracy_il_size_merged``
        (I/l and the size-only case pairs counted as one) and ``top_confusion`` ("C -> c x 12" or "").
        Empty when the data has no font ids."""
        return per_family_rows(self.labels, self.preds, self.font_ids, self.fonts, self.classes)

    def most_confused(self, min_count: int = 1) -> list[tuple[str, str, int]]:
        """[(actual, predicted, count), ...], most frequent first."""
        return most_confused(self.confusion, self.classes, min_count)

    def top_losses(self, k: int = 16, actual: str | None = None, predicted: str | None = None) -> list[TopLoss]:
        """The ``k`` largest losses, optionally within one confusion cell."""
        return top_losses(
            self.loss,
            self.labels,
            self.preds,
            self.classes,
            k,
            p_true=self.p_true,
            p_pred=self.p_pred,
            actual=actual,
            predicted=predicted,
        )

    def cell_indices(self, actual: str, predicted: str) -> np.ndarray:
        """Sample positions in the cell (actual, predicted), largest loss first."""
        a, p = self.classes.index(actual), self.classes.index(predicted)
        idx = np.flatnonzero((self.labels == a) & (self.preds == p))
        return idx[np.lexsort((idx, -self.loss[idx]))]

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-able dict (what summary.json holds, without the cache key)."""
        pcs = self.per_class
        return {
            "split": self.split,
            "which": self.which,
            "n": self.n,
            "accuracy": self.accuracy,
            "accuracy_line": self.accuracy_line,
            "mean_loss": self.mean_loss,
            "merged_accuracy": self.merged,
            "case_swap_share": self.case_swap_share,
            "errors": int(np.sum(self.labels != self.preds)),
            "macro_f1": float(np.mean([r["f1"] for r in pcs])) if pcs else 0.0,
            "most_confused": [list(t) for t in self.most_confused()[:20]],
            "classes": self.classes,
            "dataset": self.dataset,
            "seconds": self.seconds,
            "images_per_s": self.images_per_s,
            "device": self.device,
            "temperature": self.temperature,
            "ece": self.ece,
            "ece_uncalibrated": self.ece_uncalibrated,
            "fonts": [list(f) for f in self.fonts],
            "per_family": self.per_family,
        }
