"""The Train page's sweeps: the launcher (one setting's values, crossed with the form's seeds) and a
sweep's panel, which leads with the verdict table (every arm against a chosen baseline arm, paired
by seed: glyphcore.runs.groups), then its groups (mean, sd, n) and its runs. Not a page."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from app_pages import shared
from app_pages.train_launch import last_launch, launch_once
from app_pages.train_run import run_panel
from glyphcore.errors import GlyphError
from glyphcore.models import ACTIVATION_NAMES, list_models
from glyphcore.runs import ACTIVE_STATES
from glyphcore.runs.groups import RunGroup, compare_groups, group_runs, metric_spec
from glyphcore.runs.sweep import SweepInfo, cancel_sweep, launch_sweep, sweep_grid, sweep_table
from glyphcore.train.config import RUNTIME_KEYS, coerce_value, field_specs, make_config

__all__ = ["sweep_form", "sweep_panel"]

# the settings a sweep may vary: every setting that defines a run (not where it runs, nor its preset)
SWEEPABLE = [s["name"] for s in field_specs() if s["name"] not in (*RUNTIME_KEYS, "preset", "data")]
VERDICT_METRIC = "best_val_acc"  # what the sweep panel's verdicts judge


def _values_of(setting: str) -> list:
    """The values of ``setting`` the user picks: a menu for closed sets, else comma-separated text."""
    spec = next(s for s in field_specs() if s["name"] == setting)
    if setting == "activation":
        return st.multiselect("Activations", ACTIVATION_NAMES, default=["relu", "elu", "silu"], key="tr_sweep_acts")
    if setting == "model":
        return st.multiselect("Models", list_models(), key="tr_sweep_models")
    if spec["choices"]:
        return st.multiselect("Values", list(spec["choices"]), key=f"tr_sweep_{setting}")
    if spec["type"] == "bool":
        return st.multiselect("Values", [True, False], default=[True, False], key=f"tr_sweep_{setting}")
    text = st.text_input(
        "Values, comma-separated",
        key=f"tr_sweep_{setting}",
        placeholder={"lr": "1e-3, 2e-3, 5e-3", "batch_size": "50, 100, 250"}.get(setting, "..."),
    )
    try:
        return [coerce_value(spec, v.strip()) for v in text.split(",") if v.strip()]
    except GlyphError as e:
        st.error(str(e))
        return []


def _parallel() -> int:
    """How many of the sweep's runs train at once (one per GPU by default)."""
    device = shared.device_info()
    gpus = int(device.get("count") or 1) if device.get("kind") == "cuda" else 0
    return int(
        st.number_input(
            "Runs at once",
            1,
            16,
            max(1, gpus),
            key="tr_sweep_parallel",
            help="on a CPU, runs at once share the cores (each gets its share as threads; on 2 cores two at a "
            "time finished 8 quick runs in 4.4 min against 6 min one at a time); with several GPUs each run gets "
            "its own GPU",
        )
    )


def sweep_form(preset: str, values: dict, seeds: int, error: str | None, name: str) -> None:
    """The sweep launcher: a setting, its values, how many runs at once; crossed with the form's seeds."""
    setting = st.selectbox("Setting to vary", SWEEPABLE, index=SWEEPABLE.index("activation"), key="tr_sweep_setting")
    grid = {setting: _values_of(setting)}
    parallel = _parallel()
    replicates = seeds if seeds > 1 else None  # the grid crossed with the form's seeds
    n = len(grid[setting]) * seeds
    try:
        config = make_config(preset, **values)
        if n:
            sweep_grid(config, grid, replicates)  # refuses seeds with a sweep over seed itself
    except GlyphError as e:
        if error is None:
            st.error(str(e))
        n = 0
    if seeds > 1 and n:
        st.caption(f"{n // seeds} values x {seeds} seeds (seed {values['seed']} to {values['seed'] + seeds - 1})")

    def start() -> str:
        sweep_id = launch_sweep(config, grid, parallel=parallel, name=name or None, seeds=replicates)
        return f"Launched sweep `{sweep_id}` of {n} runs; watch it below."

    token = json.dumps([preset, values, grid, parallel, name, seeds], sort_keys=True, default=str)
    launched = last_launch("tr_sweep_launched")
    done = launched.get("token") == token  # launched with these settings: change one to launch another
    if st.button(f"Launch {n} runs", disabled=bool(error) or not n or done, key="tr_sweep_launch"):
        try:
            launch_once("tr_sweep_launched", token, start)  # a double-click launches one sweep
        except GlyphError as e:
            st.error(str(e))
        else:
            st.rerun()  # the page again: the button disabled, the message below it
    if done:
        st.success(launched["text"])


def _in_grid_order(sweep: SweepInfo) -> list[RunGroup]:
    """The sweep's groups of replicates, in the order of their first run in the grid."""
    order = {info.run_id: i for i, info in enumerate(sweep.runs)}
    groups = group_runs(sweep.runs)
    return sorted(groups, key=lambda g: min(order.get(m.run_id, len(order)) for m in g.members))


def _interval_text(row: dict[str, Any], digits: int) -> str:
    low, high = row.get("low"), row.get("high")
    return f"{low:+.{digits}f} to {high:+.{digits}f}" if low is not None and high is not None else "-"


def verdict_section(sweep: SweepInfo, groups: list[RunGroup]) -> None:
    """Every arm against the chosen baseline arm: the paired difference, its interval and the verdict."""
    spec = metric_spec(VERDICT_METRIC)
    sid = sweep.sweep_id
    labels = [g.label for g in groups]
    row = st.container(horizontal=True, key=f"row_tr_verdict_{sid}")
    base = row.selectbox("Baseline arm", labels, index=0, key=f"tr_baseline_{sid}")
    margin = row.number_input(
        f"Margin ({spec.unit})",
        0.0,
        100.0,
        value=float(spec.margin),
        step=0.1,
        key=f"tr_margin_{sid}",
        help=f"a gap in {spec.label} smaller than this counts as no difference (default {spec.margin:g})",
    )
    baseline = groups[labels.index(base)] if base in labels else groups[0]
    rows = compare_groups(baseline, [g for g in groups if g is not baseline], VERDICT_METRIC, margin=margin)
    table = [
        {
            "arm": r["arm"],
            "pairs": r["n_pairs"],
            f"difference ({spec.unit})": None if r["mean_diff"] is None else round(r["mean_diff"], spec.digits),
            "interval": _interval_text(r, spec.digits),
            "verdict": r["verdict"],
            "in words": r["sentence"] + (f" ({r['left_out']})" if r["left_out"] else ""),
        }
        for r in rows
    ]
    with st.container(key=f"tr_verdicts_{sid}"):  # tests and CSS find the table by this key
        st.markdown(f"**Verdicts: {spec.label}, each arm against {shared.plain(baseline.label)}**")
        st.dataframe(table, hide_index=True, width="stretch")
        if rows:
            st.caption(rows[0]["method"])


def groups_section(sweep: SweepInfo, groups: list[RunGroup]) -> None:
    """One row per group of replicates: mean, sd and n of the best validation accuracy."""
    rows = [g.row(VERDICT_METRIC) for g in groups]
    with st.container(key=f"tr_groups_{sweep.sweep_id}"):
        st.dataframe(rows, hide_index=True, width="stretch")


def _sweep_head(sweep: SweepInfo) -> None:
    """The sweep's id, progress, what it varies, and one Cancel for all of it."""
    done = sum(r.state not in ACTIVE_STATES for r in sweep.runs)
    head, buttons = st.columns([5, 2])
    varied = ", ".join(f"{k} = {' / '.join(map(str, v))}" for k, v in sweep.grid.items())
    head.markdown(f"#### :material/grid_view: Sweep `{sweep.sweep_id}` — {done} of {len(sweep.runs)} finished")
    head.caption(f"{varied} · {sweep.parallel} at a time")
    with buttons:
        if sweep.active and st.button("Cancel sweep", icon=":material/stop:", key=f"tr_cancel_sweep_{sweep.sweep_id}"):
            try:
                cancel_sweep(sweep.sweep_id)
                st.toast(f"Cancelling sweep {sweep.sweep_id}")
            except GlyphError as e:
                st.error(str(e))


def sweep_panel(sweep: SweepInfo) -> None:
    """One sweep as one thing: the verdict table (with two or more arms), its groups, its results
    table in grid order (filled in as runs finish), and the live panels of the runs training now."""
    _sweep_head(sweep)
    groups = _in_grid_order(sweep)
    if len(groups) > 1:
        verdict_section(sweep, groups)
    groups_section(sweep, groups)
    with st.container(key=f"tr_sweep_table_{sweep.sweep_id}"):
        st.dataframe(
            sweep_table(sweep),
            hide_index=True,
            width="stretch",
            column_config={"best val acc (%)": st.column_config.NumberColumn(format="%.2f")},
        )
    for info in sweep.runs:
        if info.state == "running":
            with st.container(border=True, key=f"tr_panel_{info.run_id}"):
                run_panel(info)
