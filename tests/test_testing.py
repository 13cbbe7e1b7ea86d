"""Synthetic mouse drawings: letters follow the Draw page's guide lines; the canvas array looks like
streamlit-drawable-canvas's ``image_data`` in each of its three styles."""

from __future__ import annotations

import numpy as np
import pytest

from glyphcore.frame import BASELINE_ROW, CANVAS_SIZE, CAP_ROW, CLASSES, FRAME_SIZE, X_HEIGHT_ROW, guide_rows
from glyphcore.testing import letter_strokes, render_canvas


def _ys(strokes):
    return np.array([y for s in strokes for _, y in s])


def test_every_letter_draws_inside_the_canvas():
    for i, letter in enumerate(CLASSES):
        strokes = letter_strokes(letter, jitter=1.0, seed=i)
        pts = np.array([p for s in strokes for p in s])
        assert len(strokes) >= 1 and len(pts) >= 2, letter
        assert pts.min() >= 0 and pts.max() <= CANVAS_SIZE, letter


def test_capitals_span_cap_line_to_baseline_and_lowercase_keeps_its_size():
    rows = guide_rows(280)
    assert rows["cap"] == pytest.approx(CAP_ROW * 2.8) and rows["baseline"] == pytest.approx(BASELINE_ROW * 2.8)
    h = _ys(letter_strokes("H"))
    assert h.min() == pytest.approx(rows["cap"], abs=0.5) and h.max() == pytest.approx(rows["baseline"], abs=0.5)
    x = _ys(letter_strokes("x"))
    # x-height letters sit on the baseline and reach the x-height guide (within 2 frame px)
    assert x.max() == pytest.approx(rows["baseline"], abs=0.5)
    assert abs(x.min() / 2.8 - X_HEIGHT_ROW) <= 2
    g = _ys(letter_strokes("g"))
    assert g.max() > rows["baseline"] + 10  # a descender goes below the baseline


def test_jitter_is_seeded_and_moves_strokes():
    a = letter_strokes("R", jitter=1.0, seed=7)
    assert a == letter_strokes("R", jitter=1.0, seed=7)
    assert a != letter_strokes("R", jitter=1.0, seed=8)
    assert letter_strokes("R") == letter_strokes("R", jitter=0.0, seed=99, face="futural")


def test_canvas_styles_imitate_the_component():
    strokes = letter_strokes("A")
    default = render_canvas(strokes)
    wob = render_canvas(strokes, style="white_on_black")
    bow = render_canvas(strokes, style="black_on_white")
    for a in (default, wob, bow):
        assert a.shape == (CANVAS_SIZE, CANVAS_SIZE, 4) and a.dtype == np.uint8
    # default: black strokes whose alpha is the coverage, fully transparent elsewhere, anti-aliased edges
    assert not default[..., :3].any()
    assert default[0, 0, 3] == 0 and default[..., 3].max() == 255
    assert ((default[..., 3] > 0) & (default[..., 3] < 255)).any()
    # the other two are opaque and carry the same coverage
    assert (wob[..., 3] == 255).all() and (bow[..., 3] == 255).all()
    np.testing.assert_array_equal(wob[..., 0], default[..., 3])
    np.testing.assert_array_equal(255 - bow[..., 0], default[..., 3])


def test_bad_letter_and_style_are_refused():
    with pytest.raises(ValueError, match="A-Z a-z"):
        letter_strokes("7")
    with pytest.raises(ValueError, match="style"):
        render_canvas([], style="sepia")


def test_a_canvas_of_another_size_scales_the_guide_lines():
    rows = guide_rows(560)
    assert rows["baseline"] == pytest.approx(BASELINE_ROW * 560 / FRAME_SIZE)
    h = _ys(letter_strokes("H", canvas_size=560))
    assert h.max() == pytest.approx(rows["baseline"], abs=0.5)
