"""The model zoo: every registered model, each reproducing its source.

All builders take ``(num_classes, in_channels, input_size=(H, W), act_layer, batchnorm, dropout)``
plus their own options (see ``glyphcore.models.registry``). Layers are named (``features.conv1``,
``classifier.fc1``) rather than numbered where the source had few layers, so the state_dict keys do
not shift when optional Dropout or BatchNorm layers come and go. Dropout (when > 0) goes before each
fully connected layer of the classifier. Flattening uses ``flatten`` (never ``view``) so that
channels_last inputs work; the GRU runs in float32 outside autocast (see ``CRNN``).

Parameter counts of the sources, checked by tests/models/test_models.py:

=========  ==================  ========  ==========
model      input               classes   parameters
=========  ==================  ========  ==========
seed_cnn   1x100x100           52        702,948
lenet      1x28x28             10        44,470
mlp        1x28x28             10        41,250
tiny_conv  1x28x28             10        11,842 (3,202 with pool=True)
vgg        3x32x32, depth 19   10        20,040,522
deep_cnn   1x100x100           52        1,031,252 (our layout of the second report's 7-conv CNN)
quick_cnn  1x100x100           52        627,284 (623,172 at the quick preset's widths 8-16-32, fc 512)
crnn       1x100x100           52        690,036 (GRU width 128)
resnet18   3x224x224           1000      11,689,512 (torchvision's)
=========  ==================  ========  ==========
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.models.registry import register_model, require_min_size

__all__ = ["SeedCNN", "QuickCNN", "CRNN", "VGG", "VGG_LAYOUTS"]

Act = type[nn.Module]


def _conv_out(n: int, k: int, s: int = 1, p: int = 0) -> int:
    """Output side of a convolution / pooling with kernel k, stride s, padding p (floor mode)."""
    return (n + 2 * p - k) // s + 1


def _min_side(side_out: Callable[[int], int], limit: int = 4096) -> int:
    """The smallest input side whose output side (``side_out``) is at least 1 pixel."""
    for n in range(1, limit + 1):
        if side_out(n) >= 1:
            return n
    raise ValueError(f"no input side up to {limit} survives")  # a bug in a shape function


def _check_sides(name: str, input_size: tuple[int, int], side_out: Callable[[int], int], why: str) -> tuple[int, int]:
    """Output (H, W) of a stack whose per-side shape function is ``side_out``; ConfigError if < 1."""
    m = _min_side(side_out)
    require_min_size(name, input_size, (m, m), why)
    return side_out(input_size[0]), side_out(input_size[1])


def _fc_with_dropout(p: float) -> Callable[[int, int, int], list[tuple[str, nn.Module]]]:
    """``fc(i, fin, fout)`` -> [("drop{i}", Dropout)] (only when p > 0) + [("fc{i}", Linear)]."""

    def fc(i: int, fin: int, fout: int) -> list[tuple[str, nn.Module]]:
        drop: list[tuple[str, nn.Module]] = [(f"drop{i}", nn.Dropout(p))] if p > 0 else []
        return drop + [(f"fc{i}", nn.Linear(fin, fout))]

    return fc


# --------------------------------------------------------------------------------------------
# seed_cnn: the report's model
# --------------------------------------------------------------------------------------------


def _seed_side(n: int) -> int:
    n = _conv_out(n, 10, 2, 2) // 2  # conv1 k10 s2 p2, maxpool 2
    n = _conv_out(n, 5, 1, 2) // 2  # conv2 k5 p2 (same), maxpool 2
    return _conv_out(n, 5, 1, 2) // 2  # conv3 k5 p2 (same), maxpool 2


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
        h, w = _check_sides("seed_cnn", input_size, _seed_side, "a stride-2 10x10 convolution and three 2x2 max-pools")

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
        fc = _fc_with_dropout(dropout)
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
    h, w = _check_sides("deep_cnn", input_size, _deep_side, "its four 2x2 max-pools")
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
    fc = _fc_with_dropout(dropout)
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
    n = _conv_out(n, 6, 2, 2) // 2  # stem: conv k6 s2 p2, maxpool 2
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
    ) -> None:
        super().__init__()
        h, w = _check_sides(
            "quick_cnn",
            input_size,
            lambda n: _quick_side(n, len(widths) - 1),
            f"a stride-2 6x6 convolution and {len(widths)} 2x2 max-pools",
        )
        layers: list[tuple[str, nn.Module]] = []
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
        fc = _fc_with_dropout(dropout)
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
) -> nn.Module:
    """The quick preset's CNN, built for CPU training speed: conv -> pool -> BN -> act stages, then fc.

    Defaults: widths 16-32-64 and fc 256 (627,284 params at 1x100x100); the quick preset sets widths
    8-16-32 and fc 512 (623,172 params), twice as fast to train on a CPU at the same accuracy.
    """
    sizes = list(widths) if isinstance(widths, tuple | list) else []
    if not sizes or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sizes):
        raise ConfigError(
            f"quick_cnn's widths must be one or more positive channel counts, e.g. [16, 32, 64]; got {widths!r}"
        )
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ConfigError(f"quick_cnn's hidden (fc width) must be a positive integer, got {hidden!r}")
    return QuickCNN(
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=input_size,
        act_layer=act_layer,
        batchnorm=batchnorm,
        dropout=dropout,
        widths=tuple(sizes),
        hidden=hidden,
    )


# --------------------------------------------------------------------------------------------
# MNIST ablations: lenet, mlp, tiny_conv
# --------------------------------------------------------------------------------------------


def _lenet_side(n: int) -> int:
    return _conv_out(_conv_out(n, 5) // 2, 5) // 2  # conv 5x5 (no padding), pool 2, twice


@register_model(default_input=(1, 28, 28), default_classes=10)
def lenet(
    *, num_classes: int, in_channels: int, input_size: tuple[int, int], act_layer: Act, batchnorm: bool, dropout: float
) -> nn.Module:
    """LeNet-5 with BatchNorm: conv 6@5x5, pool, conv 16@5x5, pool, fc 120, 84: 44,470 params at 1x28x28."""
    h, w = _check_sides("lenet", input_size, _lenet_side, "two unpadded 5x5 convolutions and two 2x2 max-pools")

    def block(i: int, cin: int, cout: int) -> list[tuple[str, nn.Module]]:
        layers: list[tuple[str, nn.Module]] = [(f"conv{i}", nn.Conv2d(cin, cout, 5))]
        if batchnorm:
            layers.append((f"bn{i}", nn.BatchNorm2d(cout)))
        return layers + [(f"act{i}", act_layer()), (f"pool{i}", nn.MaxPool2d(2))]

    fc = _fc_with_dropout(dropout)
    return nn.Sequential(
        OrderedDict(
            [("features", nn.Sequential(OrderedDict(block(1, in_channels, 6) + block(2, 6, 16))))]
            + [("flatten", nn.Flatten())]
            # 16 x 4 x 4 = 256 features at 28 x 28
            + fc(1, 16 * h * w, 120)
            + [("act1", act_layer())]
            + fc(2, 120, 84)
            + [("act2", act_layer())]
            + fc(3, 84, num_classes)
        )
    )


@register_model(default_input=(1, 28, 28), default_classes=10)
def mlp(
    *,
    num_classes: int,
    in_channels: int,
    input_size: tuple[int, int],
    act_layer: Act,
    batchnorm: bool,
    dropout: float,
    hidden: tuple[int, ...] = (50, 30),
) -> nn.Module:
    """A multilayer perceptron 784 -> 50 -> 30 -> classes with BatchNorm1d: 41,250 params at 28x28."""
    widths = [int(v) for v in hidden]
    if not widths or min(widths) < 1:
        raise ConfigError(f"mlp's hidden must be one or more positive layer widths, e.g. [50, 30]; got {hidden!r}")
    fc = _fc_with_dropout(dropout)
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    fin = in_channels * input_size[0] * input_size[1]
    for i, fout in enumerate(widths, start=1):
        layers += fc(i, fin, fout)
        if batchnorm:
            layers.append((f"bn{i}", nn.BatchNorm1d(fout)))
        layers.append((f"act{i}", act_layer()))
        fin = fout
    layers += fc(len(widths) + 1, fin, num_classes)
    return nn.Sequential(OrderedDict(layers))


def _tiny_side(n: int, pool: bool) -> int:
    n = _conv_out(n, 6, 2)  # conv 6x6 stride 2, no padding: 28 -> 12
    return n // 2 if pool else n


@register_model(default_input=(1, 28, 28), default_classes=10)
def tiny_conv(
    *,
    num_classes: int,
    in_channels: int,
    input_size: tuple[int, int],
    act_layer: Act,
    batchnorm: bool,
    dropout: float,
    pool: bool = False,
) -> nn.Module:
    """One conv 8@6x6 stride 2 + BN + fc: 11,842 params at 1x28x28 (3,202 with pool=True)."""
    h, w = _check_sides(
        "tiny_conv",
        input_size,
        lambda n: _tiny_side(n, bool(pool)),
        "a 6x6 stride-2 convolution" + (" and a 2x2 max-pool" if pool else ""),
    )
    layers: list[tuple[str, nn.Module]] = [("conv1", nn.Conv2d(in_channels, 8, 6, stride=2))]
    if batchnorm:
        layers.append(("bn1", nn.BatchNorm2d(8)))
    layers.append(("act1", act_layer()))
    if pool:
        layers.append(("pool1", nn.MaxPool2d(2)))
    layers.append(("flatten", nn.Flatten()))
    layers += _fc_with_dropout(dropout)(1, 8 * h * w, num_classes)
    return nn.Sequential(OrderedDict(layers))


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
        h, _ = _check_sides("crnn", input_size, lambda n: n // 4, "two 2x2 max-pools")

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


# --------------------------------------------------------------------------------------------
# vgg: VGG-11/13/16/19 blocks, CIFAR-style classifier
# --------------------------------------------------------------------------------------------

#: depth -> layout ("M" = 2x2 max-pool), as in torchvision's vgg (configurations A, B, D, E).
VGG_LAYOUTS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
_VGG_MIN_SIDE = 8  # at least three of the five max-pools run


class VGG(nn.Module):
    """VGG blocks (3x3 convs + BN + act, 2x2 max-pools) and a single fc, as in the CIFAR VGGs.

    At 32x32 the five max-pools bring the map to 512 x 1 x 1 (VGG-19: 20,040,522 parameters with 10
    classes). Smaller inputs skip the max-pools that would go below 1 pixel (28 -> 14 -> 7 -> 3 ->
    1, the fifth skipped); larger ones end with a global average pool, so the fc is always 512 ->
    classes.
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
        depth: int,
    ) -> None:
        super().__init__()
        require_min_size(
            "vgg", input_size, (_VGG_MIN_SIDE, _VGG_MIN_SIDE), "fewer than three of its max-pools would run"
        )
        layers: list[nn.Module] = []
        cin, (h, w) = in_channels, input_size
        for v in VGG_LAYOUTS[depth]:
            if v == "M":
                if min(h, w) >= 2:
                    layers.append(nn.MaxPool2d(2))
                    h, w = h // 2, w // 2
                continue
            # the convs keep their biases even before BN, as in torchvision's vgg19_bn and the CIFAR VGGs
            layers.append(nn.Conv2d(cin, int(v), 3, padding=1))
            if batchnorm:
                layers.append(nn.BatchNorm2d(int(v)))
            layers.append(act_layer())
            cin = int(v)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)  # identity at 32x32; global average for larger inputs
        fc = _fc_with_dropout(dropout)
        self.classifier = nn.Sequential(OrderedDict([("flatten", nn.Flatten())] + fc(1, cin, num_classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x C x H x W -> N x num_classes logits."""
        return self.classifier(self.pool(self.features(x)))


@register_model(default_input=(3, 32, 32), default_classes=10)
def vgg(
    *,
    num_classes: int,
    in_channels: int,
    input_size: tuple[int, int],
    act_layer: Act,
    batchnorm: bool,
    dropout: float,
    depth: int = 19,
) -> nn.Module:
    """VGG-11/13/16/19 with BatchNorm (CIFAR layout, fc 512 -> classes): 20.04M params for VGG-19."""
    if depth not in VGG_LAYOUTS:
        raise ConfigError(f"vgg depth must be one of {', '.join(map(str, VGG_LAYOUTS))}, got {depth!r}")
    return VGG(
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=input_size,
        act_layer=act_layer,
        batchnorm=batchnorm,
        dropout=dropout,
        depth=int(depth),
    )


# --------------------------------------------------------------------------------------------
# resnet18: torchvision's, adapted; optional ImageNet weights
# --------------------------------------------------------------------------------------------

_SMALL_STEM_BELOW = 64  # inputs smaller than this (either side) get a 3x3 stride-1 stem, no max-pool
_RESNET_MIN_SIDE = 8


def _imagenet_resnet18_state() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet resnet18 weights, from torch's hub cache or the network.

    Only asked for by a user's own ``pretrained=True`` (a model rebuilt from a file never gets
    here: ``rebuild_model`` forces ``pretrained`` off). The file is loaded with
    ``weights_only=True``, and a file already in the hub cache must have the sha256 prefix its
    name carries (torch checks the hash only of what it downloads): a planted or damaged file is
    refused, never unpickled.

    Raises:
        ConfigError: they cannot be had (offline and not cached), or the cached file is not
            torchvision's: says where to put the right file.
    """
    import hashlib
    import pickle

    from torchvision.models import ResNet18_Weights

    url = ResNet18_Weights.IMAGENET1K_V1.url
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    file_name = Path(url).name  # resnet18-f37072fd.pth: the name carries a prefix of the sha256
    cached = cache / file_name
    if cached.exists():
        prefix = re.search(r"-([a-f0-9]+)\.", file_name).group(1)  # type: ignore[union-attr]
        digest = hashlib.sha256()
        with open(cached, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if not digest.hexdigest().startswith(prefix):
            raise ConfigError(
                f"{cached} is not torchvision's resnet18 weights file (its sha256 does not start with {prefix}): "
                f"delete it and download {url} again, or train without pretrained"
            )
    try:
        return torch.hub.load_state_dict_from_url(
            url, progress=False, check_hash=True, map_location="cpu", weights_only=True
        )
    except pickle.UnpicklingError:
        raise ConfigError(
            f"refused {cached}: it stores Python objects that would run code when loaded; delete it and "
            f"download {url} again, or train without pretrained"
        ) from None
    except Exception as e:  # URLError, HTTPError, OSError, a bad hash: all mean "not available"
        raise ConfigError(
            f"the ImageNet weights for resnet18 could not be downloaded ({type(e).__name__}: {e}). "
            f"Download {url} on a connected machine and put it into torch's hub cache {cache}, "
            f"or train without pretrained"
        ) from e


def _adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Fit a 3-channel (RGB) stem kernel to ``in_channels``, as timm's adapt_input_conv does.

    1 channel: the sum over RGB (a grey image x gives the response the RGB image (x, x, x) would);
    C channels: RGB repeated and scaled by 3 / C so that the expected response stays the same.
    """
    if in_channels == weight.shape[1]:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_channels // weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :in_channels] * (weight.shape[1] / in_channels)


@register_model(default_input=(3, 224, 224), default_classes=1000, recorded={"pretrained": False})
def resnet18(
    *,
    num_classes: int,
    in_channels: int,
    input_size: tuple[int, int],
    act_layer: Act,
    batchnorm: bool,
    dropout: float,
    pretrained: bool = False,
    freeze_backbone: bool = False,
) -> nn.Module:
    """torchvision's ResNet-18, stem fitted to the channels and size; optional ImageNet weights.

    Inputs under 64 px get a 3x3 stride-1 stem without max-pool (CIFAR style). ``pretrained``
    loads torchvision's ImageNet weights (only the stem and fc are new where they do not fit; the
    activation stays whatever is asked, though the weights were trained with ReLU);
    ``freeze_backbone`` leaves only the fc trainable. ``pretrained`` is recorded as False in
    ``glyph_args``: a rebuilt model takes its weights from the checkpoint and never downloads.
    """
    from torchvision.models import resnet18 as tv_resnet18

    require_min_size("resnet18", input_size, (_RESNET_MIN_SIDE, _RESNET_MIN_SIDE), "its stride-2 stages")
    if pretrained and not batchnorm:
        raise ConfigError("resnet18's ImageNet weights include BatchNorm: use batchnorm=True with pretrained")
    model = tv_resnet18(weights=None, num_classes=num_classes, norm_layer=nn.BatchNorm2d if batchnorm else nn.Identity)
    small = min(input_size) < _SMALL_STEM_BELOW
    if small:
        model.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
    # every ReLU -> the chosen activation (BasicBlock calls its one ``relu`` twice)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, child_name, act_layer())
    if dropout > 0:  # before the fc, without renaming fc (pretrained and fine-tuning keys stay)
        model.avgpool = nn.Sequential(OrderedDict(pool=model.avgpool, drop=nn.Dropout(dropout)))

    if pretrained:
        state = dict(_imagenet_resnet18_state())
        if small:
            del state["conv1.weight"]  # a 7x7 kernel does not fit the 3x3 stem
        else:
            state["conv1.weight"] = _adapt_input_conv(state["conv1.weight"], in_channels)
        if num_classes != state["fc.weight"].shape[0]:
            del state["fc.weight"], state["fc.bias"]
        result = model.load_state_dict(state, strict=False)
        allowed = {"conv1.weight", "fc.weight", "fc.bias"}
        if result.unexpected_keys or set(result.missing_keys) - allowed:
            raise ConfigError(f"the ImageNet resnet18 weights do not fit this model: {result}")
    if freeze_backbone:
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("fc.")
    return model
