"""Home: what Glyph Explorer is, the device, the data set, links to every page, the latest runs, and
the "Reproduce a report" gallery (``app_pages.gallery``).

The data set status has a build button; torch is imported once (cached) for the device line.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages import PAGES, shared
from app_pages.gallery import show_gallery
from glyphcore import paths
from glyphcore.jobs import GLYPHS52_BUILD_JOB, BackgroundJob, get_job, start_job


def glyphs52_path() -> Path:
    return paths.data_dir() / "glyphs-52"


@st.cache_data(show_spinner=False)
def glyphs52_info(data_dir: str, stamp: float) -> dict:
    """dataset_info("glyphs-52"), recomputed when the data folder or its build changes."""
    from glyphcore.data import dataset_info

    return dataset_info("glyphs-52")


def show_device() -> None:
    st.subheader("Device")
    dev = shared.device_info()
    if dev["kind"] == "cuda":
        st.success(
            f"**{dev['name']}** · {dev['memory_gib']} GiB" + (f" · {dev['count']} GPUs" if dev["count"] > 1 else "")
        )
    elif dev["kind"] == "mps":
        st.success("**Apple MPS** (Metal GPU)")
    else:
        st.info(f"**CPU** · {dev['name']} · {dev['cpu_count']} cores. No GPU found: small runs still train in minutes.")
    st.caption(f"torch {dev['torch']}")


@st.fragment(run_every=1.0)
def build_progress(job: BackgroundJob) -> None:
    """Polls the background build once a second; reruns the page when it ends."""
    if not job.running:
        st.rerun()
    st.progress(job.fraction, text=f"Building glyphs-52: {job.stage} ({job.done:,} / {job.total:,})")


def show_data() -> None:
    from glyphcore.data import glyphs52_ready

    st.subheader("Data set")
    job = get_job(GLYPHS52_BUILD_JOB)  # the server's one build thread, shared by every session
    if job is not None and job.running:
        build_progress(job)
        return
    ready = glyphs52_ready()
    if job is not None and job.error and not ready:
        st.error(f"The build failed: {job.error}")
    if ready:
        folder = glyphs52_path()
        info = glyphs52_info(str(folder), folder.stat().st_mtime)
        counts = info.get("counts", {})
        total = sum(counts.values()) if counts else 0
        st.success(f"**glyphs-52** is ready: {total:,} images, {len(info.get('classes', []))} classes")
        figures = st.container(horizontal=True, gap="small")  # wraps rather than cutting 41,600 to "4..."
        for split, n in counts.items():
            figures.metric(split, f"{n:,}", width="content")
        st.caption(f"{folder} · id {info.get('id', '?')} · hash {str(info.get('hash', '?'))[:12]}")
    else:
        st.warning(
            f"**glyphs-52** is not built yet (expected in `{glyphs52_path()}`). "
            "Build it here (about 30 s) or run `python -m glyphcore data build`."
        )
        if st.button("Build glyphs-52", type="primary"):
            from glyphcore.data import build_glyphs52

            start_job(GLYPHS52_BUILD_JOB, lambda progress: build_glyphs52(progress=progress))
            st.rerun()


def show_links() -> None:
    st.subheader("Where to go next")
    pages = [p for p in PAGES if p.url_path]
    for row in range(0, len(pages), 3):  # rows of three, so that the links line up
        for col, page in zip(st.columns(3), pages[row : row + 3]):
            with col:
                st.page_link(page.file, label=page.title, icon=page.icon)
                st.caption(page.what)


def show_latest_runs(limit: int = 5) -> None:
    from glyphcore.runs import list_runs
    from glyphcore.runs.listing import listing_rows

    st.subheader("Latest runs")
    runs = list_runs()
    if not runs:
        st.info("No runs yet: launch one on the Train page.")
        return
    rows = [item.row for item in listing_rows(runs)]  # a group of seeds is one row
    st.dataframe(
        rows[:limit],
        hide_index=True,
        column_config={
            "params": st.column_config.NumberColumn(format="localized"),
            "best val acc (%)": st.column_config.NumberColumn(format="%.2f"),
            "wall s": None,  # "wall time" is the readable one
        },
    )
    if len(rows) > limit:
        st.caption(f"{len(rows) - limit} more on the Runs & Compare page.")


st.title("Glyph Explorer")
st.markdown(
    "Train, watch and understand small image classifiers on character glyphs: browse the built-in "
    "**glyphs-52** set (A-Z a-z rendered from many fonts), launch runs with a chosen model and "
    "activation, watch their curves live, read confusion matrices, draw a letter and see what every "
    "model thinks, and compare runs side by side. Everything here also works headless: "
    "`python -m glyphcore --help`."
)
left, right = st.columns(2)
with left:
    show_device()
with right:
    show_data()
show_links()
show_latest_runs()
show_gallery()
