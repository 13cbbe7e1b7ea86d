"""A run's model out of glyphcore: ONNX, ``torch.export`` (.pt2) and safetensors files.

The ``.pt`` checkpoint stays the native format (it also holds the training config and, in last.pt,
the resume point); an export holds the weights in a form other tools read, plus the same
self-description as metadata (one dict, :func:`export_metadata`, in every format)::

    path = export_run("starter", "onnx")   # checkpoints/starter/export/starter-best.onnx

What each format holds (input ``image``: float32 N x C x H x W in [0, 1], white glyph on black, as
``glyphcore.infer.frame_to_tensor`` makes it; output ``logits``: float32 N x num_classes; N is free):

- ``onnx``: the graph and weights (opset :data:`ONNX_OPSET`, from ``torch.export`` through the
  dynamo exporter), the metadata in the model's ``metadata_props``;
- ``pt2``: ``torch.export.save`` of the ``ExportedProgram`` (``torch.export.load`` runs it without
  glyphcore), the metadata as the extra file ``glyphcore.json``;
- ``safetensors``: the state_dict and the metadata (string values, JSON where structured), enough
  to rebuild the model with ``glyphcore.models.create_model(model_name, **model_args)``.

Models are rebuilt with ``glyphcore.infer.load_predictor``, which never downloads. The packages of
ONNX and safetensors are an optional extra (``pip install glyph-explorer[export]``), imported only
when that format is asked for.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glyphcore.errors import ConfigError, RunError

if TYPE_CHECKING:
    import torch

    from glyphcore.infer.predictor import Predictor

__all__ = [
    "EXPORT_DIR",
    "FORMATS",
    "INSTALL_HINT",
    "METADATA_FORMAT",
    "ONNX_OPSET",
    "default_export_path",
    "export_metadata",
    "export_model",
    "export_run",
    "fresh_export",
    "missing_packages",
]

# Format name -> file extension. The checkpoint (.pt) is the native format and not listed.
FORMATS: dict[str, str] = {"onnx": ".onnx", "pt2": ".pt2", "safetensors": ".safetensors"}
# Format -> the importable packages it needs beyond torch (the "export" extra of pyproject.toml).
REQUIRES: dict[str, tuple[str, ...]] = {"onnx": ("onnx", "onnxscript"), "pt2": (), "safetensors": ("safetensors",)}
EXPORT_DIR = "export"  # sub-folder of a run folder that default exports go to
ONNX_OPSET = 18  # the dynamo exporter's own opset; onnxruntime >= 1.14 runs it
METADATA_FORMAT = "glyphcore.export/1"
INSTALL_HINT = "pip install glyph-explorer[export]"
INPUT_NAME, OUTPUT_NAME = "image", "logits"
PT2_METADATA_FILE = "glyphcore.json"  # the extra file of a .pt2 that holds the metadata
EXAMPLE_BATCH = 2  # images in the example input; torch.export specialises a batch of 1
# One export at a time per process: the app's download buttons run on server threads, and the ONNX
# exporter's stdout redirection (process-wide) must not interleave with another's.
_EXPORT_LOCK = threading.Lock()


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        hint = " (the .pt checkpoint is the native format: copy best.pt itself)" if fmt in ("pt", "pth") else ""
        raise ConfigError(f"unknown export format {fmt!r}{hint}; choose one of {', '.join(FORMATS)}")
    return fmt


def missing_packages(fmt: str) -> list[str]:
    """The packages format ``fmt`` needs that are not installed (empty when it can be written).

    Raises:
        ConfigError: an unknown format.
    """
    return [p for p in REQUIRES[_check_format(fmt)] if importlib.util.find_spec(p) is None]


def _require(fmt: str) -> None:
    missing = missing_packages(fmt)
    if missing:
        raise ConfigError(
            f"{fmt} export needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed: {INSTALL_HINT}"
        )


def export_metadata(predictor: Predictor) -> dict[str, str]:
    """What an exported file says about itself: string keys and values (JSON where structured).

    Keys: format, model_name, model_args (JSON), classes (JSON list, label i <-> classes[i]),
    frame (JSON, ``null`` for non-glyph data), input, output, run, checkpoint (best.pt / last.pt),
    epoch, val_loss, val_acc, versions (JSON), temperature (JSON number: the calibrated probabilities
    are ``softmax(logits / temperature)``; 1.0 for an uncalibrated checkpoint).
    """
    ck = predictor.checkpoint
    c, (h, w) = predictor.in_channels, predictor.input_size
    return {
        "format": METADATA_FORMAT,
        "model_name": str(ck["model_name"]),
        "model_args": json.dumps(ck["model_args"], sort_keys=True),
        "classes": json.dumps(list(predictor.classes)),
        "frame": json.dumps(ck.get("frame")),
        "input": f"{INPUT_NAME}: float32 N x {c} x {h} x {w} in [0, 1] (uint8 / 255), white glyph on black",
        "output": f"{OUTPUT_NAME}: float32 N x {len(predictor.classes)} (softmax(logits / temperature) gives the "
        f"calibrated probabilities)",
        "run": predictor.path.parent.name,
        "checkpoint": predictor.path.name,
        "epoch": json.dumps(ck.get("epoch")),
        "val_loss": json.dumps(ck.get("val_loss")),
        "val_acc": json.dumps(ck.get("val_acc")),
        "versions": json.dumps(ck.get("versions") or {}, sort_keys=True),
        "temperature": json.dumps(float(getattr(predictor, "temperature", 1.0))),
    }


def default_export_path(checkpoint: str | os.PathLike, fmt: str) -> Path:
    """``<run folder>/export/<run>-<best|last>.<ext>`` for a run's checkpoint file."""
    ckpt = Path(checkpoint)
    return ckpt.parent / EXPORT_DIR / f"{ckpt.parent.name}-{ckpt.stem}{FORMATS[_check_format(fmt)]}"


def _plain_model(predictor: Predictor) -> torch.nn.Module:
    """The predictor's model on the CPU in the default memory layout (exports store plain weights)."""
    import torch

    return predictor.model.cpu().to(memory_format=torch.contiguous_format).eval()


def _export_inputs(predictor: Predictor) -> tuple[torch.nn.Module, tuple[torch.Tensor], tuple[dict]]:
    """(plain model, example input, dynamic shapes) for the exporters: the batch dimension is free."""
    import torch

    c, (h, w) = predictor.in_channels, predictor.input_size
    batch = torch.export.Dim("batch", min=1)
    return _plain_model(predictor), (torch.zeros(EXAMPLE_BATCH, c, h, w),), ({0: batch},)


def _write_onnx(predictor: Predictor, meta: dict[str, str], tmp: Path) -> None:
    import torch

    model, example, shapes = _export_inputs(predictor)
    # The exporter prints its progress on stdout; a command's output is the file it wrote.
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        onnx_program = torch.onnx.export(
            model,
            example,
            dynamo=True,
            dynamic_shapes=shapes,
            opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            optimize=True,
            verbose=False,
        )
    assert onnx_program is not None  # dynamo=True without a file always returns the program
    onnx_program.model.metadata_props.update(meta)
    onnx_program.save(tmp, external_data=False)


def _write_pt2(predictor: Predictor, meta: dict[str, str], tmp: Path) -> None:
    import torch

    model, example, shapes = _export_inputs(predictor)
    with torch.no_grad():
        program = torch.export.export(model, example, dynamic_shapes=shapes, strict=False)
    torch.export.save(program, tmp, extra_files={PT2_METADATA_FILE: json.dumps(meta)})


def _write_safetensors(predictor: Predictor, meta: dict[str, str], tmp: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in _plain_model(predictor).state_dict().items()}
    save_file(state, str(tmp), metadata=meta)


_WRITERS: dict[str, Callable[[Any, dict[str, str], Path], None]] = {
    "onnx": _write_onnx,
    "pt2": _write_pt2,
    "safetensors": _write_safetensors,
}


def export_model(predictor: Predictor, fmt: str, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``predictor``'s model to ``out`` in format ``fmt``; the file appears complete or not at all.

    Args:
        predictor: from ``glyphcore.infer.load_predictor`` (its model is moved to the CPU).
        fmt: one of :data:`FORMATS`.
        out: the file to write (its folder is created).
        overwrite: replace an existing file.

    Returns:
        The path written.

    Raises:
        ConfigError: an unknown format, or its packages are not installed.
        RunError: ``out`` exists and ``overwrite`` is False.
    """
    _require(fmt)
    out = Path(out)
    if out.exists() and not overwrite:
        raise RunError(f"{out} exists: pass --overwrite (overwrite=True) to replace it, or --out to write elsewhere")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target, then renamed over it: a failed export leaves no half file. The
    # temporary name keeps the extension (torch.export.save expects .pt2) and is unique per thread.
    tmp = out.with_name(f".{out.stem}.{os.getpid()}-{threading.get_ident()}.tmp{out.suffix}")
    try:
        with _EXPORT_LOCK:
            _WRITERS[fmt](predictor, export_metadata(predictor), tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return out


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
    from glyphcore.infer.predictor import checkpoint_path, load_predictor

    _require(fmt)  # before loading anything: a missing package is the first thing to say
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
    from glyphcore.infer.predictor import checkpoint_path

    ckpt = checkpoint_path(run_ref, which)
    target = default_export_path(ckpt, fmt)
    with contextlib.suppress(FileNotFoundError):
        if target.stat().st_mtime_ns >= ckpt.stat().st_mtime_ns:
            return target
    return export_run(ckpt, fmt, target, overwrite=True)
