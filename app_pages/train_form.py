"""The Train page's form: widgets -> the settings of a run (TrainConfig values) and the seed count.

Every widget's value lives in ``st.session_state`` under its key, set from the preset, and from the
page's query parameters on a session's first run, so a reload or a shared link ("Clone and change"
from the Runs page) gives the form back. The link's format is ``glyphcore.train.query``'s. Not a page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import streamlit as st

from app_pages import shared
from glyphcore import runs
from glyphcore.data import TORCHVISION_SETS
from glyphcore.errors import GlyphError
from glyphcore.models import ACTIVATION_NAMES, list_models, model_entry
from glyphcore.train.config import CHOICES, MAX_OUTLIER_EXPOSURE, PRESET_NOTES, PRESETS, TrainConfig, make_config
from glyphcore.train.device import available_devices
from glyphcore.train.query import SEEDS_MAX, config_to_query, query_to_form

__all__ = ["FormValues", "config_form", "form_from_state", "DEFAULTS"]

DEFAULTS = TrainConfig()  # the report's recipe
DATA_CHOICES = ["glyphs-52", *(f"torchvision:{name}" for name in TORCHVISION_SETS), "other source ..."]
FIELD_KEYS = {  # TrainConfig field -> widget key
    "model": "tr_model",
    "activation": "tr_activation",
    "batchnorm": "tr_batchnorm",
    "dropout": "tr_dropout",
    "optimizer": "tr_optimizer",
    "lr": "tr_lr",
    "momentum": "tr_momentum",
    "nesterov": "tr_nesterov",
    "schedule": "tr_schedule",
    "augment": "tr_augment",
    "label_smoothing": "tr_label_smoothing",
    "outlier_exposure": "tr_outlier_exposure",
    "weight_decay": "tr_weight_decay",
    "epochs": "tr_epochs",
    "batch_size": "tr_batch_size",
    "seed": "tr_seed",
    "device": "tr_device",
    "amp": "tr_amp",
    "log_every": "tr_log_every",
}
# optional fields: (switch key, value key, value when switched on)
OPTIONAL_KEYS = {
    "patience": ("tr_early", "tr_patience", 3),
    "time_budget_min": ("tr_time", "tr_time_min", 15.0),
    "param_budget": ("tr_pbudget", "tr_pbudget_n", 1_000_000),
}
# the fields with a widget of their own; any other setting (compile, eval_batch_size, ...) is carried
# from the preset or the link unchanged, so every setting of a cloned run round-trips
SHOWN = {*FIELD_KEYS, *OPTIONAL_KEYS, "threads", "init_from", "model_options", "data", "preset"}
NO_INIT = "none (fresh weights)"


@dataclass
class FormValues:
    """What the form says: the preset, the TrainConfig values on top of it, the seed count, and why
    the values cannot be launched (None when they can)."""

    preset: str
    values: dict
    seeds: int
    error: str | None


def default_preset() -> str:
    """The quick recipe on a machine without a GPU (where it exists), the report's recipe otherwise."""
    return "quick" if "quick" in PRESETS and shared.device_info()["kind"] == "cpu" else "report"


def _widget_state(config: TrainConfig) -> dict:
    """The widget values (and carried settings) that show ``config``."""
    state = {key: getattr(config, field) for field, key in FIELD_KEYS.items()}
    for field, (switch, value_key, fallback) in OPTIONAL_KEYS.items():
        value = getattr(config, field)
        state[switch], state[value_key] = value is not None, value if value is not None else fallback
    state["tr_threads"] = config.threads or 0
    state["tr_init_from"] = config.init_from or NO_INIT
    state[f"tr_options_{config.model}"] = json.dumps(config.model_options or model_entry(config.model).options)
    if config.data in DATA_CHOICES:
        state["tr_data_choice"] = config.data
    else:
        state["tr_data_choice"], state["tr_data_other"] = DATA_CHOICES[-1], config.data
    state["tr_carried"] = {k: v for k, v in asdict(config).items() if k not in SHOWN}
    if state["tr_device"] not in available_devices(shared.device_info()):
        state["tr_device"] = "auto"
    return state


def apply_preset() -> None:
    """The Preset menu's callback: every setting jumps to the chosen preset's value."""
    st.session_state.update(_widget_state(make_config(st.session_state["tr_preset"])))


def load_form_state() -> None:
    """On a session's first run: the form of the query parameters (a shared link), the rest from the
    preset; a parameter that is not a valid setting is reported (and left out)."""
    if st.session_state.get("tr_form_loaded"):
        return
    form = query_to_form({k: st.query_params[k] for k in st.query_params}, default_preset())
    st.session_state.update(_widget_state(form.config))
    st.session_state["tr_preset"], st.session_state["tr_seeds"] = form.preset, form.seeds
    st.session_state["tr_form_loaded"] = True
    if form.bad:
        st.session_state["tr_bad_params"] = form.bad


def save_query_params(preset: str, values: dict, seeds: int) -> None:
    """The form as the page's query parameters (a reload or a copied link reproduces it)."""
    try:
        query = config_to_query(make_config(preset, **values), seeds)
    except GlyphError:  # the form shows why; the link keeps its last good state
        return
    if dict(st.query_params) != query:
        st.query_params.from_dict(query)


def _data_and_model() -> None:
    """Data set, model, activation, BatchNorm, dropout, model options, initial weights."""
    row = st.container(horizontal=True, key="row_tr_data")  # wrapping rows (app_pages/layout.py)
    c1, c2, c3 = row.container(), row.container(), row.container()
    if c1.selectbox("Data set", DATA_CHOICES, key="tr_data_choice") == DATA_CHOICES[-1]:
        c1.text_input("Source", key="tr_data_other", placeholder="course:/path, folder:/path, torchvision:KMNIST")
    entry = model_entry(c2.selectbox("Model", list_models(), key="tr_model"))
    c2.caption(entry.description)
    c3.selectbox("Activation", ACTIVATION_NAMES, key="tr_activation")
    row = st.container(horizontal=True, key="row_tr_arch", vertical_alignment="center")
    c1, c2, c3 = row.container(), row.container(), row.container()
    c1.checkbox("BatchNorm", key="tr_batchnorm")
    c2.slider("Dropout", 0.0, 0.9, step=0.05, key="tr_dropout")
    options_key = f"tr_options_{entry.name}"
    if options_key not in st.session_state:
        st.session_state[options_key] = json.dumps(entry.options)
    c3.text_input("Model options (JSON)", key=options_key, help='e.g. {"depth": 11} for vgg')
    inits = [NO_INIT, *runs.checkpointed_runs()]
    if st.session_state.get("tr_init_from") not in inits:
        inits.append(st.session_state["tr_init_from"])  # a run id or a .pt path from a link
    st.selectbox(
        "Start from the weights of",
        inits,
        key="tr_init_from",
        help="fine-tuning: a run's best.pt; a head for another class count starts fresh",
    )


def _optimisation() -> None:
    """Optimizer, learning rate, schedule, augmentation, epochs, batch, seed, seeds, device."""
    row = st.container(horizontal=True, key="row_tr_opt")
    c1, c2, c3, c4 = row.container(), row.container(), row.container(), row.container()
    c1.selectbox("Optimizer", CHOICES["optimizer"], key="tr_optimizer")
    c2.number_input("Learning rate", 1e-6, 10.0, step=1e-5, format="%.1e", key="tr_lr")
    c3.selectbox("LR schedule", CHOICES["schedule"], key="tr_schedule")
    c4.selectbox("Augmentation", CHOICES["augment"], key="tr_augment")
    row = st.container(horizontal=True, key="row_tr_length")
    c1, c2, c3, c4, c5 = (row.container() for _ in range(5))
    c1.number_input("Epochs", 1, 500, key="tr_epochs")
    c2.number_input("Batch size", 1, 8192, key="tr_batch_size")
    c3.number_input("Seed", 0, 2**31 - 1, key="tr_seed")
    c4.number_input(
        "Seeds",
        1,
        SEEDS_MAX,
        key="tr_seeds",
        help="replicates: N runs with seeds seed, seed + 1, ... launched as one sweep, so a comparison "
        "can tell an effect from run-to-run noise (one seed cannot)",
    )
    devices = available_devices(shared.device_info())
    c5.selectbox("Device", devices, key="tr_device", help="only the devices this machine has")


def _advanced() -> None:
    """Weight decay, label smoothing, SGD momentum, precision, logging, threads, carried settings."""
    with st.expander("Advanced"):
        row = st.container(horizontal=True, key="row_tr_reg", vertical_alignment="center")
        c1, c2, c3, c4, c5 = (row.container() for _ in range(5))
        c1.number_input("Weight decay", 0.0, 1.0, step=1e-4, format="%.1e", key="tr_weight_decay")
        c2.slider("Label smoothing", 0.0, 0.5, step=0.05, key="tr_label_smoothing")
        c3.number_input(
            "Non-letter exposure",
            0.0,
            MAX_OUTLIER_EXPOSURE,
            step=0.01,
            format="%.2f",
            key="tr_outlier_exposure",
            help="weight of a loss on generated non-letters (scribbles, shapes; a quarter of each batch) that "
            "teaches the model to answer them with no letter in particular, so Draw can say 'not a letter'. "
            "0 = off; the presets use 0.02. Measured (docs/benchmarks.md): non-letters flagged rise from about "
            "17% to 86-91%; larger weights make clean drawn letters under-confident. Letter data only.",
        )
        sgd = st.session_state.get("tr_optimizer") == "sgd"
        c4.number_input("SGD momentum", 0.0, 0.999, step=0.05, key="tr_momentum", disabled=not sgd)
        c5.checkbox("Nesterov", key="tr_nesterov", disabled=not sgd)
        row = st.container(horizontal=True, key="row_tr_runtime")
        c1, c2, c3 = row.container(), row.container(), row.container()
        c1.selectbox(
            "Precision",
            CHOICES["amp"],
            key="tr_amp",
            help="auto: bf16 where the device computes it natively, fp32 elsewhere",
        )
        c2.number_input("Log loss every (steps)", 1, 10_000, key="tr_log_every")
        c3.number_input("CPU threads (0 = torch's choice)", 0, 256, key="tr_threads")
        carried = st.session_state.get("tr_carried", {})
        preset = asdict(make_config(st.session_state["tr_preset"]))
        changed = {k: v for k, v in carried.items() if preset[k] != v}
        if changed:
            st.caption("From the link: " + ", ".join(f"{k} = {v}" for k, v in changed.items()))


def _stopping() -> None:
    """Early stopping, a time budget, a parameter budget: each off unless switched on."""
    row = st.container(horizontal=True, key="row_tr_stop")
    c1, c2, c3 = row.container(), row.container(), row.container()
    if c1.checkbox("Early stopping", key="tr_early"):
        c1.number_input("Patience (epochs)", 1, 100, key="tr_patience")
    if c2.checkbox("Time budget", key="tr_time"):
        c2.number_input("Minutes", 0.1, 10_000.0, key="tr_time_min")
    if c3.checkbox("Parameter budget", key="tr_pbudget"):
        c3.number_input("Max parameters", 1, 10**10, step=100_000, key="tr_pbudget_n")


def form_from_state(state: Mapping[str, Any]) -> FormValues:
    """The form's values from its widgets' state (the inverse of ``_widget_state``): the page reads
    them after drawing the form, and Launch reads them when clicked, so both see the same values."""
    values: dict[str, Any] = {**state.get("tr_carried", {})}
    values.update({field: state[key] for field, key in FIELD_KEYS.items()})
    for field, (switch, value_key, _) in OPTIONAL_KEYS.items():
        values[field] = state.get(value_key) if state.get(switch) else None
    values["threads"] = int(state.get("tr_threads") or 0) or None
    values["init_from"] = None if state.get("tr_init_from") in (None, NO_INIT) else state["tr_init_from"]
    data = state["tr_data_choice"] if state["tr_data_choice"] != DATA_CHOICES[-1] else state.get("tr_data_other")
    values["data"] = (data or "").strip() or DEFAULTS.data
    preset, seeds = state["tr_preset"], int(state.get("tr_seeds") or 1)
    try:
        options = json.loads(state.get(f"tr_options_{values['model']}") or "{}")
        if not isinstance(options, dict):
            raise ValueError
    except ValueError:
        example = json.dumps(model_entry(values["model"]).options) or "{}"
        return FormValues(preset, values, seeds, f"Model options must be a JSON object like {example}")
    values["model_options"] = options
    return FormValues(preset, values, seeds, None)


def config_form() -> FormValues:
    """The form, top to bottom; its values are also written to the page's query parameters."""
    load_form_state()
    for key in st.session_state.pop("tr_bad_params", []):
        st.warning(f"The link's `{key}` is not a valid value for that setting: the preset's is used.")
    st.selectbox(
        "Preset",
        list(PRESETS),
        key="tr_preset",
        on_change=apply_preset,
        help=" · ".join(f"{k}: {v}" for k, v in PRESET_NOTES.items() if k in PRESETS),
    )
    st.subheader("Data and model")
    _data_and_model()
    st.subheader("Optimisation")
    _optimisation()
    _advanced()
    st.subheader("Stopping and limits")
    _stopping()
    form = form_from_state(st.session_state.to_dict())
    if form.error is None:
        save_query_params(form.preset, form.values, form.seeds)
    return form
