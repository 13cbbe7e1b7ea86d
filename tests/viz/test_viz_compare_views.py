"""The comparison views' engines: smoothing, x-axis choices, step-level curves, parallel coordinates, PCA."""

from __future__ import annotations

import numpy as np
import pytest
from test_viz import metric_events  # tests/viz/test_viz.py

from glyphcore import viz
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
