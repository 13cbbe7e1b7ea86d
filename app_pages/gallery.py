"""Home's "Reproduce a report" gallery: one card per recipe (``glyphcore.train.recipes``).

A card shows the report's figure and hardware, this machine's time (measured only when asked, in a
background job: the page never waits for it), what must be downloaded first, and Launch; once a run
of the recipe has finished, its accuracy stands beside the report's. Not a page: Home calls
``show_gallery``.
"""

from __future__ import annotations

import math

import streamlit as st

from app_pages.shared import plain
from glyphcore.errors import GlyphError
from glyphcore.jobs import BackgroundJob, get_job, start_job
from glyphcore.runs import RunInfo, list_runs
from glyphcore.runs.recipes import launch_recipe, recipe_runs
from glyphcore.timefmt import clock_text
from glyphcore.train.recipes import (
    DATA_SHAPES,
    Recipe,
    cached_estimate,
    list_recipes,
    measure_recipe,
    missing_downloads,
    sweep_size,
)

__all__ = ["show_gallery"]

CARDS_PER_ROW = 3


def _time_job(recipe: Recipe) -> str:
    return f"time recipe {recipe.name}"  # one timing job per recipe, shared by every session


def _accuracy(run: RunInfo) -> float | None:
    """The run's best validation accuracy in percent, or None when status.json holds no sane one."""
    acc = run.best_val_acc
    if isinstance(acc, bool) or not isinstance(acc, int | float) or not math.isfinite(acc) or not 0 <= acc <= 1:
        return None
    return 100.0 * acc


def show_figures(recipe: Recipe, runs: list[RunInfo]) -> None:
    """The report's figure, and beside it ours from the newest finished run of the recipe."""
    figures = st.container(horizontal=True, gap="large")  # wraps rather than cutting a figure to "no ru..."
    figure = f"{recipe.published_acc:g}%" if recipe.published_acc is not None else "not recorded"
    figures.metric("Report", figure, help=f"{recipe.published}; {recipe.hardware}", width="content")
    done = [r for r in runs if r.state == "done"]
    if not done:
        figures.metric("Ours", "no run yet", width="content")
        return
    acc = _accuracy(done[0])
    delta = f"{acc - recipe.published_acc:+.2f} points" if acc is not None and recipe.published_acc else None
    value = f"{acc:.2f}%" if acc is not None else "unknown"
    figures.metric("Ours", value, delta=delta, help="best validation accuracy", width="content")
    st.caption(plain(f"run {done[0].run_id}"))


@st.fragment(run_every=1.0)
def _measuring(job: BackgroundJob) -> None:
    """Polls the timing job once a second; reruns the page when it ends."""
    if not job.running:
        st.rerun()
    st.caption("Time here: measuring a few training steps ...")


def show_time(recipe: Recipe) -> None:
    """This machine's time for the recipe, if measured in the last hour; else a button that measures it."""
    if recipe.data not in DATA_SHAPES:
        st.caption("Time here: depends on the size of your folder")
        return
    try:
        estimate = cached_estimate(recipe.name)
    except GlyphError as e:
        st.caption(plain(f"Time here: unknown ({e})"))
        return
    if estimate is not None:
        runs = sweep_size(recipe)
        each = f" for its {runs} runs, one at a time" if runs > 1 else ""
        st.caption(
            f"Time here: about {clock_text(estimate.seconds)}{each} ({estimate.images_per_s:,.0f} images/s measured)"
        )
        return
    job = get_job(_time_job(recipe))
    if job is not None and job.running:
        _measuring(job)
        return
    failed = f" (the last try failed: {job.error})" if job is not None and job.error else ""
    st.caption(plain(f"Time here: not measured yet{failed}"))
    if st.button("Measure the time here", key=f"measure_{recipe.name}"):
        start_job(_time_job(recipe), lambda progress: measure_recipe(recipe.name))
        st.rerun()


def show_downloads(recipe: Recipe) -> bool:
    """What the recipe needs fetched first; True when everything is here."""
    try:
        missing = missing_downloads(recipe)
    except GlyphError as e:  # a damaged weights file in the cache
        st.error(plain(str(e)))
        return False
    if recipe.data.startswith("folder:"):  # the recipe's own texts (code, not files): markdown is fine
        st.caption(
            f"Needs your photos in `{recipe.data.partition(':')[2]}` (see `glyphcore recipes show {recipe.name}`)"
        )
    if not missing:
        st.caption("Nothing to download" if not recipe.data.startswith("folder:") else "No other download")
        return True
    total = sum(d.size_mb for d in missing)
    items = ", ".join(f"{d.name} {d.kind} ({d.size_mb:.1f} MB)" for d in missing)
    st.caption(f"To download first ({total:.1f} MB): {items}. Run `glyphcore recipes download {recipe.name}`")
    return False


def launch_button(recipe: Recipe, ready: bool) -> None:
    """Launch: the recipe's run (or, for an ablation report, its sweep) in the background."""
    label = "Launch the sweep" if recipe.sweep else "Launch"
    if st.button(label, key=f"launch_{recipe.name}", disabled=not ready, type="primary"):
        try:
            launched = launch_recipe(recipe.name)
        except GlyphError as e:
            st.error(plain(str(e)))
            return
        st.success(plain(f"Launched {launched}: follow it on the Runs & Compare page"))


def recipe_card(recipe: Recipe, runs: list[RunInfo]) -> None:
    st.markdown(f"**{plain(recipe.title)}**")
    st.caption(plain(recipe.report + (" · sweep over " + ", ".join(recipe.sweep) if recipe.sweep else "")))
    show_figures(recipe, recipe_runs(recipe.name, runs))
    show_time(recipe)
    ready = show_downloads(recipe)
    launch_button(recipe, ready)


def show_gallery() -> None:
    """Every recipe as a card, in rows of ``CARDS_PER_ROW``."""
    st.subheader("Reproduce a report")
    st.caption(
        "Each course report's experiment, set up as the report ran it. `glyphcore recipes show NAME` lists "
        "every setting; `glyphcore train --recipe NAME` runs one in the terminal."
    )
    recipes = list_recipes()
    runs = list_runs()
    for row in range(0, len(recipes), CARDS_PER_ROW):
        for col, recipe in zip(st.columns(CARDS_PER_ROW), recipes[row : row + CARDS_PER_ROW]):
            with col.container(border=True, key=f"recipe_{recipe.name}"):
                recipe_card(recipe, runs)
