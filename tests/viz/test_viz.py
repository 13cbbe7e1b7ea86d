"""glyphcore.viz: image grids, class means, and the charts' data (what a person would read off them)."""

from __future__ import annotations

import numpy as np
import pytest

from glyphcore import viz


def test_image_grid_tiles_in_order_with_borders():
    imgs = np.stack([np.full((1, 4, 4), v, np.uint8) for v in (10, 20, 30)])
    grid = viz.image_grid(imgs, ncols=2, pad=1, pad_value=99)
    assert grid.shape == (1 + 2 * 5, 1 + 2 * 5)
    assert grid[1, 1] == 10 and grid[1, 6] == 20 and grid[6, 1] == 30
    assert grid[0, 0] == 99 and grid[6, 6] == 99  # the empty fourth cell stays border-grey


def test_image_grid_colour_scale_and_float_input():
    rgb = np.zeros((2, 3, 2, 2), np.uint8)
    rgb[:, 0] = 255
    out = viz.image_grid(rgb, ncols=2, pad=0, scale=3)
    assert out.shape == (6, 12, 3) and (out[..., 0] == 255).all() and (out[..., 1] == 0).all()
    assert viz.image_grid(np.ones((1, 2, 2), np.float32), pad=0).tolist() == [[255, 255], [255, 255]]


def test_image_grid_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match="N x C x H x W"):
        viz.image_grid(np.zeros((4, 4), np.uint8))


def test_class_means_average_each_class_only():
    imgs = np.array([[[[0]]], [[[100]]], [[[200]]], [[[50]]]], np.uint8)
    means = viz.class_means(imgs, np.array([0, 0, 1, 1]), 3)
    assert means[:, 0, 0, 0].tolist() == [50, 125, 0]  # class 2 has no samples: black


def test_class_distribution_stacks_splits_in_their_order():
    chart = viz.class_distribution_chart({"train": [3, 1], "valid": [2, 2]}, ["A", "B"])
    data = chart.data
    assert data.groupby("split")["images"].sum().to_dict() == {"train": 4, "valid": 4}
    assert chart.to_dict()["encoding"]["x"]["sort"] == ["A", "B"]
    assert list(data.drop_duplicates("split").sort_values("split_order")["split"]) == ["train", "valid"]


def metric_events(epochs=2, spe=4, seconds=10.0):
    """metrics.jsonl records of a run: two step records and one epoch record an epoch, a log line."""
    ev = []
    for e in range(1, epochs + 1):
        ev += [{"event": "step", "epoch": e, "step": (e - 1) * spe + s, "loss": 2.0 - 0.1 * s} for s in (2, 4)]
        ev.append(
            {
                "event": "epoch",
                "epoch": e,
                "step": e * spe,
                "train_loss": 1.5,
                "train_acc": 0.5,
                "val_loss": 1.4 - 0.1 * e,
                "val_acc": 0.6,
                "seconds": seconds,
            }
        )
    ev.append({"event": "log", "message": "Saving model ..."})
    return ev


def test_metrics_frames_place_global_steps_at_fractional_epochs():
    steps, epochs = viz.metrics_frames(metric_events())
    assert steps["x"].tolist() == [0.5, 1.0, 1.5, 2.0]  # steps_per_epoch read from the epoch records
    assert epochs["epoch"].tolist() == [1.0, 2.0] and epochs["val_acc"].tolist() == [0.6, 0.6]
    steps, _ = viz.metrics_frames(metric_events(), steps_per_epoch=8)
    assert steps["x"].tolist() == [0.25, 0.5, 0.75, 1.0]


def test_metrics_frames_keep_the_last_record_of_a_repeated_epoch():
    ev = metric_events(1) + [{"event": "epoch", "epoch": 1, "step": 4, "val_acc": 0.9}]
    _, epochs = viz.metrics_frames(ev)
    assert epochs["val_acc"].tolist() == [0.9]


def test_live_chart_series():
    steps, epochs = viz.metrics_frames(metric_events())
    loss = viz.live_curves_chart(steps, epochs, "loss", epochs_total=5)
    assert set(loss.data["series"]) == {viz.TRAIN_STEPS, viz.TRAIN, viz.VAL}
    acc = viz.live_curves_chart(steps, epochs, "acc")
    assert set(acc.data["series"]) == {viz.TRAIN, viz.VAL}
    empty = viz.live_curves_chart(*viz.metrics_frames([]), "loss")
    assert empty.data.empty
    with pytest.raises(ValueError):
        viz.live_curves_chart(steps, epochs, "f1")


def test_overlay_chart_colours_by_run_or_group():
    curves = viz.curves_frame({"a": metric_events(), "b": metric_events(3)}, {"a": "act=relu", "b": "act=silu"})
    assert set(curves["run"]) == {"a", "b"} and curves.groupby("run")["epoch"].max().to_dict() == {"a": 2, "b": 3}
    by_run = viz.overlay_curves_chart(curves, "acc").to_dict()
    assert by_run["layer"][0]["encoding"]["color"]["field"] == "run"
    by_group = viz.overlay_curves_chart(curves, "acc", color="group", splits=["val"])
    assert by_group.to_dict()["layer"][0]["encoding"]["color"]["field"] == "group"
    drawn = by_group.data.query("metric == 'acc' and split == 'val'")
    assert len(drawn) == 5
