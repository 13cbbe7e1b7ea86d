"""The model zoo, registry, activations, summary and fine-tuning helper (CPU, a few seconds)."""

from __future__ import annotations

import argparse
import urllib.error

import pytest
import torch
from torch import nn

from glyphcore.checkpoint import load_checkpoint, save_checkpoint
from glyphcore.cli.models import add_models_commands
from glyphcore.errors import CheckpointError, ConfigError
from glyphcore.models import (
    ACTIVATION_NAMES,
    ACTIVATIONS,
    create_model,
    get_act_layer,
    list_models,
    load_backbone_from_checkpoint,
    model_entry,
    model_summary,
    register_model,
    registry,
)

torch.set_num_threads(1)

# the smallest sensible input per model (C, H, W), to keep the file fast
SMALL_INPUT = {
    "seed_cnn": (1, 100, 100),
    "deep_cnn": (1, 28, 28),
    "quick_cnn": (1, 28, 28),
    "lenet": (1, 28, 28),
    "mlp": (1, 28, 28),
    "tiny_conv": (1, 28, 28),
    "crnn": (1, 28, 28),
    "vgg": (3, 32, 32),
    "resnet18": (3, 32, 32),
    # the transfer zoo: one grey channel (repeated to RGB) at 32 px, the smallest vgg16_bn takes
    "resnet50": (1, 32, 32),
    "vgg16_bn": (1, 32, 32),
    "densenet121": (1, 32, 32),
    "mobilenet_v3_small": (1, 32, 32),
    "efficientnet_b0": (1, 32, 32),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def small_model(name: str, num_classes: int = 7, **kwargs) -> tuple[nn.Module, tuple[int, int, int]]:
    c, h, w = SMALL_INPUT[name]
    return create_model(name, num_classes=num_classes, in_channels=c, input_size=(h, w), **kwargs), (c, h, w)


def test_the_zoo_is_registered_and_every_model_has_a_small_input_here():
    assert list_models()[0] == "seed_cnn"
    assert set(list_models()) == set(SMALL_INPUT)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("name", list(SMALL_INPUT))
def test_every_model_with_every_activation_forwards_to_the_right_shape(name, activation):
    torch.manual_seed(0)
    model, (c, h, w) = small_model(name, activation=activation)
    out = model(torch.rand(2, c, h, w))  # train mode: BatchNorm uses the batch statistics
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    # the chosen activation is really in the model
    assert any(isinstance(m, get_act_layer(activation)) for m in model.modules())


@pytest.mark.parametrize("name", list(SMALL_INPUT))
def test_models_run_channels_last_under_bf16_autocast_and_backpropagate(name):
    torch.manual_seed(0)
    model, (c, h, w) = small_model(name)
    model = model.to(memory_format=torch.channels_last)
    x = torch.rand(2, c, h, w).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    out.float().logsumexp(1).sum().backward()
    assert out.shape == (2, 7) and torch.isfinite(out.float()).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    ("name", "input_shape", "classes", "options", "expected"),
    [
        ("seed_cnn", (1, 100, 100), 52, {}, 702_948),
        ("quick_cnn", (1, 100, 100), 52, {}, 627_284),
        ("lenet", (1, 28, 28), 10, {}, 44_470),
        ("mlp", (1, 28, 28), 10, {}, 41_250),
        ("tiny_conv", (1, 28, 28), 10, {}, 11_842),
        ("tiny_conv", (1, 28, 28), 10, {"pool": True}, 3_202),
        ("vgg", (3, 32, 32), 10, {"depth": 19}, 20_040_522),  # the CIFAR VGG-19 with BatchNorm
        ("resnet18", (3, 224, 224), 1000, {}, 11_689_512),  # torchvision's resnet18
    ],
)
def test_parameter_counts_of_the_sources_are_exact(name, input_shape, classes, options, expected):
    c, h, w = input_shape
    model = create_model(name, num_classes=classes, in_channels=c, input_size=(h, w), **options)
    assert n_params(model) == expected


def test_seed_cnn_summary_reproduces_the_reports_table_and_flops():
    model = create_model("seed_cnn", num_classes=52, in_channels=1, input_size=100)
    summary = model_summary(model, (1, 100, 100))
    conv_pool = [r.output_shape for r in summary.rows if r.type in ("Conv2d", "MaxPool2d")]
    assert conv_pool == [(16, 48, 48), (16, 24, 24), (32, 24, 24), (32, 12, 12), (32, 12, 12), (32, 6, 6)]
    assert summary.total_params == summary.trainable_params == 702_948
    assert sum(r.params for r in summary.rows) == 702_948
    assert summary.output_shape == (52,)
    # forward: 2 x (3.6864M + 7.3728M + 3.6864M conv MACs + 0.662M fc MACs) = 30.82 MFLOP;
    # training: 3 x forward less conv1's input gradient = 85.07 MFLOP per training image
    assert summary.flops == 30_815_232
    assert summary.train_flops == 85_072_896
    text = summary.to_text()
    assert "features.conv1 (Conv2d)" in text and "16x48x48" in text and "Total params: 702,948" in text
    assert "30.82 M" in text and "85.07 M" in text


def test_summary_leaves_the_model_as_it_was():
    model, (c, h, w) = small_model("lenet")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary = model_summary(model, (c, h, w))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN stats untouched
    assert summary.to_records()[0]["output_shape"] == "6x24x24"


def test_summary_counts_the_gru_and_a_frozen_backbone():
    crnn, shape = small_model("crnn")
    rows = {r.type: r for r in model_summary(crnn, shape).rows}
    gru = crnn.gru
    # 7 time steps (28 / 4 columns), 3 gates x (input x hidden + hidden x hidden) MACs each, x 2 FLOPs
    assert rows["GRU"].flops == 2 * 7 * 3 * (gru.input_size * 128 + 128 * 128)
    frozen, shape = small_model("resnet18", freeze_backbone=True)
    summary = model_summary(frozen, shape)
    assert summary.trainable_params == 512 * 7 + 7  # only the fc trains
    assert [n for n, p in frozen.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]


def test_a_duplicate_model_name_is_refused():
    def seed_cnn(*, num_classes, in_channels, input_size, act_layer, batchnorm, dropout):
        return nn.Linear(1, 1)

    with pytest.raises(ValueError, match="already registered"):
        register_model(seed_cnn)
    with pytest.raises(ValueError, match="already registered"):
        register_model(name="lenet")(seed_cnn)
    assert model_entry("seed_cnn").builder is not seed_cnn


def test_a_new_model_registers_with_its_options():
    def _probe_net(*, num_classes, in_channels, input_size, act_layer, batchnorm, dropout, width: int = 4):
        """A probe: one linear layer."""
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * input_size[0] * input_size[1], num_classes))

    register_model(default_input=(1, 8, 8), default_classes=3)(_probe_net)
    try:
        assert "_probe_net" in list_models()
        assert model_entry("_probe_net").options == {"width": 4}
        assert model_entry("_probe_net").description == "A probe: one linear layer."
        model = create_model("_probe_net", num_classes=3, in_channels=1, input_size=8)
        assert model.glyph_args["width"] == 4
    finally:
        registry._REGISTRY.pop("_probe_net", None)


def test_unknown_names_and_options_are_errors_that_list_the_valid_ones():
    with pytest.raises(ConfigError) as e:
        create_model("resnet101", num_classes=10, in_channels=1, input_size=28)
    assert all(name in str(e.value) for name in list_models())
    with pytest.raises(ConfigError) as e:
        create_model("lenet", num_classes=10, in_channels=1, input_size=28, activation="swish")
    assert all(name in str(e.value) for name in ACTIVATION_NAMES)
    with pytest.raises(ConfigError, match="depth=19"):
        create_model("vgg", num_classes=10, in_channels=3, input_size=32, width=2)
    with pytest.raises(ConfigError, match="11, 13, 16, 19"):
        create_model("vgg", num_classes=10, in_channels=3, input_size=32, depth=12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 0}, "num_classes"),
        ({"in_channels": 1.5}, "in_channels"),
        ({"input_size": (28, 0)}, "input_size"),
        ({"input_size": (28, 28, 28)}, "input_size"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_counts_and_sizes_are_config_errors(kwargs, message):
    args = {"num_classes": 10, "in_channels": 1, "input_size": 28, **kwargs}
    with pytest.raises(ConfigError, match=message):
        create_model("lenet", **args)


@pytest.mark.parametrize(
    ("name", "minimum"),
    [("seed_cnn", 20), ("deep_cnn", 16), ("lenet", 16), ("tiny_conv", 6), ("crnn", 4), ("vgg", 8), ("resnet18", 8)],
)
def test_too_small_inputs_are_refused_with_the_minimum_size(name, minimum):
    c = SMALL_INPUT[name][0]
    with pytest.raises(ConfigError, match=f"at least {minimum}x{minimum}"):
        create_model(name, num_classes=5, in_channels=c, input_size=(minimum - 1, 64))
    model = create_model(name, num_classes=5, in_channels=c, input_size=minimum)
    model.eval()  # batch 1 at the minimum size: BatchNorm needs its running statistics
    assert model(torch.rand(1, c, minimum, minimum)).shape == (1, 5)


def test_tiny_conv_pool_needs_a_larger_minimum():
    with pytest.raises(ConfigError, match="at least 8x8"):
        create_model("tiny_conv", num_classes=5, in_channels=1, input_size=7, pool=True)


@pytest.mark.parametrize(
    ("name", "side"),
    [("seed_cnn", 64), ("vgg", 28), ("vgg", 100), ("mlp", 100), ("resnet18", 64), ("deep_cnn", 100), ("crnn", 100)],
)
def test_models_take_other_sizes_than_their_default(name, side):
    model = create_model(name, num_classes=52, in_channels=1, input_size=(side, side + 4)).eval()
    assert model(torch.rand(1, 1, side, side + 4)).shape == (1, 52)


@pytest.mark.parametrize("name", list(SMALL_INPUT))
def test_a_model_rebuilt_from_its_glyph_args_has_the_same_weights_layout(name):
    model, _ = small_model(name, activation="gelu", dropout=0.25)
    assert model.glyph_name == name
    args = model.glyph_args
    assert args["activation"] == "gelu" and args["dropout"] == 0.25 and args["num_classes"] == 7
    assert isinstance(args["input_size"], list)
    rebuilt = create_model(name, **args)
    assert rebuilt.glyph_args == args
    mine, theirs = model.state_dict(), rebuilt.state_dict()
    assert list(mine) == list(theirs)
    assert all(mine[k].shape == theirs[k].shape for k in mine)


def test_a_checkpoint_rebuilds_the_same_model(tmp_path):
    torch.manual_seed(0)
    model = create_model("crnn", num_classes=5, in_channels=1, input_size=32, activation="elu", bidirectional=True)
    payload = {
        "model_name": model.glyph_name,
        "model_args": model.glyph_args,
        "classes": list("abcde"),
        "state_dict": model.state_dict(),
    }
    ckpt = load_checkpoint(save_checkpoint(payload, tmp_path / "best.pt"))  # weights_only load
    rebuilt = create_model(ckpt["model_name"], **ckpt["model_args"])
    rebuilt.load_state_dict(ckpt["state_dict"])
    x = torch.rand(3, 1, 32, 32)
    assert torch.equal(model.eval()(x), rebuilt.eval()(x))


def test_dropout_adds_layers_without_shifting_weight_names():
    plain = create_model("seed_cnn", num_classes=52, in_channels=1, input_size=100)
    dropped = create_model("seed_cnn", num_classes=52, in_channels=1, input_size=100, dropout=0.3)
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())
    assert sum(isinstance(m, nn.Dropout) for m in dropped.modules()) == 3
    assert list(plain.state_dict()) == list(dropped.state_dict())
    no_bn = create_model("seed_cnn", num_classes=52, in_channels=1, input_size=100, batchnorm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in no_bn.modules())
    assert n_params(no_bn) == 702_948 - 2 * (16 + 32 + 32)


def test_the_activation_table_has_the_eight_activations_with_formulas():
    assert ACTIVATION_NAMES == ("relu", "silu", "elu", "leaky_relu", "sigmoid", "tanh", "gelu", "mish")
    for row in ACTIVATIONS.values():
        assert row.formula.startswith("f(x)") and row.derivative.startswith("f'(x)") and row.description
        assert isinstance(row.layer(), nn.Module)
    assert get_act_layer("Leaky-ReLU") is nn.LeakyReLU
    with pytest.raises(ConfigError, match="relu, silu, elu"):
        get_act_layer("softsign")


def _fake_imagenet_resnet18(*args, **kwargs):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    return resnet18(weights=None).state_dict()


def test_resnet18_pretrained_offline_says_where_the_weights_go(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)  # never download in tests
    with pytest.raises(ConfigError) as e:
        create_model("resnet18", num_classes=52, in_channels=1, input_size=64, pretrained=True)
    assert "could not be downloaded" in str(e.value) and torch.hub.get_dir() in str(e.value)


def test_resnet18_pretrained_fits_the_imagenet_stem_to_one_channel(monkeypatch):
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _fake_imagenet_resnet18)
    source = _fake_imagenet_resnet18()
    model = create_model(
        "resnet18", num_classes=52, in_channels=1, input_size=64, pretrained=True, freeze_backbone=True
    )
    mine = model.state_dict()
    assert torch.allclose(mine["conv1.weight"], source["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(mine["layer3.1.conv2.weight"], source["layer3.1.conv2.weight"])
    assert mine["fc.weight"].shape == (52, 512)  # a new head
    assert model.glyph_args["pretrained"] is False  # a rebuild takes the checkpoint's weights, never downloads
    assert model.glyph_args["freeze_backbone"] is True
    # a small input gets the 3x3 stem, which the 7x7 ImageNet kernel cannot fill; the rest loads
    small = create_model("resnet18", num_classes=10, in_channels=3, input_size=32, pretrained=True)
    assert small.conv1.kernel_size == (3, 3)
    assert torch.equal(small.state_dict()["layer1.0.bn1.running_var"], source["layer1.0.bn1.running_var"])


def test_fine_tuning_copies_the_backbone_and_skips_a_head_of_another_class_count():
    torch.manual_seed(0)
    source = create_model("seed_cnn", num_classes=52, in_channels=1, input_size=100)
    ckpt = {"model_name": "seed_cnn", "model_args": source.glyph_args, "state_dict": source.state_dict()}
    target = create_model("seed_cnn", **{**source.glyph_args, "num_classes": 10})
    result = load_backbone_from_checkpoint(target, ckpt)
    assert result.skipped_head == ["classifier.fc3.weight", "classifier.fc3.bias"]
    assert torch.equal(target.state_dict()["features.conv1.weight"], source.state_dict()["features.conv1.weight"])
    assert torch.equal(target.state_dict()["classifier.fc2.bias"], source.state_dict()["classifier.fc2.bias"])
    with pytest.raises(CheckpointError, match="fc3"):
        load_backbone_from_checkpoint(target, ckpt, strict_head=True)
    other_size = create_model("seed_cnn", num_classes=10, in_channels=1, input_size=64)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_backbone_from_checkpoint(other_size, ckpt)
    with pytest.raises(CheckpointError, match="holds a seed_cnn model"):
        load_backbone_from_checkpoint(create_model("lenet", num_classes=10, in_channels=1, input_size=28), ckpt)
    # a bare state_dict works too
    same = create_model("seed_cnn", **source.glyph_args)
    assert load_backbone_from_checkpoint(same, source.state_dict()).skipped_head == []


def _models_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_models_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_models_list_and_summary(capsys):
    assert _models_cli(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_models()) and "1x100x100" in out
    assert _models_cli(["models", "summary", "seed_cnn"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 702,948" in out and "32x6x6" in out and "30.82 M" in out
    assert _models_cli(["models", "summary", "tiny_conv", "--input", "28", "--option", "pool=True"]) == 0
    assert "Total params: 3,202" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="CxHxW"):
        _models_cli(["models", "summary", "lenet", "--input", "big"])
    with pytest.raises(ConfigError, match="seed_cnn"):
        _models_cli(["models", "summary", "nope"])
