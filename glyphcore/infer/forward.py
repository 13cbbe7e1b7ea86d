"""One batched forward pass that also hands back the inner features a caller asks for, and the
gradient pass that saliency maps rest on.

These are the mechanisms under :meth:`glyphcore.infer.Predictor.run` and
:meth:`glyphcore.infer.Predictor.gradients`, the one place that runs a model over images. Features
are named:

* ``"penultimate"``: the input of the model's last ``nn.Linear``, flattened to N x F (what the
  classifier compares: calibration's letter judgement, nearest glyphs, the embedding map); absent
  from the result for a model without a linear layer;
* ``"layer:<name>"``: the output of the sub-module of that qualified name (``"layer:features.2"``),
  N x ... as the module returns it. A module that runs k > 1 times in one forward (a shared
  activation) gives its later outputs as ``"layer:<name>#2"`` ... ``"layer:<name>#k"``.

Hooks live only for one call and write into that call's own dict; the Predictor holds its lock
around the call, so two callers sharing a model never see each other's features or gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from glyphcore.errors import ConfigError

__all__ = [
    "PENULTIMATE",
    "LAYER_PREFIX",
    "Outputs",
    "Gradients",
    "find_layer",
    "forward_with_features",
    "gradients_of",
    "last_module_of_type",
    "layer_feature",
    "run_batches",
]

PENULTIMATE = "penultimate"  # the input of the last nn.Linear
LAYER_PREFIX = "layer:"  # "layer:<qualified module name>": that module's output


@dataclass
class Outputs:
    """What one run over a batch gave.

    Attributes:
        logits: N x K float32 raw logits.
        features: feature name -> N x ... float32 tensor (see the module docstring for the names).
    """

    logits: torch.Tensor
    features: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Gradients:
    """What one gradient pass gave: the derivative of each image's ``target`` logit.

    Attributes:
        logits: N x K float32 raw logits (detached).
        targets: the class differentiated for each image (its prediction when none was named).
        input_grad: d logit / d input, N x C x H x W.
        activations: the named layer's output (N x ...), None when no layer was asked for.
        layer_grad: d logit / d that output, same shape, None likewise.
    """

    logits: torch.Tensor
    targets: list[int]
    input_grad: torch.Tensor
    activations: torch.Tensor | None = None
    layer_grad: torch.Tensor | None = None


def last_module_of_type(model: nn.Module, kind: type[nn.Module]) -> nn.Module | None:
    """The last sub-module of ``model`` (in registration order, which is forward order for the zoo)
    that is a ``kind`` (e.g. the last ``nn.Conv2d`` for Grad-CAM, the last ``nn.Linear`` whose input
    is the penultimate features); None when there is none."""
    last = None
    for m in model.modules():
        if isinstance(m, kind):
            last = m
    return last


def layer_feature(name: str) -> str:
    """The feature name of a sub-module's output: ``layer_feature("conv2") == "layer:conv2"``."""
    return f"{LAYER_PREFIX}{name}"


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module of qualified name ``name`` (``"features.2"``); ConfigError listing the layers if none."""
    modules = dict(model.named_modules())
    target = modules.get(name)
    if target is None:
        known = ", ".join(n for n in modules if n)[:300]
        raise ConfigError(f"the model has no layer {name!r}: its layers are {known}")
    return target


def _hook_for(model: nn.Module, name: str, store: dict[str, list[torch.Tensor]]) -> Any:
    """Register the hook that appends to ``store[name]``; None when the model has no such feature."""
    keep = store.setdefault(name, [])
    if name == PENULTIMATE:
        layer = last_module_of_type(model, nn.Linear)
        if layer is None:
            return None
        return layer.register_forward_pre_hook(lambda _m, args: keep.append(args[0].detach().float().flatten(1)))
    if name.startswith(LAYER_PREFIX):
        target = find_layer(model, name[len(LAYER_PREFIX) :])
        return target.register_forward_hook(lambda _m, _i, out: keep.append(out.detach().float()))
    raise ConfigError(f"unknown feature {name!r}: use {PENULTIMATE!r} or '{LAYER_PREFIX}<layer name>'")


def forward_with_features(
    model: nn.Module, x: torch.Tensor, features: Iterable[str] = (), post: Callable[[torch.Tensor], Any] | None = None
) -> Outputs:
    """One forward pass of ``model`` on the batch ``x``, keeping the named features.

    Args:
        model: the network (its mode is left as it is).
        x: its input batch.
        features: feature names (see the module docstring).
        post: applied to each feature tensor as it is kept (e.g. moving it to the CPU).

    Returns:
        :class:`Outputs`; a ``"penultimate"`` asked of a model without a linear layer is left out.

    Raises:
        ConfigError: an unknown feature name or layer.
    """
    store: dict[str, list[torch.Tensor]] = {}
    handles = []
    try:
        for name in dict.fromkeys(features):  # each name once, in the order asked
            h = _hook_for(model, name, store)
            if h is not None:
                handles.append(h)
        logits = model(x).float()
    finally:
        for h in handles:
            h.remove()
    kept: dict[str, torch.Tensor] = {}
    for name, calls in store.items():
        for i, t in enumerate(calls):
            kept[name if i == 0 else f"{name}#{i + 1}"] = post(t) if post else t
    return Outputs(logits=logits, features=kept)


def run_batches(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    features: Iterable[str] = (),
    on_batch: Callable[[Outputs], None] | None = None,
) -> Outputs:
    """Run ``model`` over input batches, keeping logits and the named features on the CPU.

    Args:
        model: the network (its mode is left as it is; the caller holds any lock it shares).
        batches: its input, one batch at a time.
        features: feature names (see the module docstring).
        on_batch: when given, called with each batch's :class:`Outputs` and the features are not
            kept (a caller that reduces them, such as activation statistics, holds one batch at a time).

    Returns:
        The logits of every batch, concatenated, and (without ``on_batch``) the features likewise.
    """
    names = list(features)
    logits: list[torch.Tensor] = []
    kept: dict[str, list[torch.Tensor]] = {}
    for x in batches:
        out = forward_with_features(model, x, names, post=lambda t: t.cpu())
        logits.append(out.logits.cpu())
        if on_batch is not None:
            on_batch(out)
            continue
        for k, v in out.features.items():
            kept.setdefault(k, []).append(v)
    if not logits:
        return Outputs(logits=torch.zeros(0, 0))
    return Outputs(logits=torch.cat(logits), features={k: torch.cat(v) for k, v in kept.items()})


def gradients_of(model: nn.Module, x: torch.Tensor, target: int | None = None, layer: str | None = None) -> Gradients:
    """One forward and backward pass of ``model`` on ``x``: the gradients of each image's ``target`` logit.

    The weights need no gradient (a predictor's are frozen): the graph starts at the input.

    Args:
        model: the network (its mode is left as it is; the caller holds any lock it shares).
        x: its input batch, N x C x H x W.
        target: the class index to differentiate for every image; None = each image's prediction.
        layer: qualified name of a sub-module whose output and its gradient to return (Grad-CAM's
            last conv layer); a module that runs several times gives its last output.

    Returns:
        :class:`Gradients`.

    Raises:
        ConfigError: an unknown layer name.
    """
    module = find_layer(model, layer) if layer is not None else None
    seen: dict[str, torch.Tensor] = {}
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        handle = module.register_forward_hook(lambda _m, _i, out: seen.update(a=out)) if module else None
        try:
            logits = model(x)
        finally:
            if handle is not None:
                handle.remove()
        if module is not None and "a" not in seen:
            raise ConfigError(f"layer {layer!r} did not run in the forward pass: name a layer the model uses")
        idx = logits.detach().argmax(dim=1) if target is None else torch.full_like(logits[:, 0], target).long()
        picked = logits.gather(1, idx[:, None]).sum()  # images are independent: one backward serves all
        wrt = [x, seen["a"]] if module is not None else [x]
        grads = torch.autograd.grad(picked, wrt, allow_unused=True)
    grads = tuple(torch.zeros_like(w) if g is None else g for w, g in zip(wrt, grads))
    return Gradients(
        logits=logits.detach().float(),
        targets=[int(i) for i in idx],
        input_grad=grads[0],
        activations=seen["a"].detach() if module is not None else None,
        layer_grad=grads[1] if module is not None else None,
    )
