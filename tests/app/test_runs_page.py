"""Runs & Compare page (AppTest): the runs table, filters, delete with confirmation, overlaid curves,
config differences, the one-factor ablation table and report cards."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.app

PAGE = "runs.py"


def keyed(at, key: str):
    """The container keyed ``key``: the page puts each chart and table in one, so a test finds it by
    name, not by position (the key ends the block's id)."""
    from streamlit.testing.v1.element_tree import Block

    found: list = []

    def walk(node) -> None:
        if isinstance(node, Block) and getattr(getattr(node, "proto", None), "id", "").endswith(f"-{key}"):
            found.append(node)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    assert len(found) == 1, f"{len(found)} containers keyed {key!r}"
    return found[0]


def table(at, key: str = "rc_runs"):
    """The frame of the table in the container keyed ``key`` (default: the runs table)."""
    return keyed(at, key).dataframe[0].value


def chart(at, key: str):
    """(spec, data) of the chart in the container keyed ``key``; data: the dataset with the most
    columns (a layered chart's guides, such as a margin band, carry datasets of their own)."""
    import json

    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    proto = keyed(at, key).get("vega_lite_chart")[0].proto
    frames = [convert_arrow_bytes_to_pandas_df(d.data.data) for d in proto.datasets]
    return json.loads(proto.spec), max(frames, key=lambda f: len(f.columns))


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
    runs_table = table(at)
    assert list(runs_table["run"]) == ["run-adamw", "run-silu", "run-relu"]
    row = runs_table.set_index("run").loc["run-silu"]
    assert row["state"] == "done" and row["activation"] == "silu" and row["model"] == "seed_cnn"
    assert row["best val acc (%)"] == pytest.approx(95.0)
    assert row["best epoch"] == 3 and row["params"] == 702_948 and row["device"] == "cpu"
    assert runs_table.set_index("run").loc["run-adamw", "state"] == "failed"


def test_filters_narrow_the_table(three_runs, app_page):
    at = app_page(PAGE).run()
    at.text_input(key="rc_filter").set_value("relu").run()
    assert list(table(at)["run"]) == ["run-relu"]
    at.text_input(key="rc_filter").set_value("").run()
    at.multiselect(key="rc_states").set_value(["failed"]).run()
    assert list(table(at)["run"]) == ["run-adamw"]


def test_a_link_with_runs_opens_with_them_picked_and_the_user_may_unpick(three_runs, app_page):
    at = app_page(PAGE)
    at.query_params["run"] = ["run-relu", "run-silu", "run-gone"]  # a deleted run in a link is left out
    at.run()
    assert at.multiselect(key="rc_pick").value == ["run-relu", "run-silu"]
    assert set(chart(at, "rc_curves_loss")[1]["run"]) == {"run-relu", "run-silu"}
    at.multiselect(key="rc_pick").set_value(["run-relu"]).run()  # the link does not pick them again
    assert at.multiselect(key="rc_pick").value == ["run-relu"]


def test_two_runs_give_overlaid_curves_differences_ablation_and_cards(three_runs, app_page, errors_of):
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["run-relu", "run-silu"]).run()
    assert errors_of(at) == []
    for key in ("rc_curves_loss", "rc_curves_acc"):
        spec, data = chart(at, key)
        assert set(data["run"]) == {"run-relu", "run-silu"}
        assert spec["layer"][0]["encoding"]["color"]["field"] == "run"
    loss_data = chart(at, "rc_curves_loss")[1]
    assert set(loss_data["metric"]) == {"loss"} and set(loss_data["split"]) == {"train", "val"}
    assert set(chart(at, "rc_hparams")[1]["run"]) == {"run-relu", "run-silu"}

    diffs = table(at, "rc_diffs")
    assert list(diffs["setting"]) == ["activation"]  # nothing else differs
    assert list(diffs.iloc[0][["run-relu", "run-silu"]]) == ["relu", "silu"]

    ablation = table(at, "rc_ablations")
    assert set(ablation["factor"]) == {"activation"}
    assert list(ablation["value"]) == ["relu", "silu"]
    assert list(ablation["best val acc (%)"]) == [pytest.approx(90.0), pytest.approx(95.0)]

    markdown = keyed(at, "rc_cards_markdown").code[0].value.splitlines()
    assert markdown[0].startswith("| run | model | activation | params | best epoch | val acc (%)")
    assert markdown[2].startswith("| run-relu | seed_cnn | relu | 702,948 | 3/3 | 90.00 |")
    assert markdown[3].startswith("| run-silu | seed_cnn | silu | 702,948 | 3/3 | 95.00 |")


def test_colour_by_a_config_key_groups_the_curves(three_runs, app_page):
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["run-relu", "run-silu", "run-adamw"]).run()
    at.selectbox(key="rc_color_by").set_value("optimizer").run()
    spec, data = chart(at, "rc_curves_loss")
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
    assert "run-relu" not in list(table(at)["run"])


def test_a_running_run_is_not_offered_for_deletion_and_says_where_to_cancel(
    make_run, runs_dir, no_starter, standin_process, app_page, texts_of
):
    make_run("run-live", state="running", pid=standin_process(), step=3)
    make_run("run-done", lr=0.01, started=1000.0)  # other settings: a row of its own
    at = app_page(PAGE).run()
    assert table(at).set_index("run").loc["run-live", "state"] == "running"
    assert at.selectbox(key="rc_delete_target").options == ["run-done"]
    assert "Not offered while they train: run-live (running)" in texts_of(at)
    assert "Cancel on the Train page" in [link.proto.label for link in at.get("page_link")]


def test_a_run_that_starts_between_the_two_clicks_is_kept(
    make_run, runs_dir, no_starter, standin_process, app_page, texts_of
):
    import json

    from glyphcore import runs

    make_run("run-a")
    at = app_page(PAGE).run()
    at.selectbox(key="rc_delete_target").set_value("run-a").run()
    at.button(key="rc_delete").click().run()
    status = json.loads((runs_dir / "run-a" / runs.STATUS_FILE).read_text())  # resumed now: it trains again
    runs.write_status(runs_dir / "run-a", {**status, "state": "running", "pid": standin_process()})
    at.button(key="rc_delete_yes").click().run()
    assert (runs_dir / "run-a").is_dir()
    assert "then delete it" in texts_of(at)


def test_download_and_log_follow_the_ticked_run_not_the_newest(make_run, runs_dir, no_starter, app_page, texts_of):
    from glyphcore import runs

    make_run("run-old", started=1000.0)
    make_run("run-new", started=2000.0)
    for run_id in ("run-old", "run-new"):
        (runs_dir / run_id / runs.BEST_CKPT).write_bytes(run_id.encode())
    at = app_page(PAGE).run()
    assert at.selectbox(key="rc_download_target").value == "run-new"  # nothing ticked: the newest
    at.multiselect(key="rc_pick").set_value(["run-old"]).run()
    assert at.selectbox(key="rc_download_target").value == "run-old"
    assert at.selectbox(key="rc_log_run").value == "run-old"
    assert "run-old: best epoch 3" in texts_of(at)
    at.selectbox(key="rc_download_target").set_value("run-new").run()  # a choice made there is kept
    assert at.selectbox(key="rc_download_target").value == "run-new"


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
    assert "drawings acc (%)" not in table(at).columns  # no drawings yet: no column
    for i in range(4):
        keep_drawing(Image.fromarray(np.asarray(train.images[i, 0])), train.classes[train.labels[i]])
    at = app_page(PAGE).run()
    scores = table(at).set_index("run")
    expected = round(100 * score_run_on_drawings("tiny-relu")["accuracy"], 1)
    assert scores.loc["tiny-relu", "drawings acc (%)"] == pytest.approx(expected)


def test_curves_take_an_x_axis_smoothing_and_the_step_records(three_runs, app_page, errors_of):
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["run-relu", "run-silu"]).run()
    at.multiselect(key="rc_splits").set_value(["train", "val", "train (per step)"]).run()
    at.selectbox(key="rc_x").set_value("step").run()
    at.slider(key="rc_smooth").set_value(0.9).run()
    assert errors_of(at) == []
    spec, data = chart(at, "rc_curves_loss")
    assert spec["layer"][0]["encoding"]["x"]["field"] == "step"
    steps = data[(data["run"] == "run-relu") & (data["split"] == "train (per step)")].sort_values("step")
    assert len(steps) == 30  # write_run: 10 step records per epoch, 3 epochs
    assert steps["step"].tolist() == list(range(1, 31))
    # smoothed: the first point is its raw value, later ones lag behind the falling raw loss
    assert steps["value"].iloc[0] == pytest.approx(steps["raw"].iloc[0])
    assert (steps["value"].iloc[5:] > steps["raw"].iloc[5:]).all()
    at.selectbox(key="rc_x").set_value("wall_s").run()
    spec, data = chart(at, "rc_curves_loss")
    assert spec["layer"][0]["encoding"]["x"]["field"] == "wall_s"
    val = data.query("run == 'run-relu' and split == 'val'")
    assert val["wall_s"].tolist() == pytest.approx([0.9, 1.9, 2.9])  # seconds from the first record


def test_settings_vs_results_chart_has_an_axis_per_differing_setting(three_runs, app_page):
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["run-relu", "run-silu", "run-adamw"]).run()
    spec, data = chart(at, "rc_hparams")
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
    assert list(table(at, "rc_diffs")["setting"]) == ["activation"]


def test_a_ticked_run_links_to_its_views(make_run, runs_dir, no_starter, app_page):
    from glyphcore import runs

    make_run("run-relu", activation="relu")
    (runs_dir / "run-relu" / runs.BEST_CKPT).write_bytes(b"not read by the links")
    at = app_page(PAGE).run()
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert {"Evaluate", "Draw", "Activations"} <= set(links)
    assert links["Evaluate"].query_string == "run=run-relu"
    assert links["Clone and change"].page.endswith("train")
    assert "activation=relu" in links["Clone and change"].query_string.split("&")  # the report preset's is silu
    assert "seeds=" not in links["Clone and change"].query_string  # one run: one seed


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
    tiny_glyphs, runs_dir, no_starter, app_page, errors_of
):
    from tiny_runs import tiny_run

    tiny_run(runs_dir, "tiny-relu", activation="relu")
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["tiny-relu"]).run()
    assert errors_of(at) == []
    spec, data = chart(at, "rc_map")
    assert set(data["outcome"]) <= {"right", "wrong"} and len(data) > 52
    index = int(data["index"].iloc[3])
    at.session_state["rc_map_tiny-relu_valid"] = {"selection": {"point": [{"index": index}]}}
    at.run()
    assert errors_of(at) == []
    shown = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert f"valid #{index}" in shown


# --- seed groups: verdict, group rows, group curves, cost, clone ---------------------------------
BEST_ACCS = {  # best val acc per seed 1, 2, 3: gelu is relu + 2.9 / 3.1 / 3.0 points, silu relu +- 0.05
    "relu": (0.90, 0.92, 0.91),
    "gelu": (0.929, 0.951, 0.94),
    "silu": (0.9005, 0.9195, 0.91),
}


@pytest.fixture
def seed_groups(make_run, no_starter):
    """Three seeds of each of relu, gelu and silu (written oldest relu first): 9 runs, 3 groups."""
    started = 1000.0
    for act, accs in BEST_ACCS.items():
        for seed, acc in zip((1, 2, 3), accs):
            started += 10
            make_run(f"{act}-s{seed}", activation=act, seed=seed, val_accs=[0.5, 0.7, acc], started=started)
    return [f"{act}-s{seed}" for act in BEST_ACCS for seed in (1, 2, 3)]


def pick_all(at, run_ids):
    at.multiselect(key="rc_pick").set_value(run_ids).run()
    return at


def test_the_table_shows_a_seed_group_as_one_row_until_asked_for_runs(seed_groups, make_run, app_page, texts_of):
    make_run("lone", activation="relu", lr=0.01, started=500.0)
    at = app_page(PAGE).run()
    rows = table(at).set_index("run")
    assert list(rows.index) == ["silu-s1 + 2 more", "gelu-s1 + 2 more", "relu-s1 + 2 more", "lone"]
    gelu = rows.loc["gelu-s1 + 2 more"]
    assert gelu["seeds"] == 3 and gelu["best val acc (%)"] == pytest.approx(94.0)
    assert gelu["sd (points)"] == pytest.approx(1.1) and gelu["state"] == "3 done"
    assert rows.loc["lone", "seeds"] == 1
    assert "10 of 10 runs in 4 rows" in texts_of(at)
    assert at.session_state["rc_table_ids"][1] == ["gelu-s1", "gelu-s2", "gelu-s3"]  # a tick picks them all
    at.toggle(key="rc_group_rows").set_value(False).run()
    assert len(table(at)) == 10


def test_seed_groups_lead_with_a_verdict_against_the_baseline(seed_groups, app_page, errors_of, texts_of):
    at = pick_all(app_page(PAGE).run(), seed_groups)
    assert errors_of(at) == []
    verdicts = table(at, "rc_verdicts").set_index("arm")
    assert list(verdicts.index) == ["activation=gelu", "activation=silu"]  # the baseline is the oldest group
    gelu = verdicts.loc["activation=gelu"]
    assert gelu["pairs"] == 3 and gelu["difference"] == pytest.approx(3.0)
    # diffs 2.9, 3.1, 3.0: sd 0.1; two arms, so each interval at 97.5%: t(0.9875, 2) = 6.205 -> +-0.358
    assert gelu["verdict"] == "better" and gelu["95% interval"] == "+2.64 to +3.36"
    assert verdicts.loc["activation=silu", "verdict"] == "no difference"
    sentences = keyed(at, "rc_verdicts").markdown[0].value  # the verdicts in words, above the table
    assert "activation=gelu is better than activation=relu by 3.00 points of best val acc" in sentences
    assert "no difference found between activation=silu and activation=relu" in sentences
    assert "Bonferroni over 2 arms" in texts_of(at)  # the correction is named
    spec, data = chart(at, "rc_differences")
    assert set(data["arm"]) == {"activation=gelu", "activation=silu"}

    at.selectbox(key="rc_baseline").set_value(1).run()  # gelu as the baseline: relu is worse
    assert table(at, "rc_verdicts").set_index("arm").loc["activation=relu", "verdict"] == "worse"
    assert "activation=relu is worse than activation=gelu" in keyed(at, "rc_verdicts").markdown[0].value


def test_the_margin_and_the_metric_change_the_verdict(seed_groups, app_page):
    at = pick_all(app_page(PAGE).run(), seed_groups)
    at.number_input(key="rc_margin_best_val_acc").set_value(0.1).run()  # silu's interval now reaches past it
    assert table(at, "rc_verdicts").set_index("arm").loc["activation=silu", "verdict"] == "undecided"
    assert (
        "undecided between activation=silu and activation=relu: add seeds" in keyed(at, "rc_verdicts").markdown[0].value
    )
    options = at.selectbox(key="rc_metric").options
    assert options[:2] == ["best val acc", "best val loss"] and "train loss" in options  # and every recorded number
    at.selectbox(key="rc_metric").set_value("best_val_loss").run()
    gelu = table(at, "rc_verdicts").set_index("arm").loc["activation=gelu"]
    assert gelu["difference"] == pytest.approx(0.0)  # write_run gives every run the same losses


def test_groups_are_one_row_each_with_their_members_a_click_away(seed_groups, make_run, app_page):
    make_run("gelu-s4", activation="gelu", seed=4, state="failed", epochs_done=1, started=9000.0)
    at = pick_all(app_page(PAGE).run(), [*seed_groups, "gelu-s4"])
    groups = table(at, "rc_groups").set_index("group")
    assert list(groups.index) == ["activation=relu", "activation=gelu", "activation=silu"]
    gelu = groups.loc["activation=gelu"]
    assert gelu["n"] == 3 and gelu["mean best val acc"] == pytest.approx(94.0)
    assert gelu["sd"] == pytest.approx(1.1, abs=1e-9)
    assert "gelu-s4: failed" in gelu["left out"]
    members = keyed(at, "rc_group_1").dataframe[0].value
    assert list(members["run"]) == ["gelu-s1", "gelu-s2", "gelu-s3", "gelu-s4"]


def test_clone_opens_the_train_form_with_the_groups_settings_and_seed_count(seed_groups, app_page):
    from urllib.parse import parse_qs

    from glyphcore.train.query import query_to_form

    at = pick_all(app_page(PAGE).run(), seed_groups)
    link = keyed(at, "rc_clone_1").get("page_link")[0].proto
    assert link.label == "Clone and change" and link.page.endswith("train")
    query = {k: v[0] for k, v in parse_qs(link.query_string).items()}
    assert query["activation"] == "gelu" and query["seeds"] == "3" and query["seed"] == "1"
    assert query["preset"] == "report" and query["epochs"] == "3"  # what differs from the preset ...
    assert "lr" not in query and "batch_size" not in query  # ... and nothing else
    form = query_to_form(query)  # what the Train form reads from the link
    assert form.bad == [] and form.seeds == 3 and form.config.activation == "gelu" and form.config.seed == 1


def test_group_curves_are_a_mean_line_over_a_band(seed_groups, app_page, errors_of):
    at = pick_all(app_page(PAGE).run(), seed_groups)
    spec, data = chart(at, "rc_bands_acc")
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["area", "line"]
    last = data[(data["group"] == "activation=gelu") & (data["split"] == "val")].set_index("x").loc[3.0]
    assert last["mean"] == pytest.approx(0.94) and last["n"] == 3
    assert last["low"] == pytest.approx(0.94 - 0.011) and last["high"] == pytest.approx(0.94 + 0.011)
    at.radio(key="rc_curves_of").set_value("runs").run()  # each run its own line, as before
    assert errors_of(at) == []
    assert set(chart(at, "rc_curves_acc")[1]["run"]) == set(seed_groups)


def test_cost_view_has_one_point_per_group(seed_groups, app_page, texts_of):
    at = pick_all(app_page(PAGE).run(), seed_groups)
    at.radio(key="rc_cost_x").set_value("wall_s").run()
    spec, data = chart(at, "rc_cost")
    assert sorted(data["group"]) == ["activation=gelu", "activation=relu", "activation=silu"]
    assert spec["layer"][0]["encoding"]["x"]["field"] == "wall_s"
    gelu = data.set_index("group").loc["activation=gelu"]
    assert gelu["mean"] == pytest.approx(94.0) and gelu["low"] < 94.0 < gelu["high"]
    at.radio(key="rc_cost_x").set_value("train_flops").run()  # these configs name no data set shape
    assert "No group has a known training FLOPs" in texts_of(at)


def test_single_runs_say_one_seed_cannot_tell_noise_from_effect(three_runs, app_page):
    at = app_page(PAGE).run()
    at.multiselect(key="rc_pick").set_value(["run-relu", "run-silu"]).run()
    assert table(at, "rc_verdicts")["verdict"].iloc[0] == "one seed"
    assert "1 seed: cannot tell noise from effect" in keyed(at, "rc_verdicts").markdown[0].value


@pytest.mark.slow
def test_real_seeds_of_two_settings_give_a_paired_verdict_and_a_flops_axis(tiny_glyphs, runs_dir, no_starter, app_page):
    """Two seeds each of relu and gelu, really trained (1 epoch on the tiny set, 1 CPU thread)."""
    import torch

    from glyphcore.train import fit, make_config

    threads = torch.get_num_threads()
    try:
        for act in ("relu", "gelu"):
            for seed in (1, 2):
                config = make_config("report", activation=act, epochs=1, lr=2e-3, threads=1, device="cpu", seed=seed)
                fit(config, runs_dir / f"{act}-s{seed}")
    finally:
        torch.set_num_threads(threads)
    at = pick_all(app_page(PAGE).run(), ["relu-s1", "relu-s2", "gelu-s1", "gelu-s2"])
    groups = table(at, "rc_groups").set_index("group")
    assert list(groups["n"]) == [2, 2]
    verdict = table(at, "rc_verdicts").iloc[0]
    assert verdict["pairs"] == 2 and verdict["verdict"] in ("better", "worse", "no difference", "undecided")
    spec, data = chart(at, "rc_cost")  # the configs name the data set's shape: training FLOPs are known
    assert spec["layer"][0]["encoding"]["x"]["field"] == "train_flops"
    assert len(data) == 2 and (data["train_flops"] > 0).all()
