"""Runs & Compare, the picked runs side by side: overlaid curves (smoothing, step-level loss, x axis
by epoch, step, images seen or training time), a parallel-coordinates chart of settings vs results,
their config differences, a one-factor ablation table and report cards that copy as Markdown rows."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app_pages.runs_groups import group_curves_section
from glyphcore import runs, viz
from glyphcore.runs import compare
from glyphcore.runs.groups import RunGroup
from glyphcore.viz.hparams import hparams_frame, parallel_coordinates_chart

GROUP_KEYS = (
    "activation",
    "batchnorm",
    "optimizer",
    "lr",
    "model",
    "augment",
    "schedule",
    "batch_size",
    "dropout",
    "seed",
    "data",
)


def curve_choices() -> tuple[str, list[str], str, float]:
    """The widgets above the curves: (colour by, splits, x axis, smoothing weight)."""
    c1, c2 = st.columns([1, 2])
    color_by = c1.selectbox("Colour by", ("run",) + GROUP_KEYS, key="rc_color_by") or "run"
    splits = c2.multiselect(
        "Curves",
        [viz.TRAIN, viz.VAL, viz.TRAIN_STEPS],
        default=[viz.TRAIN, viz.VAL],
        key="rc_splits",
        help="train (per step): the loss of every logged optimizer step",
    )
    c3, c4 = st.columns([1, 2])
    x_axis = c3.selectbox("x axis", list(viz.X_AXES), format_func=lambda k: viz.X_AXES[k], key="rc_x") or "epoch"
    smoothing = c4.slider(
        "Smoothing",
        0.0,
        0.99,
        0.0,
        0.01,
        key="rc_smooth",
        help="TensorBoard's exponential moving average (debiased); 0 = the raw values",
    )
    return color_by, splits, x_axis, smoothing


def curves_section(configs: dict[str, dict], events: dict[str, list[dict]], groups: list[RunGroup]) -> None:
    """Loss and accuracy of the picked runs, one chart above the other: per run, or per seed group
    (mean line and band) when a group has several runs."""
    st.subheader("Curves")
    by_group = any(len(g.members) > 1 for g in groups) and (
        st.radio("Curves of", ["groups", "runs"], horizontal=True, key="rc_curves_of") == "groups"
    )
    if by_group:
        group_curves_section(groups, events)
        return
    color_by, splits, x_axis, smoothing = curve_choices()
    picked = list(configs)
    labels = (
        None if color_by == "run" else {r: f"{color_by}={compare.value_text(configs[r].get(color_by))}" for r in picked}
    )
    batch_sizes = {r: configs[r].get("batch_size") for r in picked}
    curves = viz.curves_frame(events, labels, batch_sizes=batch_sizes, step_curves=viz.TRAIN_STEPS in splits)
    curves = viz.smooth_curves(curves, smoothing)
    if curves.empty:
        st.info("These runs have no finished epoch yet.")
        return
    color = "run" if color_by == "run" else "group"
    # one above the other: each chart gets the page's width, its legend below it (nothing cut at 900 px)
    for metric in ("loss", "acc"):
        chart = viz.overlay_curves_chart(curves, metric, color=color, splits=splits, x=x_axis)
        st.container(key=f"rc_curves_{metric}").altair_chart(chart, width="stretch")
    st.caption(
        f"{curves['run'].nunique()} runs overlaid, coloured by {color_by}; dashed = train, solid = val, "
        f"dotted = train per step" + (f"; smoothed ({smoothing:.2f})" if smoothing else "")
    )


def result_columns(info: runs.RunInfo) -> dict[str, Any]:
    """A run's best validation accuracy (%) and loss, rounded for a table."""
    return {
        "best val acc (%)": round(100 * info.best_val_acc, 2) if info.best_val_acc is not None else None,
        "best val loss": round(info.best_val_loss, 4) if info.best_val_loss is not None else None,
    }


def settings_section(chosen: list[runs.RunInfo], configs: dict[str, dict]) -> None:
    """Settings vs results (parallel coordinates) and the config differences table."""
    st.subheader("Settings vs results")
    diffs = compare.config_differences(configs)
    if len(chosen) < 2:
        st.caption("Pick at least two runs to see their settings against their results.")
    else:
        scores = {r.run_id: result_columns(r) for r in chosen}
        hp = hparams_frame(configs, scores, keys=[row["setting"] for row in diffs])
        if hp.empty:
            st.caption("These runs have no settings or results to compare yet.")
        else:
            chart = parallel_coordinates_chart(hp, color_by="best val acc (%)", theme=st.context.theme.type)
            st.container(key="rc_hparams").altair_chart(chart, width="stretch")
            st.caption(
                "One line per run across the settings that differ and the results; each axis spans its own "
                "range (text settings in sorted order); colour: best val accuracy, orange lowest, blue highest."
            )
    st.subheader("Config differences")
    if len(chosen) < 2:
        st.caption("Pick at least two runs to see their differences.")
    elif not diffs:
        st.info("These runs have the same settings.")
    else:
        st.container(key="rc_diffs").dataframe(diffs, hide_index=True)


def ablations_section(chosen: list[runs.RunInfo], configs: dict[str, dict]) -> None:
    """Runs that differ in exactly one factor, side by side."""
    st.subheader("One-factor ablations")
    results = {
        r.run_id: {
            **result_columns(r),
            "best epoch": r.best_epoch,
            "params": r.params,
            "wall time": compare.run_row(r)["wall time"],
        }
        for r in chosen
    }
    ablations = compare.one_factor_ablations(configs, results)
    if not ablations:
        st.caption(
            "No two of these runs differ in exactly one of "
            + ", ".join(compare.ABLATION_KEYS)
            + " with all else equal."
        )
        return
    st.container(key="rc_ablations").dataframe(
        ablations,
        hide_index=True,
        column_config={
            "params": st.column_config.NumberColumn(format="localized"),
            "best val acc (%)": st.column_config.NumberColumn(format="%.2f"),
        },
    )


def cards_section(chosen: list[runs.RunInfo], events: dict[str, list[dict]]) -> None:
    """Report cards, as a table and as Markdown rows to paste."""
    st.subheader("Report cards")
    cards = [compare.report_card(r, events[r.run_id]) for r in chosen]
    st.container(key="rc_cards").dataframe(cards, hide_index=True)
    st.caption("Markdown rows, ready to paste into a report (copy button at the top right):")
    st.container(key="rc_cards_markdown").code(compare.markdown_table(cards), language="text")
