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
      # last.pt only (the resume point):
      "optimizer": {...}, "scheduler": {...} | None, "rng": {"torch": Tensor}, "step": int,
    }

``save_checkpoint`` writes to a temporary file in the same folder and renames it over the target,
so a crash or a full disk while saving leaves the previous checkpoint valid.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from glyphcore.atomic import atomic_write
from glyphcore.errors import CheckpointError

__all__ = ["FORMAT", "REQUIRED_KEYS", "save_checkpoint", "load_checkpoint"]

FORMAT = "glyphcore.checkpoint/1"
REQUIRED_KEYS = ("format", "model_name", "model_args", "classes", "state_dict")


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
    with atomic_write(path, "wb", fsync=True) as f:
        torch.save(payload, f)
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
            f"(weights_only load failed: {str(e).splitlines()[0][:200]}). Only glyphcore checkpoints "
            f"(plain tensors and values) are loaded; re-export the weights with glyphcore."
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
    return ckpt
