"""Evaluate, Draw and Activations charts: confusion matrix, top-k bars, activation curves and histograms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from glyphcore.viz.palette import BAR_OTHER, BAR_TOP, DIAGONAL_GREY, SERIES_COLORS, activation_color, text_color

__all__ = [
    "CONFUSION_SELECTION",
    "LETTER_FONT",
    "AXIS_LABEL_PX",
    "letter_name",
    "confusion_matrix_chart",
    "topk_chart",
    "activation_curve_chart",
    "activation_overlay_chart",
    "layer_histogram_chart",
]

CONFUSION_SELECTION = "cell"  # name of the confusion matrix's click selection (st.altair_chart event key)
LETTER_FONT = "Source Code Pro, monospace"  # class labels in a face that tells I from l
AXIS_LABEL_PX = 11  # the confusion matrix's axis letters: readable (they were 9 px, about 7 px tall on screen)
CELL_PX = 10  # px per confusion cell: 52 classes in 520 px, which fits a 900 px window with the sidebar open


def letter_name(c: str) -> str:
    """A class name a tooltip's font cannot garble: a letter with the other case spelled out,
    "I (capital i)", "l (small L)"; other names are returned as they are."""
    if len(c) == 1 and c.isalpha():
        return f"{c} (capital {c.lower()})" if c.isupper() else f"{c} (small {c.upper()})"
    return c


# Streamlit's default autosize ("fit") squeezes a layered chart's plot into its height together
# with its title, legend and axes; fit the width to the column only and keep the plot's height.
_FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


def confusion_matrix_chart(
    matrix: np.ndarray,
    classes: Sequence[str],
    *,
    normalize: bool = False,
    size: int | None = None,
    errors_only: bool = False,
) -> alt.Chart:
    """A K x K confusion-matrix heatmap whose cells can be clicked.

    Rows are the true class, columns the predicted class, both in label order. Empty cells are not
    drawn (the white shows the structure); the colour scale is a square root so that the few
    off-diagonal mistakes stay visible next to a diagonal of hundreds. A click selects one cell:
    ``st.altair_chart(chart, on_select="rerun")`` returns it under ``selection[CONFUSION_SELECTION]``
    as ``[{"true": "I", "pred": "l"}]`` (``{}`` or ``[]`` when nothing is selected).

    Args:
        matrix: int K x K counts, ``matrix[t, p]`` = images of class t predicted as p.
        classes: K class names (label order).
        normalize: colour by the row share (recall per true class) instead of counts.
        size: width and height of the cell area in px; default ``CELL_PX`` per class (520 px for 52),
            room for a readable ``AXIS_LABEL_PX`` letter per row and column.
        errors_only: draw the diagonal (right answers) in flat grey, outside the colour scale, whose
            domain then spans 0 .. the largest off-diagonal value: a good model's few mistakes get the
            whole colour range instead of being pale next to a diagonal of hundreds. The diagonal cells
            keep their tooltips and can still be clicked.
    """
    m = np.asarray(matrix, dtype=np.int64)
    k = len(classes)
    if m.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {m.shape} does not match {k} classes")
    size = size or CELL_PX * k
    row_sum = m.sum(axis=1, keepdims=True)
    share = np.divide(m, row_sum, out=np.zeros(m.shape, np.float64), where=row_sum > 0)
    sel = alt.selection_point(name=CONFUSION_SELECTION, fields=["true", "pred"], on="click", clear="dblclick")
    picked = alt.when(sel, empty=False)  # the clicked cell is outlined; nothing is outlined before a click
    domain = alt.Scale(domain=list(classes))
    return (
        alt.Chart(_cells(m, share, classes))
        .mark_rect()
        .encode(
            x=alt.X("pred:N", sort=list(classes), scale=domain, title="predicted", axis=_letter_axis(orient="top")),
            y=alt.Y("true:N", sort=list(classes), scale=domain, title="true", axis=_letter_axis()),
            color=_confusion_color(m, share, normalize, errors_only, size),
            stroke=picked.then(alt.value("#e4572e")).otherwise(alt.value("#bbb")),
            strokeWidth=picked.then(alt.value(3.0)).otherwise(alt.value(0.3)),
            tooltip=[
                # the letter's name too: the tooltip's own font draws I and l alike
                alt.Tooltip("true_name:N", title="true"),
                alt.Tooltip("pred_name:N", title="predicted"),
                alt.Tooltip("count:Q", title="images", format=","),
                alt.Tooltip("share:Q", title="share of true class", format=".1%"),
            ],
        )
        .add_params(sel)
        # "pad": cells stay square at ``size``; Streamlit's default "fit" squeezes the plot to make
        # room for the axes and legend inside the same box
        .properties(width=size, height=size, autosize=alt.AutoSizeParams(type="pad"))
    )


def _cells(m: np.ndarray, share: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """One row per non-empty cell (empty cells are not drawn: the white shows the structure)."""
    t_idx, p_idx = np.nonzero(m)
    return pd.DataFrame(
        {
            "true": [classes[int(i)] for i in t_idx],
            "pred": [classes[int(j)] for j in p_idx],
            "true_name": [letter_name(classes[int(i)]) for i in t_idx],
            "pred_name": [letter_name(classes[int(j)]) for j in p_idx],
            "count": m[t_idx, p_idx],
            "share": share[t_idx, p_idx],
        }
    )


def _letter_axis(**kw: Any) -> alt.Axis:
    """An axis of class letters: every label shown, upright, in the face that tells I from l."""
    return alt.Axis(
        labelOverlap=False,
        labelAngle=0,
        labelFontSize=AXIS_LABEL_PX,
        labelFont=LETTER_FONT,
        ticks=False,
        labelPadding=3,
        **kw,
    )


def _confusion_color(m: np.ndarray, share: np.ndarray, normalize: bool, errors_only: bool, size: int) -> Any:
    """The cells' colour: a square-root blue scale of counts or row shares; with ``errors_only`` the
    diagonal in flat grey outside the scale, whose domain then ends at the largest mistake."""
    value = "share" if normalize else "count"
    title = "row share" if normalize else "images"
    legend = alt.Legend(format=".0%" if normalize else "d", orient="bottom", gradientLength=size // 2)
    if not errors_only:
        return alt.Color(
            f"{value}:Q", scale=alt.Scale(type="sqrt", scheme="blues", domainMin=0), title=title, legend=legend
        )
    off = ~np.eye(m.shape[0], dtype=bool)
    top = float((share if normalize else m)[off].max(initial=0))
    top = top if top > 0 else 1.0  # no mistakes at all: any non-empty domain
    scale = alt.Scale(type="sqrt", scheme="blues", domain=[0, top if normalize else int(top)])
    return (
        alt.when("datum['true'] === datum['pred']")
        .then(alt.value(DIAGONAL_GREY))
        .otherwise(alt.Color(f"{value}:Q", scale=scale, title=f"{title}, mistakes only", legend=legend))
    )


def topk_chart(
    topk: Sequence[tuple[str, float]], *, title: str = "", height: int = 130, theme: str | None = None
) -> alt.LayerChart | alt.FacetChart:
    """Horizontal bars of a top-k prediction, most likely on top, each labelled with its probability.

    Args:
        topk: (class, probability) pairs, most likely first, e.g. ``[("A", 0.97), ("H", 0.01), ...]``.
        title: chart title.
        height: px of the plot.
        theme: the page's theme ("light" | "dark", ``st.context.theme.type``): the labels beside the
            bars are drawn in that theme's text colour (Vega's default black vanishes on a dark page).
    """
    df = pd.DataFrame(list(topk), columns=["class", "p"])
    df["label"] = [f"{p:.1%}" for p in df["p"]]
    df["top"] = np.arange(len(df)) == 0
    df["name"] = [letter_name(str(c)) for c in df["class"]]
    base = alt.Chart(df).encode(
        y=alt.Y(
            "class:N",
            sort=list(df["class"]),
            title=None,
            axis=alt.Axis(labelFontSize=14, labelFontWeight="bold", labelOverlap=False, labelFont=LETTER_FONT),
        ),
        x=alt.X("p:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%", tickCount=5)),
        tooltip=[alt.Tooltip("name:N", title="class"), alt.Tooltip("p:Q", format=".2%", title="probability")],
    )
    bars = base.mark_bar().encode(
        color=alt.Color("top:N", scale=alt.Scale(domain=[True, False], range=[BAR_TOP, BAR_OTHER]), legend=None)
    )
    text = base.mark_text(align="left", dx=4, fontSize=12, color=text_color(theme)).encode(text="label:N")
    return alt.layer(bars, text).properties(height=height, title=title, autosize=_FIT_WIDTH)


_F_SERIES = ("f(x)", "f'(x)")


def activation_curve_chart(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    columns: int = 4,
    width: int = 165,
    height: int = 150,
    title: str = "",
) -> alt.FacetChart:
    """Every activation on its own: f(x) (solid) and f'(x) (dashed), ONE faceted chart (a cell each).

    One Vega view instead of one per activation: the browser renders the page much faster.

    Args:
        curves: activation name -> (x, f(x), f'(x)) (same length), e.g. from ``activation_curves``;
            the cells follow its order.
        columns: cells per row.
        width, height: px of each cell's plot.
        title: chart title.
    """
    df = pd.concat(
        [
            pd.DataFrame({"activation": name, "x": x, "value": v, "series": s})
            for name, (x, y, dy) in curves.items()
            for s, v in zip(_F_SERIES, (y, dy))
        ],
        ignore_index=True,
    )
    axes = alt.Chart().transform_aggregate(n="count()", groupby=["activation"]).mark_rule(color="#ccc")
    lines = _f_and_derivative_lines().properties(width=width, height=height)
    chart = (
        alt.layer(axes.encode(y=alt.datum(0)), axes.encode(x=alt.datum(0)), lines, data=df)
        .facet(
            facet=alt.Facet(
                "activation:N",
                sort=list(curves),
                title=None,
                header=alt.Header(labelFontSize=14, labelFontWeight="bold", labelFont="monospace"),
            ),
            columns=columns,
        )
        .resolve_scale(y="independent")
    )
    return chart.properties(title=title) if title else chart


def _f_and_derivative_lines() -> alt.Chart:
    """f(x) solid and f'(x) dashed, in the train and validation colours, one line per series."""
    series = alt.Scale(domain=list(_F_SERIES), range=[SERIES_COLORS["train"], SERIES_COLORS["val"]])
    return (
        alt.Chart()
        .mark_line(strokeWidth=2)
        .encode(
            x=alt.X("x:Q", title="x"),
            y=alt.Y("value:Q", title=None),
            color=alt.Color(
                "series:N", title=None, sort=list(_F_SERIES), scale=series, legend=alt.Legend(orient="top")
            ),
            strokeDash=alt.StrokeDash(
                "series:N",
                sort=list(_F_SERIES),
                legend=None,
                scale=alt.Scale(domain=list(_F_SERIES), range=[[1, 0], [5, 3]]),
            ),
            tooltip=[
                alt.Tooltip("activation:N"),
                alt.Tooltip("series:N", title=""),
                alt.Tooltip("x:Q", format=".2f"),
                alt.Tooltip("value:Q", format=".4f"),
            ],
        )
    )


def activation_overlay_chart(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str = "", height: int = 220
) -> alt.Chart:
    """Several activations' curves overlaid, one colour each (click the legend to highlight one).

    Args:
        curves: activation name -> (x, values); values are f(x) or f'(x).
        title: chart title.
        height: px.
    """
    df = pd.concat(
        [pd.DataFrame({"x": x, "value": v, "activation": name}) for name, (x, v) in curves.items()],
        ignore_index=True,
    )
    pick = alt.selection_point(fields=["activation"], bind="legend")
    return (
        alt.Chart(df)
        .mark_line(strokeWidth=2)
        .encode(
            x=alt.X("x:Q", title="x"),
            y=alt.Y("value:Q", title=None),
            color=alt.Color(
                "activation:N",
                sort=list(curves),
                title="activation",
                scale=alt.Scale(domain=list(curves), range=[activation_color(n, i) for i, n in enumerate(curves)]),
            ),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
            tooltip=["activation:N", alt.Tooltip("x:Q", format=".2f"), alt.Tooltip("value:Q", format=".4f")],
        )
        .add_params(pick)
        .properties(height=height, title=title, autosize=_FIT_WIDTH)
    )


def _histogram_frame(layers: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """One row per bin of every layer: layer, lo, hi, count, share of the layer's outputs."""
    frames = []
    for name, (counts, edges) in layers.items():
        counts = np.asarray(counts, dtype=np.float64)
        edges = np.asarray(edges, dtype=np.float64)
        total = counts.sum() or 1.0
        frames.append(
            pd.DataFrame({"layer": name, "lo": edges[:-1], "hi": edges[1:], "count": counts, "share": counts / total})
        )
    if not frames:
        return pd.DataFrame({"layer": [], "lo": [], "hi": [], "count": [], "share": []})
    return pd.concat(frames, ignore_index=True)


def layer_histogram_chart(
    layers: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    log: bool = True,
    columns: int = 3,
    width: int = 210,
    height: int = 140,
    title: str = "",
) -> alt.FacetChart:
    """Histograms of several layers' outputs, ONE faceted chart (a cell per layer, own x and y scales).

    Each layer's bins are of unequal height, on that layer's own value range.

    Args:
        layers: cell title (e.g. "features.act1 (relu)") -> (counts per bin (B,), bin edges (B + 1,));
            the cells follow its order.
        log: count axes on a log scale (a ReLU layer's spike at 0 hides the rest otherwise).
        columns: cells per row.
        width, height: px of each cell's plot.
        title: chart title.
    """
    df = _histogram_frame(layers)
    if log:
        df = df[df["count"] > 0]  # a log scale cannot place a zero
    chart = (
        alt.Chart(df)
        .mark_rect(color=BAR_TOP)
        .encode(
            x=alt.X("lo:Q", title="output value", scale=alt.Scale(zero=False, nice=False)),
            x2="hi:Q",
            y=alt.Y("count:Q", title="count", scale=alt.Scale(type="log") if log else alt.Undefined),
            y2=alt.value(height),  # bars reach the bottom of the plot (no zero on a log axis)
            tooltip=[
                alt.Tooltip("layer:N"),
                alt.Tooltip("lo:Q", format=".3f", title="from"),
                alt.Tooltip("hi:Q", format=".3f", title="to"),
                alt.Tooltip("count:Q", format=","),
                alt.Tooltip("share:Q", format=".2%"),
            ],
        )
        .properties(width=width, height=height)
        .facet(
            facet=alt.Facet(
                "layer:N", sort=list(layers), title=None, header=alt.Header(labelFontSize=13, labelFontWeight="bold")
            ),
            columns=columns,
        )
        .resolve_scale(x="independent", y="independent")
    )
    return chart.properties(title=title) if title else chart
