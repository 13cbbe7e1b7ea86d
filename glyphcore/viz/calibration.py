"""Evaluate's calibration chart: the reliability diagram (accuracy against confidence, per bin)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

__all__ = ["reliability_chart", "reliability_frame"]


def reliability_frame(curves: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Long table of reliability bins: one row per (curve, non-empty bin).

    Args:
        curves: name -> bins from :func:`glyphcore.infer.calibration.reliability_bins`, e.g.
            ``{"calibrated": ..., "uncalibrated": ...}``.

    Returns:
        Columns ``curve, lo, hi, mid, count, confidence, accuracy, gap`` (gap = accuracy - confidence).
    """
    rows = []
    for name, bins in curves.items():
        for b in bins:
            if not b["count"] or not math.isfinite(b["confidence"]):
                continue
            rows.append(
                {
                    "curve": name,
                    "lo": b["lo"],
                    "hi": b["hi"],
                    "mid": (b["lo"] + b["hi"]) / 2,
                    "count": int(b["count"]),
                    "confidence": b["confidence"],
                    "accuracy": b["accuracy"],
                    "gap": b["accuracy"] - b["confidence"],
                }
            )
    return pd.DataFrame(rows, columns=["curve", "lo", "hi", "mid", "count", "confidence", "accuracy", "gap"])


def reliability_chart(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], *, height: int = 320
) -> alt.LayerChart | alt.FacetChart:
    """A reliability diagram: each bin's accuracy at its mean confidence, one line per curve, over the
    diagonal of perfect calibration. Points are sized by how many samples fall in the bin (most sit
    in the top bin, so a log scale), and the tooltip gives the counts.

    Args:
        curves: name -> reliability bins (see :func:`reliability_frame`).
        height: plot height in px; the width fits the column.
    """
    df = reliability_frame(curves)
    diag = (
        alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]}))
        .mark_line(color="#999", strokeDash=[4, 4])
        .encode(x="x:Q", y="y:Q")
    )
    scale = alt.Scale(domain=[0, 1])
    base = alt.Chart(df).encode(
        x=alt.X("confidence:Q", title="confidence", scale=scale),
        y=alt.Y("accuracy:Q", title="accuracy", scale=scale),
        color=alt.Color("curve:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=[
            alt.Tooltip("curve:N"),
            alt.Tooltip("lo:Q", format=".2f", title="bin from"),
            alt.Tooltip("hi:Q", format=".2f", title="bin to"),
            alt.Tooltip("count:Q", format=","),
            alt.Tooltip("confidence:Q", format=".3f"),
            alt.Tooltip("accuracy:Q", format=".3f"),
        ],
    )
    lines = base.mark_line()
    points = base.mark_circle().encode(size=alt.Size("count:Q", scale=alt.Scale(type="log"), legend=None))
    return alt.layer(diag, lines, points).properties(height=height)
