"""Activations: f(x) and f'(x) of every activation in the table, and what they do inside a run.

The curves come from ``glyphcore.models.activation_stats.activation_curves`` (autograd through the very
modules the models use); the measurements from forward hooks over a batch of validation glyphs
(``glyphcore.infer.activation_stats.measure_run_activations``), cached per run and checkpoint.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from glyphcore import runs, viz
from glyphcore.errors import GlyphError
from glyphcore.infer.activation_stats import measure_run_activations
from glyphcore.models.activation_stats import activation_curves

FACET_COLUMNS = 3  # cells per row of the per-activation chart (3 x 135 px fit a 900 px window, sidebar open)
FACET_WIDTH = 135  # px per cell of it
HIST_COLUMNS = 2  # cells per row of the layer histograms (2 x 160 px fit the same window)
HIST_WIDTH = 160  # px per cell of them


@st.cache_data(show_spinner=False)
def curves(x_min: float, x_max: float) -> list:
    return activation_curves(x_min=x_min, x_max=x_max, points=401)


@st.cache_data(show_spinner="Measuring activations over validation glyphs ...", max_entries=16)
def measured(run_path: str, ckpt_stamp: tuple[int, int], n_images: int) -> list:
    """Per-layer stats of a run; ``ckpt_stamp`` is in the key so a new checkpoint is measured again."""
    return measure_run_activations(run_path, n_images=n_images)


def functions_section() -> None:
    """Every activation as a function and its derivative: overlays, one cell each, formula cards."""
    st.header("The functions")
    span = st.slider("x range", 1.0, 10.0, 5.0, 0.5, help="the curves are drawn for x in [-range, +range]")
    all_curves = curves(-span, span)
    overlays = st.container(horizontal=True, key="act_overlays")  # side by side, or stacked when narrow
    left, right = overlays.container(key="act_overlay_f"), overlays.container(key="act_overlay_df")
    left.altair_chart(
        viz.activation_overlay_chart({c.name: (c.x, c.y) for c in all_curves}, title="f(x) of every activation"),
        width="stretch",
    )
    right.altair_chart(
        viz.activation_overlay_chart({c.name: (c.x, c.dy) for c in all_curves}, title="f'(x) of every activation"),
        width="stretch",
    )
    st.caption("Click a name in a legend to pick one curve out.")
    # each activation on its own: ONE faceted chart (a cell each, in the table's order), and below it the
    # formulas, in the same order (one Vega view instead of eight: the browser renders the page much faster)
    st.subheader("Each one on its own")
    st.altair_chart(
        viz.activation_curve_chart(
            {c.name: (c.x, c.y, c.dy) for c in all_curves}, columns=FACET_COLUMNS, width=FACET_WIDTH
        ),
        width="content",
    )
    formula_cards(all_curves)


def formula_cards(all_curves: list) -> None:
    """f(x) and f'(x) of each activation; cards of at least 22 rem (app_pages/layout.py; room for mish's
    derivative): two or more per row when wide, one when narrow."""
    cards = st.container(horizontal=True, key="act_cards")
    for c in all_curves:
        with cards.container(border=True, key=f"act_card_{c.name}"):
            st.markdown(f"#### `{c.name}`")
            st.caption(c.description)
            st.latex(c.formula)
            # a long derivative (mish) defines its helper after ",\quad": give that its own line
            st.latex(r"\begin{gathered}" + c.derivative.replace(r",\quad", r",\\") + r"\end{gathered}")


def pick_run(candidates: dict) -> tuple[str, int, bool]:
    """(run id, how many validation glyphs, log counts): ``?run=<id>`` preselects a run, else the newest."""
    linked = st.query_params.get("run")
    ids = list(candidates)
    ref = st.selectbox(
        "Run",
        ids,
        index=ids.index(linked) if linked in candidates else 0,
        format_func=lambda r: runs.run_label(candidates[r]),
        key="act_run",
    )
    controls = st.container(horizontal=True, vertical_alignment="bottom", key="row_act_controls")  # wraps
    cols = [controls.container(), controls.container()]
    n_images = cols[0].select_slider("Validation glyphs", [64, 128, 256, 512], value=256, key="act_n")
    log = cols[1].toggle("log counts", value=True, key="act_log")
    return ref, n_images, log


def stats_table(stats: list) -> None:
    """One row per activation layer: shape, units, mean, spread, dead and saturated shares; warnings below."""
    table = pd.DataFrame(
        {
            "layer": [s.layer for s in stats],
            "activation": [s.activation for s in stats],
            "output shape": [" x ".join(map(str, s.shape)) for s in stats],
            "units": [s.units for s in stats],
            "mean": [s.mean for s in stats],
            "std": [s.std for s in stats],
            "dead units": [s.dead_share for s in stats],
            "saturated outputs": [s.saturated_share for s in stats],
        }
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "mean": st.column_config.NumberColumn(format="%.3f"),
            "std": st.column_config.NumberColumn(format="%.3f"),
            "dead units": st.column_config.NumberColumn(format="percent", help="ReLU family only"),
            "saturated outputs": st.column_config.NumberColumn(format="percent", help="Sigmoid and Tanh only"),
        },
    )
    for s in stats:
        if s.dead_share:
            st.warning(f"`{s.layer}` ({s.activation}): {s.dead_share:.0%} of its {s.units} units are dead.")
        if s.saturated_share is not None and s.saturated_share > 0.25:
            st.warning(f"`{s.layer}` ({s.activation}): {s.saturated_share:.0%} of its outputs are saturated.")


def trained_run_section() -> None:
    """What each activation layer of a trained run's best checkpoint produces on validation glyphs."""
    st.header("Inside a trained run")
    st.caption(
        "Every activation layer's output is recorded while the run's best checkpoint classifies validation "
        "glyphs. A **dead** unit (ReLU family) is a channel that is never positive over the whole batch: "
        "it passes no gradient and learns nothing. A **saturated** output of Sigmoid is below 0.01 or above "
        "0.99, of Tanh beyond ±0.99: the gradient there is almost zero."
    )
    candidates = runs.checkpointed_runs()
    if not candidates:
        st.info("No run with a checkpoint yet: train one on the **Train** page (or add the starter model).")
        return
    ref, n_images, log = pick_run(candidates)
    ckpt = candidates[ref].path / runs.BEST_CKPT
    try:
        stats = measured(str(candidates[ref].path), runs.file_stamp(ckpt), n_images)
    except GlyphError as e:
        st.error(str(e))
        return
    if not stats:
        return
    stats_table(stats)
    # every layer's histogram in ONE faceted chart (a cell per layer, own scales)
    st.altair_chart(
        viz.layer_histogram_chart(
            {f"{s.layer} ({s.activation})": (s.counts, s.edges) for s in stats},
            log=log,
            columns=HIST_COLUMNS,
            width=HIST_WIDTH,
        ),
        width="content",
    )


st.title("Activations")
st.caption(
    "Each activation as a function, its derivative (what back-propagation multiplies by), and what it "
    "does to the units of a trained network."
)
functions_section()
trained_run_section()
