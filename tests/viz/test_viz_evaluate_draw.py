"""glyphcore.viz, the Evaluate / Draw / Activations builders: what each chart or image shows."""

from __future__ import annotations

import numpy as np
import pytest

from glyphcore import viz
from glyphcore.frame import CLASSES, guide_rows


def _data(chart) -> list[dict]:
    spec = chart.to_dict()
    return next(iter(spec["datasets"].values()))


def test_confusion_chart_draws_the_non_empty_cells_with_counts_and_shares():
    m = np.zeros((52, 52), np.int64)
    m[0, 0], m[0, 1], m[8, 37] = 6, 2, 3  # A->A, A->B, I->l
    chart = viz.confusion_matrix_chart(m, CLASSES, normalize=True)
    spec = chart.to_dict()
    rows = {(r["true"], r["pred"]): r for r in _data(chart)}
    assert set(rows) == {("A", "A"), ("A", "B"), ("I", "l")}
    assert rows[("A", "B")]["count"] == 2 and rows[("A", "B")]["share"] == pytest.approx(0.25)
    assert rows[("I", "l")]["share"] == pytest.approx(1.0)
    assert spec["encoding"]["color"]["field"] == "share"
    assert spec["params"][0]["name"] == viz.CONFUSION_SELECTION
    assert spec["params"][0]["select"]["fields"] == ["true", "pred"]
    assert spec["width"] == spec["height"]


def test_confusion_chart_refuses_a_matrix_of_another_size():
    with pytest.raises(ValueError, match="does not match 52 classes"):
        viz.confusion_matrix_chart(np.zeros((10, 10)), CLASSES)


def test_topk_chart_keeps_the_models_order():
    topk = [("l", 0.6), ("I", 0.3), ("1", 0.05)]
    spec = viz.topk_chart(topk).to_dict()
    assert spec["layer"][0]["encoding"]["y"]["sort"] == ["l", "I", "1"]
    assert [r["label"] for r in next(iter(spec["datasets"].values()))] == ["60.0%", "30.0%", "5.0%"]


def test_saliency_overlay_heats_where_the_model_looked():
    image = np.zeros((100, 100), np.uint8)
    sal = np.zeros((100, 100))
    sal[10:20, 60:70] = 1.0
    out = viz.saliency_overlay(image, sal, scale=2)
    assert out.shape == (200, 200, 3) and out.dtype == np.uint8
    assert out[30, 130].sum() > 200  # hot inside the salient square
    assert out[150, 20].sum() == 0  # black input, no saliency: stays black
    with pytest.raises(ValueError, match="does not match"):
        viz.saliency_overlay(image, np.zeros((50, 50)))


def test_feature_map_grid_stretches_each_map():
    maps = np.stack([np.full((4, 4), 5.0), np.arange(16, dtype=float).reshape(4, 4)])
    grid = viz.feature_map_grid(maps, ncols=2, max_maps=2)
    assert grid.dtype == np.uint8
    second = grid[2:6, 8:12]  # image_grid: 2 px border, tiles of 4 px
    assert second.min() == 0 and second.max() == 255  # each map spans black..white
    assert (grid[2:6, 2:6] == 0).all()  # a constant map is black, not a division by zero


def test_guide_lines_sit_on_the_frame_rows():
    rows = guide_rows(280)
    img = viz.guide_lines_image(rows, 280)
    assert img.shape == (280, 280, 3)
    for name in ("cap", "baseline"):
        assert img[round(rows[name]), :].max() > 0  # a full line
    assert img[round(rows["x_height"]), :].any(axis=1).sum() < 280  # dashed
    assert img[10].max() == 0 and img[270].max() == 0  # black elsewhere


def _good_model() -> np.ndarray:
    """A 99%-accurate model's matrix: 300 right per class, a few mistakes (y->g 17, q->g 16, w->u 13)."""
    m = np.zeros((52, 52), np.int64)
    np.fill_diagonal(m, 300)
    for t, p, n in (("y", "g", 17), ("q", "g", 16), ("w", "u", 13), ("I", "l", 2)):
        m[CLASSES.index(t), CLASSES.index(p)] = n
        m[CLASSES.index(t), CLASSES.index(t)] -= n
    return m


def test_errors_only_greys_the_diagonal_and_scales_colour_to_the_mistakes():
    m = _good_model()
    plain = viz.confusion_matrix_chart(m, CLASSES).to_dict()["encoding"]["color"]
    assert "condition" not in plain and "domain" not in plain["scale"]  # one scale over 0..300, diagonal included

    spec = viz.confusion_matrix_chart(m, CLASSES, errors_only=True).to_dict()
    color = spec["encoding"]["color"]
    assert color["field"] == "count"
    assert color["scale"]["domain"] == [0, 17]  # the largest off-diagonal count, not the diagonal's 300
    # the diagonal takes a fixed colour instead of the scale
    assert color["condition"]["test"] == "datum['true'] === datum['pred']" and "value" in color["condition"]
    assert "field" not in color["condition"]
    # every cell is still drawn (tooltips, clicks), and the selection still names true and pred
    rows = {(r["true"], r["pred"]): r for r in _data(viz.confusion_matrix_chart(m, CLASSES, errors_only=True))}
    assert rows[("A", "A")]["count"] == 300 and rows[("y", "g")]["count"] == 17
    assert spec["params"][0]["name"] == viz.CONFUSION_SELECTION
    assert spec["params"][0]["select"]["fields"] == ["true", "pred"]
    assert {t["title"] for t in spec["encoding"]["tooltip"]} >= {"true", "predicted", "images"}


def test_errors_only_with_row_shares_scales_to_the_largest_off_diagonal_share():
    m = _good_model()
    color = viz.confusion_matrix_chart(m, CLASSES, normalize=True, errors_only=True).to_dict()["encoding"]["color"]
    assert color["field"] == "share" and "condition" in color
    assert color["scale"]["domain"] == [0, pytest.approx(17 / 300)]


def test_errors_only_without_any_mistake_still_has_a_colour_scale():
    m = np.diag(np.full(52, 300)).astype(np.int64)
    color = viz.confusion_matrix_chart(m, CLASSES, errors_only=True).to_dict()["encoding"]["color"]
    assert color["scale"]["domain"][1] > 0


def test_activation_curve_chart_is_one_faceted_view_of_every_activation():
    x = np.linspace(-2, 2, 5)
    curves = {"relu": (x, np.maximum(0, x), (x > 0).astype(float)), "tanh": (x, np.tanh(x), 1 - np.tanh(x) ** 2)}
    spec = viz.activation_curve_chart(curves, columns=4).to_dict()
    assert spec["facet"]["field"] == "activation" and spec["facet"]["sort"] == ["relu", "tanh"]
    assert spec["columns"] == 4 and spec["resolve"]["scale"]["y"] == "independent"
    rows = _data(viz.activation_curve_chart(curves))
    relu_f = [r for r in rows if r["activation"] == "relu" and r["series"] == "f(x)"]
    assert [r["value"] for r in relu_f] == [0, 0, 0, 1, 2]
    assert len(rows) == 2 * 2 * len(x)  # f and f' of each


def test_layer_histogram_chart_is_one_faceted_view_with_own_scales():
    layers = {
        "a (relu)": (np.array([5, 0, 3]), np.array([0.0, 1, 2, 3])),
        "b (tanh)": (np.array([1, 1]), np.array([-1.0, 0, 1])),
    }
    spec = viz.layer_histogram_chart(layers, log=True, columns=3).to_dict()
    assert spec["facet"]["field"] == "layer" and spec["facet"]["sort"] == list(layers) and spec["columns"] == 3
    assert spec["resolve"]["scale"] == {"x": "independent", "y": "independent"}
    rows = _data(viz.layer_histogram_chart(layers, log=True))
    assert [(r["layer"], r["count"]) for r in rows] == [
        ("a (relu)", 5),
        ("a (relu)", 3),
        ("b (tanh)", 1),
        ("b (tanh)", 1),
    ]
    assert rows[0]["share"] == pytest.approx(5 / 8)
    assert len(_data(viz.layer_histogram_chart(layers, log=False))) == 5  # linear: the empty bin stays


def test_confusion_axis_letters_are_readable_and_the_tooltip_names_the_letter():
    m = np.zeros((52, 52), np.int64)
    m[8, 37] = 3  # I -> l
    spec = viz.confusion_matrix_chart(m, CLASSES).to_dict()
    for axis in ("x", "y"):
        assert spec["encoding"][axis]["axis"]["labelFontSize"] >= 11
        assert spec["encoding"][axis]["axis"]["labelFont"] == viz.LETTER_FONT
    assert spec["width"] >= 52 * 10  # 10 px per row and column: an 11 px letter (8 px tall, 7 px wide) fits each
    [row] = _data(viz.confusion_matrix_chart(m, CLASSES))
    assert (row["true_name"], row["pred_name"]) == ("I (capital i)", "l (small L)")
    fields = [t["field"] for t in spec["encoding"]["tooltip"]]
    assert fields[:2] == ["true_name", "pred_name"]
    assert viz.letter_name("7") == "7"


def test_topk_labels_take_the_themes_text_colour():
    from glyphcore.viz import palette

    topk = [("l", 0.6), ("I", 0.3)]
    for theme in ("light", "dark"):
        text = viz.topk_chart(topk, theme=theme).to_dict()["layer"][1]["mark"]
        assert palette.contrast_ratio(text["color"], palette.BACKGROUNDS[theme]) >= 4.5
