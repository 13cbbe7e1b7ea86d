"""Models: the registry (``create_model`` / ``list_models``), the zoo, activations, the summary.

    >>> from glyphcore.models import create_model
    >>> model = create_model("seed_cnn", num_classes=52, in_channels=1, input_size=100)
    >>> model.glyph_name, model.glyph_args["input_size"]
    ('seed_cnn', [100, 100])

Importing this package registers every model: the reports' (``zoo``), the MNIST and CIFAR reports'
(``classic``) and torchvision's ImageNet classifiers for transfer learning (``transfer``), in that order.
Also here: ``activation_stats`` (each activation's curves, a model's activation layers, the per-layer
result type; the measuring runs through inference, ``glyphcore.infer.activation_stats``) and ``export``
(the table of export formats, ``FORMATS``: suffix, label, writer, loader).
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
    "IMAGENET_WEIGHTS": "imagenet",
    "WeightsFile": "imagenet",
    "cached_weights": "imagenet",
    "download_weights": "imagenet",
    "weights_file": "imagenet",
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
    "TRANSFER_ARCHS": "transfer",
    "param_groups": "transfer",
}

# The modules whose import registers models, in registration order (the report's seed_cnn first).
_ZOO_MODULES = ("zoo", "classic", "transfer")


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'glyphcore.models' has no attribute {name!r}")
    for module in _ZOO_MODULES:  # registers every model
        importlib.import_module(f"glyphcore.models.{module}")
    value = getattr(importlib.import_module(f"glyphcore.models.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "Activation",
    "BackboneLoad",
    "IMAGENET_WEIGHTS",
    "ModelEntry",
    "TRANSFER_ARCHS",
    "WeightsFile",
    "cached_weights",
    "download_weights",
    "param_groups",
    "weights_file",
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
