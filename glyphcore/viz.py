"""Chart and image builders for the app: pure functions, data in, chart (or image array) out.

Nothing here imports streamlit or touches files; the pages pass plain values (numpy arrays, lists
of metric events, run tables) and show what comes back with ``st.altair_chart`` / ``st.image``.

Sections:
    * images: sample grids, per-class means (uint8 arrays ready for ``st.image``)
    * data set charts: class distribution per split
    * training curves: metric events -> tidy frames -> live and overlaid loss/accuracy charts
    * (app engineer B) evaluation, drawing and activation charts, at the end of the file
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

__all__ = [
    "image_grid",
    "class_means",
    "class_distribution_chart",
    "metrics_frames",
    "live_curves_chart",
    "curves_frame",
    "overlay_curves_chart",
]

# Series names used in the curve frames (one source for legends and tests).
TRAIN_STEPS = "train (per step)"
TRAIN = "train"
VAL = "val"
_SERIES_COLORS = {TRAIN_STEPS: "#9ecae9", TRAIN: "#1f77b4", VAL: "#ff7f0e"}


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------
def image_grid(
    images: np.ndarray,
    ncols: int = 10,
    *,
    pad: int = 2,
    pad_value: int = 90,
    scale: int = 1,
) -> np.ndarray:
    """Tile images into one picture for ``st.image``.

    Args:
        images: uint8 N x C x H x W (C = 1 or 3), or N x H x W; float input in [0, 1] is scaled.
        ncols: images per row (fewer when N is smaller).
        pad: pixels of border between tiles.
        pad_value: grey level of the border (0-255), so that black glyph backgrounds stay apart.
        scale: integer nearest-neighbour upscale of each tile (28 px MNIST digits look tiny).

    Returns:
        uint8 array rows x cols (C = 1) or rows x cols x 3 (C = 3); a 1 x 1 black image when N = 0.
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"image_grid expects N x C x H x W or N x H x W images, got shape {x.shape}")
    if x.dtype != np.uint8:
        x = np.clip(np.rint(x.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    n, c, h, w = x.shape
    if n == 0:
        return np.zeros((1, 1), np.uint8)
    if scale > 1:
        x = x.repeat(scale, axis=2).repeat(scale, axis=3)
        h, w = h * scale, w * scale
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    out = np.full((c, nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        out[:, top : top + h, left : left + w] = x[i]
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def class_means(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    max_per_class: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """The mean image of each class, from at most ``max_per_class`` random samples per class.

    Reads only the chosen rows, so a memory-mapped 70k-image array is never copied whole.

    Args:
        images: uint8 N x C x H x W (may be a read-only memmap).
        labels: int N.
        num_classes: K; a class without samples gets a black image.
        max_per_class: samples averaged per class (200 gives a smooth mean in well under a second).
        seed: which samples are drawn.

    Returns:
        uint8 K x C x H x W.
    """
    rng = np.random.default_rng(seed)
    n, c, h, w = images.shape
    out = np.zeros((num_classes, c, h, w), np.uint8)
    labels = np.asarray(labels)
    for k in range(num_classes):
        idx = np.flatnonzero(labels == k)
        if idx.size == 0:
            continue
        if idx.size > max_per_class:
            idx = np.sort(rng.choice(idx, max_per_class, replace=False))
        out[k] = np.rint(images[idx].astype(np.float32).mean(axis=0)).astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------
# data set charts
# --------------------------------------------------------------------------------------------
def class_distribution_chart(
    counts: Mapping[str, Sequence[int]],
    classes: Sequence[str],
    *,
    height: int = 260,
) -> alt.Chart:
    """Stacked bars: images per class, one colour per split.

    Args:
        counts: split name -> count per class (length K, label order).
        classes: K class names, in label order (the x axis keeps this order).
        height: chart height in px.
    """
    rows = [
        {"class": classes[k], "split": split, "split_order": i, "images": int(n)}
        for i, (split, per_class) in enumerate(counts.items())
        for k, n in enumerate(per_class)
    ]
    df = pd.DataFrame(rows, columns=["class", "split", "split_order", "images"])
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=list(classes), title="class", axis=alt.Axis(labelAngle=0, labelOverlap=False)),
            y=alt.Y("sum(images):Q", title="images"),
            color=alt.Color("split:N", sort=list(counts.keys()), title="split"),
            order=alt.Order("split_order:Q", sort="ascending"),  # the first split at the bottom
            tooltip=["class:N", "split:N", alt.Tooltip("images:Q", format=",")],
        )
        .properties(height=height, title="Images per class")
    )


# --------------------------------------------------------------------------------------------
# training curves
# --------------------------------------------------------------------------------------------
def metrics_frames(
    events: Iterable[Mapping],
    steps_per_epoch: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a run's metrics.jsonl events into a step frame and an epoch frame.

    Epochs count from 1; a step event's ``step`` is the global optimizer step (as glyphcore.train
    writes it), placed on the x axis at the fractional epoch ``step / steps_per_epoch``, so per-step
    losses and per-epoch points (at x = epoch) share one axis. Without ``steps_per_epoch`` it is
    read from the epoch records (their ``step`` is the global step at the epoch's end).

    Returns:
        (steps, epochs): steps has columns epoch, step, x, loss; epochs has columns epoch, step,
        train_loss, train_acc, val_loss, val_acc, lr, seconds, images_per_s (missing keys -> NaN).
    """
    step_rows, epoch_rows = [], []
    for ev in events:
        kind = ev.get("event")
        if kind == "step" and ev.get("loss") is not None:
            step_rows.append({"epoch": ev.get("epoch", 1), "step": ev.get("step", 0), "loss": ev["loss"]})
        elif kind == "epoch":
            epoch_rows.append(ev)
    epoch_cols = ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
                  "images_per_s"]  # fmt: skip
    epochs = pd.DataFrame(epoch_rows).reindex(columns=epoch_cols).astype(float)
    if not epochs.empty:
        # a resumed run may repeat an epoch: keep the last record of each
        epochs = epochs.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)
    steps = pd.DataFrame(step_rows, columns=["epoch", "step", "loss"]).astype(float)
    spe = float(steps_per_epoch or 0)
    if not spe and not epochs.empty and epochs["step"].notna().any():
        first = epochs.dropna(subset=["step"]).iloc[0]
        spe = first["step"] / first["epoch"]
    if not spe and not steps.empty:  # no epoch finished yet: the largest step is a lower bound
        spe = max(1.0, steps["step"].max())
    steps["x"] = steps["step"] / spe if spe else pd.Series(dtype=float)
    return steps, epochs


def _epoch_long(epochs: pd.DataFrame, metric: str) -> pd.DataFrame:
    cols = {f"train_{metric}": TRAIN, f"val_{metric}": VAL}
    present = [c for c in cols if c in epochs]
    long = epochs.melt(id_vars=["epoch"], value_vars=present, var_name="series", value_name="value")
    long["series"] = long["series"].map(cols)
    return long.dropna(subset=["value"]).rename(columns={"epoch": "x"})


def live_curves_chart(
    steps: pd.DataFrame,
    epochs: pd.DataFrame,
    metric: str = "loss",
    *,
    epochs_total: int | None = None,
    height: int = 300,
) -> alt.LayerChart:
    """One run's live curve: per-step train loss (light) + per-epoch train and val (points and lines).

    Args:
        steps, epochs: from :func:`metrics_frames`.
        metric: "loss" or "acc" (accuracy has no per-step series).
        epochs_total: fix the x axis to [0, epochs_total] so the curve grows into a stable frame.
        height: px, legend and axes included (Streamlit fits the chart to its box).
    """
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}")
    title = "loss" if metric == "loss" else "accuracy"
    frames = []
    if metric == "loss" and not steps.empty:
        frames.append(pd.DataFrame({"x": steps["x"], "value": steps["loss"], "series": TRAIN_STEPS}))
    if not epochs.empty:
        frames.append(_epoch_long(epochs, metric))
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["x", "value", "series"])
    series = [s for s in (TRAIN_STEPS, TRAIN, VAL) if s in set(df["series"])] or [TRAIN, VAL]
    x_scale = alt.Scale(domain=[0, epochs_total]) if epochs_total else alt.Undefined
    y_scale = alt.Scale(zero=False) if metric == "loss" else alt.Scale(zero=False, domainMax=1.0)
    base = alt.Chart(df).encode(
        x=alt.X("x:Q", title="epoch", scale=x_scale, axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=title, scale=y_scale),
        color=alt.Color(
            "series:N",
            title=None,
            scale=alt.Scale(domain=series, range=[_SERIES_COLORS[s] for s in series]),
            legend=alt.Legend(orient="right"),
        ),
        tooltip=[
            alt.Tooltip("series:N"),
            alt.Tooltip("x:Q", title="epoch", format=".2f"),
            alt.Tooltip("value:Q", title=title, format=".4f"),
        ],
    )
    lines = base.mark_line(strokeWidth=1.5)
    points = base.transform_filter(alt.datum.series != TRAIN_STEPS).mark_point(filled=True, size=40)
    return alt.layer(lines, points).properties(height=height, title=f"{title} (live)")


def curves_frame(
    runs: Mapping[str, Iterable[Mapping]],
    groups: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per-epoch curves of several runs in one tidy frame for :func:`overlay_curves_chart`.

    Args:
        runs: run id -> its metrics events (``epoch`` events are used).
        groups: optional run id -> group label (e.g. "activation=relu"); defaults to the run id.

    Returns:
        Columns run, group, epoch, split ("train" | "val"), metric ("loss" | "acc"), value.
    """
    rows = []
    for run_id, events in runs.items():
        _, epochs = metrics_frames(events)
        group = (groups or {}).get(run_id, run_id)
        for rec in epochs.to_dict("records"):
            for split in (TRAIN, VAL):
                for metric in ("loss", "acc"):
                    value = rec.get(f"{split}_{metric}")
                    if value is not None and not pd.isna(value):
                        rows.append(
                            {"run": run_id, "group": group, "epoch": rec["epoch"], "split": split,
                             "metric": metric, "value": value}
                        )  # fmt: skip
    return pd.DataFrame(rows, columns=["run", "group", "epoch", "split", "metric", "value"])


def overlay_curves_chart(
    curves: pd.DataFrame,
    metric: str = "loss",
    *,
    color: str = "run",
    splits: Sequence[str] = (TRAIN, VAL),
    height: int = 300,
) -> alt.Chart:
    """Overlaid per-epoch curves of several runs: colour by run (or by group), dash by split.

    Args:
        curves: from :func:`curves_frame`.
        metric: "loss" or "acc".
        color: "run" (one colour per run) or "group" (one colour per config value; runs of a group
            share it, each run still its own line).
        splits: which of "train" / "val" to draw.
        height: px.
    """
    if color not in ("run", "group"):
        raise ValueError(f"color must be 'run' or 'group', got {color!r}")
    title = "loss" if metric == "loss" else "accuracy"
    df = curves[(curves["metric"] == metric) & (curves["split"].isin(list(splits)))]
    return (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title=title, scale=alt.Scale(zero=False)),
            color=alt.Color(f"{color}:N", title=color, scale=alt.Scale(scheme="tableau10"),
                            legend=alt.Legend(orient="right", labelLimit=260)),
            strokeDash=alt.StrokeDash(
                "split:N", title="split", sort=[TRAIN, VAL],
                scale=alt.Scale(domain=[TRAIN, VAL], range=[[5, 3], [1, 0]]),
                # a stroke symbol needs a size and colour of its own, or it is drawn invisible
                legend=alt.Legend(symbolType="stroke", symbolStrokeWidth=2, symbolStrokeColor="#444",
                                  symbolSize=300, symbolFillColor="transparent"),
            ),  # fmt: skip
            detail="run:N",
            tooltip=["run:N", "group:N", "split:N", alt.Tooltip("epoch:Q"), alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=height, title=f"{title} by epoch")
    )


# ============================================================================================
# Evaluate / Draw / Activations charts (app engineer B): append below this line.
# ============================================================================================
# --- Evaluate / Draw / Activations charts ---
__all__ += [
    "confusion_matrix_chart",
    "topk_chart",
    "activation_curve_chart",
    "activation_overlay_chart",
    "layer_histogram_chart",
    "saliency_overlay",
    "feature_map_grid",
    "guide_lines_image",
]

CONFUSION_SELECTION = "cell"  # name of the confusion matrix's click selection (st.altair_chart event key)
LETTER_FONT = "Source Code Pro, monospace"  # class labels in a face that tells I from l

# Streamlit's default autosize ("fit") squeezes a layered chart's plot into its height together
# with its title, legend and axes; fit the width to the column only and keep the plot's height.
_FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


def confusion_matrix_chart(
    matrix: np.ndarray,
    classes: Sequence[str],
    *,
    normalize: bool = False,
    size: int = 500,
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
        size: width and height of the cell area in px (52 classes need about 10 px per cell).
        errors_only: draw the diagonal (right answers) in flat grey, outside the colour scale, whose
            domain then spans 0 .. the largest off-diagonal value: a good model's few mistakes get the
            whole colour range instead of being pale next to a diagonal of hundreds. The diagonal cells
            keep their tooltips and can still be clicked.
    """
    m = np.asarray(matrix, dtype=np.int64)
    k = len(classes)
    if m.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {m.shape} does not match {k} classes")
    row_sum = m.sum(axis=1, keepdims=True)
    share = np.divide(m, row_sum, out=np.zeros(m.shape, np.float64), where=row_sum > 0)
    t_idx, p_idx = np.nonzero(m)
    df = pd.DataFrame(
        {
            "true": [classes[i] for i in t_idx],
            "pred": [classes[j] for j in p_idx],
            "count": m[t_idx, p_idx],
            "share": share[t_idx, p_idx],
        }
    )
    value = "share" if normalize else "count"
    title = "row share" if normalize else "images"
    legend = alt.Legend(format=".0%" if normalize else "d", orient="bottom", gradientLength=size // 2)
    if errors_only:  # the right answers in flat grey, outside the colour scale
        off = ~np.eye(k, dtype=bool)
        top = float((share if normalize else m)[off].max(initial=0))
        top = top if top > 0 else 1.0  # no mistakes at all: any non-empty domain
        if not normalize:
            top = int(top)
        color = alt.when("datum['true'] === datum['pred']").then(alt.value("#d0d0d0")).otherwise(
            alt.Color(f"{value}:Q", scale=alt.Scale(type="sqrt", scheme="blues", domain=[0, top]),
                      title=f"{title}, mistakes only", legend=legend))
    else:
        color = alt.Color(f"{value}:Q", scale=alt.Scale(type="sqrt", scheme="blues", domainMin=0), title=title,
                          legend=legend)
    sel = alt.selection_point(name=CONFUSION_SELECTION, fields=["true", "pred"], on="click", clear="dblclick")
    axis = {"labelOverlap": False, "labelAngle": 0, "labelFontSize": 9, "labelFont": LETTER_FONT, "ticks": False}
    picked = alt.when(sel, empty=False)  # the clicked cell is outlined; nothing is outlined before a click
    rect = (
        alt.Chart(df)
        .mark_rect()
        .encode(
            x=alt.X("pred:N", sort=list(classes), scale=alt.Scale(domain=list(classes)), title="predicted",
                    axis=alt.Axis(orient="top", **axis)),
            y=alt.Y("true:N", sort=list(classes), scale=alt.Scale(domain=list(classes)), title="true",
                    axis=alt.Axis(**axis)),
            color=color,
            stroke=picked.then(alt.value("#e4572e")).otherwise(alt.value("#bbb")),
            strokeWidth=picked.then(alt.value(3.0)).otherwise(alt.value(0.3)),
            tooltip=[
                alt.Tooltip("true:N", title="true"),
                alt.Tooltip("pred:N", title="predicted"),
                alt.Tooltip("count:Q", title="images", format=","),
                alt.Tooltip("share:Q", title="share of true class", format=".1%"),
            ],
        )
        .add_params(sel)
        # "pad": cells stay square at ``size``; Streamlit's default "fit" squeezes the plot to make
        # room for the axes and legend inside the same box
        .properties(width=size, height=size, autosize=alt.AutoSizeParams(type="pad"))
    )  # fmt: skip
    return rect


def topk_chart(topk: Sequence[tuple[str, float]], *, title: str = "", height: int = 130) -> alt.Chart:
    """Horizontal bars of a top-k prediction, most likely on top, each labelled with its probability.

    Args:
        topk: (class, probability) pairs, most likely first, e.g. ``[("A", 0.97), ("H", 0.01), ...]``.
        title: chart title.
        height: px of the plot.
    """
    df = pd.DataFrame(list(topk), columns=["class", "p"])
    df["label"] = [f"{p:.1%}" for p in df["p"]]
    df["top"] = np.arange(len(df)) == 0
    base = alt.Chart(df).encode(
        y=alt.Y("class:N", sort=list(df["class"]), title=None,
                axis=alt.Axis(labelFontSize=14, labelFontWeight="bold", labelOverlap=False, labelFont=LETTER_FONT)),
        x=alt.X("p:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%", tickCount=5)),
        tooltip=[alt.Tooltip("class:N"), alt.Tooltip("p:Q", format=".2%", title="probability")],
    )
    bars = base.mark_bar().encode(
        color=alt.Color("top:N", scale=alt.Scale(domain=[True, False], range=["#4c78a8", "#9ecae9"]), legend=None)
    )
    text = base.mark_text(align="left", dx=4, fontSize=12).encode(text="label:N")
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
        [pd.DataFrame({"activation": name, "x": x, "value": v, "series": s})
         for name, (x, y, dy) in curves.items() for s, v in zip(_F_SERIES, (y, dy))],
        ignore_index=True,
    )  # fmt: skip
    axes = alt.Chart().transform_aggregate(n="count()", groupby=["activation"]).mark_rule(color="#ccc")
    lines = (
        alt.Chart()
        .mark_line(strokeWidth=2)
        .encode(
            x=alt.X("x:Q", title="x"),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("series:N", title=None, sort=list(_F_SERIES),
                            scale=alt.Scale(domain=list(_F_SERIES), range=["#1f77b4", "#ff7f0e"]),
                            legend=alt.Legend(orient="top")),
            strokeDash=alt.StrokeDash("series:N", sort=list(_F_SERIES), legend=None,
                                      scale=alt.Scale(domain=list(_F_SERIES), range=[[1, 0], [5, 3]])),
            tooltip=[alt.Tooltip("activation:N"), alt.Tooltip("series:N", title=""),
                     alt.Tooltip("x:Q", format=".2f"), alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(width=width, height=height)
    )  # fmt: skip
    chart = alt.layer(axes.encode(y=alt.datum(0)), axes.encode(x=alt.datum(0)), lines, data=df).facet(
        facet=alt.Facet("activation:N", sort=list(curves), title=None,
                        header=alt.Header(labelFontSize=14, labelFontWeight="bold", labelFont="monospace")),
        columns=columns,
    ).resolve_scale(y="independent")  # fmt: skip
    return chart.properties(title=title) if title else chart


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
            color=alt.Color("activation:N", sort=list(curves), title="activation"),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
            tooltip=["activation:N", alt.Tooltip("x:Q", format=".2f"), alt.Tooltip("value:Q", format=".4f")],
        )
        .add_params(pick)
        .properties(height=height, title=title, autosize=_FIT_WIDTH)
    )


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
    frames = []
    for name, (counts, edges) in layers.items():
        counts = np.asarray(counts, dtype=np.float64)
        edges = np.asarray(edges, dtype=np.float64)
        total = counts.sum() or 1.0
        frames.append(pd.DataFrame({"layer": name, "lo": edges[:-1], "hi": edges[1:], "count": counts,
                                    "share": counts / total}))  # fmt: skip
    df = (pd.concat(frames, ignore_index=True) if frames
          else pd.DataFrame({"layer": [], "lo": [], "hi": [], "count": [], "share": []}))  # fmt: skip
    if log:
        df = df[df["count"] > 0]  # a log scale cannot place a zero
    chart = (
        alt.Chart(df)
        .mark_rect(color="#4c78a8")
        .encode(
            x=alt.X("lo:Q", title="output value", scale=alt.Scale(zero=False, nice=False)),
            x2="hi:Q",
            y=alt.Y("count:Q", title="count", scale=alt.Scale(type="log") if log else alt.Undefined),
            y2=alt.value(height),  # bars reach the bottom of the plot (no zero on a log axis)
            tooltip=[alt.Tooltip("layer:N"), alt.Tooltip("lo:Q", format=".3f", title="from"),
                     alt.Tooltip("hi:Q", format=".3f", title="to"), alt.Tooltip("count:Q", format=","),
                     alt.Tooltip("share:Q", format=".2%")],
        )
        .properties(width=width, height=height)
        .facet(facet=alt.Facet("layer:N", sort=list(layers), title=None,
                               header=alt.Header(labelFontSize=13, labelFontWeight="bold")),
               columns=columns)
        .resolve_scale(x="independent", y="independent")
    )  # fmt: skip
    return chart.properties(title=title) if title else chart


def saliency_overlay(image: np.ndarray, saliency: np.ndarray, *, alpha: float = 0.6, scale: int = 3) -> np.ndarray:
    """The model's input in grey with a saliency heat map on top, as RGB for ``st.image``.

    Args:
        image: H x W (or 1 x H x W) input, uint8 or float in [0, 1].
        saliency: H x W non-negative importance (any scale; normalised here to its maximum).
        alpha: opacity of the heat at its strongest.
        scale: integer nearest-neighbour upscale (a 100 px input is small on screen).

    Returns:
        uint8 (H*scale) x (W*scale) x 3.
    """
    img = np.asarray(image, dtype=np.float64).squeeze()
    if img.max() > 1.0:
        img = img / 255.0
    sal = np.abs(np.asarray(saliency, dtype=np.float64).squeeze())
    if sal.shape != img.shape:
        raise ValueError(f"saliency of shape {sal.shape} does not match the image {img.shape}")
    sal = sal / sal.max() if sal.max() > 0 else sal
    # a black-red-yellow ramp ("hot"): 0 -> transparent, 1 -> yellow
    heat = np.stack([np.clip(3 * sal, 0, 1), np.clip(3 * sal - 1, 0, 1), np.clip(3 * sal - 2, 0, 1)], axis=-1)
    grey = np.repeat(img[..., None] * 0.7, 3, axis=-1)
    a = alpha * np.sqrt(sal)[..., None]
    out = np.clip(grey * (1 - a) + heat * a, 0, 1)
    out = np.rint(out * 255).astype(np.uint8)
    if scale > 1:
        out = out.repeat(scale, axis=0).repeat(scale, axis=1)
    return out


def feature_map_grid(maps: np.ndarray, *, ncols: int = 8, max_maps: int = 64, scale: int = 1) -> np.ndarray:
    """Feature maps of one layer (C x H x W floats), each stretched to its own min..max, tiled.

    Args:
        maps: C x H x W activations of one image.
        ncols: maps per row.
        max_maps: show at most this many channels (the first ones).
        scale: integer upscale of each map (deep layers are a few pixels wide).
    """
    m = np.asarray(maps, dtype=np.float32)[:max_maps]
    lo = m.min(axis=(1, 2), keepdims=True)
    hi = m.max(axis=(1, 2), keepdims=True)
    norm = np.divide(m - lo, hi - lo, out=np.zeros_like(m), where=hi > lo)
    return image_grid(np.rint(norm * 255).astype(np.uint8), ncols=ncols, scale=scale)


def guide_lines_image(rows: Mapping[str, float], size: int, *, background: int = 0) -> np.ndarray:
    """The Draw canvas's background: guide lines on a flat background, RGB uint8 size x size x 3.

    Args:
        rows: guide name -> row in px (``"cap"``, ``"x_height"``, ``"baseline"``), e.g. from
            ``glyphcore.drawing.guide_rows``.
        size: canvas side in px.
        background: grey level of the background (0 = black, like the glyphs).
    """
    img = np.full((size, size, 3), background, np.uint8)
    colours = {"cap": (70, 130, 220), "x_height": (90, 90, 90), "baseline": (220, 80, 60)}
    for name, row in rows.items():
        r = int(round(row))
        colour = colours.get(name, (120, 120, 120))
        if name == "x_height":  # dashed: a weaker guide than the cap line and baseline
            for x0 in range(0, size, 12):
                img[r, x0 : x0 + 6] = colour
        else:
            img[max(r - 1, 0) : r + 1] = colour
    return img
