"""Evaluation: how a trained model does on a split, and where it goes wrong.

``evaluate_run`` runs a run's checkpoint over a whole split (big batches, no gradients) and keeps the
answers in the run's ``eval/<split>/`` folder, recomputing them only when the checkpoint changes::

    result = evaluate_run("starter", split="test")
    print(result.accuracy_line)          # Accuracy of the network on the 15600 test images: 99.03%
    result.most_confused(min_count=2)    # [("l", "I", 31), ("I", "l", 12), ...]
    result.merged["case_insensitive"]    # accuracy when a letter and its other case count as one

The metric functions (``confusion_matrix``, ``per_class_metrics``, ``most_confused``,
``top_losses``, ``merged_accuracy``, ``case_swap_share``, ``compare_predictions``) are plain numpy
and work on any labels. Confusion matrices have the actual class on rows and the prediction on
columns, like sklearn's and fastai's.

``eval/<split>/`` holds ``confusion.npy`` (K x K int64 counts), ``per_class.json``,
``predictions.npy`` (a structured array, one row per sample: label, pred, p_true, p_pred, loss) and
``summary.json`` (the figures, plus the checkpoint's size, mtime and sha256 that key the cache).
``which="last"`` results go to ``eval/<split>-last/``. ``eval/trained_on.json`` records which design
families the run's glyphs-52 dealt to which split (so its held-out fonts are known without the data).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from glyphcore import runs
from glyphcore.atomic import atomic_write
from glyphcore.errors import CheckpointError, DataError, GlyphError
from glyphcore.frame import AMBIGUOUS_PAIRS, CASE_PAIRS_SIZE_ONLY

__all__ = [
    "EVAL_FORMAT",
    "TRAINED_ON_FILE",
    "MERGES",
    "PREDICTION_DTYPE",
    "EvalResult",
    "TopLoss",
    "Comparison",
    "confusion_matrix",
    "normalize_confusion",
    "per_class_metrics",
    "most_confused",
    "top_losses",
    "merged_accuracy",
    "case_swap_share",
    "compare_predictions",
    "accuracy_line",
    "evaluate_predictor",
    "evaluate_run",
    "load_eval",
]

EVAL_FORMAT = "glyphcore.eval/1"  # bump when the files change: older caches are recomputed
# eval/trained_on.json: design family -> split of the data set the run was trained on (glyphs-52)
TRAINED_ON_FILE = "trained_on.json"
PREDICTION_DTYPE = np.dtype([("label", "<i2"), ("pred", "<i2"), ("p_true", "<f4"), ("p_pred", "<f4"), ("loss", "<f4")])


def _case_pairs(classes: list[str]) -> list[tuple[str, str]]:
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
        out.append({"class": c, "precision": float(prec), "recall": float(rec), "f1": float(f1),
                    "support": int(support[i]), "predicted": int(predicted[i]), "correct": int(tp[i])})
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

    index: int  # position in the split
    actual: str
    predicted: str
    loss: float  # cross-entropy, nats
    p_true: float  # probability given to the actual class
    p_pred: float  # probability of the prediction


def top_losses(loss: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], k: int = 16,
               *, p_true: np.ndarray | None = None, p_pred: np.ndarray | None = None,
               actual: str | None = None, predicted: str | None = None) -> list[TopLoss]:
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
    return [TopLoss(int(i), classes[int(t[i])], classes[int(p[i])], float(loss[i]), float(pt[i]), float(pp[i]))
            for i in idx]


def _group_ids(classes: list[str], pairs: list[tuple[str, str]]) -> np.ndarray:
    """Class index -> group id, where each pair (a, b) puts b into a's group (pairs not in classes are ignored)."""
    gid = np.arange(len(classes))
    pos = {c: i for i, c in enumerate(classes)}
    for a, b in pairs:
        if a in pos and b in pos:
            gid[gid == gid[pos[b]]] = gid[pos[a]]
    return gid


def merged_accuracy(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str],
                    pairs: list[tuple[str, str]] | str) -> float:
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
        pairs = MERGES[pairs] if MERGES[pairs] is not None else _case_pairs(classes)
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
    gid = _group_ids(classes, _case_pairs(classes))
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
        return [{"index": int(self.indices[i]), "actual": c[int(self.labels[i])],
                 "pred_a": c[int(self.pred_a[i])], "pred_b": c[int(self.pred_b[i])]} for i in range(n)]


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


# --------------------------------------------------------------------------------------------
# EvalResult
# --------------------------------------------------------------------------------------------


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

    def most_confused(self, min_count: int = 1) -> list[tuple[str, str, int]]:
        """[(actual, predicted, count), ...], most frequent first."""
        return most_confused(self.confusion, self.classes, min_count)

    def top_losses(self, k: int = 16, actual: str | None = None, predicted: str | None = None) -> list[TopLoss]:
        """The ``k`` largest losses, optionally within one confusion cell."""
        return top_losses(self.loss, self.labels, self.preds, self.classes, k,
                          p_true=self.p_true, p_pred=self.p_pred, actual=actual, predicted=predicted)

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
        }


# --------------------------------------------------------------------------------------------
# Computing and caching
# --------------------------------------------------------------------------------------------


def _file_key(path: Path, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """size + mtime + sha256 of a checkpoint; the hash is reused when size and mtime match ``known``."""
    st = path.stat()
    key = {"file": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if known and known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns and known.get("sha256"):
        key["sha256"] = known["sha256"]
        return key
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    key["sha256"] = h.hexdigest()
    return key


def _atomic_write(path: Path, write: Any) -> None:
    with atomic_write(path, "wb") as f:
        write(f)


def _eval_dir(run_dir: Path, split: str, which: str) -> Path:
    return run_dir / runs.EVAL_DIR / (split if which == "best" else f"{split}-{which}")


def _save(result: EvalResult, out: Path, key: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    preds = np.empty(result.n, dtype=PREDICTION_DTYPE)
    preds["label"], preds["pred"] = result.labels, result.preds
    preds["p_true"], preds["p_pred"], preds["loss"] = result.p_true, result.p_pred, result.loss
    _atomic_write(out / "confusion.npy", lambda f: np.save(f, result.confusion.astype(np.int64)))
    _atomic_write(out / "predictions.npy", lambda f: np.save(f, preds))
    _atomic_write(out / "per_class.json", lambda f: f.write(json.dumps(result.per_class, indent=1).encode()))
    # summary.json last: it names the checkpoint the other files belong to, so it marks them complete
    summary = {"format": EVAL_FORMAT, "key": key, "created": time.time(), **result.summary()}
    _atomic_write(out / "summary.json", lambda f: f.write(json.dumps(summary, indent=1).encode()))


def load_eval(out_dir: str | os.PathLike) -> EvalResult:
    """Read a stored evaluation back from an ``eval/<split>/`` folder.

    Raises:
        DataError: the folder does not hold a complete evaluation.
    """
    out = Path(out_dir)
    try:
        summary = json.loads((out / "summary.json").read_text())
        cm = np.load(out / "confusion.npy", allow_pickle=False)
        p = np.load(out / "predictions.npy", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{out} does not hold a complete evaluation ({e}): run `python -m glyphcore evaluate`") from None
    run_dir = out.parent.parent
    return EvalResult(
        classes=list(summary["classes"]), split=summary["split"], which=summary.get("which", "best"),
        labels=p["label"].astype(np.int64), preds=p["pred"].astype(np.int64),
        p_true=p["p_true"].astype(np.float32), p_pred=p["p_pred"].astype(np.float32),
        loss=p["loss"].astype(np.float32), confusion=cm,
        checkpoint=run_dir / summary.get("key", {}).get("checkpoint", {}).get("file", runs.BEST_CKPT),
        run_dir=run_dir, out_dir=out, dataset=summary.get("dataset", {}),
        seconds=float(summary.get("seconds", 0.0)), images_per_s=float(summary.get("images_per_s", 0.0)),
        device=summary.get("device", ""), cached=True,
    )


def _data_source(predictor: Any) -> str:
    cfg = predictor.checkpoint.get("config") or {}
    ds = predictor.checkpoint.get("dataset") or {}
    return str(cfg.get("data") or ds.get("source") or "glyphs-52")


def evaluate_predictor(predictor: Any, data: Any, *, batch_size: int | None = None,
                       progress: Any = None) -> EvalResult:
    """Run a predictor over a whole :class:`~glyphcore.data.ImageSet` (no gradients, big batches).

    Args:
        predictor: from :func:`glyphcore.infer.load_predictor`.
        data: an ImageSet (uint8 N x C x H x W images, int labels, classes).
        batch_size: images per forward pass; default 256 on the CPU, 4096 on a GPU.
        progress: optional ``progress(done, total)`` after each batch.

    Raises:
        DataError: the data's classes are not the model's, or its images do not fit the model.
    """
    import torch
    import torch.nn.functional as F

    classes = list(data.classes)
    if classes != list(predictor.classes):
        raise CheckpointError(
            f"the model was trained on {len(predictor.classes)} classes ({''.join(map(str, predictor.classes))[:60]}) "
            f"but {data.source}/{data.split} has {len(classes)} ({''.join(map(str, classes))[:60]}): "
            f"evaluate it on the data it was trained on"
        )
    images = data.images
    n = len(data)
    if images.ndim != 4:
        raise DataError(f"{data.source}/{data.split}: images must be N x C x H x W, got shape {images.shape}")
    c_in, size = predictor.in_channels, predictor.input_size
    if images.shape[1] not in (1, c_in):
        raise DataError(
            f"{data.source}/{data.split} has {images.shape[1]}-channel images but the model takes {c_in} channels"
        )
    dev = predictor.device
    # 256 on the CPU: the activations of a bigger batch fall out of cache (measured 20% slower at 1000)
    bs = int(batch_size or (4096 if dev.type == "cuda" else 256))
    labels = np.array(data.labels, dtype=np.int64)  # a writable copy (the data may be a read-only memmap)
    preds = np.empty(n, np.int64)
    p_true = np.empty(n, np.float32)
    p_pred = np.empty(n, np.float32)
    loss = np.empty(n, np.float32)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, n, bs):
            # a copy per batch: the images may be a read-only memmap, which cannot back a tensor
            x = torch.from_numpy(np.array(images[s:s + bs])).to(dev, non_blocking=True)
            x = x.float().div_(255.0)
            if tuple(x.shape[-2:]) != size:
                x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
            if x.shape[1] != c_in:
                x = x.expand(-1, c_in, -1, -1)
            x = x.contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(labels[s:s + bs]).to(dev)
            logp = predictor.model(x).float().log_softmax(dim=1)
            lp_pred, pred = logp.max(dim=1)
            lp_true = logp.gather(1, y[:, None])[:, 0]
            e = s + x.shape[0]
            preds[s:e] = pred.cpu().numpy()
            p_true[s:e] = lp_true.exp().cpu().numpy()
            p_pred[s:e] = lp_pred.exp().cpu().numpy()
            loss[s:e] = (-lp_true).cpu().numpy()
            if progress is not None:
                progress(e, n)
    seconds = time.perf_counter() - t0
    meta = getattr(data, "meta", {}) or {}
    dataset = {"source": data.source, "id": meta.get("id"), "hash": meta.get("hash")}
    if isinstance(meta.get("families"), dict):
        # glyphs-52: which design family went to which split, so that a later check (tests/test_starter.py)
        # can render held-out fonts on another machine without the data set
        dataset["families"] = {f: (v.get("split") if isinstance(v, dict) else v) for f, v in meta["families"].items()}
    return EvalResult(
        classes=classes, split=str(data.split), labels=labels, preds=preds, p_true=p_true, p_pred=p_pred,
        loss=loss, confusion=confusion_matrix(labels, preds, len(classes)), checkpoint=predictor.path,
        dataset=dataset, seconds=seconds, images_per_s=n / seconds if seconds > 0 else 0.0, device=str(dev),
    )


def evaluate_run(run_ref: str | os.PathLike, split: str = "test", which: str = "best", *,
                 force: bool = False, device: str | None = None, batch_size: int | None = None,
                 progress: Any = None) -> EvalResult:
    """Evaluate a run's checkpoint on a split of the data it was trained on, cached in its eval/ folder.

    The stored result is reused while the checkpoint is the same file (size, mtime, sha256) and the
    data set's hash is unchanged; otherwise the split is evaluated again and the files rewritten.

    Args:
        run_ref: a run id, a run folder, ``"starter"``, or a ``.pt`` checkpoint (not cached then).
        split: the split to evaluate ("test", "valid", "train", ...).
        which: "best" or "last" checkpoint.
        force: recompute even when a stored result matches.
        device: "cpu", "cuda", ...; default: a GPU when there is one.
        batch_size: images per forward pass.
        progress: optional ``progress(done, total)``.

    Returns:
        The :class:`EvalResult` (``cached`` tells whether it was read back).

    Raises:
        RunError, CheckpointError: no such run, no checkpoint yet, a foreign checkpoint.
        DataError: the data set or split is not there (the message says how to build it).
    """
    from glyphcore.infer import checkpoint_path, load_predictor

    ckpt = checkpoint_path(run_ref, which)
    is_run = not (Path(run_ref).suffix in (".pt", ".pth") and Path(run_ref).is_file())
    run_dir = runs.resolve_run(run_ref) if is_run else None
    out = _eval_dir(run_dir, split, which) if run_dir is not None else None
    stored: dict[str, Any] = {}
    if out is not None and (out / "summary.json").is_file():
        try:
            stored = json.loads((out / "summary.json").read_text())
        except (OSError, ValueError):
            stored = {}
    key = {"checkpoint": _file_key(ckpt, (stored.get("key") or {}).get("checkpoint")), "split": split,
           "which": which}
    if out is not None and not force and stored.get("format") == EVAL_FORMAT and _same_key(stored.get("key"), key):
        if _data_hash_unchanged(stored.get("dataset") or {}):
            try:
                return load_eval(out)
            except DataError:
                pass  # a torn cache: recompute below
    import torch

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    predictor = load_predictor(ckpt, which=which, device=dev)
    from glyphcore.data import load_dataset

    data = load_dataset(_data_source(predictor), split)
    result = evaluate_predictor(predictor, data, batch_size=batch_size, progress=progress)
    result.which, result.run_dir, result.checkpoint = which, run_dir, ckpt
    if out is not None:
        try:
            _save(result, out, key)
            result.out_dir = out
            _record_trained_on(run_dir, predictor.checkpoint.get("dataset") or {}, result.dataset)
        except OSError:
            pass  # a read-only run folder (e.g. an installed starter): the result is still returned
    return result


def _record_trained_on(run_dir: Path, trained: dict[str, Any], evaluated: dict[str, Any]) -> None:
    """Write ``eval/trained_on.json``: the training data set's design families and their splits.

    Written only when the split evaluated belongs to the very data set the run was trained on (same
    hash), and never replaced by another data set's: a later evaluation on a glyphs-52 built
    elsewhere must not change which fonts this run is known never to have seen.
    """
    if not trained.get("hash") or trained.get("hash") != evaluated.get("hash") or not evaluated.get("families"):
        return
    path = run_dir / runs.EVAL_DIR / TRAINED_ON_FILE
    if path.is_file():
        try:
            if json.loads(path.read_text()).get("hash") == trained["hash"]:
                return
        except (OSError, ValueError):
            pass
    record = {"source": evaluated.get("source"), "id": evaluated.get("id"), "hash": trained["hash"],
              "families": evaluated["families"]}
    _atomic_write(path, lambda f: f.write(json.dumps(record, indent=1).encode()))


def _same_key(stored: Any, key: dict[str, Any]) -> bool:
    """The stored result belongs to this checkpoint: same bytes (size + sha256), split and which.

    The mtime only spares re-hashing an untouched file; a touched but identical file still matches.
    """
    if not isinstance(stored, dict):
        return False
    a, b = stored.get("checkpoint") or {}, key["checkpoint"]
    return (stored.get("split"), stored.get("which")) == (key["split"], key["which"]) and all(
        a.get(k) == b.get(k) for k in ("file", "size", "sha256"))


def _data_hash_unchanged(stored: dict[str, Any]) -> bool:
    """False when a rebuilt glyphs-52 on disk has another hash than the one evaluated.

    Only glyphs-52 is checked (its manifest is one small file); other sources are large to hash and
    do not change under a run.
    """
    source, old = stored.get("source"), stored.get("hash")
    if not source or not old:
        return True
    try:
        from glyphcore.data import GLYPHS52, parse_source, read_manifest

        kind, arg = parse_source(source)
        if kind != GLYPHS52:
            return True
        now = read_manifest(Path(arg) if arg else None).get("hash")
    except (GlyphError, ImportError, OSError, ValueError):
        return True  # the data is not here (a fresh install with the committed starter): trust the cache
    return not now or now == old
