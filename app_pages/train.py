"""Train: a form for the TrainConfig with the model summary and a time estimate before launch,
Launch (one run, or its seeds as one sweep), a sweep of one setting, and a live monitor of every
running run and sweep.

The page never trains: Launch starts a detached process (glyphcore.runs.launch) and the monitor is
a fragment that re-reads the run folders once a second, so it carries on across page switches,
reloads and an app restart. Each section lives in its own module: train_form (the form and its
link), train_summary and train_estimate (the model before launch), train_launch, train_sweep
(launcher and panel), train_run (one run's panel) and train_monitor.
"""

from __future__ import annotations

import streamlit as st

from app_pages.train_form import config_form
from app_pages.train_launch import launch_section
from app_pages.train_monitor import monitor
from app_pages.train_summary import model_summary_of, show_summary
from app_pages.train_sweep import sweep_form

st.title("Train")
top = st.container(horizontal=True, gap="large")  # side by side when wide, stacked when narrow
with top.container(key="tr_form"):
    form = config_form()
summary, error = (None, form.error) if form.error else model_summary_of(form.values)
form.error = error
with top.container(key="tr_side"):
    show_summary(form.preset, summary, error, form.values)

launch_col, sweep_col = st.columns([4, 3], gap="large")
with launch_col:
    launch_section(form)
with sweep_col, st.expander("Sweep: the same settings once per value of one setting"):
    sweep_form(form.preset, form.values, form.seeds, form.error, st.session_state.get("tr_name", ""))

st.divider()
st.header("Runs in progress")
monitor()
