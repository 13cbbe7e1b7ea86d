"""The Train page's time estimate: how long the run will take here, from this machine's measured
speed for its model, batch and device (glyphcore.train.estimate). The page never waits for the
measurement: it runs in a child process and the section shows "estimating ..."; while a measurement
is under way the section is a fragment that looks again every few seconds (until the page's next run
finds the measurement landed and draws it without an interval). Not a page."""

from __future__ import annotations

import streamlit as st

from app_pages import shared
from glyphcore.data import source_stamp
from glyphcore.errors import GlyphError
from glyphcore.timefmt import clock_text, duration_text
from glyphcore.train.config import TrainConfig, make_config
from glyphcore.train.estimate import MAX_AGE_S, estimate_run, lookup_speed

__all__ = ["show_estimate", "ESTIMATING"]

ESTIMATING = "estimating ..."
LOOK_AGAIN_S = 2.0  # how often the section looks for a measurement that is under way (s)


def split_counts(source: str) -> tuple[int, int]:
    """(training, validation) images of a source; glyphs-52's defaults when it is not built yet."""
    try:
        counts = shared.dataset_info(source, source_stamp(source)).get("counts", {})
    except GlyphError:
        counts = {}
    n_train = int(counts.get("train") or 41_600)
    n_val = int(counts.get("valid") or counts.get("test") or 15_600)
    return n_train, n_val


def show_estimate(preset: str, values: dict, shape: tuple[int, int, int], num_classes: int) -> None:
    """The "Estimated time" figure of the form's run (the last measurement while a new one is taken)."""
    try:
        config = make_config(preset, **values)
    except GlyphError as e:
        st.caption(f"No time estimate: {e}")
        return
    measuring = lookup_speed(config, shape, num_classes).measuring
    st.fragment(_estimate, run_every=LOOK_AGAIN_S if measuring else None)(config, shape, num_classes)


def _estimate(config: TrainConfig, shape: tuple[int, int, int], num_classes: int) -> None:
    lookup = lookup_speed(config, shape, num_classes)
    reading = lookup.reading
    if reading is None:
        st.metric("Estimated time", ESTIMATING, help="timing a few training steps of this model in the background")
        return
    if reading.images_per_s is None:
        st.caption(f"No time estimate: {reading.error}")
        return
    ips = reading.images_per_s
    n_train, n_val = split_counts(config.data)
    estimate = estimate_run(config, n_train, n_val, ips)
    when = "measuring again now" if lookup.measuring else f"measured again after {duration_text(MAX_AGE_S)}"
    st.metric(
        "Estimated time",
        clock_text(estimate.seconds),
        help=f"{config.epochs} epochs of {n_train:,} images at {ips:,.0f} images/s, measured here for this model, "
        f"batch size and device ({when}), plus validation ({n_val:,} images) and start-up",
    )
