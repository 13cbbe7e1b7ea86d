"""Runs & Compare, the embedding map: one run's penultimate features on a sample of a split,
projected on their first two principal axes; a click on a point shows its glyph."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from glyphcore import runs, viz
from glyphcore.errors import GlyphError
from glyphcore.viz.embedding import EMBEDDING_SELECTION, embedding_chart, embedding_frame, pca_2d

MAP_PER_CLASS = 10  # images per class on the embedding map (52 x 10 = 520 points)


@st.cache_data(show_spinner="Computing the model's features on a sample of the split ...", max_entries=8)
def embedding_data(run_dir: str, ckpt_stamp: tuple, split: str, per_class: int):
    """PCA of a run's penultimate features on ``per_class`` images per class of ``split``:
    (points frame, share of variance on the two axes, the sample's images)."""
    from glyphcore.infer import load_predictor
    from glyphcore.infer.embedding import split_features

    sf = split_features(load_predictor(run_dir), split, per_class=per_class)
    coords, share = pca_2d(sf.features)
    return embedding_frame(coords, sf.labels, sf.preds, sf.classes, sf.indices), share, sf.images


def _map_choices(ready: list[runs.RunInfo]) -> tuple[runs.RunInfo, str, str] | None:
    """The run, split and colouring picked above the map (None: the run's data set is missing)."""
    from glyphcore.data import list_splits

    cols = st.columns([2, 1, 1], vertical_alignment="bottom")
    run_id = cols[0].selectbox("Run", [r.run_id for r in ready], key="rc_map_run")
    info = next(r for r in ready if r.run_id == run_id)
    try:
        splits = list_splits(info.data or "glyphs-52")
    except GlyphError as e:
        st.caption(f"The map needs {run_id}'s data set: {e}")
        return None
    split = cols[1].selectbox(
        "Split", splits, index=splits.index("valid") if "valid" in splits else 0, key="rc_map_split"
    )
    color_by = cols[2].radio(
        "Colour by",
        ["outcome", "true"],
        horizontal=True,
        key="rc_map_color",
        format_func=lambda c: "right/wrong" if c == "outcome" else "class",
    )
    return info, split, color_by


def _clicked_glyph(frame: pd.DataFrame, images: Any, split: str, event: Any) -> None:
    """The glyph of the clicked point, its true and predicted class."""
    state: Any = event or {}  # {"selection": {"point": [{"index": ...}]}} after a click
    points = (state.get("selection") or {}).get(EMBEDDING_SELECTION) or []
    if not points or "index" not in points[0]:
        st.info("Click a point to see its glyph.")
        return
    index = int(points[0]["index"])
    hit = frame.index[frame["index"] == index]
    if hit.empty:
        return
    row = frame.loc[hit[0]]
    img = images[hit[0]]
    st.image(
        img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0),
        width=140,
        output_format="PNG",
        caption=f"{split} #{index}",
    )
    st.markdown(f"true `{row['true']}` · predicted `{row['predicted']}`")
    st.caption(f"{viz.letter_name(row['true'])} → {viz.letter_name(row['predicted'])}")


def embedding_flow(chosen: list[runs.RunInfo]) -> None:
    """One run's embedding map; a click on a point shows its glyph."""
    ready = [r for r in chosen if (r.path / runs.BEST_CKPT).is_file()]
    if not ready:
        st.caption("None of these runs has a checkpoint yet.")
        return
    choices = _map_choices(ready)
    if choices is None:
        return
    info, split, color_by = choices
    try:
        frame, share, images = embedding_data(
            str(info.path), runs.file_stamp(info.path / runs.BEST_CKPT), split, MAP_PER_CLASS
        )
    except GlyphError as e:
        st.error(str(e))
        return
    left, right = st.columns([3, 1], gap="medium")
    event = left.container(key="rc_map").altair_chart(
        embedding_chart(frame, color_by=color_by),
        on_select="rerun",
        width="stretch",
        key=f"rc_map_{info.run_id}_{split}",
    )
    left.caption(
        f"{len(frame)} images of {split} ({MAP_PER_CLASS} per class), their penultimate features projected "
        f"on the first two principal axes ({share[0]:.0%} and {share[1]:.0%} of the variance); "
        f"{int((frame['outcome'] == 'wrong').sum())} predicted wrong. Click a point to see its glyph."
    )
    with right:
        _clicked_glyph(frame, images, split, event)
