"""The MNIST and CIFAR reports' models: lenet, mlp, tiny_conv (the MNIST ablations) and vgg.

Parameter counts of the sources, checked by tests/models/test_models.py:

=========  ==================  ========  ==========
model      input               classes   parameters
=========  ==================  ========  ==========
lenet      1x28x28             10        44,470
mlp        1x28x28             10        41,250
tiny_conv  1x28x28             10        11,842 (3,202 with pool=True)
vgg        3x32x32, depth 19   10        20,040,522
=========  ==================  ========  ==========
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.models.layers import Act, check_sides, conv_out, fc_with_dropout
from glyphcore.models.registry import register_model, require_min_size

__all__ = ["VGG", "VGG_LAYOUTS"]


# --------------------------------------------------------------------------------------------
# MNIST ablations: lenet, mlp, tiny_conv
# --------------------------------------------------------------------------------------------


def _lenet_side(n: int) -> int:
    return conv_out(conv_out(n, 5) // 2, 5) // 2  # conv 5x5 (no padding), pool 2, twice


@register_model(default_input=(1, 28, 28), default_classes=10)
def lenet(
    *, num_classes: int, in_channels: int, input_size: tuple[int, int], act_layer: Act, batchnorm: bool, dropout: float
) -> nn.Module:
    """LeNet-5 with BatchNorm: conv 6@5x5, pool, conv 16@5x5, pool, fc 120, 84: 44,470 params at 1x28x28."""
    h, w = check_sides("lenet", input_size, _lenet_side, "two unpadded 5x5 convolutions and two 2x2 max-pools")

    def block(i: int, cin: int, cout: int) -> list[tuple[str, nn.Module]]:
        layers: list[tuple[str, nn.Module]] = [(f"conv{i}", nn.Conv2d(cin, cout, 5))]
        if batchnorm:
            layers.append((f"bn{i}", nn.BatchNorm2d(cout)))
        return layers + [(f"act{i}", act_layer()), (f"pool{i}", nn.MaxPool2d(2))]

    fc = fc_with_dropout(dropout)
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
    fc = fc_with_dropout(dropout)
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
    n = conv_out(n, 6, 2)  # conv 6x6 stride 2, no padding: 28 -> 12
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
    h, w = check_sides(
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
    layers += fc_with_dropout(dropout)(1, 8 * h * w, num_classes)
    return nn.Sequential(OrderedDict(layers))


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
        fc = fc_with_dropout(dropout)
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
