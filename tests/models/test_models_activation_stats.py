"""glyphcore.models.activation_stats: activation curves and the per-layer measurements of the Activations page."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.models import ACTIVATIONS
from glyphcore.models.activation_stats import activation_curves, activation_name_of, measure_activations


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


def _net() -> nn.Sequential:
    """conv -> ReLU (2 of 4 channels dead by construction) -> linear -> Sigmoid (saturated) -> Tanh."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 5),
        nn.Sigmoid(),
        nn.Linear(5, 3),
        nn.Tanh(),
    )
    with torch.no_grad():
        net[0].weight.abs_()  # inputs are >= 0, so channels 2-3 stay positive somewhere ...
        net[0].bias[:2] = -100.0  # ... and channels 0-1 are never positive: dead
        net[3].weight.fill_(0.0)
        net[3].bias.copy_(torch.tensor([-20.0, 20.0, 0.0, -20.0, 20.0]))  # 4 of 5 outputs saturated
        net[5].weight.fill_(0.0)
        net[5].bias.copy_(torch.tensor([0.0, 5.0, -5.0]))  # tanh(+-5) = +-0.9999: 2 of 3 saturated
    return net


def test_measure_finds_dead_and_saturated_units():
    net = _net().train()
    x = torch.rand(10, 1, 8, 8)
    stats = measure_activations(net, x, bins=20, batch_size=3)  # chunks of 3: results must not depend on it
    assert [(s.layer, s.activation) for s in stats] == [("1", "relu"), ("4", "sigmoid"), ("6", "tanh")]
    relu, sig, tanh = stats
    assert relu.shape == (4, 6, 6) and relu.units == 4
    assert relu.dead_share == pytest.approx(0.5)
    assert relu.saturated_share is None and sig.dead_share is None
    assert sig.saturated_share == pytest.approx(4 / 5)
    assert tanh.saturated_share == pytest.approx(2 / 3)
    # every output value lands in exactly one bin of its layer's histogram
    assert relu.counts.sum() == 10 * 4 * 6 * 6 and len(relu.edges) == 21
    assert sig.counts.sum() == 10 * 5
    assert relu.edges[0] == pytest.approx(0.0)  # ReLU never goes below 0
    assert net.training, "the model's mode is restored"


def test_measure_does_not_depend_on_the_chunk_size():
    net = _net()
    x = torch.rand(12, 1, 8, 8)
    a = measure_activations(net, x, bins=10, batch_size=12)
    b = measure_activations(net, x, bins=10, batch_size=5)
    for sa, sb in zip(a, b):
        np.testing.assert_array_equal(sa.counts, sb.counts)
        assert sa.mean == pytest.approx(sb.mean) and sa.dead_share == sb.dead_share


def test_measure_refuses_a_model_without_table_activations():
    with pytest.raises(ConfigError, match="no activation module"):
        measure_activations(nn.Sequential(nn.Linear(2, 2)), torch.rand(3, 2))
    with pytest.raises(ConfigError, match="at least one image"):
        measure_activations(_net(), torch.rand(0, 1, 8, 8))
