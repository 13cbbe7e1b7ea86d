"""Train: a form for the TrainConfig with the model summary before launch, Launch, an activation
sweep, and a live monitor of every running run.

The page never trains: Launch starts a detached process (glyphcore.runs.launch) and the monitor is
a fragment that re-reads the run folders once a second, so it carries on across page switches,
reloads and an app restart.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import streamlit as st

from app_pages import shared
from glyphcore import runs, viz
from glyphcore.data import TORCHVISION_SETS, source_stamp
from glyphcore.errors import GlyphError
from glyphcore.frame import CLASSES, FRAME_SIZE
from glyphcore.models import ACTIVATION_NAMES, list_models, model_entry
from glyphcore.runs.sweep import SweepInfo, cancel_sweep, launch_sweep, list_sweeps, sweep_table
from glyphcore.timefmt import clock_text, time_of_day_text
from glyphcore.train.config import CHOICES, PRESET_NOTES, PRESETS, TrainConfig, coerce_value, field_specs, make_config
from glyphcore.train.device import available_devices

DEFAULTS = TrainConfig()  # the report's recipe
DATA_CHOICES = ["glyphs-52", *(f"torchvision:{name}" for name in TORCHVISION_SETS), "other source ..."]
# the settings a sweep may vary: every TrainConfig field that defines a run (not where it runs)
SWEEPABLE = [
    s["name"]
    for s in field_specs()
    if s["name"] not in ("preset", "device", "amp", "threads", "compile", "log_every", "eval_batch_size", "data")
]
RECENT_S = 30 * 60  # finished runs stay on the monitor this long (s)
LOG_LINES = 12  # log lines shown per run
STATE_ICON = {
    "queued": ":material/hourglass_empty:",
    "running": ":material/directions_run:",
    "done": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/stop_circle:",
    "diverged": ":material/trending_up:",
    "crashed": ":material/report:",
}


# ----------------------------------------------------------------------------------------------
# cached helpers
# ----------------------------------------------------------------------------------------------
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
    from glyphcore.models import create_model, model_summary

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


# ----------------------------------------------------------------------------------------------
# the form: every widget's value lives in st.session_state under its key, set from the preset (and
# from the page's query parameters on a fresh load), so a reload or a shared link gives it back
# ----------------------------------------------------------------------------------------------
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
NO_INIT = "none (fresh weights)"


def default_preset() -> str:
    """The quick recipe on a machine without a GPU (where it exists), the report's recipe otherwise."""
    return "quick" if "quick" in PRESETS and shared.device_info()["kind"] == "cpu" else "report"


def _widget_state(config: TrainConfig) -> dict:
    """The widget values that show ``config``."""
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
    return state


def apply_preset() -> None:
    """The Preset menu's callback: every setting jumps to the chosen preset's value."""
    st.session_state.update(_widget_state(make_config(st.session_state["tr_preset"])))


def load_form_state() -> None:
    """On a session's first run: the preset and settings of the query parameters (a shared link),
    the rest from the preset; a parameter that is not a valid setting is reported and left out."""
    if st.session_state.get("tr_form_loaded"):
        return
    params = {k: st.query_params[k] for k in st.query_params}
    preset = params.pop("preset", None)
    preset = preset if preset in PRESETS else default_preset()
    specs = {s["name"]: s for s in field_specs()}
    values, bad = {}, []
    for key, text in params.items():
        if key in specs:
            try:
                values[key] = coerce_value(specs[key], text)
            except GlyphError:
                bad.append(key)
    try:
        config = make_config(preset, **values)
    except GlyphError:
        config, bad = make_config(preset), bad + sorted(values)
    state = _widget_state(config)
    if state["tr_device"] not in available_devices(shared.device_info()):
        state["tr_device"] = "auto"
    st.session_state.update(state)
    st.session_state["tr_preset"] = preset
    st.session_state["tr_form_loaded"] = True
    if bad:
        st.session_state["tr_bad_params"] = bad


def save_query_params(preset: str, values: dict) -> None:
    """The settings that differ from the preset, as the page's query parameters (a reload or a copied
    link reproduces the form)."""
    base = asdict(make_config(preset))
    query = {"preset": preset}
    for key, value in values.items():
        if key in base and base[key] != value:
            query[key] = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
    if dict(st.query_params) != query:
        st.query_params.from_dict(query)


def config_form() -> tuple[str, dict, dict | None, str | None]:
    """Widgets -> (preset, TrainConfig values, model summary or None, error or None)."""
    load_form_state()
    for key in st.session_state.pop("tr_bad_params", []):
        st.warning(f"The link's `{key}` is not a valid value for that setting: the preset's is used.")
    values: dict = {}
    preset = st.selectbox(
        "Preset",
        list(PRESETS),
        key="tr_preset",
        on_change=apply_preset,
        help=" · ".join(f"{k}: {v}" for k, v in PRESET_NOTES.items() if k in PRESETS),
    )
    st.subheader("Data and model")
    # wrapping rows (app_pages/layout.py): each field keeps a readable width on a narrow screen
    row = st.container(horizontal=True, key="row_tr_data")
    c1, c2, c3 = row.container(), row.container(), row.container()
    data = c1.selectbox("Data set", DATA_CHOICES, key="tr_data_choice")
    if data == DATA_CHOICES[-1]:
        data = c1.text_input(
            "Source", key="tr_data_other", placeholder="course:/path, folder:/path, torchvision:KMNIST"
        )
    values["data"] = (data or "").strip() or DEFAULTS.data
    values["model"] = c2.selectbox("Model", list_models(), key="tr_model")
    entry = model_entry(values["model"])
    c2.caption(entry.description)
    values["activation"] = c3.selectbox("Activation", ACTIVATION_NAMES, key="tr_activation")
    row = st.container(horizontal=True, key="row_tr_arch", vertical_alignment="center")
    c1, c2, c3 = row.container(), row.container(), row.container()
    values["batchnorm"] = c1.checkbox("BatchNorm", key="tr_batchnorm")
    values["dropout"] = c2.slider("Dropout", 0.0, 0.9, step=0.05, key="tr_dropout")
    options_key = f"tr_options_{values['model']}"
    if options_key not in st.session_state:
        st.session_state[options_key] = json.dumps(entry.options)
    options_text = c3.text_input("Model options (JSON)", key=options_key, help='e.g. {"depth": 11} for vgg')
    inits = [NO_INIT, *runs.checkpointed_runs()]
    if st.session_state.get("tr_init_from") not in inits:
        inits.append(st.session_state["tr_init_from"])  # a run id or a .pt path from a link
    init = st.selectbox(
        "Start from the weights of",
        inits,
        key="tr_init_from",
        help="fine-tuning: a run's best.pt; a head for another class count starts fresh",
    )
    values["init_from"] = None if init == NO_INIT else init

    st.subheader("Optimisation")
    row = st.container(horizontal=True, key="row_tr_opt")
    c1, c2, c3, c4 = row.container(), row.container(), row.container(), row.container()
    values["optimizer"] = c1.selectbox("Optimizer", CHOICES["optimizer"], key="tr_optimizer")
    values["lr"] = c2.number_input("Learning rate", 1e-6, 10.0, step=1e-5, format="%.1e", key="tr_lr")
    values["schedule"] = c3.selectbox("LR schedule", CHOICES["schedule"], key="tr_schedule")
    values["augment"] = c4.selectbox("Augmentation", CHOICES["augment"], key="tr_augment")
    row = st.container(horizontal=True, key="row_tr_length")
    c1, c2, c3, c4 = row.container(), row.container(), row.container(), row.container()
    values["epochs"] = int(c1.number_input("Epochs", 1, 500, key="tr_epochs"))
    values["batch_size"] = int(c2.number_input("Batch size", 1, 8192, key="tr_batch_size"))
    values["seed"] = int(c3.number_input("Seed", 0, 2**31 - 1, key="tr_seed"))
    values["device"] = c4.selectbox(
        "Device", available_devices(shared.device_info()), key="tr_device", help="only the devices this machine has"
    )

    with st.expander("Advanced"):
        row = st.container(horizontal=True, key="row_tr_reg", vertical_alignment="center")
        c1, c2, c3, c4 = row.container(), row.container(), row.container(), row.container()
        values["weight_decay"] = c1.number_input(
            "Weight decay", 0.0, 1.0, step=1e-4, format="%.1e", key="tr_weight_decay"
        )
        values["label_smoothing"] = c2.slider("Label smoothing", 0.0, 0.5, step=0.05, key="tr_label_smoothing")
        values["momentum"] = c3.number_input(
            "SGD momentum", 0.0, 0.999, step=0.05, key="tr_momentum", disabled=values["optimizer"] != "sgd"
        )
        values["nesterov"] = c4.checkbox("Nesterov", key="tr_nesterov", disabled=values["optimizer"] != "sgd")
        row = st.container(horizontal=True, key="row_tr_runtime")
        c1, c2, c3 = row.container(), row.container(), row.container()
        values["amp"] = c1.selectbox(
            "Precision",
            CHOICES["amp"],
            key="tr_amp",
            help="auto: bf16 where the device computes it natively, fp32 elsewhere",
        )
        values["log_every"] = int(c2.number_input("Log loss every (steps)", 1, 10_000, key="tr_log_every"))
        threads = int(c3.number_input("CPU threads (0 = torch's choice)", 0, 256, key="tr_threads"))
        values["threads"] = threads or None

    st.subheader("Stopping and limits")
    row = st.container(horizontal=True, key="row_tr_stop")
    c1, c2, c3 = row.container(), row.container(), row.container()
    values["patience"] = (
        int(c1.number_input("Patience (epochs)", 1, 100, key="tr_patience"))
        if c1.checkbox("Early stopping", key="tr_early")
        else None
    )
    values["time_budget_min"] = (
        float(c2.number_input("Minutes", 0.1, 10_000.0, key="tr_time_min"))
        if c2.checkbox("Time budget", key="tr_time")
        else None
    )
    values["param_budget"] = (
        int(c3.number_input("Max parameters", 1, 10**10, step=100_000, key="tr_pbudget_n"))
        if c3.checkbox("Parameter budget", key="tr_pbudget")
        else None
    )

    try:
        options = json.loads(options_text or "{}")
        if not isinstance(options, dict):
            raise ValueError
    except ValueError:
        return preset, values, None, f"Model options must be a JSON object like {json.dumps(entry.options) or '{}'}"
    values["model_options"] = options
    save_query_params(preset, values)
    try:
        num_classes, shape = data_shape(values["data"])
        summary = summarize(
            values["model"],
            values["activation"],
            values["batchnorm"],
            values["dropout"],
            json.dumps(options, sort_keys=True),
            num_classes,
            shape,
        )
        summary["shape"], summary["classes"] = shape, num_classes
    except GlyphError as e:
        return preset, values, None, str(e)
    except TypeError as e:  # an option the builder does not take
        return preset, values, None, f"Model options: {e}"
    return preset, values, summary, None


@st.cache_data(show_spinner="Timing a few training steps on this machine ...", max_entries=64)
def measured_speed(config_json: str, shape: tuple[int, int, int], num_classes: int) -> float:
    """Training images/s of a config here (a few real optimizer steps), per model, batch and device."""
    from glyphcore.train.config import config_from_dict
    from glyphcore.train.estimate import measure_speed

    return measure_speed(config_from_dict(json.loads(config_json)), shape, num_classes)


def split_counts(source: str) -> tuple[int, int]:
    """(training, validation) images of a source; glyphs-52's defaults when it is not built yet."""
    try:
        counts = shared.dataset_info(source, source_stamp(source)).get("counts", {})
    except GlyphError:
        counts = {}
    n_train = int(counts.get("train") or 41_600)
    n_val = int(counts.get("valid") or counts.get("test") or 15_600)
    return n_train, n_val


def show_estimate(preset: str, values: dict, summary: dict) -> None:
    """How long the run will take here, from this machine's measured speed for its model and batch."""
    from glyphcore.train.estimate import estimate_run

    try:
        config = make_config(preset, **values)
        speed_keys = (
            "model",
            "activation",
            "batchnorm",
            "dropout",
            "model_options",
            "batch_size",
            "device",
            "amp",
            "threads",
            "optimizer",
        )
        key = json.dumps({k: getattr(config, k) for k in speed_keys}, sort_keys=True)
        ips = measured_speed(key, summary["shape"], summary["classes"])
        n_train, n_val = split_counts(config.data)
        estimate = estimate_run(config, n_train, n_val, ips)
    except GlyphError as e:
        st.caption(f"No time estimate: {e}")
        return
    st.metric(
        "Estimated time",
        clock_text(estimate.seconds),
        help=f"{config.epochs} epochs of {n_train:,} images at {ips:,.0f} images/s, measured here just now "
        f"for this model, batch size and device, plus validation ({n_val:,} images) and start-up",
    )


def show_summary(preset: str, summary: dict | None, error: str | None, values: dict) -> None:
    st.subheader("Model")
    if error:
        st.error(error)
        return
    assert summary is not None
    figures = st.container(horizontal=True, gap="large", key="tr_figures")  # wraps: no figure cut to "70..."
    figures.metric("Parameters", f"{summary['trainable']:,}", width="content")
    figures.metric("MFLOPs / image", f"{summary['flops'] / 1e6:,.1f}", width="content")
    with figures.container(width="content"):
        show_estimate(preset, values, summary)
    shape = "x".join(map(str, summary["shape"]))
    st.caption(f"{values['model']} · {values['activation']} · input {shape} · {summary['classes']} classes")
    budget = values.get("param_budget")
    if budget and summary["trainable"] > budget:
        st.warning(
            f"{summary['trainable']:,} parameters is over the budget of {budget:,}: the run will refuse to start."
        )
    st.dataframe(
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


# ----------------------------------------------------------------------------------------------
# the monitor
# ----------------------------------------------------------------------------------------------
def metrics_of(run_id: str) -> list[dict]:
    """The run's metrics records, read incrementally (only the bytes added since the last tick)."""
    tails = st.session_state.setdefault("tr_metrics", {})
    tail = tails.setdefault(run_id, runs.MetricsTail(run_id))
    return tail.read()


def run_panel(info: runs.RunInfo) -> None:
    state = info.state
    epochs = int(info.epochs or 0)
    events = metrics_of(info.run_id)

    head, buttons = st.columns([5, 2])
    head.markdown(f"#### {STATE_ICON.get(state, '')} `{info.run_id}` — {state}")
    head.caption(" · ".join(x for x in [f"device: {info.device}" if info.device else "", info.message] if x))
    with buttons:
        if state in runs.ACTIVE_STATES and st.button("Cancel", icon=":material/stop:", key=f"tr_cancel_{info.run_id}"):
            try:
                runs.stop(info.run_id)
                st.toast(f"Cancelling {info.run_id}")
            except GlyphError as e:
                st.error(str(e))
        if runs.can_resume(info.status) and st.button(
            "Resume", icon=":material/play_arrow:", key=f"tr_resume_{info.run_id}"
        ):
            try:
                runs.resume(info.run_id)
                st.toast(f"Resuming {info.run_id}")
            except GlyphError as e:
                st.error(str(e))

    progress = runs.run_progress(info)
    st.progress(progress.fraction, text=progress.text)
    ips = progress.images_per_s
    figures = st.container(horizontal=True, gap="large")  # wraps on a narrow screen
    figures.metric("Elapsed", clock_text(progress.elapsed_s), width="content")
    figures.metric("ETA", clock_text(progress.eta_s), width="content")
    figures.metric("Images/s", f"{ips:,.0f}" if ips else "-", width="content")
    best = info.best_val_acc
    figures.metric(
        "Best val acc",
        f"{100 * best:.2f}%" if best is not None else "-",
        width="content",
        help=f"epoch {info.best_epoch}" if info.best_epoch else None,
    )

    steps, epochs_df = viz.metrics_frames(events, steps_per_epoch=info.status.get("steps_per_epoch"))
    if steps.empty and epochs_df.empty:
        st.caption("Waiting for the first metrics ...")
    else:
        # while it runs, the x axis spans all planned epochs so the curve grows into a fixed frame
        span = (epochs or None) if state in runs.ACTIVE_STATES else None
        charts = st.container(horizontal=True, key=f"tr_charts_{info.run_id}")  # side by side, or stacked
        for metric in ("loss", "acc"):
            with charts.container(key=f"tr_chart_{metric}_{info.run_id}"):
                st.altair_chart(viz.live_curves_chart(steps, epochs_df, metric, epochs_total=span), width="stretch")
        latest = []
        if not steps.empty:
            last = steps.iloc[-1]
            latest.append(f"train loss {last['loss']:.4f} at epoch {last['x']:.2f}")
        if not epochs_df.empty:
            last = epochs_df.iloc[-1]
            latest.append(f"val acc {100 * last['val_acc']:.2f}% after epoch {int(last['epoch'])}")
        st.caption(f"{len(steps)} loss points, {len(epochs_df)} epochs · latest: " + ", ".join(latest))
    logs = [e for e in events if e.get("event") in ("log", "end")]
    if logs:
        lines = [
            time_of_day_text(e.get("time")) + " " + (e.get("message") or f"run ended: {e.get('state')}")
            for e in logs[-LOG_LINES:]
        ]
        st.code("\n".join(lines), language=None, wrap_lines=True)


def sweep_panel(sweep: SweepInfo) -> None:
    """One sweep as one thing: its results table in grid order (filled in as runs finish), one
    Cancel for all of it, and the live panels of the runs training now."""
    done = sum(r.state not in runs.ACTIVE_STATES for r in sweep.runs)
    head, buttons = st.columns([5, 2])
    varied = ", ".join(f"{k} = {' / '.join(map(str, v))}" for k, v in sweep.grid.items())
    head.markdown(f"#### :material/grid_view: Sweep `{sweep.sweep_id}` — {done} of {len(sweep.runs)} finished")
    head.caption(f"{varied} · {sweep.parallel} at a time")
    with buttons:
        if sweep.active and st.button("Cancel sweep", icon=":material/stop:", key=f"tr_cancel_sweep_{sweep.sweep_id}"):
            try:
                cancel_sweep(sweep.sweep_id)
                st.toast(f"Cancelling sweep {sweep.sweep_id}")
            except GlyphError as e:
                st.error(str(e))
    st.dataframe(
        sweep_table(sweep),
        hide_index=True,
        width="stretch",
        column_config={"best val acc (%)": st.column_config.NumberColumn(format="%.2f")},
    )
    for info in sweep.runs:
        if info.state == "running":
            with st.container(border=True, key=f"tr_panel_{info.run_id}"):
                run_panel(info)


@st.fragment(run_every=1.0)
def monitor() -> None:
    """Every sweep and run that is queued or running, plus those that ended in the last half hour,
    oldest first, so that a panel keeps its place while new ones appear below it."""
    now = time.time()

    def recent(ended: float | None) -> bool:
        return (ended or 0) > now - RECENT_S

    sweeps = [s for s in list_sweeps() if s.active or recent(max((r.ended or 0) for r in s.runs) if s.runs else 0)]
    in_sweeps = {run_id for s in sweeps for run_id in s.run_ids}
    infos = [r for r in runs.list_runs() if not r.is_starter and r.run_id not in in_sweeps]
    infos.sort(key=lambda r: (r.started or 0.0, r.run_id))
    active = [r for r in infos if r.state in runs.ACTIVE_STATES]
    # a crashed run never wrote "ended": its status file's last update says when it stopped
    finished = [r for r in infos if r.state not in runs.ACTIVE_STATES and recent(r.ended or r.status.get("updated"))][
        -3:
    ]
    if not active and not finished and not sweeps:
        st.info("No run in progress. Launch one above.")
        return
    for sweep in sorted(sweeps, key=lambda s: s.created):
        with st.container(border=True, key=f"tr_sweep_{sweep.sweep_id}"):
            sweep_panel(sweep)
    # each panel is a keyed container: the element gets the CSS class st-key-tr_panel_<run id>
    for info in active:
        with st.container(border=True, key=f"tr_panel_{info.run_id}"):
            run_panel(info)
    if finished:
        st.markdown("##### Finished recently")
        for info in finished:
            with st.expander(f"{STATE_ICON.get(info.state, '')} {info.run_id} — {info.state}", expanded=not active):
                with st.container(key=f"tr_panel_{info.run_id}"):
                    run_panel(info)
        st.page_link("app_pages/runs.py", label="All runs: Runs & Compare", icon=":material/compare_arrows:")


def sweep_form(preset: str, values: dict, error: str | None, name: str) -> None:
    """The sweep launcher: a setting, its values, how many runs at once."""
    setting = st.selectbox("Setting to vary", SWEEPABLE, index=SWEEPABLE.index("activation"), key="tr_sweep_setting")
    spec = next(s for s in field_specs() if s["name"] == setting)
    chosen: list = []
    if setting == "activation":
        chosen = st.multiselect("Activations", ACTIVATION_NAMES, default=["relu", "elu", "silu"], key="tr_sweep_acts")
    elif setting == "model":
        chosen = st.multiselect("Models", list_models(), key="tr_sweep_models")
    elif spec["choices"]:
        chosen = st.multiselect("Values", list(spec["choices"]), key=f"tr_sweep_{setting}")
    elif spec["type"] == "bool":
        chosen = st.multiselect("Values", [True, False], default=[True, False], key=f"tr_sweep_{setting}")
    else:
        text = st.text_input(
            "Values, comma-separated",
            key=f"tr_sweep_{setting}",
            placeholder={"lr": "1e-3, 2e-3, 5e-3", "batch_size": "50, 100, 250"}.get(setting, "..."),
        )
        try:
            chosen = [coerce_value(spec, v.strip()) for v in text.split(",") if v.strip()]
        except GlyphError as e:
            st.error(str(e))
            chosen = []
    device = shared.device_info()
    gpus = int(device.get("count") or 1) if device.get("kind") == "cuda" else 0
    parallel = int(
        st.number_input(
            "Runs at once",
            1,
            16,
            max(1, gpus),
            key="tr_sweep_parallel",
            help="on a CPU, runs at once share the cores (each gets its share as threads; on 2 cores two at a "
            "time finished 8 quick runs in 4.4 min against 6 min one at a time); with several GPUs each run gets "
            "its own GPU",
        )
    )
    if st.button(f"Launch {len(chosen)} runs", disabled=error is not None or not chosen, key="tr_sweep_launch"):
        try:
            sweep_id = launch_sweep(
                make_config(preset, **values), {setting: chosen}, parallel=parallel, name=name or None
            )
            st.success(f"Launched sweep `{sweep_id}` of {len(chosen)} runs; watch it below.")
        except GlyphError as e:
            st.error(str(e))


# ----------------------------------------------------------------------------------------------
# the page
# ----------------------------------------------------------------------------------------------
st.title("Train")
top = st.container(horizontal=True, gap="large")  # side by side when wide, stacked when narrow
form_col, summary_col = top.container(key="tr_form"), top.container(key="tr_side")
with form_col:
    preset, values, summary, error = config_form()
with summary_col:
    show_summary(preset, summary, error, values)

c1, c2 = st.columns([4, 3], gap="large")
with c1:
    name = st.text_input("Run name (optional)", key="tr_name", max_chars=40)
    gpus = None
    device = shared.device_info()
    if device["kind"] == "cuda" and device["count"] > 1 and values["device"] in ("auto", "cuda"):
        if st.checkbox(
            f"Use all {device['count']} GPUs (data parallel: one process each, under torchrun)", key="tr_all_gpus"
        ):
            gpus = "all"
    if st.button(
        "Launch", icon=":material/rocket_launch:", type="primary", disabled=error is not None, key="tr_launch"
    ):
        try:
            run_id = runs.launch(make_config(preset, **values), name=name or None, gpus=gpus)
            st.success(f"Launched `{run_id}`: it trains in its own process; watch it below.")
        except GlyphError as e:
            st.error(str(e))
with c2, st.expander("Sweep: the same settings once per value of one setting"):
    sweep_form(preset, values, error, name)

st.divider()
st.header("Runs in progress")
monitor()
