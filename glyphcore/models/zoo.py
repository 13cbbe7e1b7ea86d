"""The model zoo: the glyph reports' models, each reproducing its source.

All builders take ``(num_classes, in_channels, input_size=(H, W), act_layer, batchnorm, dropout)``
plus their own options (see ``glyphcore.models.registry``). Layers are named (``features.conv1``,
``classifier.fc1``) rather than numbered where the source had few layers, so the state_dict keys do
not shift when optional Dropout or BatchNorm layers come and go. Dropout (when > 0) goes before each
fully connected layer of the classifier. Flattening uses ``flatten`` (never ``view``) so that
channels_last inputs work; the GRU runs in float32 outside autocast (see ``CRNN``).

The MNIST and CIFAR reports' models live in ``glyphcore.models.classic``, torchvision's ImageNet
classifiers for transfer learning in ``glyphcore.models.transfer``; importing ``glyphcore.models``
registers all three, in this order. Parameter counts of the sources, checked by
tests/models/test_models.py:

=========  ==================  ========  ==========
model      input               classes   parameters
=========  ==================  ========  ==========
seed_cnn   1x100x100           52        702,948
deep_cnn   1x100x100           52        1,031,252 (our layout of the second report's 7-conv CNN)
quick_cnn  1x100x100           52        627,284 (623,172 at the quick preset's widths 8-16-32, fc 512)
crnn       1x100x100           52        690,036 (GRU width 128)
=========  ==================  ========  ==========
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.models.layers import Act, check_sides, conv_out, fc_with_dropout
from glyphcore.models.registry import register_model

__all__ = ["SeedCNN", "QuickCNN", "CRNN"]


# --------------------------------------------------------------------------------------------
# seed_cnn: the report's model
# --------------------------------------------------------------------------------------------


def _seed_side(n: int) -> int:
    n = conv_out(n, 10, 2, 2) // 2  # conv1 k10 s2 p2, maxpool 2
    n = conv_out(n, 5, 1, 2) // 2  # conv2 k5 p2 (same), maxpool 2
    return conv_out(n, 5, 1, 2) // 2  # conv3 k5 p2 (same), maxpool 2


class SeedCNN(nn.Module):
    """The report's 3-conv BatchNorm CNN (702,948 parameters at 1x100x100, 52 classes).

    At 1x100x100 the feature maps are 16x48x48 -> pool 16x24x24 -> 32x24x24 -> pool 32x12x12 ->
    32x12x12 -> pool 32x6x6 = 1152 features. The fc input is computed from ``input_size``, so
    other sizes (>= 20 px) work with a different parameter count.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        input_size: tuple[int, int],
        act_layer: Act,
        batchnorm: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        h, w = check_sides("seed_cnn", input_size, _seed_side, "a stride-2 10x10 convolution and three 2x2 max-pools")

        def block(i: int, cin: int, cout: int, k: int, s: int, p: int) -> list[tuple[str, nn.Module]]:
            layers: list[tuple[str, nn.Module]] = [(f"conv{i}", nn.Conv2d(cin, cout, k, s, p))]
            if batchnorm:
                layers.append((f"bn{i}", nn.BatchNorm2d(cout)))
            layers += [(f"act{i}", act_layer()), (f"pool{i}", nn.MaxPool2d(2))]
            return layers

        self.features = nn.Sequential(
            OrderedDict(
                block(1, in_channels, 16, 10, 2, 2)
                + block(2, 16, 32, 5, 1, 2)
                + block(3, 32, 32, 5, 1, 2)
                + [("act4", act_layer())]  # the report applies the activation once more after the last pool
            )
        )
        fc = fc_with_dropout(dropout)
        self.classifier = nn.Sequential(
            OrderedDict(
                [("flatten", nn.Flatten())]
                + fc(1, 32 * h * w, 512)
                + [("act", act_layer())]
                # the report squashes the second hidden layer with a sigmoid whatever the chosen activation
                + fc(2, 512, 128)
                + [("sigmoid", nn.Sigmoid())]
                + fc(3, 128, num_classes)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x C x H x W float -> N x num_classes logits."""
        return self.classifier(self.features(x))


@register_model(default_input=(1, 100, 100), default_classes=52)
def seed_cnn(
    *, num_classes: int, in_channels: int, input_size: tuple[int, int], act_layer: Act, batchnorm: bool, dropout: float
) -> nn.Module:
    """The report's 3-conv BatchNorm CNN: 702,948 parameters at 1x100x100 with 52 classes."""
    return SeedCNN(
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=input_size,
        act_layer=act_layer,
        batchnorm=batchnorm,
        dropout=dropout,
    )


# --------------------------------------------------------------------------------------------
# deep_cnn: the second report's 7-conv SiLU CNN
# --------------------------------------------------------------------------------------------

# (out_channels, max-pool after?) for the seven 3x3 "same" convolutions
_DEEP_LAYOUT = ((32, False), (32, True), (64, False), (64, True), (128, False), (128, True), (128, True))


def _deep_side(n: int) -> int:
    for _, pool in _DEEP_LAYOUT:
        n = n // 2 if pool else n
    return n


@register_model(default_input=(1, 100, 100), default_classes=52)
def deep_cnn(
    *,
    num_classes: int,
    in_channels: int,
    input_size: tuple[int, int],
    act_layer: Act,
    batchnorm: bool,
    dropout: float,
    hidden: int = 128,
) -> nn.Module:
    """A 7-conv 3x3 BatchNorm CNN (SiLU by default), 4 max-pools, fc 128: ~1.03M params at 1x100x100."""
    h, w = check_sides("deep_cnn", input_size, _deep_side, "its four 2x2 max-pools")
    layers: list[tuple[str, nn.Module]] = []
    cin = in_channels
    for i, (cout, pool) in enumerate(_DEEP_LAYOUT, start=1):
        layers.append((f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1, bias=not batchnorm)))
        if batchnorm:
            layers.append((f"bn{i}", nn.BatchNorm2d(cout)))
        layers.append((f"act{i}", act_layer()))
        if pool:
            layers.append((f"pool{i}", nn.MaxPool2d(2)))
        cin = cout
    fc = fc_with_dropout(dropout)
    # the fc keeps the spatial layout (no global pooling): case pairs such as c/C differ only by
    # size and position in the frame, which a global average would blur.
    return nn.Sequential(
        OrderedDict(
            [("features", nn.Sequential(OrderedDict(layers)))]
            + [("flatten", nn.Flatten())]
            + fc(1, cin * h * w, int(hidden))
            + [("act", act_layer())]
            + fc(2, int(hidden), num_classes)
        )
    )


# --------------------------------------------------------------------------------------------
# quick_cnn: the quick preset's model, built for CPU training time
# --------------------------------------------------------------------------------------------


def _quick_side(n: int, blocks: int) -> int:
    n = conv_out(n, 6, 2, 2) // 2  # stem: conv k6 s2 p2, maxpool 2
    for _ in range(blocks):
        n //= 2  # a 3x3 "same" conv, maxpool 2
    return n


class QuickCNN(nn.Module):
    """A small CNN whose every stage is conv -> 2x2 max-pool -> BatchNorm -> activation.

    Pooling before BatchNorm and the activation (cifar10-airbench's order) runs those memory-bound
    passes on the pooled map, a quarter of the conv's output. The stem is a learned stride-2 6x6
    convolution on the full image (no fixed downsampling: DejaVu Sans's l is only 2 px taller than
    its I; a stride-4 8x8 stem trained 0.3% worse). At 1x100x100 with the defaults: 16x50x50 ->
    pool 16x25x25 -> 32x12x12 -> 64x6x6 = 2,304 features -> fc ``hidden`` -> classes; dropout
    (when > 0) before each fc, which on held-out fonts mattered more than width. The features are
    flattened in (H, W, C) order, a view of the channels_last map, so that the gradient flowing back
    into the last BatchNorm stays channels_last: flattening in (C, H, W) order made the step ~20%
    slower on the CPU.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        input_size: tuple[int, int],
        act_layer: Act,
        batchnorm: bool,
        dropout: float,
        widths: tuple[int, ...],
        hidden: int,
        input_pool: int = 1,
    ) -> None:
        super().__init__()
        h, w = check_sides(
            "quick_cnn",
            input_size,
            lambda n: _quick_side(n // input_pool, len(widths) - 1),
            f"a {input_pool}x{input_pool} average pool, a stride-2 6x6 convolution and {len(widths)} 2x2 max-pools",
        )
        # input_pool > 1: the convolutions see the image averaged over k x k blocks (k^2 times fewer
        # pixels): a coarser, cheaper model for ranking settings, still fed the 100x100 frame.
        layers: list[tuple[str, nn.Module]] = [("inpool", nn.AvgPool2d(input_pool))] if input_pool > 1 else []
        cin = in_channels
        for i, cout in enumerate(widths, start=1):
            k, s, p = (6, 2, 2) if i == 1 else (3, 1, 1)
            layers.append((f"conv{i}", nn.Conv2d(cin, cout, k, s, p, bias=not batchnorm)))
            layers.append((f"pool{i}", nn.MaxPool2d(2)))
            if batchnorm:
                layers.append((f"bn{i}", nn.BatchNorm2d(cout)))
            layers.append((f"act{i}", act_layer()))
            cin = cout
        self.features = nn.Sequential(OrderedDict(layers))
        fc = fc_with_dropout(dropout)
        self.classifier = nn.Sequential(
            OrderedDict(fc(1, cin * h * w, hidden) + [("act", act_layer())] + fc(2, hidden, num_classes))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x C x H x W float -> N x num_classes logits."""
        f = self.features(x)  # N x C x h x w, channels_last when x is
        return self.classifier(f.permute(0, 2, 3, 1).flatten(1))


@register_model(default_input=(1, 100, 100), default_classes=52)
def quick_cnn(
    *,
    num_classes: int,
    in_channels: int,
    input_size: tuple[int, int],
    act_layer: Act,
    batchnorm: bool,
    dropout: float,
    widths: tuple[int, ...] = (16, 32, 64),
    hidden: int = 256,
    input_pool: int = 1,
) -> nn.Module:
    """The quick preset's CNN, built for CPU training speed: conv -> pool -> BN -> act stages, then fc.

    Defaults: widths 16-32-64 and fc 256 (627,284 params at 1x100x100); the quick preset sets widths
    8-16-32 and fc 512 (623,172 params), twice as fast to train on a CPU at the same accuracy; the
    compare preset adds ``input_pool`` 2 (the convolutions on a 50x50 average of the frame).
    """
    sizes = list(widths) if isinstance(widths, tuple | list) else []
    if not sizes or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sizes):
        raise ConfigError(
            f"quick_cnn's widths must be one or more positive channel counts, e.g. [16, 32, 64]; got {widths!r}"
        )
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ConfigError(f"quick_cnn's hidden (fc width) must be a positive integer, got {hidden!r}")
    if isinstance(input_pool, bool) or not isinstance(input_pool, int) or not 1 <= input_pool <= 8:
        raise ConfigError(f"quick_cnn's input_pool must be an integer from 1 to 8, got {input_pool!r}")
    return QuickCNN(
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=input_size,
        act_layer=act_layer,
        batchnorm=batchnorm,
        dropout=dropout,
        widths=tuple(sizes),
        hidden=hidden,
        input_pool=input_pool,
    )


# --------------------------------------------------------------------------------------------
# crnn: the report's first model, a CNN + GRU
# --------------------------------------------------------------------------------------------


class CRNN(nn.Module):
    """Two conv blocks, then a GRU that reads the feature map column by column (left to right).

    Shapes at 1x100x100: conv blocks -> 64 x 25 x 25; the sequence is 25 time steps (columns) of
    64 * 25 = 1600 features; the GRU's last hidden state (both directions when bidirectional)
    feeds the fc.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        input_size: tuple[int, int],
        act_layer: Act,
        batchnorm: bool,
        dropout: float,
        hidden: int,
        bidirectional: bool,
    ) -> None:
        super().__init__()
        h, _ = check_sides("crnn", input_size, lambda n: n // 4, "two 2x2 max-pools")

        def block(i: int, cin: int, cout: int) -> list[tuple[str, nn.Module]]:
            layers: list[tuple[str, nn.Module]] = [(f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1))]
            if batchnorm:
                layers.append((f"bn{i}", nn.BatchNorm2d(cout)))
            return layers + [(f"act{i}", act_layer()), (f"pool{i}", nn.MaxPool2d(2))]

        self.features = nn.Sequential(OrderedDict(block(1, in_channels, 32) + block(2, 32, 64)))
        self.gru = nn.GRU(64 * h, hidden, batch_first=True, bidirectional=bidirectional)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x C x H x W -> N x num_classes logits."""
        f = self.features(x)  # N x 64 x H/4 x W/4
        seq = f.permute(0, 3, 1, 2).flatten(2)  # N x T=W/4 x (64 * H/4): columns as time steps
        # The GRU runs in float32 outside autocast: CPU autocast has no bf16 GRU and cuDNN's
        # half-precision RNNs are not worth the trouble for 25 steps.
        with torch.autocast(device_type=seq.device.type, enabled=False):
            _, h_n = self.gru(seq.float())  # h_n: (num_directions) x N x hidden
        last = h_n.permute(1, 0, 2).flatten(1)  # N x (num_directions * hidden)
        return self.fc(self.drop(last))


@register_model(default_input=(1, 100, 100), default_classes=52)
def crnn(
    *,
    num_classes: int,
    in_channels: int,
    input_size: tuple[int, int],
    act_layer: Act,
    batchnorm: bool,
    dropout: float,
    hidden: int = 128,
    bidirectional: bool = False,
) -> nn.Module:
    """The report's first try: two conv blocks, a GRU over the columns of the feature map, an fc."""
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ConfigError(f"crnn's hidden (GRU width) must be a positive integer, got {hidden!r}")
    return CRNN(
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=input_size,
        act_layer=act_layer,
        batchnorm=batchnorm,
        dropout=dropout,
        hidden=hidden,
        bidirectional=bool(bidirectional),
    )
