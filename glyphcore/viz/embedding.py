"""An embedding map: a model's penultimate features projected to 2-D, a point per image.

The projection is PCA by numpy's SVD (no extra dependency): the first two principal axes of the
centred features, which keep the most variance a linear map to 2-D can. The chart's points can be
clicked; ``st.altair_chart(..., on_select="rerun")`` returns the clicked image's ``index`` under
``selection[EMBEDDING_SELECTION]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from glyphcore.viz.diagnostics import LETTER_FONT
from glyphcore.viz.palette import CATEGORY_COLORS, RIGHT_WRONG_COLORS

__all__ = ["EMBEDDING_SELECTION", "pca_2d", "embedding_frame", "embedding_chart"]

EMBEDDING_SELECTION = "point"  # name of the map's click selection (st.altair_chart event key)


def pca_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project N x F features onto their first two principal axes.

    Returns:
        (coords N x 2, share of the variance on each of the two axes: 2 values in 0 .. 1).
        With fewer than 2 images or constant features the missing axes are 0.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be N x F, got shape {x.shape}")
    n = x.shape[0]
    coords = np.zeros((n, 2))
    share = np.zeros(2)
    if n < 2:
        return coords, share
    centred = x - x.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    m = min(2, s.size)
    coords[:, :m] = u[:, :m] * s[:m]
    total = float((s**2).sum())
    if total > 0:
        share[:m] = s[:m] ** 2 / total
    # a sign fixed by the data (SVD's is arbitrary): the largest |coordinate| of each axis is positive
    for j in range(m):
        if coords[np.argmax(np.abs(coords[:, j])), j] < 0:
            coords[:, j] *= -1
    return coords, share


def embedding_frame(
    coords: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    preds: Sequence[int] | np.ndarray,
    classes: Sequence[str],
    indices: Sequence[int] | np.ndarray,
) -> pd.DataFrame:
    """The map's points: columns index (in the split), x, y, true, predicted, outcome ("right" | "wrong")."""
    true = np.asarray(labels)
    pred = np.asarray(preds)
    return pd.DataFrame(
        {
            "index": np.asarray(indices, dtype=np.int64),
            "x": coords[:, 0],
            "y": coords[:, 1],
            "true": [classes[int(k)] for k in true],
            "predicted": [classes[int(k)] for k in pred],
            "outcome": np.where(true == pred, "right", "wrong"),
        }
    )


def embedding_chart(
    frame: pd.DataFrame, *, color_by: str = "outcome", height: int = 460
) -> alt.LayerChart | alt.FacetChart:
    """The 2-D map: a point per image coloured by ``color_by`` ("outcome": right/wrong, or "true": the
    class, each point also labelled with its letter); a click selects one point.

    Args:
        frame: from :func:`embedding_frame`.
        color_by: "outcome" or "true".
        height: px.
    """
    if color_by not in ("outcome", "true"):
        raise ValueError(f"color_by must be 'outcome' or 'true', got {color_by!r}")
    sel = alt.selection_point(name=EMBEDDING_SELECTION, fields=["index"], on="click", clear="dblclick")
    if color_by == "outcome":
        color = alt.Color(
            "outcome:N",
            title="prediction",
            sort=list(RIGHT_WRONG_COLORS),
            scale=alt.Scale(domain=list(RIGHT_WRONG_COLORS), range=list(RIGHT_WRONG_COLORS.values())),
            legend=alt.Legend(orient="bottom"),
        )
        shape = alt.Shape(
            "outcome:N",
            sort=list(RIGHT_WRONG_COLORS),
            legend=None,
            scale=alt.Scale(domain=list(RIGHT_WRONG_COLORS), range=["circle", "cross"]),
        )
    else:
        color = alt.Color("true:N", title="class", scale=alt.Scale(range=list(CATEGORY_COLORS)), legend=None)
        shape = alt.Shape("outcome:N", legend=None)
    base = alt.Chart(frame).encode(
        x=alt.X("x:Q", title="PC 1", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title="PC 2", axis=alt.Axis(labels=False, ticks=False)),
        tooltip=[
            alt.Tooltip("true:N"),
            alt.Tooltip("predicted:N"),
            alt.Tooltip("outcome:N"),
            alt.Tooltip("index:Q", title="image #"),
        ],
    )
    picked = alt.when(sel, empty=False)
    points = (
        base.mark_point(filled=True, opacity=0.8)
        .encode(
            color=color,
            shape=shape,
            size=picked.then(alt.value(220)).otherwise(alt.value(45)),
            stroke=picked.then(alt.value("#808080")).otherwise(alt.value(None)),
        )
        .add_params(sel)
    )
    layers = [points]
    if color_by == "true":  # the letters themselves say which class a colour is
        layers.append(base.mark_text(font=LETTER_FONT, fontSize=11, dy=-9).encode(text="true:N", color=color))
    return alt.layer(*layers).properties(height=height, title="penultimate features, first two principal axes")
