"""Data set and training charts: class distribution, metric events -> tidy frames -> loss/accuracy curves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import altair as alt
import pandas as pd

__all__ = [
    "TRAIN_STEPS", "TRAIN", "VAL", "class_distribution_chart", "metrics_frames", "live_curves_chart",
    "curves_frame", "overlay_curves_chart",
]

# Series names used in the curve frames (one source for legends and tests).
TRAIN_STEPS = "train (per step)"
TRAIN = "train"
VAL = "val"
_SERIES_COLORS = {TRAIN_STEPS: "#9ecae9", TRAIN: "#1f77b4", VAL: "#ff7f0e"}

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
