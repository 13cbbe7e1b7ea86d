"""Runs & Compare page (AppTest): the runs table, filters, delete with confirmation, overlaid curves,
config differences, the one-factor ablation table and report cards."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.app

PAGE = "runs.py"


@pytest.fixture
def three_runs(make_run, no_starter):
    """relu and silu runs that differ only in activation, and a failed adamw run."""
    make_run("run-relu", activation="relu", val_accs=[0.6, 0.8, 0.9], started=1000.0)
    make_run("run-silu", activation="silu", val_accs=[0.7, 0.85, 0.95], started=2000.0)
    make_run("run-adamw", state="failed", optimizer="adamw", epochs=4, epochs_done=2, started=3000.0)


def test_no_runs_points_to_train_page(runs_dir, no_starter, app_page, texts_of):
    at = app_page(PAGE).run()
    assert "No runs yet" in texts_of(at)
    assert any("Train" in link.proto.label for link in at.get("page_link"))


def test_table_lists_every_run_newest_first(three_runs, app_page, errors_of):
    at = app_page(PAGE).run()
    assert errors_of(at) == []
    table = at.dataframe[0].value
    assert list(table["run"]) == ["run-adamw", "run-silu", "run-relu"]
    row = table.set_index("run").loc["run-silu"]
    assert row["state"] == "done" and row["activation"] == "silu" and row["model"] == "seed_cnn"
    assert row["best val acc (%)"] == pytest.approx(95.0)
    assert row["best epoch"] == 3 and row["params"] == 702_948 and row["device"] == "cpu"
    assert table.set_index("run").loc["run-adamw", "state"] == "failed"


def test_filters_narrow_the_table(three_runs, app_page):
    at = app_page(PAGE).run()
    at.text_input(key="rc_filter").set_value("relu").run()
    assert list(at.dataframe[0].value["run"]) == ["run-relu"]
    at.text_input(key="rc_filter").set_value("").run()
    at.multiselect(key="rc_states").set_value(["failed"]).run()
    assert list(at.dataframe[0].value["run"]) == ["run-adamw"]


def test_two_runs_give_overlaid_curves_differences_ablation_and_cards(three_runs, app_page, charts_of, errors_of):
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["run-relu", "run-silu"]).run()
    assert errors_of(at) == []
    charts = charts_of(at)
    assert len(charts) == 3  # loss, accuracy, settings vs results
    for spec, data in charts[:2]:
        assert set(data["run"]) == {"run-relu", "run-silu"}
        assert spec["layer"][0]["encoding"]["color"]["field"] == "run"
    loss_data = charts[0][1]
    assert set(loss_data["metric"]) == {"loss"} and set(loss_data["split"]) == {"train", "val"}

    diffs = at.dataframe[1].value
    assert list(diffs["setting"]) == ["activation"]  # nothing else differs
    assert list(diffs.iloc[0][["run-relu", "run-silu"]]) == ["relu", "silu"]

    ablation = at.dataframe[2].value
    assert set(ablation["factor"]) == {"activation"}
    assert list(ablation["value"]) == ["relu", "silu"]
    assert list(ablation["best val acc (%)"]) == [pytest.approx(90.0), pytest.approx(95.0)]

    markdown = at.code[0].value.splitlines()
    assert markdown[0].startswith("| run | model | activation | params | best epoch | val acc (%)")
    assert markdown[2].startswith("| run-relu | seed_cnn | relu | 702,948 | 3/3 | 90.00 |")
    assert markdown[3].startswith("| run-silu | seed_cnn | silu | 702,948 | 3/3 | 95.00 |")


def test_colour_by_a_config_key_groups_the_curves(three_runs, app_page, charts_of):
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["run-relu", "run-silu", "run-adamw"]).run()
    at.selectbox(key="rc_color_by").set_value("optimizer").run()
    spec, data = charts_of(at)[0]
    assert spec["layer"][0]["encoding"]["color"]["field"] == "group"
    groups = data.drop_duplicates("run").set_index("run")["group"]
    assert groups["run-relu"] == groups["run-silu"] == "optimizer=adam"
    assert groups["run-adamw"] == "optimizer=adamw"


def test_runs_that_differ_in_two_keys_have_no_ablation(three_runs, app_page, texts_of):
    at = app_page(PAGE).run()
    # run-adamw differs from run-silu in optimizer, epochs and activation
    at.multiselect(key="rc_pick").set_value(["run-silu", "run-adamw"]).run()
    assert "No two of these runs differ in exactly one" in texts_of(at)


def test_delete_asks_first_and_then_removes_the_run(three_runs, runs_dir, app_page, texts_of):
    at = app_page(PAGE).run()
    at.selectbox(key="rc_delete_target").set_value("run-relu").run()
    at.button(key="rc_delete").click().run()
    assert "Delete run `run-relu`" in texts_of(at)
    at.button(key="rc_delete_no").click().run()
    assert (runs_dir / "run-relu").is_dir()

    at.selectbox(key="rc_delete_target").set_value("run-relu").run()
    at.button(key="rc_delete").click().run()
    at.button(key="rc_delete_yes").click().run()
    assert not (runs_dir / "run-relu").exists()
    assert "run-relu" not in list(at.dataframe[0].value["run"])


def test_a_running_run_cannot_be_deleted(make_run, runs_dir, no_starter, standin_process, app_page, texts_of):
    make_run("run-live", state="running", pid=standin_process(), step=3)
    at = app_page(PAGE).run()
    assert at.dataframe[0].value.iloc[0]["state"] == "running"
    at.selectbox(key="rc_delete_target").set_value("run-live").run()
    at.button(key="rc_delete").click().run()
    at.button(key="rc_delete_yes").click().run()
    assert (runs_dir / "run-live").is_dir()
    assert "cancel it before deleting it" in texts_of(at)


@pytest.mark.slow
def test_drawings_column_scores_each_run_on_the_kept_drawings(tiny_glyphs, runs_dir, tmp_path, monkeypatch, app_page):
    from PIL import Image
    from tiny_runs import tiny_run  # tests/tiny_runs.py: a real 2-epoch run on the tiny set

    from glyphcore.data import load_dataset
    from glyphcore.infer.drawings import keep_drawing, score_run_on_drawings

    tiny_run(runs_dir, "tiny-relu", activation="relu")
    train = load_dataset("glyphs-52", "train")
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "mine"))  # the drawings go here, not into tiny_glyphs
    at = app_page(PAGE).run()
    assert "drawings acc (%)" not in at.dataframe[0].value.columns  # no drawings yet: no column
    for i in range(4):
        keep_drawing(Image.fromarray(np.asarray(train.images[i, 0])), train.classes[train.labels[i]])
    at = app_page(PAGE).run()
    table = at.dataframe[0].value.set_index("run")
    expected = round(100 * score_run_on_drawings("tiny-relu")["accuracy"], 1)
    assert table.loc["tiny-relu", "drawings acc (%)"] == pytest.approx(expected)


def test_curves_take_an_x_axis_smoothing_and_the_step_records(three_runs, app_page, charts_of, errors_of):
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["run-relu", "run-silu"]).run()
    at.multiselect(key="rc_splits").set_value(["train", "val", "train (per step)"]).run()
    at.selectbox(key="rc_x").set_value("step").run()
    at.slider(key="rc_smooth").set_value(0.9).run()
    assert errors_of(at) == []
    spec, data = charts_of(at)[0]
    assert spec["layer"][0]["encoding"]["x"]["field"] == "step"
    steps = data[(data["run"] == "run-relu") & (data["split"] == "train (per step)")].sort_values("step")
    assert len(steps) == 30  # write_run: 10 step records per epoch, 3 epochs
    assert steps["step"].tolist() == list(range(1, 31))
    # smoothed: the first point is its raw value, later ones lag behind the falling raw loss
    assert steps["value"].iloc[0] == pytest.approx(steps["raw"].iloc[0])
    assert (steps["value"].iloc[5:] > steps["raw"].iloc[5:]).all()
    at.selectbox(key="rc_x").set_value("wall_s").run()
    spec, data = charts_of(at)[0]
    assert spec["layer"][0]["encoding"]["x"]["field"] == "wall_s"
    val = data.query("run == 'run-relu' and split == 'val'")
    assert val["wall_s"].tolist() == pytest.approx([0.9, 1.9, 2.9])  # seconds from the first record


def test_settings_vs_results_chart_has_an_axis_per_differing_setting(three_runs, app_page, charts_of):
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["run-relu", "run-silu", "run-adamw"]).run()
    spec, data = charts_of(at)[2]
    axes = list(dict.fromkeys(data.sort_values("order")["axis"]))
    assert {"activation", "optimizer", "epochs"} <= set(axes) and axes[-2:] == ["best val acc (%)", "best val loss"]
    assert "model_args" not in axes and "params" not in axes  # derived keys say nothing new
    acc = data[data["axis"] == "best val acc (%)"].set_index("run")["norm"]
    assert acc["run-silu"] == pytest.approx(1.0) and acc["run-adamw"] == pytest.approx(0.0)
    assert 0.0 < acc["run-relu"] < 1.0  # 90 % between the failed run and silu's 95 %


def test_config_differences_do_not_repeat_the_activation_in_model_args(three_runs, runs_dir, app_page):
    import json

    for run_id, act in (("run-relu", "relu"), ("run-silu", "silu")):  # as a real run's config.json has them
        path = runs_dir / run_id / "config.json"
        config = json.loads(path.read_text())
        config["model_args"] = {"activation": act, "batchnorm": True}
        path.write_text(json.dumps(config))
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["run-relu", "run-silu"]).run()
    assert list(at.dataframe[1].value["setting"]) == ["activation"]


def test_a_ticked_run_links_to_its_views(make_run, runs_dir, no_starter, app_page):
    from glyphcore import runs

    make_run("run-relu", activation="relu")
    (runs_dir / "run-relu" / runs.BEST_CKPT).write_bytes(b"not read by the links")
    at = app_page(PAGE).run()
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert {"Evaluate", "Draw", "Activations"} <= set(links)
    assert links["Evaluate"].query_string == "run=run-relu"


def test_the_training_log_tail_is_shown(make_run, runs_dir, no_starter, app_page):
    make_run("run-relu", activation="relu")
    lines = [f"line {i}" for i in range(500)]
    (runs_dir / "run-relu" / "train.log").write_text("\n".join(lines) + "\nSaving model ...\n")
    at = app_page(PAGE).run()
    log = [c.value for c in at.code if "Saving model" in c.value]
    assert len(log) == 1
    shown = log[0].splitlines()
    assert shown[-1] == "Saving model ..." and len(shown) == 200 and shown[0] == "line 301"


@pytest.mark.slow
def test_embedding_map_of_a_real_run_and_a_click_shows_the_glyph(
    tiny_glyphs, runs_dir, no_starter, app_page, charts_of, errors_of
):
    from tiny_runs import tiny_run

    tiny_run(runs_dir, "tiny-relu", activation="relu")
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["tiny-relu"]).run()
    assert errors_of(at) == []
    spec, data = next((s, d) for s, d in charts_of(at) if "outcome" in d.columns)
    assert set(data["outcome"]) <= {"right", "wrong"} and len(data) > 52
    index = int(data["index"].iloc[3])
    at.session_state["rc_map_tiny-relu_valid"] = {"selection": {"point": [{"index": index}]}}
    at.run()
    assert errors_of(at) == []
    shown = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert f"valid #{index}" in shown
