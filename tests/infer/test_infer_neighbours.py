"""glyphcore.infer.neighbours: the training glyphs nearest to a drawing (the Draw page)."""

from __future__ import annotations

from collections import Counter

import pytest
from tiny_runs import tiny_run

from glyphcore.data import load_dataset
from glyphcore.errors import ConfigError, DataError
from glyphcore.infer import frame_to_tensor, load_predictor
from glyphcore.infer.neighbours import nearest_glyphs


@pytest.fixture
def predictor(tiny_glyphs, tmp_path):
    return load_predictor(tiny_run(tmp_path, "tiny-relu"))


@pytest.mark.parametrize("space", ["pixels", "features"])
def test_a_training_glyph_is_its_own_nearest_neighbour(predictor, space):
    train = load_dataset("glyphs-52", "train")
    i = 123
    x = frame_to_tensor(train.images[i : i + 1])
    near = nearest_glyphs(x, predictor, k=5, space=space)
    assert len(near) == 5
    assert near[0].index == i and near[0].label == train.classes[int(train.labels[i])]
    assert near[0].distance == pytest.approx(0.0, abs=1e-4)
    assert [n.distance for n in near] == sorted(n.distance for n in near)
    assert near[0].image.shape == (100, 100) and (near[0].image == train.images[i, 0]).all()


def test_the_reference_is_class_balanced(predictor):
    x = frame_to_tensor(load_dataset("glyphs-52", "valid").images[:1])
    near = nearest_glyphs(x, predictor, k=10_000, per_class=2)
    assert len(near) == 52 * 2  # 2 per class, all of them ranked
    assert Counter(n.label for n in near) == dict.fromkeys(load_dataset("glyphs-52", "train").classes, 2)
    assert [n.distance for n in near] == sorted(n.distance for n in near)


def test_bad_space_and_missing_data(predictor, tmp_path, monkeypatch):
    x = frame_to_tensor(load_dataset("glyphs-52", "valid").images[:1])
    with pytest.raises(ConfigError, match="unknown space"):
        nearest_glyphs(x, predictor, space="latent")
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "no-data"))
    with pytest.raises(DataError):
        nearest_glyphs(x, predictor)
