"""The Train page's live monitor: every sweep and run that is queued or running, plus those that
ended in the last half hour, oldest first (a panel keeps its place while new ones appear below it),
re-read from the run folders once a second by a fragment, so it carries on across page switches,
reloads and an app restart. Not a page.
"""

from __future__ import annotations

import time

import streamlit as st

from app_pages.train_run import STATE_ICON, run_panel
from app_pages.train_sweep import sweep_panel
from glyphcore import runs
from glyphcore.runs.sweep import list_sweeps

__all__ = ["monitor"]

RECENT_S = 30 * 60  # finished runs stay on the monitor this long (s)


def recently_ended(info: runs.RunInfo, now: float) -> bool:
    """A finished run that ended in the last RECENT_S (a crashed run never wrote "ended": its status
    file's last update says when it stopped)."""
    ended = info.ended or info.status.get("updated")
    return info.state not in runs.ACTIVE_STATES and isinstance(ended, int | float) and ended > now - RECENT_S


def runs_panels(infos: list[runs.RunInfo], now: float) -> bool:
    """The panels of the runs outside sweeps: active ones, then the last three finished; False if none."""
    infos = sorted(infos, key=lambda r: (r.started or 0.0, r.run_id))
    active = [r for r in infos if r.state in runs.ACTIVE_STATES]
    finished = [r for r in infos if recently_ended(r, now)][-3:]
    # each panel is a keyed container: the element gets the CSS class st-key-tr_panel_<run id>
    for info in active:
        with st.container(border=True, key=f"tr_panel_{info.run_id}"):
            run_panel(info)
    if finished:
        st.markdown("##### Finished recently")
        for info in finished:
            with st.expander(f"{STATE_ICON.get(info.state, '')} {info.run_id} — {info.state}", expanded=not active):
                with st.container(key=f"tr_panel_{info.run_id}"):
                    run_panel(info)
        st.page_link("app_pages/runs.py", label="All runs: Runs & Compare", icon=":material/compare_arrows:")
    return bool(active or finished)


@st.fragment(run_every=1.0)
def monitor() -> None:
    """Sweeps first (each one panel), then the runs outside sweeps."""
    now = time.time()
    sweeps = [s for s in list_sweeps() if s.active or any(recently_ended(r, now) for r in s.runs)]
    in_sweeps = {run_id for s in sweeps for run_id in s.run_ids}
    for sweep in sorted(sweeps, key=lambda s: s.created):
        with st.container(border=True, key=f"tr_sweep_{sweep.sweep_id}"):
            sweep_panel(sweep)
    others = [r for r in runs.list_runs() if not r.is_starter and r.run_id not in in_sweeps]
    if not runs_panels(others, now) and not sweeps:
        st.info("No run in progress. Launch one above.")
