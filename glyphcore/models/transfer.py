"""Transfer learning: torchvision's ImageNet classifiers with a new head, fitted to the data.

``resnet18`` is torchvision's ResNet-18 with its stem fitted to the data (the existing model, whose
``pretrained=True`` fetches its weights itself). The transfer zoo -- ``resnet50``, ``vgg16_bn``,
``densenet121``, ``mobilenet_v3_small``, ``efficientnet_b0`` -- wraps torchvision's net as
``TransferNet``:

* input: images are resized (bilinear) to ``resize`` px, or up to the net's smallest input when they
  are smaller; one grey channel is repeated to RGB (``channels="repeat"``) or the stem convolution
  takes the data's channels (``channels="stem"``, ImageNet's kernel summed over RGB); then ImageNet's
  mean and std normalise it (constants, not weights);
* head: torchvision's classifier is replaced by global average pooling, dropout, an optional dense
  layer (``head_hidden`` units, the chosen activation) and a Linear to the classes -- the CIFAR-100
  report's head;
* ``pretrained`` loads the ImageNet weights from torch hub's cache (``glyphcore.models.imagenet``:
  verified, ``weights_only``; never a download -- ``models download`` does that when asked);
  it is recorded as False so a model rebuilt from a checkpoint never looks for them;
* ``freeze_backbone`` trains the head only (frozen BatchNorm layers keep their ImageNet statistics:
  they stay in eval mode), ``unfreeze_last`` N trains the last N backbone blocks too, and
  ``backbone_lr_scale`` gives the trainable backbone a lower learning rate (``param_groups``).

The backbone's own activations (ReLU, ReLU6, SiLU, Hardswish) become the chosen one: pick each net's
own (relu for resnet50, vgg16_bn and densenet121) when using its ImageNet weights.

Parameter counts at 3x224x224 with 1000 classes (torchvision's backbone + our Linear head), checked by
tests/models/test_transfer.py:

===================  ===========  ======================================
model                parameters   torchvision's, with its own classifier
===================  ===========  ======================================
resnet18             11,689,512   11,689,512
resnet50             25,557,032   25,557,032
vgg16_bn             15,236,136   138,365,992 (three fc layers, 4096 wide)
densenet121          7,978,856    7,978,856
mobilenet_v3_small   1,504,008    2,542,856 (fc 576 -> 1024 -> 1000)
efficientnet_b0      5,288,548    5,288,548
===================  ===========  ======================================
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.models.imagenet import cache_dir, cached_weights, load_weights, weights_file
from glyphcore.models.layers import Act, fc_with_dropout
from glyphcore.models.registry import register_model, require_min_size

__all__ = ["TransferNet", "TRANSFER_ARCHS", "param_groups", "adapt_input_conv"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # per RGB channel, of images in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)
_NET_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish)  # gates (Sigmoid, Hardsigmoid) stay


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
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


def _replace_activations(model: nn.Module, act_layer: Act, kinds: tuple[type[nn.Module], ...]) -> None:
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, kinds):
                setattr(parent, child_name, act_layer())


# --------------------------------------------------------------------------------------------
# resnet18: torchvision's, adapted; optional ImageNet weights
# --------------------------------------------------------------------------------------------

_SMALL_STEM_BELOW = 64  # inputs smaller than this (either side) get a 3x3 stride-1 stem, no max-pool
_RESNET_MIN_SIDE = 8


def _imagenet_resnet18_state() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet resnet18 weights, from torch's hub cache or the network.

    Only asked for by a user's own ``pretrained=True`` (a model rebuilt from a file never gets
    here: ``rebuild_model`` forces ``pretrained`` off). A cached file is verified first
    (``cached_weights``) and loaded with ``weights_only=True``.

    Raises:
        ConfigError: they cannot be had (offline and not cached), or the cached file is not
            torchvision's: says where to put the right file.
    """
    url = weights_file("resnet18").url
    cached = cached_weights("resnet18")
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
            f"Download {url} on a connected machine and put it into torch's hub cache {cache_dir()}, "
            f"or train without pretrained"
        ) from e


def _load_resnet18_imagenet(model: nn.Module, in_channels: int, num_classes: int, small: bool) -> None:
    state = dict(_imagenet_resnet18_state())
    if small:
        del state["conv1.weight"]  # a 7x7 kernel does not fit the 3x3 stem
    else:
        state["conv1.weight"] = adapt_input_conv(state["conv1.weight"], in_channels)
    if num_classes != state["fc.weight"].shape[0]:
        del state["fc.weight"], state["fc.bias"]
    result = model.load_state_dict(state, strict=False)
    allowed = {"conv1.weight", "fc.weight", "fc.bias"}
    if result.unexpected_keys or set(result.missing_keys) - allowed:
        raise ConfigError(f"the ImageNet resnet18 weights do not fit this model: {result}")


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
    _replace_activations(model, act_layer, (nn.ReLU,))  # BasicBlock calls its one ``relu`` twice
    if dropout > 0:  # before the fc, without renaming fc (pretrained and fine-tuning keys stay)
        model.avgpool = nn.Sequential(OrderedDict(pool=model.avgpool, drop=nn.Dropout(dropout)))
    if pretrained:
        _load_resnet18_imagenet(model, in_channels, num_classes, small)
    if freeze_backbone:
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("fc.")
    return model


# --------------------------------------------------------------------------------------------
# the transfer zoo: one table row per torchvision architecture
# --------------------------------------------------------------------------------------------


def _children_blocks(names: list[str], opens: Callable[[str], bool]) -> list[list[str]]:
    """Group child names into blocks: a new block starts at each name ``opens`` says starts one."""
    blocks: list[list[str]] = []
    for name in names:
        if not blocks or opens(name):
            blocks.append([])
        blocks[-1].append(name)
    return blocks


def _resnet_blocks(net: nn.Module) -> list[list[str]]:
    return [["conv1", "bn1"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]


def _vgg_blocks(net: nn.Module) -> list[list[str]]:
    # a block is the convolutions up to and including each max-pool: features.0 .. features.6, ...
    blocks, current = [], []
    for i, m in enumerate(net.features):  # type: ignore[arg-type]
        current.append(f"features.{i}")
        if isinstance(m, nn.MaxPool2d):
            blocks.append(current)
            current = []
    return blocks


def _densenet_blocks(net: nn.Module) -> list[list[str]]:
    names = [f"features.{n}" for n, _ in net.features.named_children()]  # type: ignore[union-attr]
    return _children_blocks(names, lambda n: n.startswith("features.denseblock"))


def _sequential_blocks(net: nn.Module) -> list[list[str]]:
    return [[f"features.{n}"] for n, _ in net.features.named_children()]  # type: ignore[union-attr]


@dataclass(frozen=True)
class TransferArch:
    """A torchvision architecture of the transfer zoo.

    Attributes:
        head: the attribute torchvision's classifier sits on (replaced by ours).
        width: features after global pooling (the head's input).
        min_side: the smallest input side (px) the net takes (torchvision's ``min_size``).
        stem: the qualified name of the first convolution (the one fitted to the channels).
        blocks: the backbone's blocks in forward order, as qualified module names (for unfreeze_last).
    """

    head: str
    width: int
    min_side: int
    stem: str
    blocks: Callable[[nn.Module], list[list[str]]]


TRANSFER_ARCHS: dict[str, TransferArch] = {
    "resnet50": TransferArch("fc", 2048, 1, "conv1", _resnet_blocks),
    "vgg16_bn": TransferArch("classifier", 512, 32, "features.0", _vgg_blocks),
    "densenet121": TransferArch("classifier", 1024, 29, "features.conv0", _densenet_blocks),
    "mobilenet_v3_small": TransferArch("classifier", 576, 1, "features.0.0", _sequential_blocks),
    "efficientnet_b0": TransferArch("classifier", 1280, 1, "features.0.0", _sequential_blocks),
}


def _get_submodule_parent(net: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (net.get_submodule(parent_name) if parent_name else net), child


def _fit_stem(net: nn.Module, stem: str, in_channels: int) -> None:
    """Replace the stem convolution with one taking ``in_channels`` (same kernel, stride, padding)."""
    parent, child = _get_submodule_parent(net, stem)
    old = getattr(parent, child)
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=old.bias is not None)
    setattr(parent, child, new)


def _new_head(width: int, num_classes: int, hidden: int, dropout: float, act_layer: Act) -> nn.Sequential:
    """Dropout + (dense ``hidden`` + activation) + Linear to the classes; the pooling comes before it."""
    fc = fc_with_dropout(dropout)
    if hidden > 0:
        return nn.Sequential(OrderedDict(fc(1, width, hidden) + [("act", act_layer())] + fc(2, hidden, num_classes)))
    return nn.Sequential(OrderedDict(fc(1, width, num_classes)))


class TransferNet(nn.Module):
    """A torchvision ImageNet classifier (``self.net``) with our head, fed images fitted to it.

    ``forward`` resizes (when ``resize_to`` is set), repeats one grey channel to RGB (when
    ``repeat_channels``), normalises with ImageNet's mean and std, and runs the net; the net's own
    global pooling feeds the head (vgg16_bn's 7x7 pooling becomes a global one).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, arch: str, net: nn.Module, *, in_channels: int, resize_to: int | None, repeat: bool, lr_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.arch = arch
        self.backbone_lr_scale = lr_scale  # the backbone's learning rate / the head's (param_groups)
        self.net = net
        self.resize_to = resize_to
        self.repeat_channels = repeat
        c = 3 if repeat else in_channels
        mean = torch.tensor(IMAGENET_MEAN if c == 3 else [sum(IMAGENET_MEAN) / 3] * c).view(1, c, 1, 1)
        std = torch.tensor(IMAGENET_STD if c == 3 else [sum(IMAGENET_STD) / 3] * c).view(1, c, 1, 1)
        self.register_buffer("mean", mean, persistent=False)  # constants: not in the state_dict
        self.register_buffer("std", std, persistent=False)
        self.frozen_norms: list[str] = []  # BatchNorm layers of the frozen backbone: always in eval mode

    def train(self, mode: bool = True) -> TransferNet:
        """As ``nn.Module.train``, but frozen BatchNorm layers keep their statistics (eval mode)."""
        super().train(mode)
        for name in self.frozen_norms:
            self.net.get_submodule(name).eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x C x H x W in [0, 1] -> N x num_classes logits."""
        if self.resize_to is not None:
            x = F.interpolate(x, size=(self.resize_to, self.resize_to), mode="bilinear", align_corners=False)
        if self.repeat_channels:
            x = x.repeat(1, 3, 1, 1)  # grey -> RGB, as an RGB photo of a grey image
        return self.net((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


def _load_imagenet(model: TransferNet, spec: TransferArch, in_channels: int, stem_fitted: bool) -> None:
    """Copy the verified ImageNet weights into ``model.net``: all but torchvision's classifier."""
    state = {k: v for k, v in load_weights(model.arch).items() if not k.startswith(spec.head + ".")}
    if stem_fitted:
        key = spec.stem + ".weight"
        state[key] = adapt_input_conv(state[key], in_channels)
    result = model.net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(spec.head + ".")]
    if result.unexpected_keys or missing:
        raise ConfigError(
            f"the ImageNet {model.arch} weights do not fit this model (missing {missing[:3]}, unexpected "
            f"{result.unexpected_keys[:3]}): the cached file is not torchvision's {model.arch}"
        )


def _in_any(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _freeze(model: TransferNet, spec: TransferArch, unfreeze_last: int) -> None:
    """Train the head and the last ``unfreeze_last`` backbone blocks only; frozen BatchNorm stays in eval."""
    blocks = spec.blocks(model.net)
    if unfreeze_last > len(blocks):
        raise ConfigError(f"{model.arch} has {len(blocks)} backbone blocks: unfreeze_last must be 0..{len(blocks)}")
    trainable = [spec.head] + [n for block in blocks[len(blocks) - unfreeze_last :] for n in block]
    for name, p in model.net.named_parameters():
        p.requires_grad = _in_any(name, trainable)
    model.frozen_norms = [
        n
        for n, m in model.net.named_modules()
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) and not _in_any(n, trainable)
    ]


def param_groups(model: nn.Module, lr: float) -> list[dict[str, Any]]:
    """The optimizer's parameter groups of ``model`` at peak learning rate ``lr``.

    A transfer model with ``backbone_lr_scale`` below 1 gets two groups: its head at ``lr`` and its
    trainable backbone at ``lr * backbone_lr_scale``; every other model one group. Each group carries
    ``lr_scale``, so that a schedule sets ``group["lr"] = lr_at(...) * group["lr_scale"]``.
    """
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    scale = float(getattr(model, "backbone_lr_scale", 1.0))
    if not isinstance(model, TransferNet) or scale == 1.0:
        return [{"params": [p for _, p in trainable], "lr": lr, "lr_scale": 1.0}]
    head = "net." + TRANSFER_ARCHS[model.arch].head + "."
    groups = [
        {"params": [p for n, p in trainable if n.startswith(head)], "lr": lr, "lr_scale": 1.0},
        {"params": [p for n, p in trainable if not n.startswith(head)], "lr": lr * scale, "lr_scale": scale},
    ]
    return [g for g in groups if g["params"]]


def _check_transfer_options(arch: str, options: dict[str, Any]) -> None:
    if options["channels"] not in ("repeat", "stem"):
        raise ConfigError(f"{arch}'s channels must be 'repeat' or 'stem', got {options['channels']!r}")
    for key in ("unfreeze_last", "head_hidden", "resize"):
        if options[key] < 0:
            raise ConfigError(f"{arch}'s {key} must be 0 or more, got {options[key]!r}")
    if not 0.0 < options["backbone_lr_scale"] <= 1.0:
        raise ConfigError(f"{arch}'s backbone_lr_scale must be in (0, 1], got {options['backbone_lr_scale']!r}")
    if options["resize"] > 1024:  # px: an ImageNet net at 1024 x 1024 is already 20x its 224 x 224 cost
        raise ConfigError(f"{arch}'s resize must be at most 1024 px, got {options['resize']!r}")


def build_transfer(
    arch: str,
    *,
    num_classes: int,
    in_channels: int,
    input_size: tuple[int, int],
    act_layer: Act,
    batchnorm: bool,
    dropout: float,
    **options: Any,
) -> TransferNet:
    """torchvision's ``arch`` fitted to the data, with a new head (the options: see the module's docstring)."""
    from torchvision.models import get_model

    spec = TRANSFER_ARCHS[arch]
    _check_transfer_options(arch, options)
    if not batchnorm:
        raise ConfigError(f"{arch}'s ImageNet layout includes its normalisation layers: use batchnorm=True")
    resize = options["resize"] or (spec.min_side if min(input_size) < spec.min_side else 0)
    require_min_size(arch, (resize, resize) if resize else input_size, (spec.min_side, spec.min_side), "its stages")
    net = get_model(arch, weights=None)
    _replace_activations(net, act_layer, _NET_ACTIVATIONS)
    if arch == "vgg16_bn":
        net.avgpool = nn.AdaptiveAvgPool2d(1)  # global pooling: the head takes 512 features at any size
    setattr(net, spec.head, _new_head(spec.width, num_classes, options["head_hidden"], dropout, act_layer))
    repeat = in_channels == 1 and options["channels"] == "repeat"
    stem_fitted = in_channels != 3 and not repeat
    if stem_fitted:
        _fit_stem(net, spec.stem, in_channels)
    lr_scale = float(options["backbone_lr_scale"])
    model = TransferNet(arch, net, in_channels=in_channels, resize_to=resize or None, repeat=repeat, lr_scale=lr_scale)
    if options["pretrained"]:
        _load_imagenet(model, spec, in_channels, stem_fitted)
    if options["freeze_backbone"]:
        _freeze(model, spec, options["unfreeze_last"])
    elif options["unfreeze_last"]:
        raise ConfigError(f"{arch}'s unfreeze_last applies to a frozen backbone: add freeze_backbone=true")
    return model


def _transfer_builder(arch: str) -> Callable[..., nn.Module]:
    """The registry builder of ``arch``: the common arguments plus the transfer options."""

    def build(
        *,
        num_classes: int,
        in_channels: int,
        input_size: tuple[int, int],
        act_layer: Act,
        batchnorm: bool,
        dropout: float,
        pretrained: bool = False,
        freeze_backbone: bool = False,
        unfreeze_last: int = 0,
        backbone_lr_scale: float = 1.0,
        head_hidden: int = 0,
        channels: str = "repeat",
        resize: int = 0,
    ) -> nn.Module:
        return build_transfer(
            arch,
            num_classes=num_classes,
            in_channels=in_channels,
            input_size=input_size,
            act_layer=act_layer,
            batchnorm=batchnorm,
            dropout=dropout,
            pretrained=pretrained,
            freeze_backbone=freeze_backbone,
            unfreeze_last=unfreeze_last,
            backbone_lr_scale=backbone_lr_scale,
            head_hidden=head_hidden,
            channels=channels,
            resize=resize,
        )

    size = weights_file(arch).size_mb
    build.__name__ = build.__qualname__ = arch
    build.__doc__ = f"torchvision's {arch} with a new head, for transfer learning (ImageNet weights: {size:.1f} MB)."
    return build


for _arch in TRANSFER_ARCHS:
    register_model(
        _transfer_builder(_arch), default_input=(3, 224, 224), default_classes=1000, recorded={"pretrained": False}
    )
