"""glyphcore.runs.groups: replicates grouped by their settings, paired comparisons with a verdict,
mean curves with a band and cost points, on run folders as a training process leaves them."""

from __future__ import annotations

import pytest
from run_folders import write_run

from glyphcore import paths, runs
from glyphcore.errors import ConfigError
from glyphcore.runs import groups as g


@pytest.fixture
def only_test_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(paths, "starter_dir", lambda: tmp_path / "no-starter")
    return tmp_path


def _write(root, run_id, acc, seed, activation="relu", state="done", started=None, **config):
    return write_run(
        root, run_id, epochs=1, val_accs=[acc], seed=seed, activation=activation, state=state, started=started, **config
    )


def _arms(root):
    # relu seeds 1-3: 0.90, 0.92, 0.94; gelu +1.0 point on seeds 1-2, its seed 3 failed
    for i, (seed, acc) in enumerate(((1, 0.90), (2, 0.92), (3, 0.94))):
        _write(root, f"relu-{seed}", acc, seed, started=1000.0 + i, device="cpu" if seed == 1 else "auto")
    _write(root, "gelu-1", 0.91, 1, "gelu", started=2000.0)
    _write(root, "gelu-2", 0.93, 2, "gelu", started=2001.0)
    _write(root, "gelu-3", 0.99, 3, "gelu", state="failed", started=2002.0)
    return g.group_runs(runs.list_runs())


def test_runs_equal_but_for_the_seed_are_one_group_with_mean_sd_and_n(only_test_runs):
    relu, gelu = _arms(only_test_runs)
    assert (relu.label, gelu.label) == ("activation=relu", "activation=gelu")
    assert [m.run_id for m in relu.members] == ["relu-1", "relu-2", "relu-3"]  # the device is no difference
    assert relu.n() == 3 and relu.mean() == pytest.approx(0.92) and relu.sd() == pytest.approx(0.02)
    assert gelu.n() == 2 and gelu.values_by_seed() == pytest.approx({1: 0.91, 2: 0.93})
    assert [(i.run_id, why) for i, why in gelu.left_out()] == [("gelu-3", "failed")]
    row = gelu.row()
    assert row["n"] == 2 and row["mean best val acc"] == pytest.approx(92.0) and row["seeds"] == "1, 2"
    assert row["left out"] == "gelu-3: failed" and row["members"] == "gelu-1, gelu-2, gelu-3"
    assert g.find_group([relu, gelu], "gelu") is gelu and g.find_group([relu, gelu], "relu-2") is relu
    with pytest.raises(ConfigError, match="no group match 'tanh'"):
        g.find_group([relu, gelu], "tanh")


def test_a_comparison_pairs_by_seed_and_says_which_pairs_it_left_out(only_test_runs):
    relu, gelu = _arms(only_test_runs)
    (row,) = g.compare_groups(relu, [gelu])
    assert row["arm"] == "activation=gelu" and row["baseline"] == "activation=relu" and row["n_pairs"] == 2
    # differences +1.0 and +1.0 point: sd 0, the interval is the point itself
    assert row["mean_diff"] == pytest.approx(1.0) and row["low"] == pytest.approx(1.0)
    assert row["verdict"] == "better"
    assert row["sentence"].startswith("activation=gelu is better than activation=relu by 1.00 points of best val acc")
    assert "2 seeds" in row["sentence"]
    assert row["left_out"] == "1 pair left out: seed 3 failed in activation=gelu"
    assert row["arm_mean"] == pytest.approx(92.0) and row["baseline_mean"] == pytest.approx(92.0)
    # lower loss is better: write_run gives every run the same loss curve, so no difference at all
    (loss,) = g.compare_groups(relu, [gelu], metric="best_val_loss")
    assert loss["mean_diff"] == 0.0 and loss["verdict"] == "no difference"


def test_one_seed_each_says_it_cannot_tell(only_test_runs):
    _write(only_test_runs, "a", 0.90, 42)
    _write(only_test_runs, "b", 0.95, 42, "gelu")
    base, arm = g.group_runs(runs.list_runs())
    (row,) = g.compare_groups(base, [arm])
    assert row["verdict"] == "one seed" and row["sentence"].startswith("1 seed: cannot tell noise from effect")


def test_a_running_or_unreadable_member_is_left_out_not_the_group(only_test_runs, standin_process):
    _write(only_test_runs, "r1", 0.90, 1)
    _write(only_test_runs, "r2", 0.92, 2)
    _write(only_test_runs, "r3", 0.92, 3, state="running", pid=standin_process())
    bad = _write(only_test_runs, "r4", 0.92, 4)
    runs.update_status(bad, best_val_acc=7.5)  # no accuracy is 750%
    _write(only_test_runs, "r5", 0.99, 1)  # the same seed again: the older run counts
    (group,) = g.group_runs(runs.list_runs())
    assert group.values_by_seed() == pytest.approx({1: 0.90, 2: 0.92})
    assert [(i.run_id, why) for i, why in group.left_out()] == [
        ("r3", "running"),
        ("r4", "best_val_acc unknown"),
        ("r5", "repeats seed 1"),
    ]


def test_several_arms_are_corrected_and_bad_options_explained(only_test_runs):
    for seed, (a, b, c) in enumerate(((0.900, 0.9005, 0.903), (0.910, 0.9107, 0.913), (0.920, 0.9203, 0.923)), 1):
        _write(only_test_runs, f"relu-{seed}", a, seed, started=seed)
        _write(only_test_runs, f"gelu-{seed}", b, seed, "gelu", started=10 + seed)
        _write(only_test_runs, f"silu-{seed}", c, seed, "silu", started=20 + seed)
    relu, gelu, silu = g.group_runs(runs.list_runs())
    rows = g.compare_groups(relu, [gelu, silu])
    assert rows[0]["confidence"] == pytest.approx(0.975) and "Bonferroni over 2 arms" in rows[0]["method"]
    assert [r["verdict"] for r in rows] == ["no difference", "better"]
    assert "95% interval" in rows[1]["sentence"]  # the family's confidence is what is stated
    assert g.compare_groups(relu, [gelu], looks=4)[0]["confidence"] == pytest.approx(1 - 0.05 / 4)
    with pytest.raises(ConfigError, match="unknown correction 'holm-ish'"):
        g.compare_groups(relu, [gelu], correction="holm-ish")
    with pytest.raises(ConfigError, match="margin must be >= 0"):
        g.compare_groups(relu, [gelu], margin=-1)


def test_group_curves_draw_the_mean_and_a_band_of_one_sd(only_test_runs):
    write_run(only_test_runs, "a", epochs=2, val_accs=[0.5, 0.7], seed=1)
    write_run(only_test_runs, "b", epochs=2, val_accs=[0.7, 0.9], seed=2)
    (group,) = g.group_runs(runs.list_runs())
    events = {m.run_id: runs.read_metrics(m.path) for m in group.members}
    rows = g.group_curves(group, events, key="val_acc")
    assert [r["x"] for r in rows] == [1, 2] and [r["n"] for r in rows] == [2, 2]
    assert rows[0]["mean"] == pytest.approx(0.6) and rows[1]["mean"] == pytest.approx(0.8)
    sd = 0.2 / 2**0.5
    assert rows[1]["low"] == pytest.approx(0.8 - sd) and rows[1]["high"] == pytest.approx(0.8 + sd)


def test_cost_points_put_each_group_against_its_training_flops(only_test_runs):
    for seed, acc in ((1, 0.90), (2, 0.92)):
        run_dir = _write(only_test_runs, f"r{seed}", acc, seed)
        config = runs.read_config(run_dir)
        config["dataset"] = {"counts": {"train": 1000}, "image_shape": [1, 100, 100]}
        runs.write_json_atomic(run_dir / runs.CONFIG_FILE, config)
    (point,) = g.cost_points(g.group_runs(runs.list_runs()), flops_per_image=lambda config: 5_000)
    assert point["n"] == 2 and point["mean"] == pytest.approx(91.0) and point["low"] < 91.0 < point["high"]
    assert point["train_flops"] == pytest.approx(5_000 * 1000 * 1)  # per image x images x 1 epoch
    assert point["params"] == 702_948 and point["wall_s"] > 0


def test_training_flops_per_image_come_from_the_recorded_model():
    from glyphcore.models import create_model
    from glyphcore.models.summary import model_summary

    model = create_model("tiny_conv", num_classes=52, in_channels=1, input_size=100)
    config = {"model_name": "tiny_conv", "model_args": model.glyph_args, "dataset": {"image_shape": [1, 100, 100]}}
    assert g.train_flops_per_image(config) == model_summary(model, (1, 100, 100)).train_flops > 0
    unknown = {"model_name": "no-such-model", "model_args": {}, "dataset": config["dataset"]}
    assert g.train_flops_per_image(unknown) is None
    assert g.train_flops_per_image({}) is None


def test_compare_runs_is_the_whole_table_a_page_leads_with(only_test_runs):
    _arms(only_test_runs)
    report = g.compare_runs(runs.list_runs(), baseline="gelu-1")  # a run id names its group
    assert report["metrics"] == ["best_val_acc", "best_val_loss"]
    assert [(r["metric"], r["arm"], r["baseline"]) for r in report["verdicts"]] == [
        ("best_val_acc", "activation=relu", "activation=gelu"),
        ("best_val_loss", "activation=relu", "activation=gelu"),
    ]
    assert report["verdicts"][0]["verdict"] == "worse" and report["method"].startswith("Paired by seed")
    assert [row["group"] for row in report["groups"]] == ["activation=relu", "activation=gelu"]
    assert g.compare_runs([])["verdicts"] == []


def test_left_out_pairs_are_counted_once_per_seed_with_every_reason(only_test_runs):
    for seed in (1, 2, 3, 4):
        _write(only_test_runs, f"relu-{seed}", 0.90, seed, state="crashed" if seed == 3 else "done", started=seed)
    for seed in (1, 2, 3):
        _write(only_test_runs, f"gelu-{seed}", 0.91, seed, "gelu", state="failed" if seed == 3 else "done", started=9)
    relu, gelu = g.group_runs(runs.list_runs())
    (row,) = g.compare_groups(relu, [gelu])
    assert row["n_pairs"] == 2
    assert row["left_out"] == (
        "2 pairs left out: seed 3 failed in activation=gelu, crashed in activation=relu; "
        "seed 4 has no run in activation=gelu"
    )
