"""The Train page's Launch: a run name, all GPUs (where there are several), and one button that starts
the form's run, or its seeds as one sweep over seed.

A double-click must start one run. A click launches the form's current values (a value typed just
before the click arrives with it) and records a launch token, the settings as JSON, in the session
before the script can be cut short by the next click's rerun: a click whose token was launched
already is ignored, and the button stays disabled until a setting changes (for replicates of a
setting, use Seeds). Not a page.
"""

from __future__ import annotations

import json

import streamlit as st

from app_pages import shared
from app_pages.train_form import FormValues
from glyphcore import runs
from glyphcore.errors import GlyphError
from glyphcore.runs.sweep import launch_sweep, sweep_grid
from glyphcore.train.config import make_config

__all__ = ["launch_section"]


def launch_token(form: FormValues, name: str, gpus: str | None) -> str:
    """What one click launches: equal tokens are the same launch."""
    return json.dumps([form.preset, form.values, form.seeds, name, gpus], sort_keys=True, default=str)


def _launch(form: FormValues, name: str, gpus: str | None, token: str) -> None:
    """Start the run (or the seeds' sweep) unless this token was launched already."""
    if st.session_state.get("tr_launched", {}).get("token") == token:
        return  # the second click of a double-click
    # claimed before the launch: nothing between here and the next line is an st call, where a rerun
    # could cut the script short
    st.session_state["tr_launched"] = {"token": token, "text": "Launching ..."}
    try:
        config = make_config(form.preset, **form.values)
        if form.seeds > 1:
            sweep_id = launch_sweep(config, {}, name=name or None, seeds=form.seeds)
            seeds = sweep_grid(config, {}, form.seeds)["seed"]
            text = f"Launched sweep `{sweep_id}` of {form.seeds} seeds ({seeds[0]} to {seeds[-1]}); watch it below."
        else:
            run_id = runs.launch(config, name=name or None, gpus=gpus)
            text = f"Launched `{run_id}`: it trains in its own process; watch it below."
    except GlyphError as e:
        del st.session_state["tr_launched"]
        st.error(str(e))
        return
    st.session_state["tr_launched"] = {"token": token, "text": text}


def _all_gpus(form: FormValues) -> str | None:
    """ "all" when the user asks for data parallel over every GPU (offered with several GPUs, one seed)."""
    device = shared.device_info()
    if device["kind"] != "cuda" or device["count"] < 2 or form.values["device"] not in ("auto", "cuda"):
        return None
    if form.seeds > 1:
        st.caption(f"{form.seeds} seeds: one run per GPU at a time")
        return None
    label = f"Use all {device['count']} GPUs (data parallel: one process each, under torchrun)"
    return "all" if st.checkbox(label, key="tr_all_gpus") else None


def launch_section(form: FormValues) -> None:
    """Run name, all GPUs, Launch, and what the last launch started."""
    name = st.text_input("Run name (optional)", key="tr_name", max_chars=40)
    gpus = _all_gpus(form)
    token = launch_token(form, name, gpus)
    if st.button(
        "Launch" if form.seeds == 1 else f"Launch {form.seeds} seeds",
        icon=":material/rocket_launch:",
        type="primary",
        disabled=form.error is not None or st.session_state.get("tr_launched", {}).get("token") == token,
        key="tr_launch",
    ):
        _launch(form, name, gpus, token)
        if st.session_state.get("tr_launched", {}).get("token") == token:
            st.rerun()  # drawn again at once: the button disabled, the message shown
    launched = st.session_state.get("tr_launched", {})
    if launched.get("token") == token:
        st.success(launched["text"])
        st.caption("Launched with these settings: change one to launch another (for replicates, set Seeds).")
