"""The comparison views' engines: smoothing, x-axis choices, step-level curves, parallel coordinates, PCA."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_viz import metric_events  # tests/viz/test_viz.py

from glyphcore import viz
from glyphcore.viz.compare import COST_AXES, cost_chart, cost_frame, difference_chart
from glyphcore.viz.embedding import embedding_chart, embedding_frame, pca_2d
from glyphcore.viz.hparams import hparams_frame, parallel_coordinates_chart


def test_ema_matches_tensorboards_debiased_smoothing():
    v = [1.0, 2.0, 3.0]
    w = 0.6
    # by hand: s1 = 0.4, s2 = 0.24 + 0.8 = 1.04, s3 = 0.624 + 1.2 = 1.824; debiased by 1 - w**t
    expected = [0.4 / 0.4, 1.04 / (1 - 0.36), 1.824 / (1 - 0.216)]
    assert viz.smooth_ema(v, w) == pytest.approx(expected)
    assert viz.smooth_ema(v, 0.0) == pytest.approx(v)
    assert np.isnan(viz.smooth_ema([1.0, np.nan, 3.0], 0.5)[1])
    with pytest.raises(ValueError, match="smoothing weight"):
        viz.smooth_ema(v, 1.0)


def test_curves_carry_every_x_axis_and_the_step_records():
    curves = viz.curves_frame({"a": metric_events()}, batch_sizes={"a": 32}, step_curves=True)
    val = curves.query("split == 'val' and metric == 'loss'")
    assert val["step"].tolist() == [4, 8] and val["images"].tolist() == [128, 256]
    assert val["wall_s"].tolist() == [10.0, 20.0]  # the epochs' seconds, summed
    steps = curves.query(f"split == '{viz.TRAIN_STEPS}'")
    assert steps["step"].tolist() == [2, 4, 6, 8]
    assert steps["epoch"].tolist() == [0.5, 1.0, 1.5, 2.0]
    assert steps["wall_s"].tolist() == [5.0, 10.0, 15.0, 20.0]  # interpolated between epoch ends
    assert set(viz.curves_frame({"a": metric_events()})["split"]) == {viz.TRAIN, viz.VAL}  # steps only when asked
    for x in viz.X_AXES:
        chart = viz.overlay_curves_chart(curves, "loss", x=x, splits=[viz.TRAIN, viz.VAL, viz.TRAIN_STEPS])
        spec = chart.to_dict()
        assert spec["layer"][0]["encoding"]["x"]["field"] == x
    with pytest.raises(ValueError, match="x must be one of"):
        viz.overlay_curves_chart(curves, "loss", x="minutes")


def test_smoothing_is_per_series_and_keeps_the_raw_value():
    curves = viz.curves_frame({"a": metric_events(3), "b": metric_events(3)}, step_curves=True)
    smooth = viz.smooth_curves(curves, 0.9)
    a_val = smooth.query("run == 'a' and split == 'val' and metric == 'loss'")
    assert a_val["raw"].tolist() == pytest.approx([1.3, 1.2, 1.1])
    assert a_val["value"].tolist() == pytest.approx(viz.smooth_ema([1.3, 1.2, 1.1], 0.9).tolist())
    # run b's series starts afresh: its first point is its own raw value
    b_first = smooth.query("run == 'b' and split == 'val' and metric == 'loss'").iloc[0]
    assert b_first["value"] == pytest.approx(b_first["raw"])


def test_overlay_dashes_train_and_solid_val():
    curves = viz.curves_frame({"a": metric_events()})
    dash = viz.overlay_curves_chart(curves, "loss").to_dict()["layer"][0]["encoding"]["strokeDash"]["scale"]
    assert dict(zip(dash["domain"], dash["range"])) == {
        viz.TRAIN: viz.SERIES_DASH[viz.TRAIN],
        viz.VAL: viz.SERIES_DASH[viz.VAL],
    }


def test_parallel_coordinates_normalise_each_axis():
    settings = {
        "r1": {"activation": "relu", "lr": 0.001, "epochs": 5, "model": "seed_cnn"},
        "r2": {"activation": "silu", "lr": 0.003, "epochs": 5, "model": "seed_cnn"},
        "r3": {"activation": "gelu", "lr": 0.002, "epochs": 5, "model": "seed_cnn"},
    }
    results = {"r1": {"best val acc (%)": 80.0}, "r2": {"best val acc (%)": 90.0}, "r3": {"best val acc (%)": None}}
    f = hparams_frame(settings, results)
    assert list(dict.fromkeys(f["axis"])) == ["activation", "lr", "best val acc (%)"]  # shared settings left out
    norm = f.set_index(["run", "axis"])["norm"]
    # categorical: sorted levels gelu < relu < silu evenly spaced
    assert (norm["r3", "activation"], norm["r1", "activation"], norm["r2", "activation"]) == (0.0, 0.5, 1.0)
    assert norm["r1", "lr"] == pytest.approx(0.0) and norm["r3", "lr"] == pytest.approx(0.5)
    assert norm["r2", "lr"] == pytest.approx(1.0)
    assert ("r3", "best val acc (%)") not in norm.index  # a missing result: the line skips that axis
    assert set(f.query("axis == 'lr'")["value"]) == {"0.001", "0.003", "0.002"}  # the real values label the axis
    chart = parallel_coordinates_chart(f, color_by="best val acc (%)").to_dict()
    assert chart["layer"][1]["encoding"]["x"]["sort"] == ["activation", "lr", "best val acc (%)"]
    assert chart["layer"][1]["encoding"]["color"]["field"] == "colour"
    from glyphcore.viz import palette

    for theme in ("light", "dark"):  # the value labels are readable on the page's background
        labels = parallel_coordinates_chart(f, theme=theme).to_dict()["layer"][2]["mark"]
        assert palette.contrast_ratio(labels["color"], palette.BACKGROUNDS[theme]) >= 4.5


def test_pca_finds_the_axis_of_most_variance():
    rng = np.random.default_rng(0)
    n = 200
    big = rng.normal(0, 10, n)
    small = rng.normal(0, 1, n)
    x = np.stack([small, big, np.zeros(n)], axis=1) + 5.0  # the variance lies along feature 1
    coords, share = pca_2d(x)
    assert coords.shape == (n, 2)
    assert abs(np.corrcoef(coords[:, 0], big)[0, 1]) > 0.99
    assert abs(np.corrcoef(coords[:, 1], small)[0, 1]) > 0.99
    assert share[0] > 0.95 and share.sum() == pytest.approx(1.0)
    assert coords.mean(axis=0) == pytest.approx([0, 0], abs=1e-9)  # centred
    c1, s1 = pca_2d(np.ones((1, 3)))
    assert c1.tolist() == [[0.0, 0.0]] and s1.tolist() == [0.0, 0.0]


def test_embedding_frame_marks_right_and_wrong_and_the_chart_selects_an_index():
    coords = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    f = embedding_frame(coords, [0, 1, 2], [0, 2, 2], ["A", "B", "C"], [10, 11, 12])
    assert f["outcome"].tolist() == ["right", "wrong", "right"]
    assert f["predicted"].tolist() == ["A", "C", "C"]
    spec = embedding_chart(f, color_by="true").to_dict()
    params = (spec.get("params") or spec["layer"][0]["params"])[0]
    assert params["name"] == "point" and params["select"]["fields"] == ["index"]
    with pytest.raises(ValueError):
        embedding_chart(f, color_by="loss")


def test_wall_time_is_read_from_the_records_timestamps():
    ev = metric_events()
    for i, r in enumerate(ev):
        r["time"] = 1000.0 + 3.0 * i  # the metrics log stamps every record
    curves = viz.curves_frame({"a": ev}, step_curves=True)
    steps = curves.query(f"split == '{viz.TRAIN_STEPS}'")
    assert steps["wall_s"].tolist() == [0.0, 3.0, 9.0, 12.0]  # records 0, 1, 3, 4 (2 is an epoch)
    assert curves.query("split == 'val' and metric == 'acc'")["wall_s"].tolist() == [6.0, 15.0]


# --- seed groups: bands, differences against a baseline, accuracy against cost ------------------
def band_rows() -> pd.DataFrame:
    """Two groups, two epochs, val accuracy: mean and a band of +-0.02 around it."""
    rows = [
        {"group": g, "split": "val", "metric": "acc", "x": e, "mean": m, "low": m - 0.02, "high": m + 0.02, "n": 3}
        for g, means in (("relu", [0.6, 0.8]), ("gelu", [0.65, 0.85]))
        for e, m in zip((1, 2), means)
    ]
    return pd.DataFrame(rows)


def test_group_band_draws_the_mean_line_over_a_low_high_area():
    spec = viz.group_band_chart(band_rows(), "acc").to_dict()
    area, line = spec["layer"]
    assert area["mark"]["type"] == "area"
    assert area["encoding"]["y"]["field"] == "low" and area["encoding"]["y2"]["field"] == "high"
    assert line["mark"]["type"] == "line" and line["encoding"]["y"]["field"] == "mean"
    assert area["encoding"]["color"]["field"] == line["encoding"]["color"]["field"] == "group"
    # the legend is the lines' (full colour): the band's own is off and legends are not merged
    assert area["encoding"]["color"]["legend"] is None and line["encoding"]["color"]["legend"]
    assert spec["resolve"]["legend"]["color"] == "independent"
    dash = line["encoding"]["strokeDash"]["scale"]
    assert dict(zip(dash["domain"], dash["range"])) == {viz.VAL: viz.SERIES_DASH[viz.VAL]}
    assert viz.group_band_chart(band_rows(), "loss").data.empty  # no loss rows: nothing drawn
    with pytest.raises(ValueError, match="need the columns n"):
        viz.group_band_chart(band_rows().drop(columns="n"), "acc")


def test_difference_chart_puts_each_interval_over_the_margin_band():
    rows = [
        {"arm": "gelu", "difference": 0.4, "low": 0.1, "high": 0.7},
        {"arm": "silu", "difference": 0.05, "low": -0.2, "high": 0.3},
    ]
    spec = difference_chart(rows, margin=0.3).to_dict()
    band, zero, interval, point = spec["layer"]
    data = pd.DataFrame(next(iter(spec["datasets"].values())))
    assert band["encoding"]["x"]["field"] == "margin_low" and band["encoding"]["x2"]["field"] == "margin_high"
    assert set(data["margin_low"]) == {-0.3} and set(data["margin_high"]) == {0.3}
    assert zero["encoding"]["x"]["field"] == "zero" and set(data["zero"]) == {0.0}
    assert interval["encoding"]["x"]["field"] == "low" and interval["encoding"]["x2"]["field"] == "high"
    assert point["encoding"]["x"]["field"] == "difference"
    assert band["encoding"]["y"]["sort"] == ["gelu", "silu"]  # the rows' order, not alphabetical
    with pytest.raises(ValueError, match="margin"):
        difference_chart(rows, margin=float("nan"))


def cost_rows() -> list[dict]:
    common = {"n": 3, "low": 0.0, "high": 0.0}
    return [
        {
            **common,
            "group": "lenet",
            "mean": 90.0,
            "low": 89.0,
            "high": 91.0,
            "train_flops": 2e9,
            "wall_s": 30.0,
            "params": 6e4,
        },
        {
            **common,
            "group": "seed_cnn",
            "mean": 95.0,
            "low": 94.5,
            "high": 95.5,
            "train_flops": 5e11,
            "wall_s": 600.0,
            "params": 7e5,
        },
        {**common, "group": "unknown cost", "mean": 93.0, "train_flops": None, "wall_s": 0.0, "params": None},
    ]


def test_cost_view_is_one_error_bar_per_group_against_the_chosen_cost():
    for x in COST_AXES:
        spec = cost_chart(cost_rows(), x).to_dict()
        bars, points = spec["layer"]
        assert bars["encoding"]["x"]["field"] == points["encoding"]["x"]["field"] == x
        assert bars["encoding"]["x"]["scale"]["type"] == "log"
        assert bars["encoding"]["y"]["field"] == "low" and bars["encoding"]["y2"]["field"] == "high"
        assert points["encoding"]["y"]["field"] == "mean"
    frame = cost_frame(cost_rows(), "train_flops")
    assert list(frame["group"]) == ["lenet", "seed_cnn"]  # no cost, no place on a log axis
    assert list(cost_frame(cost_rows(), "params")["params"]) == [6e4, 7e5]
    with pytest.raises(ValueError, match="x must be one of"):
        cost_chart(cost_rows(), "joules")
    with pytest.raises(ValueError, match="need the columns train_flops"):
        cost_chart([{"group": "a", "mean": 1.0, "low": 0.5, "high": 1.5, "n": 2, "wall_s": 1.0, "params": 5}])
