"""Models: the registry (``create_model`` / ``list_models``), the zoo, activations, the summary.

    >>> from glyphcore.models import create_model
    >>> model = create_model("seed_cnn", num_classes=52, in_channels=1, input_size=100)
    >>> model.glyph_name, model.glyph_args["input_size"]
    ('seed_cnn', [100, 100])

Importing this package registers every model of ``glyphcore.models.zoo``.
"""

from __future__ import annotations

from glyphcore.models import zoo as _zoo  # noqa: F401  (registers the zoo)
from glyphcore.models.activations import ACTIVATION_NAMES, ACTIVATIONS, Activation, get_act_layer
from glyphcore.models.finetune import BackboneLoad, load_backbone_from_checkpoint
from glyphcore.models.registry import (
    ModelEntry,
    create_model,
    list_models,
    model_entry,
    register_model,
)
from glyphcore.models.summary import Summary, SummaryRow, model_summary

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "Activation",
    "BackboneLoad",
    "ModelEntry",
    "create_model",
    "get_act_layer",
    "list_models",
    "load_backbone_from_checkpoint",
    "model_entry",
    "model_summary",
    "register_model",
    "Summary",
    "SummaryRow",
]
