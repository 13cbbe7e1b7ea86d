"""The quick preset and its model, quick_cnn: the preset validates and round-trips through the CLI
flags, the model builds, forwards and backpropagates with every activation at the glyph frame's
100x100, and a tiny fit with the preset learns with every activation (CPU, a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shapes_data import CLASSES, ShapesSet, shapes_images

from glyphcore.errors import ConfigError
from glyphcore.models import ACTIVATION_NAMES, create_model, get_act_layer
from glyphcore.train import CHOICES, PRESETS, build_model, config_to_argv, fit, make_config

torch.set_num_threads(1)

SIDE = 100  # the glyph frame's side in px: the quick preset's model takes the standard input


def shapes_100(n: int, seed: int, split: str) -> ShapesSet:
    """The 28x28 bars-and-boxes set scaled 4x (nearest) and cropped to 100x100."""
    images, labels = shapes_images(n, seed)
    big = images.repeat(4, axis=2).repeat(4, axis=3)[:, :, 6 : 6 + SIDE, 6 : 6 + SIDE]
    return ShapesSet(np.ascontiguousarray(big), labels, list(CLASSES), split=split)


def test_the_quick_preset_is_a_choice_and_validates():
    assert "quick" in CHOICES["preset"] and "quick" in PRESETS
    cfg = make_config("quick")
    assert (cfg.model, cfg.preset, cfg.batch_size, cfg.schedule) == ("quick_cnn", "quick", 500, "onecycle")
    assert cfg.label_smoothing == 0.0 and cfg.augment == "none"  # calibration stays honest, no extra cost
    assert 0.0 < cfg.dropout < 1.0
    # the CLI form: only what differs from the preset is spelled out
    assert config_to_argv(make_config("quick", activation="tanh")) == ["--preset", "quick", "--activation", "tanh"]
    with pytest.raises(ConfigError, match="dropout"):
        make_config("quick", dropout=1.5)


def test_the_quick_presets_model_options_go_with_its_model_only():
    quick = make_config("quick")
    model = build_model(quick, 1, (SIDE, SIDE), 52)
    assert model.glyph_args["widths"] == [8, 16, 32] and model.glyph_args["hidden"] == 512
    assert sum(p.numel() for p in model.parameters()) == 623_172
    # another model from the quick preset (CLI: --preset quick --model seed_cnn) gets its own defaults,
    # not quick_cnn's widths (seed_cnn would refuse them as unknown options)
    other = make_config("quick", model="seed_cnn")
    assert other.model_options == {} and other.batch_size == 500
    assert build_model(other, 1, (SIDE, SIDE), 52).glyph_name == "seed_cnn"
    assert make_config("quick", model="quick_cnn").model_options == quick.model_options
    assert make_config("quick", model="seed_cnn", model_options={"hidden": 64}).model_options == {"hidden": 64}
    # a sweep over models from the quick preset: each point builds
    from glyphcore.runs.sweep import sweep_configs

    points = sweep_configs(quick, {"model": ["quick_cnn", "seed_cnn"]})
    assert [p.model_options for p in points] == [quick.model_options, {}]
    for p in points:
        build_model(p, 1, (SIDE, SIDE), 52)
    # the CLI form of a quick run on seed_cnn rebuilds the same config
    from glyphcore.train.config import config_to_argv

    assert config_to_argv(other) == ["--preset", "quick", "--model", "seed_cnn", "--model-options", "{}"]


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_the_quick_model_builds_and_backpropagates_with_every_activation(activation):
    cfg = make_config("quick", activation=activation)
    torch.manual_seed(0)
    model = build_model(cfg, 1, (SIDE, SIDE), 52).to(memory_format=torch.channels_last)
    assert model.glyph_name == "quick_cnn" and model.glyph_args["dropout"] == cfg.dropout
    assert any(isinstance(m, get_act_layer(activation)) for m in model.modules())
    x = torch.rand(4, 1, SIDE, SIDE).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.shape == (4, 52) and torch.isfinite(out.float()).all()
    out.float().logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.features.conv1.weight.grad.abs().sum() > 0  # the gradient reaches the stem


def test_quick_cnn_keeps_its_parameter_count_and_refuses_bad_options():
    model = create_model("quick_cnn", num_classes=52, in_channels=1, input_size=SIDE)
    assert sum(p.numel() for p in model.parameters()) == 627_284
    # no fixed downsampling: the stem sees the full frame
    assert model.features.conv1.in_channels == 1 and model.features.conv1.stride == (2, 2)
    with pytest.raises(ConfigError, match="widths"):
        create_model("quick_cnn", num_classes=52, in_channels=1, input_size=SIDE, widths=[16, 0])
    with pytest.raises(ConfigError, match="hidden"):
        create_model("quick_cnn", num_classes=52, in_channels=1, input_size=SIDE, hidden=0)
    with pytest.raises(ConfigError, match="at least"):
        create_model("quick_cnn", num_classes=52, in_channels=1, input_size=12)
    with pytest.raises(ConfigError, match="input_pool"):
        create_model("quick_cnn", num_classes=52, in_channels=1, input_size=SIDE, input_pool=0)


def test_the_compare_preset_sees_a_coarser_frame_at_a_quarter_of_the_convolutions():
    """input_pool 2: the stem convolves a 50x50 average of the frame (a quarter of the quick
    preset's positions), and the model still takes the 100x100 frame."""
    quick, compare = (
        create_model("quick_cnn", num_classes=52, in_channels=1, input_size=SIDE, **make_config(p).model_options)
        for p in ("quick", "compare")
    )
    x = torch.rand(2, 1, SIDE, SIDE)
    assert compare(x).shape == quick(x).shape == (2, 52)
    stem_quick = quick.features.conv1(x).shape[-2:]  # 50 x 50
    stem_compare = compare.features.conv1(compare.features.inpool(x)).shape[-2:]  # 25 x 25
    assert stem_quick == (50, 50) and stem_compare == (25, 25)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_a_tiny_fit_with_the_quick_preset_learns_with_every_activation(activation):
    train_set, val_set = shapes_100(400, 1, "train"), shapes_100(120, 2, "valid")
    # the preset's recipe at a size the test can afford: batch 25 (16 steps an epoch), 4 epochs, and
    # a peak lr for that batch: the preset's 8e-3 (for batch 500) times the square root of 25 / 500
    # (at 8e-3 and 4e-3 the first epochs of batch 25 diverge).
    # BatchNorm's running statistics need a few dozen steps, and sigmoid the most epochs (0.52 valid
    # accuracy after 3, 0.93 after 4).
    cfg = make_config(
        "quick", activation=activation, epochs=4, batch_size=25, lr=2e-3, eval_batch_size=120, threads=1, data="shapes"
    )
    result = fit(cfg, None, train_set=train_set, val_set=val_set)
    assert result.state == "done" and result.epochs_run == 4
    assert result.best_val_acc >= 0.9, result.history  # 4 easy classes: chance is 0.25
