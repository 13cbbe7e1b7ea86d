"""glyphcore.infer.activation_stats: the per-layer measurements of the Activations page."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.infer.activation_stats import measure_activations


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


def test_a_shared_activation_is_measured_over_all_its_calls():
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.act = nn.Linear(4, 4), nn.Linear(4, 2), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.act(self.a(x))).relu() + self.act(x).sum(1, keepdim=True)

    (stats,) = measure_activations(Shared(), torch.randn(6, 4), bins=8)
    assert stats.layer == "act" and stats.counts.sum() == 6 * 4 * 2  # two calls of 6 x 4 outputs each
