"""glyphcore.viz.palette: every chart colour meets 3:1 against both Streamlit backgrounds (WCAG 2.x)."""

from __future__ import annotations

import itertools

import pytest

from glyphcore.models.activations import ACTIVATION_NAMES
from glyphcore.viz import palette


def test_the_contrast_formula_matches_wcag_reference_values():
    assert palette.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert palette.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # WCAG's known grey
    # the two colours the old charts used, as measured in the report
    assert palette.contrast_ratio("#9ecae9", "#ffffff") == pytest.approx(1.74, abs=0.01)
    assert palette.contrast_ratio("#ff7f0e", "#ffffff") == pytest.approx(2.53, abs=0.01)


def _chart_colours() -> dict[str, str]:
    colours = {f"series {k}": v for k, v in palette.SERIES_COLORS.items()}
    colours |= {f"activation {k}": v for k, v in palette.ACTIVATION_COLORS.items()}
    colours |= {f"outcome {k}": v for k, v in palette.RIGHT_WRONG_COLORS.items()}
    colours |= {"top bar": palette.BAR_TOP, "other bars": palette.BAR_OTHER, "diagonal": palette.DIAGONAL_GREY}
    return colours


@pytest.mark.parametrize("theme", sorted(palette.BACKGROUNDS))
def test_every_chart_colour_meets_3_to_1_on_both_backgrounds(theme):
    background = palette.BACKGROUNDS[theme]
    low = {
        name: round(palette.contrast_ratio(c, background), 2)
        for name, c in _chart_colours().items()
        if palette.contrast_ratio(c, background) < palette.MIN_GRAPHIC_CONTRAST
    }
    assert not low, f"below 3:1 on {theme} ({background}): {low}"


def test_text_colours_meet_4_5_to_1():
    for theme, background in palette.BACKGROUNDS.items():
        assert palette.contrast_ratio(palette.text_color(theme), background) >= 4.5


def test_the_eight_activation_colours_are_distinct():
    assert set(palette.ACTIVATION_COLORS) == set(ACTIVATION_NAMES)
    colours = palette.ACTIVATION_COLORS
    assert len(set(colours.values())) == len(colours)
    close = [
        (a, b, round(palette.lab_distance(colours[a], colours[b]), 1))
        for a, b in itertools.combinations(colours, 2)
        if palette.lab_distance(colours[a], colours[b]) < 20
    ]
    assert not close, f"activation colours closer than 20 CIELAB units: {close}"
    # the pairs a person mixed up before
    assert palette.lab_distance(colours["relu"], colours["silu"]) > 40
    assert palette.lab_distance(colours["gelu"], colours["mish"]) > 40


@pytest.mark.slow
def test_train_and_val_differ_by_dash_as_well_as_colour():
    from glyphcore import viz

    assert viz.SERIES_DASH[viz.TRAIN] != viz.SERIES_DASH[viz.VAL]
    assert palette.SERIES_COLORS[viz.TRAIN] != palette.SERIES_COLORS[viz.VAL]
