"""Parallel coordinates of runs: one vertical axis per setting or result, one line per run (TensorBoard's
HParams view, Weights & Biases' parallel-coordinates panel).

Each axis is normalised to 0 .. 1 on its own: a number by its min .. max over the runs (a single value
sits at 0.5), a categorical setting by the position of its value among the sorted distinct values
(evenly spaced). The axis labels carry the real values, so the chart reads as a table would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from glyphcore.viz.palette import CATEGORY_COLORS, RIGHT_WRONG_COLORS, text_color

__all__ = ["hparams_frame", "parallel_coordinates_chart"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _text(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def hparams_frame(
    settings: Mapping[str, Mapping[str, Any]],
    results: Mapping[str, Mapping[str, Any]],
    *,
    keys: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The runs' settings and results folded into long form, one row per (run, axis).

    Args:
        settings: run id -> {setting: value} (e.g. a run's config.json).
        results: run id -> {result: number} (e.g. best val acc); results become the last axes.
        keys: the settings to show, in order; default every setting whose value differs between runs
            (a setting all runs share says nothing about the result).

    Returns:
        Columns run, axis, order (the axis's position), kind ("number" | "category" | "result"),
        value (text, as a person reads it), norm (0 .. 1 on that axis). Missing values are left out
        (the run's line skips that axis).
    """
    runs = list(settings)
    if keys is None:
        all_keys = list(dict.fromkeys(k for r in runs for k in settings[r]))
        keys = [
            k
            for k in all_keys
            if len({_text(settings[r].get(k)) for r in runs}) > 1
            and not any(isinstance(settings[r].get(k), (dict, list)) for r in runs)
        ]
    result_keys = list(dict.fromkeys(k for r in runs for k in results.get(r, {})))
    rows: list[dict[str, Any]] = []
    for order, (axis, source) in enumerate([(k, settings) for k in keys] + [(k, results) for k in result_keys]):
        values = {r: source.get(r, {}).get(axis) for r in runs}
        present = {r: v for r, v in values.items() if v is not None and not (isinstance(v, float) and np.isnan(v))}
        if not present:
            continue
        is_result = source is results
        if all(_is_number(v) for v in present.values()):
            lo, hi = min(present.values()), max(present.values())
            norm = {r: (0.5 if hi == lo else (float(v) - lo) / (hi - lo)) for r, v in present.items()}
            kind = "result" if is_result else "number"
        else:
            levels = sorted({_text(v) for v in present.values()})
            pos = {lev: (0.5 if len(levels) == 1 else i / (len(levels) - 1)) for i, lev in enumerate(levels)}
            norm = {r: pos[_text(v)] for r, v in present.items()}
            kind = "category"
        for r, v in present.items():
            rows.append({"run": r, "axis": axis, "order": order, "kind": kind, "value": _text(v), "norm": norm[r]})
    return pd.DataFrame(rows, columns=["run", "axis", "order", "kind", "value", "norm"])


def _run_color(df: pd.DataFrame, axes: list[str], color_by: str | None) -> alt.Color:
    """The lines' colour: ``color_by``'s value from orange (lowest) to blue (highest), or one colour per
    run; adds the ``colour`` column to ``df`` in the first case."""
    if color_by is None or color_by not in axes:
        return alt.Color(
            "run:N",
            title="run",
            scale=alt.Scale(range=list(CATEGORY_COLORS)),
            legend=alt.Legend(orient="bottom", columns=2, labelLimit=0),
        )
    df["colour"] = df["run"].map(df[df["axis"] == color_by].set_index("run")["norm"])
    low_high = [RIGHT_WRONG_COLORS["wrong"], RIGHT_WRONG_COLORS["right"]]  # orange .. blue: 3:1 all along
    return alt.Color("colour:Q", title=color_by, scale=alt.Scale(range=low_high), legend=alt.Legend(orient="bottom"))


def parallel_coordinates_chart(
    frame: pd.DataFrame,
    *,
    color_by: str | None = None,
    height: int = 320,
    theme: str | None = None,
) -> alt.LayerChart | alt.FacetChart:
    """Parallel coordinates of :func:`hparams_frame`: a line per run across the axes, each axis
    labelled with its values at their heights.

    Args:
        frame: from :func:`hparams_frame`.
        color_by: colour the lines by this axis's value (e.g. the main result), from orange (lowest) to
            blue (highest), both ends 3:1 on either theme; default one colour per run.
        height: px.
        theme: the page's theme ("light" | "dark"): the value labels take its text colour.
    """
    df = frame.copy()
    axes = list(df.sort_values("order").drop_duplicates("axis")["axis"])
    color = _run_color(df, axes, color_by)
    x = alt.X(
        "axis:N",
        sort=axes,
        title=None,
        axis=alt.Axis(orient="top", labelAngle=0, labelLimit=140, labelFontWeight="bold", domain=False, ticks=False),
    )
    y = alt.Y("norm:Q", axis=None, scale=alt.Scale(domain=[0, 1]))
    # one vertical rule per axis, from the same data (an aggregate per axis)
    rules = (
        alt.Chart(df)
        .transform_aggregate(n="count()", groupby=["axis"])
        .mark_rule(color="#808080", strokeWidth=1)
        .encode(x=x)
    )
    lines = (
        alt.Chart(df)
        .mark_line(strokeWidth=2.5, point=alt.OverlayMarkDef(size=40, filled=True))
        .encode(
            x=x,
            y=y,
            color=color,
            detail="run:N",
            tooltip=["run:N", "axis:N", "value:N"],
        )
    )
    # each distinct value once per axis, beside its axis (the labels a normalised axis would lack)
    labels = (
        alt.Chart(df.drop_duplicates(["axis", "value"]))
        .mark_text(align="left", dx=6, fontSize=11, color=text_color(theme))
        .encode(x=x, y=y, text="value:N")
    )
    return alt.layer(rules, lines, labels).properties(height=height, title="settings and results, one line per run")
