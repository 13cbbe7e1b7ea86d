"""Data set and training charts: class distribution, metric events -> tidy frames -> loss/accuracy curves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from glyphcore.viz.palette import CATEGORY_COLORS, SERIES_COLORS

__all__ = [
    "TRAIN_STEPS",
    "TRAIN",
    "VAL",
    "X_AXES",
    "SERIES_DASH",
    "class_distribution_chart",
    "metrics_frames",
    "live_curves_chart",
    "curves_frame",
    "smooth_ema",
    "smooth_curves",
    "overlay_curves_chart",
    "BAND_COLUMNS",
    "group_band_chart",
]

# Series names used in the curve frames (one source for legends and tests).
TRAIN_STEPS = "train (per step)"
TRAIN = "train"
VAL = "val"
_SERIES_COLORS = SERIES_COLORS
#: train dashed, val solid, per-step dotted: the series differ by dash as well as by colour.
SERIES_DASH: dict[str, list[int]] = {TRAIN: [6, 3], VAL: [1, 0], TRAIN_STEPS: [2, 2]}
#: x-axis choices of the overlaid curves: column of :func:`curves_frame` -> axis title.
X_AXES: dict[str, str] = {"epoch": "epoch", "step": "step", "images": "images seen", "wall_s": "wall time (s)"}


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
            color=alt.Color(
                "split:N",
                sort=list(counts.keys()),
                title="split",
                scale=alt.Scale(domain=list(counts.keys()), range=list(CATEGORY_COLORS)),
            ),
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
        (steps, epochs): steps has columns epoch, step, x, loss, time; epochs has columns epoch, step,
        train_loss, train_acc, val_loss, val_acc, lr, seconds, images_per_s, time (missing keys -> NaN;
        ``time`` is the record's Unix time, which the metrics log stamps on every record).
    """
    step_rows, epoch_rows = [], []
    for ev in events:
        kind = ev.get("event")
        if kind == "step" and ev.get("loss") is not None:
            step_rows.append(
                {"epoch": ev.get("epoch", 1), "step": ev.get("step", 0), "loss": ev["loss"], "time": ev.get("time")}
            )
        elif kind == "epoch":
            epoch_rows.append(ev)
    epoch_cols = [
        "epoch",
        "step",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "seconds",
        "images_per_s",
        "time",
    ]
    epochs = pd.DataFrame(epoch_rows).reindex(columns=epoch_cols).astype(float)
    if not epochs.empty:
        # a resumed run may repeat an epoch: keep the last record of each
        epochs = epochs.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)
    steps = pd.DataFrame(step_rows, columns=["epoch", "step", "loss", "time"]).astype(float)
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
) -> alt.LayerChart | alt.FacetChart:
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
            legend=alt.Legend(orient="right", symbolType="stroke", symbolStrokeWidth=2, symbolSize=300),
        ),
        # dash as well as colour: train dashed, val solid, per-step dotted
        strokeDash=alt.StrokeDash(
            "series:N", legend=None, scale=alt.Scale(domain=series, range=[SERIES_DASH[s] for s in series])
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


def _wall_seconds(steps: pd.DataFrame, epochs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock seconds since the run's first record, at each step record and each epoch record
    (TensorBoard's "relative" time). The metrics log stamps every record with its Unix time; records
    without one get the epochs' summed training ``seconds``, interpolated linearly between epoch
    ends for steps (0 s at step 0)."""
    times = pd.concat([steps["time"], epochs["time"]]).dropna()
    if len(times) and steps["time"].notna().all() and epochs["time"].notna().all():
        t0 = float(times.min())
        return (steps["time"] - t0).to_numpy(float), (epochs["time"] - t0).to_numpy(float)
    ends = epochs.dropna(subset=["step", "seconds"])
    if ends.empty:
        return np.full(len(steps), np.nan), np.full(len(epochs), np.nan)
    xs = np.concatenate([[0.0], ends["step"].to_numpy(float)])
    ys = np.concatenate([[0.0], ends["seconds"].to_numpy(float).cumsum()])
    # past the last epoch end: held at its time
    return np.interp(steps["step"].to_numpy(float), xs, ys), np.interp(epochs["step"].to_numpy(float), xs, ys)


def curves_frame(
    runs: Mapping[str, Iterable[Mapping]],
    groups: Mapping[str, str] | None = None,
    *,
    batch_sizes: Mapping[str, int | None] | None = None,
    step_curves: bool = False,
) -> pd.DataFrame:
    """Curves of several runs in one tidy frame for :func:`overlay_curves_chart`.

    Every point carries all x-axis choices (:data:`X_AXES`): the epoch (fractional for a step
    record), the global optimizer step, the images seen (step x batch size, per process) and the
    wall-clock seconds since the run's first record (see :func:`_wall_seconds`).

    Args:
        runs: run id -> its metrics events (``epoch`` events; ``step`` events too with ``step_curves``).
        groups: optional run id -> group label (e.g. "activation=relu"); defaults to the run id.
        batch_sizes: run id -> its batch size, for "images seen" (NaN without it).
        step_curves: also add each run's per-step train loss, as split :data:`TRAIN_STEPS`.

    Returns:
        Columns run, group, split ("train" | "val" | TRAIN_STEPS), metric ("loss" | "acc"), value,
        epoch, step, images, wall_s.
    """
    cols = ["run", "group", "split", "metric", "value", "epoch", "step", "images", "wall_s"]
    frames = []
    for run_id, events in runs.items():
        steps, epochs = metrics_frames(list(events))
        group = (groups or {}).get(run_id, run_id)
        batch = float((batch_sizes or {}).get(run_id) or np.nan)
        step_wall, epoch_wall = _wall_seconds(steps, epochs)
        if not epochs.empty:
            for split in (TRAIN, VAL):
                for metric in ("loss", "acc"):
                    col = f"{split}_{metric}"
                    f = pd.DataFrame(
                        {"epoch": epochs["epoch"], "step": epochs["step"], "value": epochs[col], "wall_s": epoch_wall}
                    )
                    f = f.assign(run=run_id, group=group, split=split, metric=metric, images=f["step"] * batch)
                    frames.append(f.dropna(subset=["value"]))
        if step_curves and not steps.empty:
            f = pd.DataFrame({"epoch": steps["x"], "step": steps["step"], "value": steps["loss"], "wall_s": step_wall})
            frames.append(f.assign(run=run_id, group=group, split=TRAIN_STEPS, metric="loss", images=f["step"] * batch))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


def smooth_ema(values: Sequence[float] | np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased so the first points are not
    pulled towards 0.

    ``s_t = w * s_(t-1) + (1 - w) * v_t`` from ``s_0 = 0``, divided by ``1 - w ** t`` (t counts the
    finite values seen); NaN values are passed through and do not move the average.

    Args:
        values: the series, in x order.
        weight: 0 (no smoothing) .. < 1 (TensorBoard's slider; 0.6 is its default).
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    last, n = 0.0, 0
    for i, x in enumerate(v):
        if np.isnan(x):
            continue
        last = last * weight + (1.0 - weight) * x
        n += 1
        out[i] = last / (1.0 - weight**n)
    return out


def smooth_curves(curves: pd.DataFrame, weight: float) -> pd.DataFrame:
    """:func:`curves_frame` with each (run, split, metric) series smoothed by :func:`smooth_ema`
    (in step order); the unsmoothed value is kept as column ``raw``."""
    out = curves.copy()
    out["raw"] = out["value"]
    if weight <= 0 or out.empty:
        return out
    out = out.sort_values(["run", "split", "metric", "step", "epoch"], kind="stable")
    out["value"] = out.groupby(["run", "split", "metric"], sort=False)["raw"].transform(
        lambda s: pd.Series(smooth_ema(s.to_numpy(), weight), index=s.index)
    )
    return out.sort_index()


def _split_dash(present: Sequence[str]) -> alt.StrokeDash:
    """Dash by split (train dashed, val solid, per-step dotted), with a legend of grey strokes."""
    return alt.StrokeDash(
        "split:N",
        title="split",
        sort=list(present),
        scale=alt.Scale(domain=list(present), range=[SERIES_DASH[s] for s in present]),
        # a stroke symbol needs a size and colour of its own, or it is drawn invisible
        legend=alt.Legend(
            symbolType="stroke",
            symbolStrokeWidth=2,
            symbolStrokeColor="#808080",
            symbolSize=300,
            symbolFillColor="transparent",
            orient="bottom",
        ),
    )


def _category_color(field: str, title: str) -> alt.Color:
    """Colour by ``field`` in the palette's category colours, legend below the chart."""
    return alt.Color(
        f"{field}:N",
        title=title,
        scale=alt.Scale(range=list(CATEGORY_COLORS)),
        legend=alt.Legend(orient="bottom", columns=2, labelLimit=0),
    )


def _check_x(x: str) -> None:
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")


def overlay_curves_chart(
    curves: pd.DataFrame,
    metric: str = "loss",
    *,
    color: str = "run",
    splits: Sequence[str] = (TRAIN, VAL),
    x: str = "epoch",
    height: int = 300,
) -> alt.LayerChart | alt.FacetChart:
    """Overlaid curves of several runs: colour by run (or by group), dash by split.

    Args:
        curves: from :func:`curves_frame` (optionally :func:`smooth_curves`).
        metric: "loss" or "acc".
        color: "run" (one colour per run) or "group" (one colour per config value; runs of a group
            share it, each run still its own line).
        splits: which of "train" / "val" / TRAIN_STEPS to draw.
        x: the x axis, a key of :data:`X_AXES`.
        height: px.
    """
    if color not in ("run", "group"):
        raise ValueError(f"color must be 'run' or 'group', got {color!r}")
    _check_x(x)
    title = "loss" if metric == "loss" else "accuracy"
    df = curves[(curves["metric"] == metric) & (curves["split"].isin(list(splits)))].dropna(subset=[x])
    present = [s for s in (TRAIN, VAL, TRAIN_STEPS) if s in set(df["split"])] or [TRAIN, VAL]
    tooltip: list[Any] = [
        "run:N",
        "group:N",
        "split:N",
        alt.Tooltip(f"{x}:Q", title=X_AXES[x], format=",.4~f"),
        alt.Tooltip("value:Q", format=".4f"),
    ]
    if "raw" in df:
        tooltip.append(alt.Tooltip("raw:Q", title="unsmoothed", format=".4f"))
    base = alt.Chart(df).encode(
        x=alt.X(f"{x}:Q", title=X_AXES[x], axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title=title, scale=alt.Scale(zero=False)),
        color=_category_color(color, color),
        strokeDash=_split_dash(present),
        detail="run:N",
        tooltip=tooltip,
    )
    lines = base.mark_line(strokeWidth=2)
    points = base.transform_filter(alt.datum.split != TRAIN_STEPS).mark_point(filled=True, size=30)
    return alt.layer(lines, points).properties(height=height, title=f"{title} by {X_AXES[x]}")


#: columns of a group-band frame (:func:`group_band_chart`): one row per group, split, metric and x.
BAND_COLUMNS = ("group", "split", "metric", "x", "mean", "low", "high", "n")
BAND_OPACITY = 0.2  # the band under a group's mean line: light enough to see overlapping groups through


def group_band_chart(
    bands: pd.DataFrame,
    metric: str = "loss",
    *,
    splits: Sequence[str] = (TRAIN, VAL),
    x: str = "epoch",
    height: int = 300,
) -> alt.LayerChart | alt.FacetChart:
    """Curves of seed groups: each group's mean line (dash by split) over a band from ``low`` to
    ``high`` (an area in the group's colour), so the spread between seeds is seen beside the gaps
    between groups.

    Args:
        bands: columns :data:`BAND_COLUMNS` (``x`` on the scale of ``x``; ``n`` the seeds averaged).
        metric: "loss" or "acc".
        splits: which of "train" / "val" to draw.
        x: the x axis's meaning, a key of :data:`X_AXES` (its title).
        height: px.
    """
    _check_x(x)
    missing = [c for c in BAND_COLUMNS if c not in bands]
    if missing:
        raise ValueError(f"group bands need the columns {', '.join(missing)}")
    title = "loss" if metric == "loss" else "accuracy"
    df = bands[(bands["metric"] == metric) & (bands["split"].isin(list(splits)))].dropna(subset=["x", "mean"])
    present = [s for s in (TRAIN, VAL) if s in set(df["split"])] or [TRAIN, VAL]
    base = alt.Chart(df).encode(
        x=alt.X("x:Q", title=X_AXES[x], axis=alt.Axis(tickMinStep=1)),
        color=_category_color("group", "group"),
        detail="split:N",
    )
    area = base.mark_area(opacity=BAND_OPACITY).encode(
        y=alt.Y("low:Q", title=title, scale=alt.Scale(zero=False)),
        y2="high:Q",
        color=alt.Color("group:N", legend=None),  # the legend shows the lines' full colour, not the band's
    )
    tooltip = ["group:N", "split:N", "n:Q"] + [alt.Tooltip(f"{c}:Q", format=".4f") for c in ("mean", "low", "high")]
    line = base.mark_line(strokeWidth=2).encode(y="mean:Q", strokeDash=_split_dash(present), tooltip=tooltip)
    return (
        alt.layer(area, line)
        .resolve_legend(color="independent")  # the lines' legend alone: full colours, not the bands' tint
        .properties(height=height, title=f"{title} by {X_AXES[x]}: group means and bands")
    )
