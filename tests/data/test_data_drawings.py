"""The personal drawings set: keep a drawing with its label, load the set, score a run on it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from glyphcore.data.drawings import (
    delete_drawing,
    drawings_dir,
    list_drawings,
    load_drawings,
)
from glyphcore.errors import CheckpointError, DataError, ImageInputError
from glyphcore.frame import CLASSES
from glyphcore.infer import load_predictor, preprocess
from glyphcore.infer.drawings import keep_drawing, score_run_on_drawings
from glyphcore.testing import letter_strokes, render_canvas, untrained_checkpoint


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_keep_and_load_drawings(data_dir):
    assert len(load_drawings()) == 0 and list_drawings() == []
    p_a = preprocess(render_canvas(letter_strokes("a")))
    path_a = keep_drawing(p_a, "a")
    path_q = keep_drawing(render_canvas(letter_strokes("Q"), style="black_on_white"), "Q")  # a raw canvas works too
    assert path_a.parent == drawings_dir() == data_dir / "drawings"
    assert path_a.name.startswith("61_") and path_q.name.startswith("51_") and path_a.suffix == ".png"
    assert not list(drawings_dir().glob("*.tmp"))  # written atomically: no temp files left
    np.testing.assert_array_equal(np.asarray(Image.open(path_a)), p_a.preview)  # exactly what the model saw
    s = load_drawings()
    assert s.source == "drawings" and s.classes == CLASSES and s.images.shape == (2, 1, 100, 100)
    assert sorted(CLASSES[i] for i in s.labels) == ["Q", "a"]
    delete_drawing(path_a)
    assert [label for _, label in list_drawings()] == ["Q"]
    with pytest.raises(DataError, match="not a kept drawing"):
        delete_drawing(data_dir / "elsewhere.png")


def test_bad_labels_and_empty_drawings_are_not_kept(data_dir):
    canvas = render_canvas(letter_strokes("b"))
    for bad in ("7", "ab", "", None):
        with pytest.raises(ImageInputError, match="must be one letter"):
            keep_drawing(canvas, bad)
    with pytest.raises(ImageInputError, match="nothing to keep"):
        keep_drawing(np.zeros((280, 280, 4), np.uint8), "b")
    assert list_drawings() == []


def test_score_a_run_on_the_drawings(tmp_path):
    ckpt = untrained_checkpoint(tmp_path / "m.pt")
    empty = score_run_on_drawings(ckpt)
    assert (empty["accuracy"], empty["n"], empty["correct"]) == (None, 0, 0)
    pr = load_predictor(ckpt)
    letters = "AbCdx"
    for i, c in enumerate(letters):
        keep_drawing(preprocess(render_canvas(letter_strokes(c, jitter=1.0, seed=i))), c)
    score = score_run_on_drawings(ckpt)
    # the same answers as predicting each kept drawing one by one
    expected = sum(
        pr.predict(preprocess(render_canvas(letter_strokes(c, jitter=1.0, seed=i))))[0].label == c
        for i, c in enumerate(letters)
    )
    assert score["n"] == 5 and score["correct"] == expected and score["accuracy"] == expected / 5
    assert score_run_on_drawings(pr)["correct"] == expected  # a loaded predictor is accepted too
    with pytest.raises(CheckpointError, match="cannot be scored on drawn letters"):
        score_run_on_drawings(untrained_checkpoint(tmp_path / "digits.pt", classes="0123456789"))
