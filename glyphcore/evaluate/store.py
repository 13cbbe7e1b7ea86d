"""Computing evaluations and keeping them in a run's ``eval/`` folder.

``evaluate_run`` runs a run's checkpoint over a whole split (big batches, no gradients) and keeps the
answers in the run's ``eval/<split>/`` folder, recomputing them only when the checkpoint changes.
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
from pathlib import Path
from typing import Any

import numpy as np

from glyphcore import runs
from glyphcore.atomic import atomic_write
from glyphcore.checkpoint import load_checkpoint
from glyphcore.data import GLYPHS52, load_dataset, parse_source, read_manifest
from glyphcore.errors import CheckpointError, DataError, GlyphError, os_reason
from glyphcore.evaluate.metrics import confusion_matrix
from glyphcore.evaluate.result import EvalResult
from glyphcore.infer import load_predictor
from glyphcore.infer.letters import temperature_of

__all__ = [
    "EVAL_FORMAT",
    "TRAINED_ON_FILE",
    "PREDICTION_DTYPE",
    "evaluate_predictor",
    "evaluate_run",
    "load_eval",
    "eval_dir",
    "stored_splits",
]

# bump when the files change: older caches are recomputed. /2: calibrated probabilities (the
# checkpoint's temperature, part of the key), the uncalibrated top probability and the font of each sample.
EVAL_FORMAT = "glyphcore.eval/2"
# eval/trained_on.json: design family -> split of the data set the run was trained on (glyphs-52)
TRAINED_ON_FILE = "trained_on.json"
# p_true, p_pred, loss: calibrated (softmax(logits / T)); p_pred_raw: the top probability at T = 1;
# font: index into summary["fonts"] ([family, style] per font of the data set), -1 when unknown.
PREDICTION_DTYPE = np.dtype(
    [
        ("label", "<i2"),
        ("pred", "<i2"),
        ("p_true", "<f4"),
        ("p_pred", "<f4"),
        ("loss", "<f4"),
        ("p_pred_raw", "<f4"),
        ("font", "<i4"),
    ]
)


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


def eval_dir(run_dir: Path, split: str, which: str = "best") -> Path:
    """Where the evaluation of ``which`` checkpoint on ``split`` is kept: ``eval/<split>[-last]/``."""
    return run_dir / runs.EVAL_DIR / (split if which == "best" else f"{split}-{which}")


def stored_splits(run_ref: str | os.PathLike) -> list[str]:
    """The splits of a run that have a complete stored evaluation of its best checkpoint (what a
    fresh install can show without the data set: the starter's come with it)."""
    root = runs.resolve_run(run_ref) / runs.EVAL_DIR
    return sorted(d.name for d in root.glob("*") if "-" not in d.name and (d / "summary.json").is_file())


def _save(result: EvalResult, out: Path, key: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    preds = np.empty(result.n, dtype=PREDICTION_DTYPE)
    preds["label"], preds["pred"] = result.labels, result.preds
    preds["p_true"], preds["p_pred"], preds["loss"] = result.p_true, result.p_pred, result.loss
    preds["p_pred_raw"] = result.p_pred if result.p_pred_raw is None else result.p_pred_raw
    preds["font"] = -1 if result.font_ids is None else result.font_ids
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
        raise DataError(
            f"{out} does not hold a complete evaluation ({e}): run `python -m glyphcore evaluate`"
        ) from None
    run_dir = out.parent.parent
    names = p.dtype.names or ()
    return EvalResult(
        classes=list(summary["classes"]),
        split=summary["split"],
        which=summary.get("which", "best"),
        labels=p["label"].astype(np.int64),
        preds=p["pred"].astype(np.int64),
        p_true=p["p_true"].astype(np.float32),
        p_pred=p["p_pred"].astype(np.float32),
        loss=p["loss"].astype(np.float32),
        confusion=cm,
        checkpoint=run_dir / summary.get("key", {}).get("checkpoint", {}).get("file", runs.BEST_CKPT),
        run_dir=run_dir,
        out_dir=out,
        dataset=summary.get("dataset", {}),
        seconds=float(summary.get("seconds", 0.0)),
        images_per_s=float(summary.get("images_per_s", 0.0)),
        device=summary.get("device", ""),
        cached=True,
        p_pred_raw=p["p_pred_raw"].astype(np.float32) if "p_pred_raw" in names else None,
        font_ids=p["font"].astype(np.int64) if "font" in names and summary.get("fonts") else None,
        fonts=[tuple(f) for f in summary.get("fonts") or []],
        temperature=float(summary.get("temperature", 1.0)),
    )


def _check_fits(predictor: Any, data: Any) -> None:
    """CheckpointError or DataError unless the data's classes and images fit the model."""
    classes = list(data.classes)
    if classes != list(predictor.classes):
        raise CheckpointError(
            f"the model was trained on {len(predictor.classes)} classes ({''.join(map(str, predictor.classes))[:60]}) "
            f"but {data.source}/{data.split} has {len(classes)} ({''.join(map(str, classes))[:60]}): "
            f"evaluate it on the data it was trained on"
        )
    if data.images.ndim != 4:
        raise DataError(f"{data.source}/{data.split}: images must be N x C x H x W, got shape {data.images.shape}")
    if data.images.shape[1] not in (1, predictor.in_channels):
        raise DataError(
            f"{data.source}/{data.split} has {data.images.shape[1]}-channel images but the model takes "
            f"{predictor.in_channels} channels"
        )


def _scores(logits: Any, labels: np.ndarray, temperature: float) -> dict[str, np.ndarray]:
    """Per sample: the prediction, calibrated probabilities of the true and predicted class, the loss
    (negative log-probability of the true class) and the uncalibrated top probability."""
    import torch

    y = torch.from_numpy(labels)
    logp = (logits / temperature).log_softmax(dim=1)
    lp_pred, pred = logp.max(dim=1)
    lp_true = logp.gather(1, y[:, None])[:, 0]
    return {
        "preds": pred.numpy().astype(np.int64),
        "p_true": lp_true.exp().numpy().astype(np.float32),
        "p_pred": lp_pred.exp().numpy().astype(np.float32),
        "loss": (-lp_true).numpy().astype(np.float32),
        "p_pred_raw": logits.softmax(dim=1).max(dim=1).values.numpy().astype(np.float32),
    }


def _dataset_record(data: Any) -> tuple[dict[str, Any], np.ndarray | None, list[tuple[str, str]]]:
    """What the result records of its data: (source/id/hash [+ families], per-sample font ids, fonts)."""
    meta = getattr(data, "meta", {}) or {}
    dataset = {"source": data.source, "id": meta.get("id"), "hash": meta.get("hash")}
    if isinstance(meta.get("families"), dict):
        # glyphs-52: which design family went to which split, so that a later check (tests/test_starter.py)
        # can render held-out fonts on another machine without the data set
        dataset["families"] = {f: (v.get("split") if isinstance(v, dict) else v) for f, v in meta["families"].items()}
    if getattr(data, "font_ids", None) is None or not isinstance(meta.get("fonts"), list):
        return dataset, None, []
    # the per-family rows: each sample's font, and each font's design family and style
    fonts = [
        (str(f.get("family", "?")), str(f.get("style", ""))) if isinstance(f, dict) else ("?", "")
        for f in meta["fonts"]
    ]
    font_ids = np.asarray(data.font_ids, dtype=np.int64)
    n = len(data)
    if font_ids.shape != (n,) or (n and (font_ids.min() < 0 or font_ids.max() >= len(fonts))):
        return dataset, None, []
    return dataset, font_ids, fonts


def evaluate_predictor(predictor: Any, data: Any, *, batch_size: int | None = None, progress: Any = None) -> EvalResult:
    """Run a predictor over a whole :class:`~glyphcore.data.ImageSet` (no gradients, big batches).

    Args:
        predictor: from :func:`glyphcore.infer.load_predictor`.
        data: an ImageSet (uint8 N x C x H x W images, int labels, classes).
        batch_size: images per forward pass; default 256 on the CPU, 4096 on a GPU.
        progress: optional ``progress(done, total)`` after each batch.

    Raises:
        DataError: the data's classes are not the model's, or its images do not fit the model.
    """
    _check_fits(predictor, data)
    n = len(data)
    # 256 on the CPU: the activations of a bigger batch fall out of cache (measured 20% slower at 1000)
    bs = int(batch_size or (4096 if predictor.device.type == "cuda" else 256))
    labels = np.array(data.labels, dtype=np.int64)  # a writable copy (the data may be a read-only memmap)
    temperature = float(getattr(predictor, "temperature", 1.0))
    done = [0]

    def on_batch(out: Any) -> None:
        done[0] += int(out.logits.shape[0])
        if progress is not None:
            progress(done[0], n)

    t0 = time.perf_counter()
    logits = predictor.run(data.images, batch_size=bs, on_batch=on_batch).logits
    scores = _scores(logits, labels, temperature) if n else {k: np.zeros(0, np.float32) for k in _SCORE_KEYS}
    seconds = time.perf_counter() - t0
    dataset, font_ids, fonts = _dataset_record(data)
    return EvalResult(
        classes=list(data.classes),
        split=str(data.split),
        labels=labels,
        preds=scores["preds"].astype(np.int64),
        p_true=scores["p_true"],
        p_pred=scores["p_pred"],
        loss=scores["loss"],
        confusion=confusion_matrix(labels, scores["preds"].astype(np.int64), len(data.classes)),
        checkpoint=predictor.path,
        dataset=dataset,
        seconds=seconds,
        images_per_s=n / seconds if seconds > 0 else 0.0,
        device=str(predictor.device),
        p_pred_raw=scores["p_pred_raw"],
        font_ids=font_ids,
        fonts=fonts,
        temperature=temperature,
    )


_SCORE_KEYS = ("preds", "p_true", "p_pred", "loss", "p_pred_raw")


def _stored_summary(out: Path | None) -> dict[str, Any]:
    """The eval folder's summary.json, {} when there is none or it is unreadable."""
    if out is None or not (out / "summary.json").is_file():
        return {}
    try:
        stored = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def _cached(out: Path | None, stored: dict[str, Any], key: dict[str, Any]) -> EvalResult | None:
    """The stored result when it belongs to this checkpoint, split and data set; None to recompute."""
    if out is None or stored.get("format") != EVAL_FORMAT or not _same_key(stored.get("key"), key):
        return None
    if not _data_hash_unchanged(stored.get("dataset") or {}):
        return None
    try:
        return load_eval(out)
    except DataError:
        return None  # a torn cache: recompute


def evaluate_run(
    run_ref: str | os.PathLike,
    split: str = "test",
    which: str = "best",
    *,
    force: bool = False,
    device: str | None = None,
    batch_size: int | None = None,
    progress: Any = None,
) -> EvalResult:
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
    ckpt = runs.checkpoint_path(run_ref, which)
    run_dir = None if runs.is_checkpoint_file_ref(run_ref) else runs.resolve_run(run_ref)
    out = eval_dir(run_dir, split, which) if run_dir is not None else None
    stored = _stored_summary(out)
    # the temperature keys the cache too: probabilities shown are softmax(logits / T)
    key = {
        "checkpoint": _file_key(ckpt, (stored.get("key") or {}).get("checkpoint")),
        "split": split,
        "which": which,
        "temperature": temperature_of(load_checkpoint(ckpt)),
    }
    cached = None if force else _cached(out, stored, key)
    if cached is not None:
        return cached
    import torch

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    predictor = load_predictor(ckpt, which=which, device=dev)
    data = load_dataset(predictor.data_source, split)
    result = evaluate_predictor(predictor, data, batch_size=batch_size, progress=progress)
    result.which, result.run_dir, result.checkpoint = which, run_dir, ckpt
    if out is not None and run_dir is not None:
        try:
            _save(result, out, key)
            result.out_dir = out
            _record_trained_on(run_dir, predictor.checkpoint.get("dataset") or {}, result.dataset)
        except OSError as e:  # a read-only run folder (e.g. an installed starter): the result is still returned
            result.not_saved = f"the result was not saved in {out}: {os_reason(e)}"
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
    record = {
        "source": evaluated.get("source"),
        "id": evaluated.get("id"),
        "hash": trained["hash"],
        "families": evaluated["families"],
    }
    _atomic_write(path, lambda f: f.write(json.dumps(record, indent=1).encode()))


def _same_key(stored: Any, key: dict[str, Any]) -> bool:
    """The stored result belongs to this checkpoint: same bytes (size + sha256), split and which.

    The mtime only spares re-hashing an untouched file; a touched but identical file still matches.
    """
    if not isinstance(stored, dict):
        return False
    a, b = stored.get("checkpoint") or {}, key["checkpoint"]
    return (stored.get("split"), stored.get("which"), stored.get("temperature")) == (
        key["split"],
        key["which"],
        key["temperature"],
    ) and all(a.get(k) == b.get(k) for k in ("file", "size", "sha256"))


def _data_hash_unchanged(stored: dict[str, Any]) -> bool:
    """False when a rebuilt glyphs-52 on disk has another hash than the one evaluated.

    Only glyphs-52 is checked (its manifest is one small file); other sources are large to hash and
    do not change under a run.
    """
    source, old = stored.get("source"), stored.get("hash")
    if not source or not old:
        return True
    try:
        kind, arg = parse_source(source)
        if kind != GLYPHS52:
            return True
        now = read_manifest(Path(arg) if arg else None).get("hash")
    except (GlyphError, ImportError, OSError, ValueError):
        return True  # the data is not here (a fresh install with the committed starter): trust the cache
    return not now or now == old
