"""Models: the registry (``create_model`` / ``list_models``), the zoo, activations, the summary.

    >>> from glyphcore.models import create_model
    >>> model = create_model("seed_cnn", num_classes=52, in_channels=1, input_size=100)
    >>> model.glyph_name, model.glyph_args["input_size"]
    ('seed_cnn', [100, 100])

Importing this package registers every model of ``glyphcore.models.zoo``. Also here:
``activation_stats`` (each activation's curves, a model's activation layers, the per-layer result type;
the measuring runs through inference, ``glyphcore.infer.activation_stats``) and ``export`` (the table
of export formats, ``FORMATS``: suffix, label, writer, loader).
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the submodule that defines it. Loaded on first use (PEP 562), so that importing
# glyphcore.cli.models for the CLI's --help does not import torch.
_EXPORTS = {
    "ACTIVATIONS": "activations",
    "ACTIVATION_NAMES": "activations",
    "Activation": "activations",
    "get_act_layer": "activations",
    "BackboneLoad": "finetune",
    "load_backbone_from_checkpoint": "finetune",
    "ModelEntry": "registry",
    "create_model": "registry",
    "rebuild_model": "registry",
    "MAX_INPUT_SIDE": "registry",
    "list_models": "registry",
    "model_entry": "registry",
    "register_model": "registry",
    "Summary": "summary",
    "SummaryRow": "summary",
    "model_summary": "summary",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'glyphcore.models' has no attribute {name!r}")
    importlib.import_module("glyphcore.models.zoo")  # registers every model of the zoo
    value = getattr(importlib.import_module(f"glyphcore.models.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "Activation",
    "BackboneLoad",
    "ModelEntry",
    "create_model",
    "get_act_layer",
    "MAX_INPUT_SIDE",
    "rebuild_model",
    "list_models",
    "load_backbone_from_checkpoint",
    "model_entry",
    "model_summary",
    "register_model",
    "Summary",
    "SummaryRow",
]
