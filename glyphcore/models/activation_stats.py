"""Activation functions, drawn and measured: the engine of the app's Activations page.

Two things live here:

* ``activation_curves``: f(x) and f'(x) of every activation in ``glyphcore.models.activations``,
  sampled on a grid. The derivative comes from autograd through the very ``nn.Module`` the models
  use, so the curve shows what training sees, not a re-typed formula.
* ``measure_activations``: forward hooks on every activation layer of a model while it classifies a
  batch, giving per-layer histograms of the outputs, the share of dead units (ReLU family: a unit
  that is never positive over the batch passes no gradient) and the share of saturated outputs
  (Sigmoid above 0.99 or below 0.01, Tanh with |y| above 0.99: the gradient there is nearly zero).

A "unit" is a channel of a conv layer's output (N x C x H x W: one feature map, all positions) or
a feature of a linear layer's output (N x F).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.models.activations import ACTIVATIONS

__all__ = [
    "SIGMOID_SATURATION",
    "TANH_SATURATION",
    "ActivationCurve",
    "LayerActivationStats",
    "activation_curves",
    "activation_name_of",
    "measure_activations",
    "measure_run_activations",
]

# Thresholds of "saturated": where the derivative has fallen below about 1% of its peak.
SIGMOID_SATURATION = 0.01  # y < 0.01 or y > 0.99
TANH_SATURATION = 0.99  # |y| > 0.99

# Activations whose units can die (never positive -> zero or tiny gradient for every input).
_DEAD_FAMILY = ("relu", "leaky_relu")
_SATURATING = ("sigmoid", "tanh")


@dataclass(frozen=True)
class ActivationCurve:
    """f(x) and f'(x) of one activation on a grid.

    Attributes:
        name: the activation's name in ``ACTIVATIONS``.
        x: float64 array of grid points, shape (P,).
        y: f(x), shape (P,).
        dy: f'(x) from autograd, shape (P,).
        formula: f(x) in LaTeX.
        derivative: f'(x) in LaTeX.
        description: one line for the page.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    dy: np.ndarray
    formula: str
    derivative: str
    description: str


@dataclass(frozen=True)
class LayerActivationStats:
    """What one activation layer produced over a batch.

    Attributes:
        layer: the module's qualified name in the model (``features.2``).
        activation: the activation's name in ``ACTIVATIONS`` (``relu``, ``silu``...).
        shape: the output shape of one image, e.g. (32, 100, 100).
        units: number of units (channels, or features for a flat output).
        counts: histogram counts of every output value, shape (bins,).
        edges: histogram bin edges, shape (bins + 1,).
        mean: mean output.
        std: standard deviation of the outputs.
        dead_share: ReLU family only (else None): share of units never positive over the batch.
        saturated_share: Sigmoid and Tanh only (else None): share of outputs in the saturated zone.
    """

    layer: str
    activation: str
    shape: tuple[int, ...]
    units: int
    counts: np.ndarray
    edges: np.ndarray
    mean: float
    std: float
    dead_share: float | None
    saturated_share: float | None


def activation_curves(
    names: Iterable[str] | None = None,
    x_min: float = -5.0,
    x_max: float = 5.0,
    points: int = 401,
) -> list[ActivationCurve]:
    """Sample f(x) and f'(x) of activations from the table.

    Args:
        names: activation names (default: all of ``ACTIVATIONS``, in menu order).
        x_min: left end of the grid.
        x_max: right end of the grid.
        points: number of grid points (at least 2).

    Returns:
        One ``ActivationCurve`` per name, in the order asked.

    Raises:
        ConfigError: an unknown name, or an empty or reversed grid.
    """
    names = list(ACTIVATIONS) if names is None else list(names)
    unknown = [n for n in names if n not in ACTIVATIONS]
    if unknown:
        raise ConfigError(f"unknown activation {', '.join(map(repr, unknown))}: choose from {', '.join(ACTIVATIONS)}")
    if not (x_max > x_min) or points < 2:
        raise ConfigError(f"the grid needs x_max > x_min and at least 2 points, got [{x_min}, {x_max}] x {points}")
    curves = []
    for name in names:
        row = ACTIVATIONS[name]
        x = torch.linspace(x_min, x_max, points, dtype=torch.float64, requires_grad=True)
        y = row.layer()(x)
        (dy,) = torch.autograd.grad(y.sum(), x)  # elementwise f, so d(sum f)/dx_i = f'(x_i)
        curves.append(
            ActivationCurve(
                name=name,
                x=x.detach().numpy(),
                y=y.detach().numpy(),
                dy=dy.numpy(),
                formula=row.formula,
                derivative=row.derivative,
                description=row.description,
            )
        )
    return curves


def activation_name_of(module: nn.Module) -> str | None:
    """The table name of an activation module (``nn.ReLU()`` -> ``"relu"``), None for other modules."""
    for name, row in ACTIVATIONS.items():
        if type(module) is row.layer:
            return name
    return None


@torch.no_grad()
def measure_activations(
    model: nn.Module,
    images: torch.Tensor,
    *,
    bins: int = 60,
    batch_size: int = 128,
) -> list[LayerActivationStats]:
    """Run ``images`` through ``model`` and measure the output of every activation layer.

    The model is put in eval mode for the measurement (BatchNorm uses its running statistics, as at
    prediction time) and restored to its previous mode afterwards. Histograms span each layer's own
    min..max over the whole batch, so a first pass finds the range and a second pass counts; both
    passes go chunk by chunk, so memory stays at one chunk's activations.

    Args:
        model: any ``nn.Module`` whose activations are modules from the table (functional calls
            such as ``F.relu`` are invisible to hooks and are not measured).
        images: the model's input, float N x C x H x W, already scaled as the model expects.
        bins: histogram bins per layer.
        batch_size: images per forward pass.

    Returns:
        One ``LayerActivationStats`` per activation module, in the order they ran. A module used
        twice in one forward (a shared ``act`` attribute) is measured over all its calls.

    Raises:
        ConfigError: the model has no activation module from the table, or the batch is empty.
    """
    if images.shape[0] == 0:
        raise ConfigError("measure_activations needs at least one image")
    layers = [(n, m, activation_name_of(m)) for n, m in model.named_modules()]
    layers = [(n, m, a) for n, m, a in layers if a is not None]
    if not layers:
        raise ConfigError(
            f"{type(model).__name__} has no activation module from the table "
            f"({', '.join(ACTIVATIONS)}); nothing to measure"
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()

    # Per layer accumulators (float64 on the CPU: a handful of numbers per unit).
    acc: dict[str, dict] = {
        n: {
            "min": float("inf"),
            "max": float("-inf"),
            "sum": 0.0,
            "sq": 0.0,
            "n": 0,
            "unit_max": None,
            "saturated": 0,
            "counts": None,
            "shape": None,
        }
        for n, _, _ in layers
    }
    act_of = {n: a for n, _, a in layers}
    phase = {"pass": 1}

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs, output: torch.Tensor) -> None:
            y = output.detach().float()
            a = acc[name]
            a["shape"] = tuple(y.shape[1:])
            if phase["pass"] == 1:
                a["min"] = min(a["min"], float(y.min()))
                a["max"] = max(a["max"], float(y.max()))
                a["sum"] += float(y.sum(dtype=torch.float64))
                a["sq"] += float((y.double() ** 2).sum())
                a["n"] += y.numel()
                # max over the batch and all positions, per unit (channel dim 1)
                per_unit = y.transpose(0, 1).reshape(y.shape[1], -1).amax(dim=1).double().cpu()
                a["unit_max"] = per_unit if a["unit_max"] is None else torch.maximum(a["unit_max"], per_unit)
                kind = act_of[name]
                if kind == "sigmoid":
                    a["saturated"] += int(((y < SIGMOID_SATURATION) | (y > 1 - SIGMOID_SATURATION)).sum())
                elif kind == "tanh":
                    a["saturated"] += int((y.abs() > TANH_SATURATION).sum())
            else:
                lo, hi = a["min"], a["max"]
                if hi <= lo:  # a constant layer: give the single value a visible bin
                    lo, hi = lo - 0.5, hi + 0.5
                c = torch.histc(y.cpu(), bins=bins, min=lo, max=hi).double()
                a["counts"] = c if a["counts"] is None else a["counts"] + c

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m, _ in layers]
    try:
        for phase["pass"] in (1, 2):
            for start in range(0, images.shape[0], batch_size):
                model(images[start : start + batch_size].to(device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    stats = []
    for name, _, kind in layers:
        a = acc[name]
        if a["n"] == 0:  # defined but never called in forward
            continue
        lo, hi = a["min"], a["max"]
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        mean = a["sum"] / a["n"]
        var = max(a["sq"] / a["n"] - mean * mean, 0.0)
        units = int(a["unit_max"].numel())
        stats.append(
            LayerActivationStats(
                layer=name,
                activation=kind or "",
                shape=a["shape"],
                units=units,
                counts=a["counts"].numpy(),
                edges=np.linspace(lo, hi, bins + 1),
                mean=mean,
                std=var**0.5,
                dead_share=float((a["unit_max"] <= 0).sum()) / units if kind in _DEAD_FAMILY else None,
                saturated_share=a["saturated"] / a["n"] if kind in _SATURATING else None,
            )
        )
    return stats


def measure_run_activations(
    run_ref: str | os.PathLike,
    *,
    n_images: int = 256,
    split: str = "valid",
    which: str = "best",
    seed: int = 0,
    bins: int = 60,
) -> list[LayerActivationStats]:
    """Measure a trained run's activations over a random batch of its data set's glyphs.

    Args:
        run_ref: a run id, a run folder, ``"starter"`` or a ``.pt`` checkpoint.
        n_images: how many images of the split to send through (fewer when the split is smaller).
        split: the split to draw them from; a source without it falls back to "test", then to
            its first split.
        which: "best" or "last" checkpoint.
        seed: which images are drawn.
        bins: histogram bins per layer.

    Returns:
        See :func:`measure_activations`.

    Raises:
        RunError, CheckpointError: no such run, or no checkpoint yet.
        DataError: the run's data set is not on this machine (the message says how to build it).
        ConfigError: the model has no activation module from the table.
    """
    from glyphcore.data import list_splits, load_dataset
    from glyphcore.infer import frame_to_tensor, load_predictor

    predictor = load_predictor(run_ref, which)
    source = predictor.data_source
    splits = list_splits(source)
    if split not in splits:
        split = "test" if "test" in splits else splits[0]
    data = load_dataset(source, split)
    rng = np.random.default_rng(seed)
    n = min(int(n_images), len(data))
    idx = np.sort(rng.choice(len(data), size=n, replace=False))
    images = np.asarray(data.images[idx])  # N x C x H x W uint8 (reads only the chosen rows of a memmap)
    x = frame_to_tensor(images, predictor.input_size, predictor.in_channels)
    return measure_activations(predictor.model, x, bins=bins)
