"""glyphcore.models.activation_stats: activation curves and the activation layers of a model."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.models import ACTIVATIONS
from glyphcore.models.activation_stats import activation_curves, activation_layers, activation_name_of


def test_curves_cover_the_table_with_autograd_derivatives():
    curves = activation_curves(x_min=-3, x_max=3, points=61)
    assert [c.name for c in curves] == list(ACTIVATIONS)
    by = {c.name: c for c in curves}
    x = by["relu"].x
    assert x[0] == -3 and x[-1] == 3 and len(x) == 61
    np.testing.assert_allclose(by["relu"].y, np.maximum(0, x))
    np.testing.assert_allclose(by["relu"].dy, (x > 0).astype(float))
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(by["sigmoid"].dy, s * (1 - s), rtol=1e-6)
    np.testing.assert_allclose(by["tanh"].dy, 1 - np.tanh(x) ** 2, rtol=1e-6)
    np.testing.assert_allclose(by["silu"].dy, s * (1 + x * (1 - s)), rtol=1e-6)  # the formula the page shows
    np.testing.assert_allclose(by["leaky_relu"].dy, np.where(x > 0, 1.0, 0.01))
    assert by["silu"].formula == ACTIVATIONS["silu"].formula and by["silu"].derivative


def test_curves_refuse_unknown_names_and_empty_grids():
    with pytest.raises(ConfigError, match="swish.*choose from"):
        activation_curves(["swish"])
    with pytest.raises(ConfigError, match="x_max > x_min"):
        activation_curves(x_min=1, x_max=1)


def test_activation_name_of_modules():
    assert activation_name_of(nn.ReLU()) == "relu"
    assert activation_name_of(nn.SiLU()) == "silu"
    assert activation_name_of(nn.Linear(2, 2)) is None


def test_activation_layers_lists_the_table_modules_in_order():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.Tanh(), nn.Flatten())
    assert activation_layers(net) == [("1", "relu"), ("3", "tanh")]
