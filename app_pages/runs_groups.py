"""Runs & Compare, seed groups: the verdict table (each group against a baseline group, paired by
seed), one row per group with its members one click away and a "Clone and change" link to the Train
form, group curves as a mean line over a band, and accuracy against cost, one point per group.

The statistics and the grouping live in glyphcore.runs.groups and glyphcore.stats; this module only
turns widgets into their arguments and shows what comes back. Group labels and run ids come from
files: they are shown as text (tables, ``shared.plain``), never as HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from app_pages import shared
from glyphcore import viz
from glyphcore.errors import GlyphError
from glyphcore.runs import compare
from glyphcore.runs.groups import RunGroup, compare_groups, cost_points, group_curves, metric_spec
from glyphcore.train.query import config_to_query
from glyphcore.viz.compare import COST_AXES, cost_chart, cost_frame, difference_chart

TRAIN_PAGE = "app_pages/train.py"
MAIN_METRICS = ("best_val_acc", "best_val_loss")  # offered first; the epoch records' numbers follow
VERDICT_ICONS = {  # stats.VERDICT_KINDS -> the mark before its sentence
    "better": ":material/arrow_upward:",
    "worse": ":material/arrow_downward:",
    "no difference": ":material/drag_handle:",
    "undecided": ":material/help:",
    "one seed": ":material/looks_one:",
}
NOT_METRICS = frozenset({"event", "epoch", "step", "time", "lr", "seconds"})  # numbers that are no result


def metric_choices(events: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Best valid accuracy and loss, then every other number the runs' epoch records carry."""
    recorded = {
        key
        for evs in events.values()
        for ev in evs
        if ev.get("event") == "epoch"
        for key, value in ev.items()
        if key not in NOT_METRICS and isinstance(value, int | float) and not isinstance(value, bool)
    }
    return [*MAIN_METRICS, *sorted(recorded - set(MAIN_METRICS))]


def verdict_controls(groups: list[RunGroup], events: Mapping[str, Sequence]) -> tuple[RunGroup, str, float]:
    """Baseline group, metric and equivalence margin (the metric's default margin until changed)."""
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    index = c1.selectbox("Baseline group", range(len(groups)), format_func=lambda i: groups[i].label, key="rc_baseline")
    metric = c2.selectbox("Metric", metric_choices(events), format_func=lambda m: metric_spec(m).label, key="rc_metric")
    spec = metric_spec(metric or MAIN_METRICS[0])
    margin = c3.number_input(
        f"Margin ({spec.unit})" if spec.unit else "Margin",
        min_value=0.0,
        value=float(spec.margin),
        step=10.0**-spec.digits,
        format=f"%.{spec.digits}f",
        key=f"rc_margin_{spec.name}",
        help="a gap smaller than this does not matter: an interval inside ±margin reads 'no difference'",
    )
    return groups[index or 0], spec.name, float(margin)


def verdict_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """compare_groups rows as the table shows them: difference, interval, pairs, the verdict's kind."""
    out = []
    for row in rows:
        spec = metric_spec(row["metric"])
        fmt = f"{{:+.{spec.digits}f}}"
        has_interval = row["low"] is not None and row["high"] is not None
        out.append(
            {
                "arm": row["arm"],
                "difference": None if row["mean_diff"] is None else round(row["mean_diff"], spec.digits + 2),
                "95% interval": f"{fmt.format(row['low'])} to {fmt.format(row['high'])}" if has_interval else "-",
                "pairs": row["n_pairs"],
                "verdict": row["verdict"],  # its sentence is written out above the table
                "left out": row["left_out"],
            }
        )
    return out


def verdict_section(groups: list[RunGroup], events: Mapping[str, Sequence]) -> str:
    """The verdict table of every other group against the baseline; returns the metric chosen."""
    st.subheader("Verdict")
    baseline, metric, margin = verdict_controls(groups, events)
    arms = [g for g in groups if g is not baseline]
    try:
        rows = compare_groups(baseline, arms, metric, margin=margin)
    except GlyphError as e:
        st.error(str(e))
        return metric
    verdicts = st.container(key="rc_verdicts")
    verdicts.markdown("\n".join(f"- {VERDICT_ICONS.get(r['verdict'], '')} {shared.plain(r['sentence'])}" for r in rows))
    verdicts.dataframe(verdict_rows(rows), hide_index=True)
    spec = metric_spec(metric)
    st.caption(
        f"{spec.label} of each group minus the baseline's, in {spec.unit or 'its units'}; pairs: seeds "
        f"finished in both groups. {rows[0]['method'] if rows else ''}"
    )
    drawn = [
        {"arm": r["arm"], "difference": r["mean_diff"], "low": r["low"], "high": r["high"]}
        for r in rows
        if r["low"] is not None and r["high"] is not None
    ]
    if drawn:
        label = f"{spec.label} ({spec.unit})" if spec.unit else spec.label
        st.container(key="rc_differences").altair_chart(difference_chart(drawn, margin, metric=label), width="stretch")
    return metric


def clone_link(where: Any, config: Mapping[str, Any], seeds: int, key: str) -> None:
    """A "Clone and change" link: the Train form opened on ``config`` with ``seeds`` seeds."""
    try:
        query = config_to_query(config, seeds)
    except GlyphError as e:
        where.caption(f"Cannot clone: {shared.plain(str(e))}")
        return
    where.container(key=key).page_link(
        TRAIN_PAGE,
        label="Clone and change",
        icon=":material/content_copy:",
        query_params=query,
        help="the Train form with these settings" + (f" and {seeds} seeds" if seeds > 1 else ""),
    )


def group_seed_count(group: RunGroup) -> int:
    """How many seeds a clone of the group launches: one per distinct seed of its members."""
    return max(1, len({s for s in group.seeds.values() if s is not None}))


def groups_section(groups: list[RunGroup], metric: str) -> None:
    """One row per group (mean, sd, n); each group's members and its clone link one click away."""
    st.subheader("Groups")
    st.container(key="rc_groups").dataframe([g.row(metric) for g in groups], hide_index=True)
    st.caption(
        f"Runs equal in every setting but the seed form a group: mean and sd of {metric_spec(metric).label} "
        "over its finished seeds (n); failed, diverged or running members are left out, as the row says."
    )
    for i, group in enumerate(groups):
        with st.expander(f"{shared.plain(group.label)} · {len(group.members)} run(s)"):
            st.container(key=f"rc_group_{i}").dataframe([compare.run_row(m) for m in group.members], hide_index=True)
            first = group.members[0]
            clone_link(st, shared.run_config(first), group_seed_count(group), key=f"rc_clone_{i}")


def band_frame(groups: list[RunGroup], events: Mapping[str, Sequence], metric: str, x: str) -> pd.DataFrame:
    """Each group's mean and band of train and val ``metric`` ("loss" | "acc") per ``x``."""
    rows = [
        {**row, "group": group.label, "split": split, "metric": metric}
        for group in groups
        for split in (viz.TRAIN, viz.VAL)
        for row in group_curves(group, events, key=f"{split}_{metric}", x=x)
    ]
    return pd.DataFrame(rows, columns=[*viz.BAND_COLUMNS, "sd"])


BAND_X = ("epoch", "step")  # the x axes the epoch records carry


def group_curves_section(groups: list[RunGroup], events: Mapping[str, Sequence]) -> None:
    """Loss and accuracy of each group: mean line over a band of mean ± sd of its finished seeds."""
    c1, c2 = st.columns([2, 1])
    splits = c1.multiselect("Curves", [viz.TRAIN, viz.VAL], default=[viz.TRAIN, viz.VAL], key="rc_band_splits")
    x = c2.selectbox("x axis", BAND_X, format_func=lambda k: viz.X_AXES[k], key="rc_band_x") or "epoch"
    for metric in ("loss", "acc"):
        chart = viz.group_band_chart(band_frame(groups, events, metric, x), metric, splits=splits, x=x)
        st.container(key=f"rc_bands_{metric}").altair_chart(chart, width="stretch")
    st.caption(
        f"{len(groups)} groups: the mean over each group's finished seeds, the band ± one sd between them; "
        "dashed = train, solid = val (the runs one by one: Curves of runs)."
    )


def cost_section(groups: list[RunGroup]) -> None:
    """Mean best valid accuracy with its interval against a cost, one point per group."""
    st.subheader("Accuracy against cost")
    x = st.radio("Cost", list(COST_AXES), format_func=lambda k: COST_AXES[k], horizontal=True, key="rc_cost_x")
    rows = cost_points(groups, "best_val_acc")
    drawn = len(cost_frame(rows, x))
    if not drawn:
        st.caption(f"No group has a known {COST_AXES[x]} and a finished seed yet.")
        return
    st.container(key="rc_cost").altair_chart(cost_chart(rows, x, metric="best val acc (%)"), width="stretch")
    missing = len(rows) - drawn
    st.caption(
        "Each point: a group's mean best valid accuracy, the bar its 95% interval over seeds (none for one "
        "seed)" + (f"; {missing} group(s) without a known cost are not drawn." if missing else ".")
    )
