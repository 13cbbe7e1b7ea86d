"""Self-describing checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors and primitives, never a pickle that can run code:

    {
      "format": "glyphcore.checkpoint/1",
      "model_name": "seed_cnn",                    # a name in glyphcore.models.list_models()
      "model_args": {...},                         # create_model(model_name, **model_args)
      "classes": ["A", ..., "z"],                  # label i <-> classes[i]
      "frame": {...} | None,                       # glyphcore.frame.frame_dict() for glyph data
      "config": {...},                             # the run's TrainConfig as a dict
      "dataset": {"id": ..., "hash": ...},
      "state_dict": {...},                         # model weights (CPU tensors)
      "epoch": int, "val_loss": float, "val_acc": float,
      "versions": {"glyphcore": ..., "torch": ...},
      "calibration": {...} | None,                 # glyphcore.infer.calibration (temperature, letter thresholds)
      "state_dict_sha256": "...",                  # written by save_checkpoint, verified on load
      "content_sha256": "...",                     # the same over everything that changes an answer
      # last.pt only (the resume point):
      "optimizer": {...}, "scheduler": {...} | None, "rng": {"torch": Tensor}, "step": int,
    }

``save_checkpoint`` writes to a temporary file in the same folder and renames it over the target,
so a crash or a full disk while saving leaves the previous checkpoint valid. It stores two sha256
sums: of the weights, and of everything that changes an answer (``ANSWER_KEYS``: the weights, the
model and its arguments, the class list, the frame and the calibration); ``load_checkpoint``
verifies them (a flipped bit is refused, never evaluated). Files written before a sum existed still
load: they verify what they have and list the parts no sum covers under ``"unverified"``. Weights
that are not finite (NaN/Inf), or of a type no glyphcore model has (complex, bool, int8: only
floating point, and int64 step counters), are refused too, as is a calibration temperature outside
``TEMPERATURE_RANGE``.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from glyphcore.atomic import atomic_write
from glyphcore.errors import CheckpointError

__all__ = [
    "FORMAT",
    "REQUIRED_KEYS",
    "ANSWER_KEYS",
    "TEMPERATURE_RANGE",
    "load_checkpoint",
    "save_checkpoint",
    "state_dict_sha256",
    "content_sha256",
]

FORMAT = "glyphcore.checkpoint/1"
REQUIRED_KEYS = ("format", "model_name", "model_args", "classes", "state_dict")
# The parts of a checkpoint that change what it answers: content_sha256 covers them all.
ANSWER_KEYS = ("model_name", "model_args", "classes", "frame", "calibration", "state_dict")
# A fitted calibration temperature outside this is degenerate logits or damage (fit searches inside it).
TEMPERATURE_RANGE = (0.02, 50.0)


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file + fsync + rename).

    Args:
        payload: the checkpoint dict (see module docstring); ``format`` is filled in if absent.
        path: the target file, e.g. ``checkpoints/<run>/best.pt``.

    Returns:
        The path written.
    """
    path = Path(path)
    payload = {"format": FORMAT, **payload}
    payload.pop("unverified", None)  # what a load found, not part of the file
    if isinstance(payload.get("state_dict"), dict):
        payload["state_dict_sha256"] = state_dict_sha256(payload["state_dict"])
        payload["content_sha256"] = content_sha256(payload)
    # Serialised in memory first (a few MB), then written: a full disk is then an OSError with its
    # errno (ENOSPC: "disk full"), not torch's RuntimeError "unexpected pos" from inside its writer.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(path, "wb", fsync=True) as f:
        f.write(buffer.getbuffer())
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a glyphcore checkpoint without running any code stored in it.

    Raises:
        CheckpointError: the file is missing, not a torch file, a pickle that needs code to load
            (refused, nothing of it runs), or not a glyphcore checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: train a run first or pass the path of a .pt file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a torch checkpoint (torch.save writes a zip archive; this file is not one): "
            f"it may be truncated or another kind of file"
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load {path}: it stores Python objects that would run code when loaded "
            f"({_unsafe_reason(e)}). Only glyphcore checkpoints (plain tensors and values) are loaded; "
            f"retrain, or save the weights of a model you trust with glyphcore"
        ) from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint ({type(e).__name__}: {str(e)[:200]}); "
            f"it may be truncated or another kind of file"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a glyphcore checkpoint (expected a dict with format {FORMAT!r}); "
            f"a bare state_dict or another tool's file cannot be rebuilt into a model"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: the checkpoint is incomplete")
    _check_weights(path, ckpt)
    _check_temperature(path, ckpt)
    return ckpt


def _check_temperature(path: Path, ckpt: dict[str, Any]) -> None:
    """Refuse a stored calibration temperature outside ``TEMPERATURE_RANGE`` (1e-300 makes every
    probability NaN; 1e300 makes every answer uniform)."""
    cal = ckpt.get("calibration")
    t = cal.get("temperature") if isinstance(cal, dict) else None
    low, high = TEMPERATURE_RANGE
    if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or not low <= t <= high):
        raise CheckpointError(
            f"{path} stores a calibration temperature of {t!r}, outside {low:g}..{high:g}: the file is damaged; "
            f"recalibrate it (`python -m glyphcore calibrate`) or use another copy"
        )


def state_dict_sha256(state_dict: dict[str, Any]) -> str:
    """sha256 over every weight's name, dtype, shape and bytes, in key order (hex)."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key]
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(memoryview(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


def content_sha256(ckpt: dict[str, Any]) -> str:
    """sha256 over every part that changes an answer (``ANSWER_KEYS``), each value in a canonical
    form (dict keys sorted, floats exact, tensors by dtype, shape and bytes) (hex)."""
    digest = hashlib.sha256()
    for key in ANSWER_KEYS:
        digest.update(f"<{key}>".encode())
        _digest_value(digest, ckpt.get(key))
    return digest.hexdigest()


def _digest_value(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        raw: Any = t.reshape(-1).view(torch.uint8).numpy()
        digest.update(memoryview(raw))
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for k in sorted(value, key=repr):
            digest.update(repr(k).encode())
            _digest_value(digest, value[k])
    elif isinstance(value, list | tuple):
        digest.update(f"L{len(value)}".encode())
        for v in value:
            _digest_value(digest, v)
    else:  # None, bool, int, float (repr is exact), str
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def _check_sums(path: Path, ckpt: dict[str, Any]) -> None:
    """Verify the sums a file has; list under ``"unverified"`` the answer-changing parts none covers."""
    state = ckpt["state_dict"]
    stored = ckpt.get("state_dict_sha256")
    if stored is not None and stored != state_dict_sha256(state):
        raise CheckpointError(
            f"{path} is damaged: its weights do not match the checksum stored with them (a changed bit on "
            f"disk or in a copy); use another copy of the file, or retrain (resume from last.pt if it is intact)"
        )
    content = ckpt.get("content_sha256")
    if content is not None and content != content_sha256(ckpt):
        raise CheckpointError(
            f"{path} is damaged: its class list, model settings or calibration (temperature, letter thresholds) "
            f"do not match the checksum stored with them; use another copy of the file, or recalibrate "
            f"(`python -m glyphcore calibrate`) or retrain"
        )
    covered = set(ANSWER_KEYS) if content is not None else ({"state_dict"} if stored is not None else set())
    ckpt["unverified"] = [k for k in ANSWER_KEYS if k not in covered and ckpt.get(k) is not None]


def _check_weights(path: Path, ckpt: dict[str, Any]) -> None:
    """Refuse weights that are malformed, damaged (checksum), of a type no model has, or not finite."""
    state = ckpt["state_dict"]
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise CheckpointError(
            f"{path} holds no usable weights (state_dict is {type(state).__name__}, not a dict of named tensors): "
            f"the file is damaged or was not written by glyphcore; retrain the run"
        )
    _check_sums(path, ckpt)
    for key, t in state.items():
        if not (t.is_floating_point() or (t.dtype == torch.int64 and key.endswith("num_batches_tracked"))):
            raise CheckpointError(
                f"{path} holds {key} as {str(t.dtype).replace('torch.', '')}: glyphcore models keep their weights "
                f"in floating point; the file was not written by glyphcore or was altered; retrain the run"
            )
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(
                f"{path} holds weights that are not finite (NaN or Inf in {key}): the run diverged before it was "
                f"saved; retrain with a lower learning rate"
            )
    for key in ("val_loss", "val_acc"):  # metadata the lists show: a wrong type is dropped, not trusted
        v = ckpt.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)):
            ckpt[key] = None


def _unsafe_reason(e: Exception) -> str:
    """The part of torch's weights_only refusal that says what was found, without its advice on how
    to load the file anyway (which would run the code)."""
    text = " ".join(str(e).split())
    for marker in ("Unsupported global:", "Unsupported operand", "Trying to"):
        i = text.find(marker)
        if i >= 0:
            return text[i:].split(". ")[0][:200]
    return "it needs Python classes or functions to load"
