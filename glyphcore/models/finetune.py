"""Fine-tuning from one of our own checkpoints: copy the weights that fit, skip a head that does not.

>>> ckpt = load_checkpoint("checkpoints/<run>/best.pt")          # glyphcore.checkpoint
>>> model = create_model(ckpt["model_name"], **{**ckpt["model_args"], "num_classes": 10})
>>> load_backbone_from_checkpoint(model, ckpt)                    # all but the 52-class head
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from glyphcore.errors import CheckpointError

__all__ = ["BackboneLoad", "head_prefix", "load_backbone_from_checkpoint"]


@dataclass(frozen=True)
class BackboneLoad:
    """What ``load_backbone_from_checkpoint`` did.

    Attributes:
        loaded: state_dict keys copied from the checkpoint.
        skipped_head: head keys left as initialised (their shape differs: another class count).
    """

    loaded: list[str]
    skipped_head: list[str]


def head_prefix(model: nn.Module) -> str:
    """The qualified name of the model's head: its last ``nn.Linear`` (``classifier.fc3``, ``fc``)."""
    name = ""
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear):
            name = n
    if not name:
        raise CheckpointError(f"{type(model).__name__} has no Linear head to fine-tune")
    return name


def load_backbone_from_checkpoint(model: nn.Module, ckpt: Mapping[str, Any], strict_head: bool = False) -> BackboneLoad:
    """Copy the weights of ``ckpt`` into ``model`` in place, except a head of another class count.

    Args:
        model: a model from ``create_model`` (or any module of the same layout as the checkpoint's).
        ckpt: a glyphcore checkpoint dict (``load_checkpoint``) or a bare state_dict.
        strict_head: when True, a head whose shape differs is an error instead of being skipped.

    Returns:
        The keys loaded and the head keys skipped.

    Raises:
        CheckpointError: the checkpoint is of another model, or a non-head weight is missing or
            has another shape (another input size, width or activation layout); the message names
            the first few keys.
    """
    if "state_dict" in ckpt:
        state = ckpt["state_dict"]
        ck_name = ckpt.get("model_name")
        my_name = getattr(model, "glyph_name", None)
        if ck_name and my_name and ck_name != my_name:
            raise CheckpointError(
                f"the checkpoint holds a {ck_name} model, not {my_name}: fine-tune with model {ck_name}"
            )
    else:
        state = ckpt
    head = head_prefix(model) + "."
    own = model.state_dict()
    missing, mismatched, skipped, loaded = [], [], [], []
    for key, target in own.items():
        if key not in state:
            missing.append(key)
        elif tuple(state[key].shape) != tuple(target.shape):
            if key.startswith(head) and not strict_head:
                skipped.append(key)
            else:
                mismatched.append(f"{key} {tuple(state[key].shape)} vs {tuple(target.shape)}")
        else:
            loaded.append(key)
    if missing or mismatched:
        problems = [f"missing {k}" for k in missing[:3]] + mismatched[:3]
        raise CheckpointError(
            "the checkpoint's weights do not fit this model (" + "; ".join(problems) + "): fine-tune with the "
            "checkpoint's own model arguments (input size, channels, batchnorm); only num_classes may differ"
        )
    with torch.no_grad():
        for key in loaded:
            own[key].copy_(state[key])
    return BackboneLoad(loaded=loaded, skipped_head=skipped)
