"""Activations page (AppTest): f(x) and f'(x) of every activation with its formulas, and the measured
histograms, dead units and saturated outputs of a trained run."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_runs import tiny_run

from glyphcore.models import ACTIVATIONS

# the page lists only each test's runs, whether or not the repository has its starter model
pytestmark = [pytest.mark.app, pytest.mark.usefixtures("no_starter")]

PAGE = "activations.py"


def chart_frames(at) -> list[tuple[dict, list]]:
    """Every chart of the last run as (spec, [data frame of each of its datasets])."""
    import json

    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    return [
        (json.loads(c.proto.spec), [convert_arrow_bytes_to_pandas_df(d.data.data) for d in c.proto.datasets])
        for c in at.get("vega_lite_chart")
    ]


def _curve_charts(at) -> dict[str, object]:
    """activation name -> its f/f' data in the ONE faceted per-activation chart (a cell each)."""
    faceted = [
        (spec, frames) for spec, frames in chart_frames(at) if spec.get("facet", {}).get("field") == "activation"
    ]
    assert len(faceted) == 1  # one Vega view for all the activations, not one each
    spec, frames = faceted[0]
    data = next(f for f in frames if "series" in f)
    assert spec["facet"]["sort"] == list(ACTIVATIONS)  # the cells in the table's order
    return {name: g.reset_index(drop=True) for name, g in data.groupby("activation", sort=False)}


def test_every_activation_is_drawn_with_its_formulas(runs_dir, app_page, charts_of, errors_of, texts_of):
    at = app_page(PAGE).run()
    assert errors_of(at) == []
    curves = _curve_charts(at)
    assert set(curves) == set(ACTIVATIONS)
    relu = curves["relu"]
    f = relu[relu["series"] == "f(x)"]
    df = relu[relu["series"] == "f'(x)"]
    np.testing.assert_allclose(f["value"], np.maximum(0, f["x"]))
    np.testing.assert_allclose(df["value"], (df["x"] > 0).astype(float))
    assert f["x"].min() == pytest.approx(-5) and f["x"].max() == pytest.approx(5)
    assert len(at.get("vega_lite_chart")) == 3  # two overlays + the faceted small multiples
    latex = "\n".join(e.value for e in at.latex)
    assert len(at.latex) == 2 * len(ACTIVATIONS)
    for row in ACTIVATIONS.values():
        assert row.formula in latex  # f(x) as written in the table
        assert row.derivative.split(r",\quad")[0] in latex  # f'(x) (mish's helper goes on a line of its own)
    # the two overview charts overlay all of them
    overview = [data for spec, data in charts_of(at) if "activation" in data and "series" not in data]
    assert len(overview) == 2 and all(set(d["activation"]) == set(ACTIVATIONS) for d in overview)
    assert "No run with a checkpoint yet" in texts_of(at)


def test_the_x_range_slider_redraws_the_curves(runs_dir, app_page, charts_of):
    at = app_page(PAGE).run()
    at.slider[0].set_value(2.0).run()
    data = _curve_charts(at)["tanh"]
    assert data["x"].min() == pytest.approx(-2) and data["x"].max() == pytest.approx(2)


@pytest.mark.slow
def test_a_trained_run_shows_layers_dead_units_and_histograms(tiny_glyphs, runs_dir, app_page, charts_of, errors_of):
    tiny_run(runs_dir, "tiny-relu", activation="relu")
    at = app_page(PAGE).run()
    assert errors_of(at) == []
    assert at.selectbox(key="act_run").value == "tiny-relu"
    at.select_slider(key="act_n").set_value(64).run()
    table = next(d.value for d in at.dataframe if {"layer", "activation", "dead units"} <= set(d.value.columns))
    # seed_cnn: four ReLUs in the features, one in the classifier, and the report's sigmoid
    assert list(table["activation"]) == ["relu"] * 5 + ["sigmoid"]
    assert list(table["layer"])[:1] == ["features.act1"]
    relu_rows = table[table["activation"] == "relu"]
    assert relu_rows["dead units"].between(0, 1).all()
    assert relu_rows["saturated outputs"].isna().all()
    sig = table[table["activation"] == "sigmoid"].iloc[0]
    assert 0 <= sig["saturated outputs"] <= 1 and np.isnan(sig["dead units"])
    hist = [(spec, data) for spec, data in charts_of(at) if "count" in data]
    titles = [f"{layer} ({act})" for layer, act in zip(table["layer"], table["activation"])]
    assert len(hist) == 1  # every layer in ONE faceted chart (a cell per layer, 3 per row)
    spec, data = hist[0]
    assert spec["facet"]["field"] == "layer" and spec["facet"]["sort"] == titles and spec["columns"] == 2  # fits 900 px
    assert spec["resolve"]["scale"] == {"x": "independent", "y": "independent"}
    assert list(data["layer"].drop_duplicates()) == titles
    # every unit's output over the 64 images lands in its layer's bins (log scale hides the empty bins)
    for title, shape in zip(titles, table["output shape"]):
        assert data.loc[data["layer"] == title, "count"].sum() == 64 * np.prod([int(v) for v in shape.split(" x ")])
    assert (data["count"] > 0).all()
    # linear counts keep the empty bins too: same totals
    at.toggle(key="act_log").set_value(False).run()
    lin = next(d for _, d in charts_of(at) if "count" in d)
    assert lin["count"].sum() == data["count"].sum() and (lin["count"] == 0).any()
