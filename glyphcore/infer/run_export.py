"""A run's checkpoint into an export file: the run-level side of :mod:`glyphcore.models.export`
(which holds the format table), here because finding and loading a run's checkpoint is inference's job."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from glyphcore.errors import RunError
from glyphcore.infer.predictor import checkpoint_path, load_predictor
from glyphcore.models.export import default_export_path, export_model, require_packages

__all__ = ["export_run", "fresh_export"]


def export_run(
    run_ref: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike | None = None,
    which: str = "best",
    *,
    overwrite: bool = False,
) -> Path:
    """Export a run's checkpoint.

    Args:
        run_ref: a run id, a run folder, ``"starter"``, or a ``.pt`` checkpoint.
        fmt: ``"onnx"``, ``"pt2"`` or ``"safetensors"``.
        out: the file to write; default :func:`default_export_path` (``<run>/export/<run>-<which>.<ext>``).
        which: ``"best"`` or ``"last"`` checkpoint of the run.
        overwrite: replace an existing file.

    Returns:
        The path written.

    Raises:
        ConfigError: an unknown format or ``which``, or the format's packages are missing.
        RunError: no such run, or ``out`` exists and ``overwrite`` is False.
        CheckpointError: no such checkpoint, or one that cannot be rebuilt.
    """
    require_packages(fmt)  # before loading anything: a missing package is the first thing to say
    ckpt = checkpoint_path(run_ref, which)
    target = Path(out) if out is not None else default_export_path(ckpt, fmt)
    if target.exists() and not overwrite:  # also checked in export_model; here before the model loads
        raise RunError(f"{target} exists: pass --overwrite (overwrite=True) to replace it, or --out to write elsewhere")
    return export_model(load_predictor(ckpt, device="cpu"), fmt, target, overwrite=overwrite)


def fresh_export(run_ref: str | os.PathLike, fmt: str, which: str = "best") -> Path:
    """The default export of a run's checkpoint, written only when missing or older than the checkpoint.

    The app's download buttons call this on every click: an export file at least as new as its
    checkpoint (by modification time) is reused; a checkpoint saved since (training went on) is
    exported again over the old file.
    """
    ckpt = checkpoint_path(run_ref, which)
    target = default_export_path(ckpt, fmt)
    with contextlib.suppress(FileNotFoundError):
        if target.stat().st_mtime_ns >= ckpt.stat().st_mtime_ns:
            return target
    return export_run(ckpt, fmt, target, overwrite=True)
