"""Recipes: every report's experiment builds and trains a step, says what it needs when offline, and
runs from the command line -- on tiny fake data in torchvision's layouts (MNIST, CIFAR-10/100), a tiny
photo folder and the tiny glyphs-52, with weights files the tests write. No network."""

from __future__ import annotations

import hashlib
import pickle
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from glyphcore.cli import main
from glyphcore.data import load_dataset
from glyphcore.errors import ConfigError
from glyphcore.models import IMAGENET_WEIGHTS, WeightsFile
from glyphcore.runs import list_runs, read_config
from glyphcore.train import build_model, make_optimizer
from glyphcore.train.recipes import (
    RECIPES,
    get_recipe,
    missing_downloads,
    recipe_config,
    require_ready,
    sweep_size,
)

torch.set_num_threads(1)


def _idx(path, arr: np.ndarray) -> None:
    """An idx file as MNIST's download leaves it (type 8 = unsigned byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


def _fake_mnist(root, rng) -> None:
    for prefix, n in (("train", 40), ("t10k", 20)):
        _idx(root / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
        _idx(root / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))


def _fake_cifar(root, name: str, rng) -> None:
    """CIFAR's python-version batches: pickled dicts of N x 3072 rows (R, G, B planes)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, name)
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    n_classes, key = (10, "labels") if name == "CIFAR10" else (100, "fine_labels")
    for filename, _md5 in cls.train_list + cls.test_list:
        data = rng.integers(0, 255, (8, 3072), dtype=np.uint8)
        with open(folder / filename, "wb") as f:
            pickle.dump({"data": data, key: [int(v) for v in rng.integers(0, n_classes, 8)]}, f)
    with open(folder / cls.meta["filename"], "wb") as f:
        pickle.dump({cls.meta["key"]: [f"class{i}" for i in range(n_classes)]}, f)


def _fake_photos(root, rng) -> None:
    """Three classes of colour photos, train and test splits: the ResNet50 report's folder layout."""
    for split, n in (("train", 3), ("test", 2)):
        for k, cls in enumerate(("pizza", "steak", "sushi")):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
                pixels[..., k] = 255  # each class its own tint: colour photos, as the loader keeps them
                Image.fromarray(pixels).save(root / split / cls / f"{i}.png")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tiny_glyphs):
    """A data folder with the tiny glyphs-52 and fake MNIST, CIFAR10, CIFAR100 and food-3 photos."""
    root = tmp_path_factory.mktemp("recipe-data")
    rng = np.random.default_rng(0)
    (root / "glyphs-52").symlink_to(tiny_glyphs, target_is_directory=True)
    _fake_mnist(root / "torchvision", rng)
    _fake_cifar(root / "torchvision", "CIFAR10", rng)
    _fake_cifar(root / "torchvision", "CIFAR100", rng)
    _fake_photos(root / "food-3", rng)
    return root


@pytest.fixture
def fake_data(data_dir, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setenv("GLYPH_DATA_DIR", str(data_dir))
    # torchvision checks CIFAR's files against the md5 sums of the real downloads
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    return data_dir


def _runs() -> list:
    """The runs the test made (the committed starter run is listed too)."""
    return [r for r in list_runs() if not r.is_starter]


def _tiny(name: str, data_dir) -> dict:
    """Overrides that make recipe ``name`` tiny: a few images a step, 32 px inputs for the big nets."""
    recipe = get_recipe(name)
    tiny: dict = {"batch_size": 4, "eval_batch_size": 8, "epochs": 1}
    if recipe.data.startswith("folder:"):
        tiny["data"] = f"folder:{data_dir / 'food-3'}"
    if "resize" in recipe.settings.get("model_options", {}):
        tiny["model_options"] = {**recipe.settings["model_options"], "pretrained": False, "resize": 32}
    return tiny


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_builds_and_trains_a_step(name, fake_data):
    recipe = get_recipe(name)
    config = recipe_config(name, from_scratch=recipe.transfer, **_tiny(name, fake_data))
    require_ready(name, from_scratch=recipe.transfer, config=config)  # everything is here
    train = load_dataset(config.data, "train")
    c, h, w = train.images.shape[1:]
    torch.manual_seed(0)
    model = build_model(config, c, (h, w), len(train.classes))
    optimizer = make_optimizer(config, model, torch.device("cpu"))
    x = torch.from_numpy(np.array(train.images[:4])).float() / 255
    y = torch.from_numpy(np.array(train.labels[:4]))
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    after = [p for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(after, before))  # it learned something


def test_recipes_store_the_reports_figures_and_sweeps():
    assert get_recipe("glyph-report").published_acc == 99.03 and "T4" in get_recipe("glyph-report").hardware
    assert get_recipe("glyph-7layer").published_acc == 96.9
    assert get_recipe("cifar100-scratch").published_acc == 51.0
    assert {RECIPES[f"cifar100-{a}"].published_acc for a in ("vgg16_bn", "resnet50", "densenet121")} == {67.0}
    assert get_recipe("mnist-lenet-batchnorm").sweep == {"batchnorm": [True, False]}
    assert "activation" in get_recipe("mnist-lenet-activation").sweep
    assert "optimizer" in get_recipe("mnist-lenet-optimizer").sweep
    cifar = recipe_config("cifar100-densenet121")
    assert (cifar.batch_size, cifar.patience, cifar.optimizer) == (128, 25, "adam")
    assert cifar.model_options == {"pretrained": True, "freeze_backbone": True, "head_hidden": 256}
    assert recipe_config("cifar10-vgg19").model_options == {"depth": 19}
    scratch = recipe_config("cifar100-resnet50", from_scratch=True).model_options
    assert scratch["pretrained"] is False and scratch["freeze_backbone"] is False  # the whole net learns
    with pytest.raises(ConfigError, match="unknown recipe 'mnist'.*glyph-report"):
        get_recipe("mnist")
    with pytest.raises(ConfigError, match="leave --preset out"):
        recipe_config("glyph-report", preset="quick")


def test_offline_a_recipe_names_each_download_its_size_and_the_scratch_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(ConfigError) as e:
        require_ready("cifar100-resnet50")
    text = str(e.value)
    assert "data CIFAR100 (169.0 MB): python -m glyphcore data fetch CIFAR100" in text
    assert "weights resnet50 (97.8 MB): python -m glyphcore models download resnet50" in text
    assert "--from-scratch" in text and "recipes download cifar100-resnet50" in text
    assert [d.name for d in missing_downloads("cifar100-resnet50", from_scratch=True)] == ["CIFAR100"]
    assert missing_downloads("glyph-report") == []  # glyphs-52 is built here, never downloaded


def test_cli_lists_and_shows_recipes(capsys):
    assert main(["recipes", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in RECIPES) and "99.03%" in out
    assert main(["recipes", "show", "cifar100-resnet50"]) == 0
    out = capsys.readouterr().out
    assert "published: 67% test accuracy" in out and "download:  weights resnet50, 97.8 MB" in out
    assert main(["recipes", "show", "nope"]) == 2
    assert "unknown recipe" in capsys.readouterr().err


def test_train_recipe_offline_refuses_then_trains_from_scratch_when_told(
    fake_data, runs_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    tiny = ["--batch-size", "4", "--eval-batch-size", "8", "--epochs", "1", "--threads", "1", "--progress", "off"]
    assert main(["train", "--recipe", "cifar100-densenet121", *tiny]) == 2
    assert "weights densenet121 (30.8 MB)" in capsys.readouterr().err
    assert _runs() == []
    assert main(["train", "--recipe", "cifar100-densenet121", "--from-scratch", "--name", "d", *tiny]) == 0
    saved = read_config(_runs()[0].path)
    assert saved["model"] == "densenet121" and saved["data"] == "torchvision:CIFAR100"
    assert saved["model_options"]["pretrained"] is False and saved["patience"] == 25
    assert main(["train", "--from-scratch", *tiny]) == 2
    assert "add --recipe NAME" in capsys.readouterr().err


def _fake_weights(folder, arch: str) -> tuple[dict, object]:
    """torchvision's ``arch`` at a seeded random init, saved under its own sha256 prefix."""
    from torchvision.models import get_model

    torch.manual_seed(1)
    state = get_model(arch, weights=None).state_dict()
    tmp = folder / "weights.pth"
    torch.save(state, tmp)
    named = tmp.rename(folder / f"{arch}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth")
    return state, named


@pytest.mark.slow
def test_recipe_download_then_train_with_the_imagenet_weights(fake_data, runs_dir, tmp_path, monkeypatch, capsys):
    """The ResNet50 report's recipe on the photo folder, with weights 'published' at a file:// URL."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    published = tmp_path / "published"
    published.mkdir()
    state, weights = _fake_weights(published, "resnet50")
    monkeypatch.setitem(IMAGENET_WEIGHTS, "resnet50", WeightsFile("resnet50", weights.as_uri(), 97.8, 25_557_032))
    assert main(["recipes", "download", "food3-resnet50"]) == 0
    out = capsys.readouterr().out
    assert out.index("needs 97.8 MB") < out.index("downloading resnet50's ImageNet weights: 97.8 MB")
    folder = f"folder:{fake_data / 'food-3'}"
    options = '{"pretrained": true, "freeze_backbone": true, "resize": 32}'
    tiny = ["--batch-size", "3", "--epochs", "1", "--threads", "1", "--progress", "off", "--name", "food"]
    assert main(["train", "--recipe", "food3-resnet50", "--data", folder, "--model-options", options, *tiny]) == 0
    run = _runs()[0]
    assert run.state == "done" and run.params == 2048 * 3 + 3  # the frozen backbone: only the head trains
    best = torch.load(run.path / "best.pt", weights_only=True)
    assert torch.equal(best["state_dict"]["net.layer3.2.conv2.weight"], state["layer3.2.conv2.weight"])


def test_recipes_launch_starts_the_reports_sweep(fake_data, runs_dir, capsys):
    from glyphcore.runs.sweep import cancel_sweep, read_sweep

    assert main(["recipes", "launch", "mnist-lenet-batchnorm"]) == 0
    sweep_id = capsys.readouterr().out.splitlines()[0]
    sweep = read_sweep(sweep_id)
    assert sweep.grid == {"batchnorm": [True, False]} and len(sweep.run_ids) == 2
    configs = [read_config(runs_dir / run_id) for run_id in sweep.run_ids]
    assert [c["batchnorm"] for c in configs] == [True, False]
    assert {c["data"] for c in configs} == {"torchvision:MNIST"} and {c["model"] for c in configs} == {"lenet"}
    if read_sweep(sweep_id).active:
        cancel_sweep(sweep_id, wait=60)


def test_an_ablation_recipe_with_seeds_crosses_its_sweep_with_the_seeds(fake_data, runs_dir, capsys):
    from glyphcore.runs.sweep import cancel_sweep, read_sweep

    assert sweep_size(get_recipe("mnist-lenet-batchnorm"), 3) == 6  # what the gallery's time estimate adds up
    assert main(["recipes", "launch", "mnist-lenet-batchnorm", "--seeds", "2"]) == 0
    sweep_id = capsys.readouterr().out.splitlines()[0]
    sweep = read_sweep(sweep_id)
    assert sweep.grid == {"batchnorm": [True, False], "seed": [42, 43]} and len(sweep.run_ids) == 4
    configs = [read_config(runs_dir / run_id) for run_id in sweep.run_ids]
    assert [(c["batchnorm"], c["seed"]) for c in configs] == [(True, 42), (True, 43), (False, 42), (False, 43)]
    assert {c["name"] for c in configs} == {"mnist-lenet-batchnorm"}
    if read_sweep(sweep_id).active:
        cancel_sweep(sweep_id, wait=60)


def test_a_lower_backbone_learning_rate_holds_through_the_schedule(fake_data, runs_dir, capsys):
    """A transfer model's backbone trains at backbone_lr_scale x the head's rate at every step."""
    options = '{"backbone_lr_scale": 0.1}'
    argv = ["train", "--data", "torchvision:MNIST", "--model", "mobilenet_v3_small", "--model-options", options]
    argv += ["--schedule", "cosine", "--lr", "0.01", "--batch-size", "8", "--epochs", "2", "--threads", "1"]
    assert main([*argv, "--progress", "off", "--name", "lower-lr"]) == 0
    last = torch.load(_runs()[0].path / "last.pt", weights_only=True)
    head, backbone = last["optimizer"]["param_groups"]
    assert head["lr_scale"] == 1.0 and backbone["lr_scale"] == 0.1
    assert 0 < head["lr"] < 0.01  # the cosine schedule has moved it ...
    assert backbone["lr"] == pytest.approx(0.1 * head["lr"])  # ... and the backbone's with it
