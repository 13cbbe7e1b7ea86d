"""Runs & Compare, the runs table: filters, one sortable row per run or per group of seed
replicates (mean, sd, n; a tick on it picks all its runs), ticks that pick runs to compare, and the
ticked runs' links to their Evaluate / Draw / Activations views."""

from __future__ import annotations

import streamlit as st

from app_pages import shared
from app_pages.runs_groups import clone_link
from glyphcore import runs
from glyphcore.runs import compare
from glyphcore.runs.listing import listing_rows

DRAWINGS_COL = "drawings acc (%)"
LINKED_RUNS_MAX = 6  # runs whose view links are listed under the table
VIEWS = (
    ("app_pages/evaluate.py", "Evaluate", ":material/grid_on:"),
    ("app_pages/draw.py", "Draw", ":material/draw:"),
    ("app_pages/activations.py", "Activations", ":material/show_chart:"),
)


def drawings_column(infos: list[runs.RunInfo | None], rows: list[dict]) -> None:
    """Add each run's accuracy on the personal drawings set, when there are drawings (a group's row,
    ``None`` in ``infos``, has none: its runs' own rows do)."""
    from glyphcore.data.drawings import drawings_stamp, list_drawings

    if not list_drawings():
        return
    for info, row in zip(infos, rows):
        if info is None:
            row[DRAWINGS_COL] = None
            continue
        ckpt = info.path / runs.BEST_CKPT
        ok = ckpt.is_file() and info.state not in runs.ACTIVE_STATES
        score = shared.drawings_score(str(info.path), runs.file_stamp(ckpt), drawings_stamp()) if ok else None
        row[DRAWINGS_COL] = round(100 * score["accuracy"], 1) if score and score["accuracy"] is not None else None


def on_table_select() -> None:
    """A selection in the table becomes the runs to compare (all runs of a ticked group)."""
    selected = st.session_state["rc_table"].selection.rows
    ids = st.session_state.get("rc_table_ids", [])
    st.session_state["rc_pick"] = [run_id for i in selected if i < len(ids) for run_id in ids[i]]


def filtered_runs(infos: list[runs.RunInfo]) -> list[runs.RunInfo]:
    """The filter row (text, states, models) and the runs it lets through."""
    filters = st.container(horizontal=True, key="row_rc_filters")  # wraps on a narrow screen
    c1, c2, c3 = filters.container(), filters.container(), filters.container()
    query = c1.text_input("Filter", key="rc_filter", placeholder="run id, model or activation contains ...")
    shown_states = c2.multiselect("State", sorted({r.state for r in infos}), key="rc_states", placeholder="all states")
    models = sorted({r.model for r in infos if r.model})
    shown_models = c3.multiselect("Model", models, key="rc_models", placeholder="all models")
    q = query.strip().lower()
    return [
        r
        for r in infos
        if (not q or q in " ".join(str(x) for x in (r.run_id, r.model, r.activation, r.name or "")).lower())
        and (not shown_states or r.state in shown_states)
        and (not shown_models or r.model in shown_models)
    ]


def table_rows(shown: list[runs.RunInfo]) -> tuple[list[dict], list[list[str]], list[runs.RunInfo | None]]:
    """(rows, the run ids of each row, the run of each single-run row): one row per seed group when
    the toggle says so and some group has several runs, else one per run."""
    listed = listing_rows(shown)
    by_id = {r.run_id: r for r in shown}
    if any(len(item.run_ids) > 1 for item in listed) and st.toggle(
        "One row per seed group", value=True, key="rc_group_rows", help="runs equal but for the seed as one row"
    ):
        singles = [by_id[item.run_ids[0]] if len(item.run_ids) == 1 else None for item in listed]
        return [item.row for item in listed], [item.run_ids for item in listed], singles
    return [compare.run_row(r) for r in shown], [[r.run_id] for r in shown], list(shown)


def runs_table(infos: list[runs.RunInfo], shown: list[runs.RunInfo]) -> None:
    """One row per shown run (or seed group); ticking rows picks them for the comparison below."""
    rows, ids, singles = table_rows(shown)
    drawings_column(singles, rows)
    st.session_state["rc_table_ids"] = ids
    st.container(key="rc_runs").dataframe(
        rows,
        hide_index=True,
        key="rc_table",
        on_select=on_table_select,
        selection_mode="multi-row",
        column_config={
            "params": st.column_config.NumberColumn(format="localized"),
            "best val acc (%)": st.column_config.NumberColumn(format="%.2f"),
            "wall s": None,  # sorting helper; "wall time" is the readable one
        },
    )
    grouped = len(rows) < len(shown)
    st.caption(
        f"{len(shown)} of {len(infos)} runs"
        + (f" in {len(rows)} rows: a seed group's row shows the mean over its seeds" if grouped else "")
        + " · click column headers to sort · tick rows to compare them"
    )


def run_links(infos: list[runs.RunInfo]) -> None:
    """For each run ticked in the table (else the newest): links to its Evaluate / Draw / Activations
    views, and a "Clone and change" link to the Train form with its settings."""
    by_id = {r.run_id: r for r in infos if (r.path / runs.BEST_CKPT).is_file()}
    picked = [r for r in st.session_state.get("rc_pick", []) if r in by_id]
    shown = picked[:LINKED_RUNS_MAX] or list(by_id)[:1]
    for run_id in shown:
        row = st.container(horizontal=True, vertical_alignment="center", key=f"rc_links_{run_id}")
        row.text(run_id)  # a folder name: shown as text
        for page, label, icon in VIEWS:
            row.page_link(page, label=label, icon=icon, query_params={"run": run_id})
        clone_link(row, shared.run_config(by_id[run_id]), 1, key=f"rc_clone_run_{run_id}")
    if not picked:
        ticked = bool(st.session_state.get("rc_pick"))
        st.caption(
            "None of the ticked runs has a best.pt yet: the newest run's views."
            if ticked
            else "The newest run's views; tick runs in the table for theirs."
        )
