"""Evaluate page (AppTest): the accuracy line and merged accuracies, the clickable confusion matrix and
its gallery, per-class metrics, most-confused pairs, top losses, and run A against run B.

A click on a matrix cell is injected the way the browser reports it: the chart's widget value
``{"selection": {"cell": [{"true": ..., "pred": ...}]}}`` under its key (see the page's docstring).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_runs import tiny_run

from glyphcore.evaluate import compare_predictions, evaluate_run
from glyphcore.frame import CLASSES

# the page lists only each test's runs, whether or not the repository has its starter model
pytestmark = [pytest.mark.app, pytest.mark.usefixtures("no_starter")]

PAGE = "evaluate.py"


def captions(at) -> list[list[str]]:
    """The captions of every image group (st.image with a list), in page order."""
    return [[img.caption for img in el.proto.imgs] for el in at.get("image") if len(el.proto.imgs)]


def matrix_spec(at) -> tuple[dict, object]:
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        if any(p.get("name") == "cell" for p in spec.get("params", [])):
            return spec, convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
    raise AssertionError("no confusion matrix on the page")


def table_with(at, *columns: str):
    """The page's table that has these columns (found by what it shows, not by its place)."""
    return next(d.value for d in at.dataframe if set(columns) <= set(d.value.columns))


@pytest.fixture
def one_run(tiny_glyphs, runs_dir):
    return tiny_run(runs_dir, "tiny-relu", activation="relu")


def test_no_run_says_what_to_do(runs_dir, app_page, texts_of, errors_of):
    at = app_page(PAGE).run()
    assert errors_of(at) == []
    assert "No run with a checkpoint yet" in texts_of(at)


def test_figures_matrix_tables_and_top_losses(one_run, app_page, errors_of):
    at = app_page(PAGE).run()
    assert errors_of(at) == []
    assert at.selectbox(key="eval_split").value == "test"
    result = evaluate_run(one_run, split="test")  # the page's own figures, read back from eval/
    assert result.cached, "the page stored its evaluation in the run's eval/ folder"
    assert at.subheader[0].value == result.accuracy_line
    assert result.accuracy_line.startswith(f"Accuracy of the network on the {52 * 4} test images: ")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["accuracy"] == f"{result.accuracy:.2%}"
    assert metrics["case-insensitive"] == f"{result.merged['case_insensitive']:.2%}"
    assert metrics["I and l merged"] == f"{result.merged['I/l']:.2%}"

    spec, cells = matrix_spec(at)
    assert spec["encoding"]["x"]["scale"]["domain"] == CLASSES and spec["encoding"]["y"]["scale"]["domain"] == CLASSES
    assert spec["encoding"]["x"]["axis"]["labelOverlap"] is False  # all 52 labels, none hidden
    assert spec["encoding"]["y"]["axis"]["labelOverlap"] is False
    assert spec["encoding"]["color"]["field"] == "count"
    assert {t["title"] for t in spec["encoding"]["tooltip"]} >= {"true", "predicted", "images"}
    assert cells["count"].sum() == result.n
    for row in cells.itertuples():  # every drawn cell is the matrix's count
        assert row.count == result.confusion[CLASSES.index(row.true), CLASSES.index(row.pred)]

    per_class = table_with(at, "class", "support")
    assert list(per_class["class"]) == CLASSES and per_class["support"].sum() == result.n
    confused = table_with(at, "true", "predicted", "images")
    assert [tuple(r) for r in confused.itertuples(index=False)] == [tuple(t) for t in result.most_confused()[:20]]

    [losses] = captions(at)  # no cell selected yet: the only gallery is the top losses
    top = result.top_losses(k=24)
    assert len(losses) == len(top) == 24
    assert losses[0] == f"{top[0].actual}→{top[0].predicted} · {top[0].loss:.2f} · p={top[0].p_true:.2f}"


def test_row_normalised_toggle(one_run, app_page):
    at = app_page(PAGE).run()
    at.toggle(key="cm_norm").set_value(True).run()
    spec, cells = matrix_spec(at)
    assert spec["encoding"]["color"]["field"] == "share"
    assert cells.groupby("true")["share"].sum().round(6).eq(1.0).all()


def off_diagonal_max(confusion: np.ndarray) -> int:
    return int(confusion[~np.eye(len(confusion), dtype=bool)].max())


def test_errors_only_toggle_greys_the_diagonal(one_run, app_page, errors_of, texts_of):
    result = evaluate_run(one_run, split="test")
    assert result.accuracy < 0.9  # the tiny run: the matrix opens with one scale over every cell
    at = app_page(PAGE).run()
    assert at.toggle(key="cm_errors").value is False
    spec, _ = matrix_spec(at)
    assert "condition" not in spec["encoding"]["color"]

    at.toggle(key="cm_errors").set_value(True).run()
    assert errors_of(at) == []
    spec, cells = matrix_spec(at)
    color = spec["encoding"]["color"]
    assert color["condition"]["test"] == "datum['true'] === datum['pred']"  # the diagonal: a fixed grey
    assert color["field"] == "count" and color["scale"]["domain"] == [0, off_diagonal_max(result.confusion)]
    assert cells["count"].sum() == result.n  # still every cell: tooltips and clicks on the diagonal too
    assert "Grey: the diagonal" in texts_of(at)

    at.toggle(key="cm_norm").set_value(True).run()  # with row shares: the largest off-diagonal share
    spec, cells = matrix_spec(at)
    color = spec["encoding"]["color"]
    assert color["field"] == "share" and "condition" in color
    off = cells[cells["true"] != cells["pred"]]
    assert color["scale"]["domain"][1] == pytest.approx(off["share"].max())

    at.toggle(key="cm_errors").set_value(False).run()  # and off again
    spec, _ = matrix_spec(at)
    assert "condition" not in spec["encoding"]["color"] and "domain" not in spec["encoding"]["color"]["scale"]


def test_a_good_model_opens_with_errors_only(one_run, app_page, monkeypatch):
    from glyphcore.evaluate import EvalResult

    monkeypatch.setattr(EvalResult, "accuracy", property(lambda self: 0.995))  # the starter's accuracy
    at = app_page(PAGE).run()
    assert at.toggle(key="cm_errors").value is True
    spec, _ = matrix_spec(at)
    result = evaluate_run(one_run, split="test")
    assert spec["encoding"]["color"]["scale"]["domain"] == [0, off_diagonal_max(result.confusion)]


def test_clicking_a_cell_shows_its_images(one_run, app_page, texts_of, errors_of):
    result = evaluate_run(one_run, split="test")
    true, pred, n = result.most_confused()[0]
    at = app_page(PAGE).run()
    assert "Click a cell" in texts_of(at)
    at.session_state["cm-tiny-relu-test"] = {"selection": {"cell": [{"true": true, "pred": pred}]}}
    at.run()
    assert errors_of(at) == []
    assert f"true `{true}` → predicted `{pred}`: {n} image" in texts_of(at)
    gallery = captions(at)[0]
    idx = result.cell_indices(true, pred)
    assert len(gallery) == min(n, 48)
    assert gallery[0] == f"p({true})={result.p_true[idx[0]]:.2f} · p({pred})={result.p_pred[idx[0]]:.2f}"

    # a click on a diagonal cell shows the images the model got right
    right = int(np.argmax(np.diag(result.confusion)))
    at.session_state["cm-tiny-relu-test"] = {"selection": {"cell": [{"true": CLASSES[right], "pred": CLASSES[right]}]}}
    at.run()
    assert len(captions(at)[0]) == result.confusion[right, right]

    at.session_state["cm-tiny-relu-test"] = {"selection": {"cell": {}}}  # an empty selection is {}
    at.run()
    assert "Click a cell" in texts_of(at) and errors_of(at) == []


def test_run_a_against_run_b(tiny_glyphs, runs_dir, app_page, errors_of, texts_of):
    a = tiny_run(runs_dir, "tiny-relu", activation="relu")
    b = tiny_run(runs_dir, "tiny-tanh", activation="tanh")
    at = app_page(PAGE).run()
    at.selectbox(key="eval_run").set_value("tiny-relu").run()
    at.selectbox(key="eval_other").set_value("tiny-tanh").run()
    assert errors_of(at) == []
    comp = compare_predictions(evaluate_run(a, split="test"), evaluate_run(b, split="test"))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["both right"] == f"{comp.counts['both_right']:,}"
    assert metrics["only A (tiny-relu) right"] == f"{comp.counts['only_a_right']:,}"
    assert f"**{len(comp.indices):,}** images where A and B answer differently" in texts_of(at)
    disagree = captions(at)[-1]
    rows = comp.rows(limit=48)
    assert disagree == [f"{r['actual']} · A:{r['pred_a']} · B:{r['pred_b']}" for r in rows]


def test_a_link_with_run_opens_that_run(tiny_glyphs, runs_dir, app_page):
    tiny_run(runs_dir, "tiny-relu", activation="relu")
    tiny_run(runs_dir, "tiny-tanh", activation="tanh")
    at = app_page(PAGE)
    at.query_params["run"] = "tiny-relu"
    at.run()
    assert at.selectbox(key="eval_run").value == "tiny-relu"


def test_other_splits(one_run, app_page, errors_of):
    at = app_page(PAGE).run()
    assert at.selectbox(key="eval_split").options[:2] == ["test", "valid"]
    at.selectbox(key="eval_split").set_value("valid").run()
    assert errors_of(at) == []
    assert at.subheader[0].value.startswith(f"Accuracy of the network on the {52 * 4} valid images")


def test_without_the_data_set_the_stored_evaluation_is_still_shown(one_run, app_page, monkeypatch, tmp_path, texts_of):
    result = evaluate_run(one_run, split="test")  # stored in eval/test/, as the starter ships it
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "fresh-install"))
    at = app_page(PAGE).run()
    assert at.exception == []
    assert "Stored evaluations only, without images" in texts_of(at)
    assert at.selectbox(key="eval_split").options == ["test"]
    assert at.subheader[0].value == result.accuracy_line
    assert captions(at) == [] and "build the data set to see these images" in texts_of(at)


def test_a_row_of_most_confused_selects_its_cell(one_run, app_page, texts_of, errors_of):
    result = evaluate_run(one_run, split="test")
    pairs = result.most_confused(min_count=1)[:20]
    at = app_page(PAGE).run()
    at.session_state["eval_confused-tiny-relu-test"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert errors_of(at) == []
    true, pred, n = pairs[1]
    assert f"true `{true}` → predicted `{pred}`: {n} image" in texts_of(at)
    # a click in the matrix after that wins over the ticked row
    t2, p2, n2 = pairs[0]
    at.session_state["cm-tiny-relu-test"] = {"selection": {"cell": [{"true": t2, "pred": p2}]}}
    at.run()
    assert f"true `{t2}` → predicted `{p2}`: {n2} image" in texts_of(at)


def test_a_run_still_training_says_so(one_run, app_page, texts_of, standin_process):
    from glyphcore import runs

    status = {k: v for k, v in runs.read_status(one_run).items() if "pid" not in k}  # the trainer's pids are gone
    runs.write_status(
        one_run, {**status, "state": "running", "pid": standin_process(), "epoch": 1, "epochs": 5, "ended": None}
    )
    at = app_page(PAGE).run()
    assert "tiny-relu is still training** (epoch 1 of 5 done)" in texts_of(at)
