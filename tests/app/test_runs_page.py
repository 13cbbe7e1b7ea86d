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
    assert len(charts) == 2  # loss and accuracy
    for spec, data in charts:
        assert set(data["run"]) == {"run-relu", "run-silu"}
        assert spec["encoding"]["color"]["field"] == "run"
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
    assert spec["encoding"]["color"]["field"] == "group"
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
    from glyphcore.data.drawings import keep_drawing, score_run_on_drawings

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
