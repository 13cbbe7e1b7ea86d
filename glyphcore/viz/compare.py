"""Comparison charts of seed groups: the paired differences against a baseline with their intervals
and the equivalence margin (a forest plot), and accuracy against cost, one point per group.

Pure functions over plain rows (lists of dicts, as glyphcore.runs.groups makes them): data in, chart out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

from glyphcore.viz.palette import BAR_OTHER, CATEGORY_COLORS

__all__ = ["COST_AXES", "DIFFERENCE_COLUMNS", "COST_COLUMNS", "difference_chart", "cost_frame", "cost_chart"]

#: x-axis choices of the cost view: column -> axis title (with its unit).
COST_AXES: Mapping[str, str] = {
    "train_flops": "training FLOPs",
    "wall_s": "wall time (s, mean per run)",
    "params": "parameters",
}
#: the columns a difference row needs: the arm's label, the difference and its interval's ends.
DIFFERENCE_COLUMNS = ("arm", "difference", "low", "high")
#: the columns a cost row needs: the group, its mean and interval, and every cost axis.
COST_COLUMNS = ("group", "mean", "low", "high", "n", *COST_AXES)
MARGIN_OPACITY = 0.25  # the equivalence band behind the intervals: seen, yet not hiding them


def _need(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df]
    if missing:
        raise ValueError(f"{what} rows need the columns {', '.join(missing)}")


def difference_chart(
    rows: Sequence[Mapping[str, Any]],
    margin: float,
    *,
    metric: str = "best val acc (points)",
    height_per_arm: int = 40,
) -> alt.LayerChart | alt.FacetChart:
    """Each arm's difference from the baseline as a point on its interval (a horizontal rule), over
    a grey band from -margin to +margin and a line at 0: an interval inside the band is "no
    difference", one clear of 0 is better or worse.

    Args:
        rows: one per arm, with :data:`DIFFERENCE_COLUMNS` (differences in the metric's unit).
        margin: the equivalence margin, in the same unit (>= 0).
        metric: the x axis title (what the difference is of, with its unit).
        height_per_arm: px per arm row.
    """
    if not margin >= 0:
        raise ValueError(f"the margin must be a number >= 0, got {margin!r}")
    df = pd.DataFrame(list(rows))
    _need(df, DIFFERENCE_COLUMNS, "difference")
    arms = list(dict.fromkeys(df["arm"]))
    # the margin band and the zero line ride on each arm's row: one data set for every layer
    df = df.assign(margin_low=-float(margin), margin_high=float(margin), zero=0.0)
    color = alt.Color("arm:N", legend=None, scale=alt.Scale(domain=arms, range=list(CATEGORY_COLORS)))
    tooltip = ["arm:N"] + [alt.Tooltip(f"{c}:Q", format="+.3f") for c in ("difference", "low", "high")]
    base = alt.Chart(df).encode(y=alt.Y("arm:N", title=None, sort=arms), tooltip=tooltip)
    band = base.mark_bar(color=BAR_OTHER, opacity=MARGIN_OPACITY).encode(
        x=alt.X("margin_low:Q", title=f"difference in {metric}"), x2="margin_high:Q"
    )
    zero = base.mark_tick(color=BAR_OTHER, thickness=2).encode(x="zero:Q")
    interval = base.mark_rule(strokeWidth=3).encode(x="low:Q", x2="high:Q", color=color)
    point = base.mark_point(filled=True, size=80).encode(x="difference:Q", color=color)
    return alt.layer(band, zero, interval, point).properties(
        height=alt.Step(height_per_arm), title="difference from the baseline, 95% interval"
    )


def cost_frame(rows: Sequence[Mapping[str, Any]], x: str) -> pd.DataFrame:
    """Cost rows as a frame for :func:`cost_chart`: rows whose cost ``x`` is not a positive number
    are left out (a log axis has no place for 0 or an unknown cost)."""
    if x not in COST_AXES:
        raise ValueError(f"x must be one of {', '.join(COST_AXES)}, got {x!r}")
    df = pd.DataFrame(list(rows))
    _need(df, COST_COLUMNS, "cost")
    df[x] = pd.to_numeric(df[x], errors="coerce")
    return df[df[x] > 0].dropna(subset=["mean"]).reset_index(drop=True)


def cost_chart(
    rows: Sequence[Mapping[str, Any]],
    x: str = "train_flops",
    *,
    metric: str = "best val acc (%)",
    height: int = 320,
) -> alt.LayerChart | alt.FacetChart:
    """Accuracy against cost, one point per group: the mean with its interval as a vertical error
    bar, against training FLOPs, wall time or parameters (a log axis: costs span decades).

    Args:
        rows: one per group, with :data:`COST_COLUMNS` (mean/low/high in the metric's unit).
        x: the cost on the x axis, a key of :data:`COST_AXES`.
        metric: the y axis title.
        height: px.
    """
    df = cost_frame(rows, x)
    groups = list(dict.fromkeys(df["group"]))
    base = alt.Chart(df).encode(
        x=alt.X(f"{x}:Q", title=COST_AXES[x], scale=alt.Scale(type="log"), axis=alt.Axis(format="~s")),
        color=alt.Color(
            "group:N",
            title="group",
            scale=alt.Scale(domain=groups, range=list(CATEGORY_COLORS)),
            legend=alt.Legend(orient="bottom", columns=2, labelLimit=0),
        ),
        tooltip=[
            alt.Tooltip("group:N"),
            alt.Tooltip("n:Q", title="seeds"),
            alt.Tooltip(f"{x}:Q", title=COST_AXES[x], format=",.4~s"),
            *(alt.Tooltip(f"{c}:Q", format=".2f") for c in ("mean", "low", "high")),
        ],
    )
    bars = base.mark_rule(strokeWidth=2).encode(
        y=alt.Y("low:Q", title=metric, scale=alt.Scale(zero=False)), y2="high:Q"
    )
    points = base.mark_point(filled=True, size=90).encode(y="mean:Q")
    return alt.layer(bars, points).properties(height=height, title=f"{metric} against {COST_AXES[x]}")
