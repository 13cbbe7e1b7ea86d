"""Runs & Compare: every run in a sortable, filterable table (links to a run's Evaluate / Draw /
Activations views, its train.log, delete after a confirmation, download its model as its checkpoint or
as ONNX / .pt2 / safetensors); pick runs for a verdict between their seed groups (paired by seed,
against a baseline group), one row per group, group curves as mean and band, accuracy against cost,
overlaid curves, a parallel-coordinates chart of
settings vs results, their config differences, a one-factor ablation table, report cards that copy as
Markdown rows, and an embedding map of one run's penultimate features.

The sections live in runs_table (the table), runs_files (delete, download, log), runs_groups (verdict,
groups, clone, group curves, cost), runs_compare (curves, settings, ablations, cards) and runs_embedding
(the map); this file composes them.
"""

from __future__ import annotations

import streamlit as st

from app_pages import shared
from app_pages.runs_compare import ablations_section, cards_section, curves_section, settings_section
from app_pages.runs_embedding import embedding_flow
from app_pages.runs_files import files_sections
from app_pages.runs_groups import cost_section, groups_section, verdict_section
from app_pages.runs_table import filtered_runs, run_links, runs_table
from glyphcore import runs
from glyphcore.runs.groups import group_runs


def picked_runs(infos: list[runs.RunInfo]) -> list[runs.RunInfo]:
    """The runs picked to compare (the table's ticks land in the same widget; a link's ``run``
    query parameters pick theirs)."""
    by_id = {r.run_id: r for r in infos}
    linked = [r for r in st.query_params.get_all("run") if r in by_id]  # /runs?run=A&run=B picks A and B
    if linked and st.session_state.get("rc_linked") != linked:  # a link is followed once: the user may un-pick
        st.session_state["rc_linked"], st.session_state["rc_pick"] = linked, linked
    st.session_state["rc_pick"] = [r for r in st.session_state.get("rc_pick", []) if r in by_id]
    picked = st.multiselect("Runs to compare", list(by_id), key="rc_pick", placeholder="pick two or more runs")
    return [by_id[r] for r in picked]


def compare_sections(chosen: list[runs.RunInfo]) -> None:
    """Everything below the picker, for the picked runs: the verdict first when they form two or
    more seed groups, then the groups, curves, cost and the per-run views."""
    configs = {r.run_id: shared.run_config(r) for r in chosen}
    events = {r.run_id: shared.run_metrics(r) for r in chosen}
    groups = group_runs(chosen)
    metric = verdict_section(groups, events) if len(groups) > 1 else "best_val_acc"
    if len(groups) == 1 and len(chosen) > 1:
        st.caption("These runs are seeds of one group: pick runs of another group for a verdict.")
    groups_section(groups, metric)
    curves_section(configs, events, groups)
    cost_section(groups)
    settings_section(chosen, configs)
    ablations_section(chosen, configs)
    cards_section(chosen, events)
    st.subheader("Embedding map")
    embedding_flow(chosen)


def main() -> None:
    st.title("Runs & Compare")
    infos = runs.list_runs()
    if not infos:
        st.info("No runs yet.")
        st.page_link("app_pages/train.py", label="Launch one on the Train page", icon=":material/model_training:")
        return
    shown = filtered_runs(infos)
    runs_table(infos, shown)
    run_links(shown)
    files_sections(infos)
    st.header("Compare")
    chosen = picked_runs(infos)
    if not chosen:
        st.info("Pick runs here or tick them in the table.")
        return
    compare_sections(chosen)


main()
