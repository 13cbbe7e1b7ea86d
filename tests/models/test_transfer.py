"""The transfer zoo: torchvision's ImageNet classifiers fitted to the data, frozen or not, and their
weights: from a verified cache file only, downloaded only when asked -- all without a network (the
weights files are written by the tests, registered under their own sha256 in a temporary TORCH_HOME)."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.models import (
    IMAGENET_WEIGHTS,
    TRANSFER_ARCHS,
    WeightsFile,
    cached_weights,
    create_model,
    download_weights,
    param_groups,
    rebuild_model,
)

torch.set_num_threads(1)

ARCH = "mobilenet_v3_small"  # the smallest (2.5M parameters, a 10 MB weights file)


def _n(model: nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


@pytest.mark.parametrize(
    ("name", "ours", "torchvision_head"),
    [
        ("resnet50", 25_557_032, 2048 * 1000 + 1000),
        ("vgg16_bn", 15_236_136, 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000),
        ("densenet121", 7_978_856, 1024 * 1000 + 1000),
        ("mobilenet_v3_small", 1_504_008, 576 * 1024 + 1024 + 1024 * 1000 + 1000),
        ("efficientnet_b0", 5_288_548, 1280 * 1000 + 1000),
    ],
)
def test_parameter_counts_are_torchvisions_backbone_plus_our_head(name, ours, torchvision_head):
    with torch.device("meta"):  # shapes only: nothing allocated
        model = create_model(name, num_classes=1000, in_channels=3, input_size=224, activation="relu")
    assert _n(model) == ours
    published = IMAGENET_WEIGHTS[name].num_params  # torchvision's count, with its own classifier
    head = TRANSFER_ARCHS[name].width * 1000 + 1000
    assert ours - head == published - torchvision_head


def test_grey_images_are_repeated_to_rgb_or_fed_to_a_one_channel_stem():
    torch.manual_seed(0)
    repeat = create_model(ARCH, num_classes=4, in_channels=1, input_size=32).eval()
    rgb = create_model(ARCH, num_classes=4, in_channels=3, input_size=32).eval()
    rgb.load_state_dict(repeat.state_dict())
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(repeat(x), rgb(x.repeat(1, 3, 1, 1)), atol=1e-5)  # grey = an RGB photo of grey
    stem = create_model(ARCH, num_classes=4, in_channels=1, input_size=32, channels="stem")
    assert stem.net.features[0][0].in_channels == 1
    with pytest.raises(ConfigError, match="'repeat' or 'stem'"):
        create_model(ARCH, num_classes=4, in_channels=1, input_size=32, channels="rgb")


def test_small_images_are_resized_to_what_the_net_takes():
    vgg = create_model("vgg16_bn", num_classes=3, in_channels=1, input_size=28).eval()
    assert vgg.resize_to == 32  # vgg16_bn's five max-pools need 32 px: MNIST's 28 px are upsampled
    assert vgg(torch.rand(1, 1, 28, 28)).shape == (1, 3)
    bigger = create_model(ARCH, num_classes=3, in_channels=1, input_size=28, resize=64)
    assert bigger.resize_to == 64 and bigger.glyph_args["resize"] == 64
    with pytest.raises(ConfigError, match="at least 29x29"):
        create_model("densenet121", num_classes=3, in_channels=3, input_size=28, resize=16)


def test_a_frozen_backbone_trains_the_head_and_the_last_blocks_asked_for():
    head_only = create_model("resnet50", num_classes=5, in_channels=3, input_size=32, freeze_backbone=True)
    assert {n for n, p in head_only.named_parameters() if p.requires_grad} == {"net.fc.fc1.weight", "net.fc.fc1.bias"}
    last = create_model(
        "resnet50", num_classes=5, in_channels=3, input_size=32, freeze_backbone=True, unfreeze_last=1, head_hidden=16
    )
    trainable = {n.split(".")[1] for n, p in last.named_parameters() if p.requires_grad}
    assert trainable == {"fc", "layer4"}
    assert _n(last, trainable=True) == _n(last.net.layer4) + (2048 * 16 + 16) + (16 * 5 + 5)
    # frozen BatchNorm keeps ImageNet's statistics in training mode; the unfrozen block's learn
    last.train()
    frozen_bn, live_bn = last.net.bn1, last.net.layer4[0].bn1
    before_frozen, before_live = frozen_bn.running_mean.clone(), live_bn.running_mean.clone()
    last(torch.rand(4, 3, 32, 32))
    assert torch.equal(frozen_bn.running_mean, before_frozen) and not frozen_bn.training
    assert not torch.equal(live_bn.running_mean, before_live)
    with pytest.raises(ConfigError, match="0..5"):
        create_model("resnet50", num_classes=5, in_channels=3, input_size=32, freeze_backbone=True, unfreeze_last=6)
    with pytest.raises(ConfigError, match="freeze_backbone"):
        create_model("resnet50", num_classes=5, in_channels=3, input_size=32, unfreeze_last=2)


def test_a_lower_backbone_learning_rate_makes_two_parameter_groups():
    model = create_model(ARCH, num_classes=5, in_channels=1, input_size=32, backbone_lr_scale=0.1)
    head, backbone = param_groups(model, 1e-3)
    assert head["lr"] == 1e-3 and backbone["lr"] == pytest.approx(1e-4) and backbone["lr_scale"] == 0.1
    assert {id(p) for p in head["params"]} == {id(p) for p in model.net.classifier.parameters()}
    assert len(head["params"]) + len(backbone["params"]) == len(list(model.parameters()))
    plain = create_model("lenet", num_classes=5, in_channels=1, input_size=28)
    assert [g["lr_scale"] for g in param_groups(plain, 1e-3)] == [1.0]
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        create_model(ARCH, num_classes=5, in_channels=1, input_size=32, backbone_lr_scale=0.0)


@pytest.mark.parametrize(("value", "pooled"), [(False, False), ("false", False), ("True", True), (True, True)])
def test_bool_options_are_converted_explicitly_never_by_truthiness(value, pooled):
    model = create_model("tiny_conv", num_classes=10, in_channels=1, input_size=28, pool=value)
    assert _n(model) == (3_202 if pooled else 11_842)
    assert model.glyph_args["pool"] is pooled


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("tiny_conv", {"pool": 0}, "pool must be true or false, got 0"),
        ("tiny_conv", {"pool": "nope"}, "pool must be true or false"),
        ("resnet50", {"unfreeze_last": "2"}, "unfreeze_last must be a whole number"),
        ("resnet50", {"freeze_backbone": 1}, "freeze_backbone must be true or false"),
        ("resnet50", {"backbone_lr_scale": float("nan")}, "finite number"),
        ("vgg", {"depth": 19.0}, "depth must be a whole number"),
        ("resnet50", {"channels": 3}, "channels must be text"),
    ],
)
def test_options_of_the_wrong_type_are_refused(name, options, message):
    with pytest.raises(ConfigError, match=message):
        create_model(name, num_classes=10, in_channels=3, input_size=32, **options)


# --------------------------------------------------------------------------------------------
# ImageNet weights: a file the test writes, registered under its own sha256 in a temporary TORCH_HOME


def _fake_imagenet_file(folder, seed: int = 1) -> tuple[dict[str, torch.Tensor], object]:
    """torchvision's mobilenet_v3_small at a seeded random init, saved as torch hub names its files."""
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(seed)
    state = mobilenet_v3_small(weights=None).state_dict()
    tmp = folder / "weights.pth"
    torch.save(state, tmp)
    prefix = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    named = folder / f"{ARCH}-{prefix}.pth"
    tmp.rename(named)
    return state, named


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("TORCH_HUB", raising=False)
    return home / "hub" / "checkpoints"


def _register(monkeypatch, url: str) -> None:
    monkeypatch.setitem(IMAGENET_WEIGHTS, ARCH, WeightsFile(ARCH, url, 9.8, 2_542_856))


def test_pretrained_weights_come_from_a_verified_cache_file_only(tmp_path, torch_home, monkeypatch):
    src = tmp_path / "published"
    src.mkdir()
    state, published = _fake_imagenet_file(src)
    _register(monkeypatch, published.as_uri())
    with pytest.raises(ConfigError, match=rf"not downloaded \(9.8 MB\).*models download {ARCH}"):
        create_model(ARCH, num_classes=3, in_channels=1, input_size=32, pretrained=True)
    torch_home.mkdir(parents=True)
    (torch_home / published.name).write_bytes(published.read_bytes())
    model = create_model(ARCH, num_classes=3, in_channels=1, input_size=32, pretrained=True, channels="stem")
    mine = model.net.state_dict()
    assert torch.equal(mine["features.3.block.0.0.weight"], state["features.3.block.0.0.weight"])
    assert torch.allclose(mine["features.0.0.weight"], state["features.0.0.weight"].sum(1, keepdim=True))
    assert mine["classifier.fc1.weight"].shape == (3, 576)  # a new head
    assert model.glyph_args["pretrained"] is False  # a rebuild takes a checkpoint's weights, never the cache's
    rebuilt = rebuild_model(ARCH, {**model.glyph_args, "pretrained": True}, model.state_dict())
    assert not torch.equal(
        rebuilt.net.state_dict()["features.3.block.0.0.weight"], state["features.3.block.0.0.weight"]
    )


class _Payload:
    """Pickled, it runs ``exec`` on load: what a weights_only=False load would fall for."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_a_damaged_or_planted_cache_file_is_refused_and_never_runs(tmp_path, torch_home, monkeypatch):
    torch_home.mkdir(parents=True)
    marker = tmp_path / "code-ran.txt"
    planted = torch_home / "planted.pth"
    torch.save(_Payload(marker), planted)  # a pickle that runs exec when unpickled
    prefix = hashlib.sha256(planted.read_bytes()).hexdigest()[:8]
    planted = planted.rename(torch_home / f"{ARCH}-{prefix}.pth")  # even its own hash in its name
    _register(monkeypatch, f"https://example.invalid/{planted.name}")
    with pytest.raises(ConfigError, match="Python objects that would run code"):
        create_model(ARCH, num_classes=3, in_channels=1, input_size=32, pretrained=True)
    assert not marker.exists()
    _register(monkeypatch, f"https://example.invalid/{ARCH}-00000000.pth")
    (torch_home / f"{ARCH}-00000000.pth").write_bytes(b"damaged")
    with pytest.raises(ConfigError, match="sha256 does not start with 00000000"):
        create_model(ARCH, num_classes=3, in_channels=1, input_size=32, pretrained=True)


def test_download_says_the_size_first_and_keeps_only_a_file_of_the_right_hash(tmp_path, torch_home, monkeypatch):
    src = tmp_path / "published"
    src.mkdir()
    state, published = _fake_imagenet_file(src)
    _register(monkeypatch, published.as_uri())  # a file:// URL: torch's own download code, no network
    said: list[str] = []
    path = download_weights(ARCH, announce=said.append)
    assert said == [f"downloading {ARCH}'s ImageNet weights: 9.8 MB from {published.as_uri()} to {path}"]
    assert path == torch_home / published.name and cached_weights(ARCH) == path
    assert download_weights(ARCH, announce=said.append) == path and len(said) == 1  # cached: no second fetch
    model = create_model(ARCH, num_classes=3, in_channels=3, input_size=32, pretrained=True)
    assert torch.equal(model.net.state_dict()["features.0.0.weight"], state["features.0.0.weight"])
    # a published file whose content does not match its name is not kept
    wrong = src / f"{ARCH}-00000000.pth"
    wrong.write_bytes(published.read_bytes())
    _register(monkeypatch, wrong.as_uri())
    with pytest.raises(ConfigError, match="could not be downloaded"):
        download_weights(ARCH)
    assert not (torch_home / wrong.name).exists()
