"""A run's model out of glyphcore: ONNX, ``torch.export`` (.pt2) and safetensors files.

The ``.pt`` checkpoint stays the native format (it also holds the training config and, in last.pt,
the resume point); an export holds the weights in a form other tools read, plus the same
self-description as metadata (one dict, :func:`export_metadata`, in every format)::

    path = export_run("starter", "onnx")   # glyphcore.infer.run_export: checkpoints/starter/export/starter-best.onnx
    logits_of, meta = FORMATS["onnx"].load(path)   # the file run by its own runtime, and what it says

What each format holds (input ``image``: float32 N x C x H x W in [0, 1], white glyph on black, as
``glyphcore.infer.frame_to_tensor`` makes it; output ``logits``: float32 N x num_classes; N is free):

- ``onnx``: the graph and weights (opset :data:`ONNX_OPSET`, from ``torch.export`` through the
  dynamo exporter), the metadata in the model's ``metadata_props``;
- ``pt2``: ``torch.export.save`` of the ``ExportedProgram`` (``torch.export.load`` runs it without
  glyphcore), the metadata as the extra file ``glyphcore.json``;
- ``safetensors``: the state_dict and the metadata (string values, JSON where structured), enough
  to rebuild the model with ``glyphcore.models.create_model(model_name, **model_args)``.

:data:`FORMATS` is the table: one :class:`ExportFormat` row per format (suffix, label, packages,
writer, loader); the Runs page's download buttons and ``glyphcore export --format`` read it, so a new
format is one row here plus its test. The packages of ONNX and safetensors are an optional extra
(``pip install glyph-explorer[export]``), imported only when that format is asked for.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from glyphcore.errors import ConfigError, RunError

if TYPE_CHECKING:
    import torch

__all__ = [
    "EXPORT_DIR",
    "Exportable",
    "ExportFormat",
    "FORMATS",
    "INSTALL_HINT",
    "METADATA_FORMAT",
    "ONNX_OPSET",
    "default_export_path",
    "export_metadata",
    "export_model",
    "missing_packages",
    "require_packages",
]

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


class Exportable(Protocol):
    """What an export reads of a loaded model (a ``glyphcore.infer.Exportable`` is one)."""

    model: Any
    classes: list[str]
    input_size: tuple[int, int]
    in_channels: int
    checkpoint: dict[str, Any]
    path: Path
    temperature: float


# What a loader gives: a function from float32 N x C x H x W input to logits, and the file's metadata.
Loaded = tuple[Callable[[np.ndarray], np.ndarray], dict[str, str]]


def _check_format(fmt: str) -> str:
    """``fmt`` when it is a row of the table, else ConfigError listing the rows."""
    if fmt not in FORMATS:
        hint = " (the .pt checkpoint is the native format: copy best.pt itself)" if fmt in ("pt", "pth") else ""
        raise ConfigError(f"unknown export format {fmt!r}{hint}; choose one of {', '.join(FORMATS)}")
    return fmt


def missing_packages(fmt: str) -> list[str]:
    """The packages format ``fmt`` needs that are not installed (empty when it can be written).

    Raises:
        ConfigError: an unknown format.
    """
    return [p for p in FORMATS[_check_format(fmt)].requires if importlib.util.find_spec(p) is None]


def require_packages(fmt: str) -> None:
    """ConfigError naming the extra to install when format ``fmt`` cannot be written here."""
    missing = missing_packages(fmt)
    if missing:
        raise ConfigError(
            f"{fmt} export needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed: {INSTALL_HINT}"
        )


def export_metadata(predictor: Exportable) -> dict[str, str]:
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
    return ckpt.parent / EXPORT_DIR / f"{ckpt.parent.name}-{ckpt.stem}{FORMATS[_check_format(fmt)].suffix}"


def _plain_model(predictor: Exportable) -> torch.nn.Module:
    """A copy of the predictor's model on the CPU in the default memory layout (exports store plain
    weights); a copy, because ``Module.cpu()`` moves in place and the predictor may be shared."""
    import copy

    import torch

    return copy.deepcopy(predictor.model).cpu().to(memory_format=torch.contiguous_format).eval()


def _export_inputs(predictor: Exportable) -> tuple[torch.nn.Module, tuple[torch.Tensor], tuple[dict]]:
    """(plain model, example input, dynamic shapes) for the exporters: the batch dimension is free."""
    import torch

    c, (h, w) = predictor.in_channels, predictor.input_size
    batch = torch.export.Dim("batch", min=1)
    return _plain_model(predictor), (torch.zeros(EXAMPLE_BATCH, c, h, w),), ({0: batch},)


def _write_onnx(predictor: Exportable, meta: dict[str, str], tmp: Path) -> None:
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


def _write_pt2(predictor: Exportable, meta: dict[str, str], tmp: Path) -> None:
    import torch

    model, example, shapes = _export_inputs(predictor)
    with torch.no_grad():
        program = torch.export.export(model, example, dynamic_shapes=shapes, strict=False)
    torch.export.save(program, tmp, extra_files={PT2_METADATA_FILE: json.dumps(meta)})


def _write_safetensors(predictor: Exportable, meta: dict[str, str], tmp: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in _plain_model(predictor).state_dict().items()}
    save_file(state, str(tmp), metadata=meta)


def _load_onnx(path: Path) -> Loaded:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = dict(session.get_modelmeta().custom_metadata_map)
    return (lambda x: session.run(None, {INPUT_NAME: np.asarray(x, np.float32)})[0]), meta


def _load_pt2(path: Path) -> Loaded:
    import torch

    extra = {PT2_METADATA_FILE: ""}
    module = torch.export.load(str(path), extra_files=extra).module()

    def logits_of(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.as_tensor(np.asarray(x, np.float32))).numpy()

    return logits_of, json.loads(extra[PT2_METADATA_FILE])


def _load_safetensors(path: Path) -> Loaded:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    from glyphcore.models.registry import create_model

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    model = create_model(meta["model_name"], **json.loads(meta["model_args"]))
    model.load_state_dict(load_file(str(path)), strict=True)
    model.eval()

    def logits_of(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(np.asarray(x, np.float32))).numpy()

    return logits_of, meta


@dataclass(frozen=True)
class ExportFormat:
    """One export format: a row of :data:`FORMATS`.

    Attributes:
        name: the ``--format`` value.
        suffix: the file extension.
        label: the name the app shows.
        requires: importable packages it needs beyond torch (the "export" extra of pyproject.toml).
        help: one line for ``glyphcore export --help``: what reads the file.
        write: ``write(model, metadata, path)`` writes the file.
        load: ``load(path) -> (logits_of, metadata)``: the file run by its own runtime.
    """

    name: str
    suffix: str
    label: str
    requires: tuple[str, ...]
    help: str
    write: Callable[[Any, dict[str, str], Path], None]
    load: Callable[[Path], Loaded]


# The export formats. The checkpoint (.pt) is the native format and not listed.
FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "onnx", ".onnx", "ONNX", ("onnx", "onnxscript"), "onnxruntime and friends", _write_onnx, _load_onnx
        ),
        ExportFormat("pt2", ".pt2", "torch.export (.pt2)", (), "torch.export.load", _write_pt2, _load_pt2),
        ExportFormat(
            "safetensors",
            ".safetensors",
            "safetensors",
            ("safetensors",),
            "weights + metadata",
            _write_safetensors,
            _load_safetensors,
        ),
    )
}


def export_model(predictor: Exportable, fmt: str, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``predictor``'s model to ``out`` in format ``fmt``; the file appears complete or not at all.

    Args:
        predictor: from ``glyphcore.infer.load_predictor`` (its model is copied, left as it is).
        fmt: one of :data:`FORMATS`.
        out: the file to write (its folder is created).
        overwrite: replace an existing file.

    Returns:
        The path written.

    Raises:
        ConfigError: an unknown format, or its packages are not installed.
        RunError: ``out`` exists and ``overwrite`` is False.
    """
    require_packages(fmt)
    out = Path(out)
    if out.exists() and not overwrite:
        raise RunError(f"{out} exists: pass --overwrite (overwrite=True) to replace it, or --out to write elsewhere")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target, then renamed over it: a failed export leaves no half file. The
    # temporary name keeps the extension (torch.export.save expects .pt2) and is unique per thread.
    tmp = out.with_name(f".{out.stem}.{os.getpid()}-{threading.get_ident()}.tmp{out.suffix}")
    try:
        with _EXPORT_LOCK:
            FORMATS[fmt].write(predictor, export_metadata(predictor), tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return out
