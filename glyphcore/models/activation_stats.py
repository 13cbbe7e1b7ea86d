"""Activation functions, drawn, and what a measurement of one layer holds: the Activations page's model side.

* ``activation_curves``: f(x) and f'(x) of every activation in ``glyphcore.models.activations``,
  sampled on a grid. The derivative comes from autograd through the very ``nn.Module`` the models
  use, so the curve shows what training sees, not a re-typed formula.
* ``activation_layers``: the activation modules of a model, with their table names;
* ``LayerActivationStats``: per-layer histograms of the outputs, the share of dead units (ReLU
  family: a unit that is never positive over the batch passes no gradient) and the share of
  saturated outputs (Sigmoid above 0.99 or below 0.01, Tanh with |y| above 0.99: the gradient there
  is nearly zero). :mod:`glyphcore.infer.activation_stats` measures them through the one batched
  forward pass of inference.

A "unit" is a channel of a conv layer's output (N x C x H x W: one feature map, all positions) or
a feature of a linear layer's output (N x F).
"""

from __future__ import annotations

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
    "DEAD_FAMILY",
    "SATURATING",
    "activation_layers",
    "activation_name_of",
]

# Thresholds of "saturated": where the derivative has fallen below about 1% of its peak.
SIGMOID_SATURATION = 0.01  # y < 0.01 or y > 0.99
TANH_SATURATION = 0.99  # |y| > 0.99

# Activations whose units can die (never positive -> zero or tiny gradient for every input).
DEAD_FAMILY = ("relu", "leaky_relu")
SATURATING = ("sigmoid", "tanh")


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


def activation_layers(model: nn.Module) -> list[tuple[str, str]]:
    """(qualified module name, activation table name) of every activation module of ``model``, in
    registration order (functional calls such as ``F.relu`` are not modules and are not listed)."""
    found = [(n, activation_name_of(m)) for n, m in model.named_modules()]
    return [(n, a) for n, a in found if a is not None]
