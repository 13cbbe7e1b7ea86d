"""The Train page's model summary: parameters, FLOPs and the layer table of the model the form
describes, built once per setting on the CPU (cached), beside the form. Not a page."""

from __future__ import annotations

import json

import streamlit as st

from app_pages import shared
from app_pages.train_estimate import show_estimate
from glyphcore.data import source_stamp
from glyphcore.errors import GlyphError
from glyphcore.frame import CLASSES, FRAME_SIZE
from glyphcore.models import create_model, model_summary

__all__ = ["model_summary_of", "show_summary"]


def data_shape(source: str) -> tuple[int, tuple[int, int, int]]:
    """(number of classes, (C, H, W)) of a data source (glyphs-52: from the frame, no loading)."""
    if source == "glyphs-52":
        return len(CLASSES), (1, FRAME_SIZE, FRAME_SIZE)
    info = shared.dataset_info(source, source_stamp(source))  # loads every split of other sources: cached
    c, h, w = (int(s) for s in info["image_shape"])
    return len(info["classes"]), (c, h, w)


@st.cache_data(show_spinner="Building the model ...", max_entries=64)
def summarize(
    model: str,
    activation: str,
    batchnorm: bool,
    dropout: float,
    options_json: str,
    num_classes: int,
    shape: tuple[int, int, int],
) -> dict:
    """Build the model once on the CPU and describe it (params, FLOPs, layer table)."""
    net = create_model(
        model,
        num_classes=num_classes,
        in_channels=shape[0],
        input_size=shape[1:],
        activation=activation,
        batchnorm=batchnorm,
        dropout=dropout,
        **json.loads(options_json),
    )
    s = model_summary(net, shape)
    return {
        "rows": s.to_records(),
        "total": s.total_params,
        "trainable": s.trainable_params,
        "flops": s.flops,
        "train_flops": s.train_flops,
    }


def model_summary_of(values: dict) -> tuple[dict | None, str | None]:
    """(summary with its input "shape" and "classes", None), or (None, why the model cannot be built)."""
    try:
        num_classes, shape = data_shape(values["data"])
        summary = summarize(
            values["model"],
            values["activation"],
            values["batchnorm"],
            values["dropout"],
            json.dumps(values["model_options"], sort_keys=True),
            num_classes,
            shape,
        )
    except GlyphError as e:
        return None, str(e)
    except TypeError as e:  # an option the builder does not take
        return None, f"Model options: {e}"
    return {**summary, "shape": shape, "classes": num_classes}, None


def show_summary(preset: str, summary: dict | None, error: str | None, values: dict) -> None:
    """Parameters, MFLOPs, the time estimate, the budget check and the layer table (or the error)."""
    st.subheader("Model")
    if error:
        st.error(error)
        return
    assert summary is not None
    figures = st.container(horizontal=True, gap="large", key="tr_figures")  # wraps: no figure cut to "70..."
    figures.metric("Parameters", f"{summary['trainable']:,}", width="content")
    figures.metric("MFLOPs / image", f"{summary['flops'] / 1e6:,.1f}", width="content")
    with figures.container(width="content", key="tr_estimate"):
        show_estimate(preset, values, summary["shape"], summary["classes"])
    shape = "x".join(map(str, summary["shape"]))
    st.caption(f"{values['model']} · {values['activation']} · input {shape} · {summary['classes']} classes")
    budget = values.get("param_budget")
    if budget and summary["trainable"] > budget:
        st.warning(
            f"{summary['trainable']:,} parameters is over the budget of {budget:,}: the run will refuse to start."
        )
    st.container(key="tr_layers").dataframe(
        summary["rows"],
        hide_index=True,
        height=320,
        column_order=["name", "type", "output_shape", "params"],
        column_config={
            "name": st.column_config.TextColumn(width=120),
            "type": st.column_config.TextColumn(width=95),
            "output_shape": st.column_config.TextColumn("output", width=75),
            "params": st.column_config.NumberColumn(format="localized", width=70),
        },
    )
