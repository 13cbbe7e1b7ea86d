"""Home's "Reproduce a report" gallery: one card per recipe (``glyphcore.train.recipes``).

A card shows the report's figure and hardware, this machine's time (measured only when asked, in a
background job: the page never waits for it; also for 3 seeds), what must be downloaded first, Launch
and "Launch with 3 seeds" (each guarded by ``train_launch.launch_once``: a double-click launches once);
once a run of the recipe has finished, ours stands beside the report's: the group of its newest
finished run, mean ± sd over its seeds with n (``glyphcore.runs.recipes.recipe_result``), and a link
to compare them on Runs & Compare. Not a page: Home calls ``show_gallery``.
"""

from __future__ import annotations

import json

import streamlit as st

from app_pages.shared import plain
from app_pages.train_launch import last_launch, launch_once
from glyphcore.errors import GlyphError
from glyphcore.jobs import BackgroundJob, get_job, start_job
from glyphcore.runs import RunInfo, list_runs
from glyphcore.runs.recipes import RecipeResult, launch_recipe, recipe_result
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

SEEDS = 3  # "Launch with 3 seeds": the fewest replicates that give a spread (sd) and a paired interval
RUNS_PAGE = "app_pages/runs.py"


def _time_job(recipe: Recipe) -> str:
    return f"time recipe {recipe.name}"  # one timing job per recipe, shared by every session


def _split_help(recipe: Recipe, split: str | None) -> str:
    """Which split our figure and the report's are on, and a warning when they differ."""
    if split:
        ours = f"best accuracy on the {split} split (the split the runs validated on)"
    else:
        ours = "best validation accuracy (the split is not recorded in every run)"
    theirs = f"its {recipe.published_split} split" if recipe.published_split else "a split not recorded here"
    differ = bool(split and recipe.published_split and split != recipe.published_split)
    return plain(f"{ours}; the report's figure is on {theirs}" + ("; not the same measure" if differ else ""))


def _compare_link(result: RecipeResult) -> None:
    """The group's runs, one click away on Runs & Compare, picked there."""
    members = [m.run_id for m in result.group.members]
    st.page_link(
        RUNS_PAGE,
        label="Compare the seeds on Runs & Compare" if result.n > 1 else "See the run on Runs & Compare",
        icon=":material/compare_arrows:",
        query_params={"run": members},
        help=plain(f"opens with these runs picked: {', '.join(members)}"),  # folder names: text, not markdown
    )


def show_figures(recipe: Recipe, runs: list[RunInfo]) -> None:
    """The report's figure, and beside it ours: the group of the newest finished run of the recipe,
    as mean ± sd over its seeds (n), or one seed's figure."""
    figures = st.container(horizontal=True, gap="large")  # wraps rather than cutting a figure to "no ru..."
    figure = f"{recipe.published_acc:g}%" if recipe.published_acc is not None else "not recorded"
    split = f" ({recipe.published_split} split)" if recipe.published_split else ""
    figures.metric("Report", figure, help=f"{recipe.published}{split}; {recipe.hardware}", width="content")
    result = recipe_result(recipe.name, runs)
    if result is None:
        figures.metric("Ours", "no run yet", width="content")
        return
    mean = result.mean
    delta = f"{mean - recipe.published_acc:+.2f} points" if mean is not None and recipe.published_acc else None
    value = "unknown" if mean is None else f"{mean:.2f}%" + (f" ± {result.sd:.2f}" if result.sd is not None else "")
    figures.metric("Ours", value, delta=delta, help=_split_help(recipe, result.split), width="content")
    arm = f"{result.group.label}: " if result.groups > 1 else ""  # which arm of a sweep, or which variant
    if result.n > 1:
        st.caption(plain(f"{arm}mean {mean:.2f}% ± {result.sd:.2f} (n={result.n} seeds; ± is the sd)"))
    else:
        seeds = "1 seed" if result.n == 1 else "accuracy unknown"
        st.caption(plain(f"{arm}{seeds}: run {result.run.run_id}"))
    _compare_link(result)


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
        replicated = cached_estimate(recipe.name, seeds=SEEDS)  # the same speed: the seeds' runs add up
        seeds = f"; with {SEEDS} seeds about {clock_text(replicated.seconds)}" if replicated is not None else ""
        st.caption(
            f"Time here: about {clock_text(estimate.seconds)}{each}{seeds} "
            f"({estimate.images_per_s:,.0f} images/s measured)"
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


def _start(name: str, seeds: int) -> str | None:
    """Launch recipe ``name`` with ``seeds`` replicates; the message to show, or None after an error
    (kept for the card to show)."""
    try:
        launched = launch_recipe(name, seeds=seeds)
    except GlyphError as e:
        st.session_state[f"gl_error_{name}"] = str(e)
        return None
    return f"Launched {launched}: follow it on the Runs & Compare page"


def _token(name: str, seeds: int) -> str:
    """What one click of a card's button launches: equal tokens are the same launch."""
    return json.dumps([name, seeds])


def _launch(name: str, seeds: int) -> None:
    """A Launch button's callback: a double-click launches once (``launch_once``)."""
    launch_once(f"gl_launched_{name}", _token(name, seeds), lambda: _start(name, seeds))


def launch_buttons(recipe: Recipe, ready: bool) -> None:
    """Launch and "Launch with 3 seeds": the recipe's run (or, for an ablation report, its sweep), once
    or crossed with ``SEEDS`` seeds, in the background; then what the last launch started."""
    what = "Launch the sweep" if recipe.sweep else "Launch"
    launched = last_launch(f"gl_launched_{recipe.name}")
    buttons = st.container(horizontal=True)
    for seeds, label, key in ((1, what, "launch"), (SEEDS, f"{what} with {SEEDS} seeds", "launch_seeds")):
        buttons.button(
            label,
            key=f"{key}_{recipe.name}",
            disabled=not ready or launched.get("token") == _token(recipe.name, seeds),
            type="primary" if seeds == 1 else "secondary",
            on_click=_launch,
            args=(recipe.name, seeds),
            help=None
            if seeds == 1
            else f"every run {SEEDS} times (consecutive seeds from the recipe's), one at a "
            "time, as one sweep: the card then shows their mean ± sd",
        )
    if error := st.session_state.pop(f"gl_error_{recipe.name}", None):
        st.error(plain(error))
    if launched.get("text"):
        st.success(plain(launched["text"]))


def recipe_card(recipe: Recipe, runs: list[RunInfo]) -> None:
    st.markdown(f"**{plain(recipe.title)}**")
    st.caption(plain(recipe.report + (" · sweep over " + ", ".join(recipe.sweep) if recipe.sweep else "")))
    show_figures(recipe, runs)
    show_time(recipe)
    ready = show_downloads(recipe)
    launch_buttons(recipe, ready)


def show_gallery() -> None:
    """Every recipe as a card, as many to a row as the width allows."""
    st.subheader("Reproduce a report")
    st.caption(
        "Each course report's experiment, set up as the report ran it. `glyphcore recipes show NAME` lists "
        "every setting; `glyphcore train --recipe NAME` runs one in the terminal."
    )
    recipes = list_recipes()
    runs = list_runs()
    cards = st.container(horizontal=True, key="gallery_cards")  # as many per row as fit (app_pages/layout.py)
    for recipe in recipes:
        with cards.container(border=True, key=f"recipe_{recipe.name}"):
            recipe_card(recipe, runs)
