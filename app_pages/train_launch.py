"""The Train page's Launch: a run name, all GPUs (where there are several), and one button that starts
the form's run, or its seeds as one sweep over seed.

A double-click must start one run. The launch happens in the button's callback, which runs in
whichever script run takes the click (a fragment's too, where a click in the page body would be
lost), reads the form's values from the widgets' state as they are now (a value typed just before the
click goes with it), and records a launch token, the settings as JSON, in the session: a click whose
token was launched already is ignored, and the button stays disabled until a setting changes (for
replicates of a setting, use Seeds). The token lives in a mutable record made when the page draws the
button, and the check and the launch hold one lock: a second click's callback can start in another
script thread while the first is still launching (seen on Streamlit 1.67 under load), and it must
wait for, then see, the first launch. Not a page.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import streamlit as st

from app_pages import shared
from app_pages.train_form import FormValues, form_from_state
from glyphcore import runs
from glyphcore.errors import GlyphError
from glyphcore.runs.sweep import launch_sweep, sweep_grid
from glyphcore.train.config import make_config

__all__ = ["launch_section", "launch_once", "last_launch"]

_LAUNCH_LOCK = threading.Lock()  # one launch at a time in this server: the check and the launch are one step


def launch_token(form: FormValues, name: str, gpus: str | None) -> str:
    """What one click launches: equal tokens are the same launch."""
    return json.dumps([form.preset, form.values, form.seeds, name, gpus], sort_keys=True, default=str)


def _launch() -> None:
    """Launch's callback: start the form's run (or its seeds' sweep) unless its token was launched already."""
    state = st.session_state
    form = form_from_state(state.to_dict())
    name, gpus = state.get("tr_name") or "", "all" if state.get("tr_all_gpus") and form.seeds == 1 else None
    launch_once("tr_launched", launch_token(form, name, gpus), lambda: _start(form, name, gpus))


def last_launch(key: str) -> dict:
    """This session's record of its last launch under ``key`` (its token and message): one mutable
    dict for the session's life, written in place, so every later click sees it at once."""
    return st.session_state.setdefault(key, {})


def launch_once(key: str, token: str, start: Callable[[], str | None]) -> None:
    """``start()`` unless this session's last launch under ``key`` had this token (the second click of
    a double-click); a launch that starts something records its token and message (one that returns
    None or raises records nothing)."""
    record = last_launch(key)
    with _LAUNCH_LOCK:
        if record.get("token") == token:
            return
        text = start()
        if text is not None:
            record.update(token=token, text=text)


def _start(form: FormValues, name: str, gpus: str | None) -> str | None:
    """Start the form's run, or its seeds as one sweep; the message to show, or None after an error
    (kept for the page to show)."""
    state = st.session_state
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
        state["tr_launch_error"] = str(e)
        return None
    return text


def _all_gpus(form: FormValues) -> str | None:
    """The Launch's gpus: "all" when the user asks for data parallel over every GPU (offered with
    several GPUs and one seed), else None."""
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
    launched = last_launch("tr_launched")
    st.button(
        "Launch" if form.seeds == 1 else f"Launch {form.seeds} seeds",
        icon=":material/rocket_launch:",
        type="primary",
        disabled=form.error is not None or launched.get("token") == token,
        key="tr_launch",
        on_click=_launch,
    )
    if error := st.session_state.pop("tr_launch_error", None):
        st.error(error)
    if launched.get("token") == token:
        st.success(launched["text"])
        st.caption("Launched with these settings: change one to launch another (for replicates, set Seeds).")
