"""Train: a form for the TrainConfig with the model summary before launch, Launch, an activation
sweep, and a live monitor of every running run.

The page never trains: Launch starts a detached process (glyphcore.runs.launch) and the monitor is
a fragment that re-reads the run folders once a second, so it carries on across page switches,
reloads and an app restart.
"""

from __future__ import annotations

import json
import time

import streamlit as st

from app_pages import shared
from glyphcore import runs, viz
from glyphcore.data import TORCHVISION_SETS, source_stamp
from glyphcore.errors import GlyphError
from glyphcore.frame import CLASSES, FRAME_SIZE
from glyphcore.models import ACTIVATION_NAMES, list_models, model_entry
from glyphcore.runs.sweep import SweepInfo, cancel_sweep, launch_sweep, list_sweeps, sweep_table
from glyphcore.timefmt import clock_text, time_of_day_text
from glyphcore.train.config import CHOICES, TrainConfig, coerce_value, field_specs, make_config
from glyphcore.train.device import available_devices

DEFAULTS = TrainConfig()  # the report's recipe
DATA_CHOICES = ["glyphs-52", *(f"torchvision:{name}" for name in TORCHVISION_SETS), "other source ..."]
# the settings a sweep may vary: every TrainConfig field that defines a run (not where it runs)
SWEEPABLE = [s["name"] for s in field_specs() if s["name"] not in ("preset", "device", "amp", "threads", "compile",
                                                                    "log_every", "eval_batch_size", "data")]
RECENT_S = 30 * 60  # finished runs stay on the monitor this long (s)
LOG_LINES = 12  # log lines shown per run
STATE_ICON = {"queued": ":material/hourglass_empty:", "running": ":material/directions_run:",
              "done": ":material/check_circle:", "failed": ":material/error:", "cancelled": ":material/stop_circle:",
              "diverged": ":material/trending_up:", "crashed": ":material/report:"}  # fmt: skip


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
def summarize(model: str, activation: str, batchnorm: bool, dropout: float, options_json: str,
              num_classes: int, shape: tuple[int, int, int]) -> dict:  # fmt: skip
    """Build the model once on the CPU and describe it (params, FLOPs, layer table)."""
    from glyphcore.models import create_model, model_summary

    net = create_model(model, num_classes=num_classes, in_channels=shape[0], input_size=shape[1:],
                       activation=activation, batchnorm=batchnorm, dropout=dropout, **json.loads(options_json))  # fmt: skip
    s = model_summary(net, shape)
    return {"rows": s.to_records(), "total": s.total_params, "trainable": s.trainable_params,
            "flops": s.flops, "train_flops": s.train_flops}  # fmt: skip


# ----------------------------------------------------------------------------------------------
# the form
# ----------------------------------------------------------------------------------------------
def config_form() -> tuple[dict, dict | None, str | None]:
    """Widgets -> (TrainConfig values, model summary or None, error or None)."""
    values: dict = {}
    st.subheader("Data and model")
    c1, c2, c3 = st.columns(3)
    data = c1.selectbox("Data set", DATA_CHOICES, key="tr_data_choice")
    if data == DATA_CHOICES[-1]:
        data = c1.text_input("Source", key="tr_data_other", placeholder="course:/path, folder:/path, torchvision:KMNIST")
    values["data"] = data.strip() or DEFAULTS.data
    models = list_models()
    values["model"] = c2.selectbox("Model", models, index=models.index(DEFAULTS.model), key="tr_model")
    entry = model_entry(values["model"])
    c2.caption(entry.description)
    values["activation"] = c3.selectbox("Activation", ACTIVATION_NAMES,
                                        index=ACTIVATION_NAMES.index(DEFAULTS.activation), key="tr_activation")  # fmt: skip
    c1, c2, c3 = st.columns(3)
    values["batchnorm"] = c1.checkbox("BatchNorm", value=DEFAULTS.batchnorm, key="tr_batchnorm")
    values["dropout"] = c2.slider("Dropout", 0.0, 0.9, DEFAULTS.dropout, step=0.05, key="tr_dropout")
    options_text = c3.text_input("Model options (JSON)", value=json.dumps(entry.options),
                                 key=f"tr_options_{values['model']}", help="e.g. {\"depth\": 11} for vgg")  # fmt: skip

    st.subheader("Optimisation")
    c1, c2, c3, c4 = st.columns(4)
    values["optimizer"] = c1.selectbox("Optimizer", CHOICES["optimizer"], key="tr_optimizer")
    values["lr"] = c2.number_input("Learning rate", 1e-6, 10.0, DEFAULTS.lr, step=1e-5, format="%.1e", key="tr_lr")
    values["schedule"] = c3.selectbox("LR schedule", CHOICES["schedule"], key="tr_schedule")
    values["augment"] = c4.selectbox("Augmentation", CHOICES["augment"], key="tr_augment")
    c1, c2, c3, c4 = st.columns(4)
    values["epochs"] = int(c1.number_input("Epochs", 1, 500, DEFAULTS.epochs, key="tr_epochs"))
    values["batch_size"] = int(c2.number_input("Batch size", 1, 8192, DEFAULTS.batch_size, key="tr_batch_size"))
    values["seed"] = int(c3.number_input("Seed", 0, 2**31 - 1, DEFAULTS.seed, key="tr_seed"))
    values["device"] = c4.selectbox("Device", available_devices(shared.device_info()), key="tr_device",
                                    help="only the devices this machine has")

    with st.expander("Advanced"):
        c1, c2, c3, c4 = st.columns(4)
        values["weight_decay"] = c1.number_input("Weight decay", 0.0, 1.0, DEFAULTS.weight_decay, step=1e-4,
                                                 format="%.1e", key="tr_weight_decay")  # fmt: skip
        values["label_smoothing"] = c2.slider("Label smoothing", 0.0, 0.5, DEFAULTS.label_smoothing, step=0.05,
                                              key="tr_label_smoothing")  # fmt: skip
        values["log_every"] = int(c3.number_input("Log loss every (steps)", 1, 10_000, DEFAULTS.log_every,
                                                  key="tr_log_every"))  # fmt: skip
        threads = int(c4.number_input("CPU threads (0 = torch's choice)", 0, 256, 0, key="tr_threads"))
        if threads:
            values["threads"] = threads

    st.subheader("Stopping and limits")
    c1, c2, c3 = st.columns(3)
    if c1.checkbox("Early stopping", key="tr_early"):
        values["patience"] = int(c1.number_input("Patience (epochs)", 1, 100, 3, key="tr_patience"))
    if c2.checkbox("Time budget", key="tr_time"):
        values["time_budget_min"] = float(c2.number_input("Minutes", 0.1, 10_000.0, 15.0, key="tr_time_min"))
    if c3.checkbox("Parameter budget", key="tr_pbudget"):
        values["param_budget"] = int(c3.number_input("Max parameters", 1, 10**10, 1_000_000, step=100_000,
                                                     key="tr_pbudget_n"))  # fmt: skip

    try:
        options = json.loads(options_text or "{}")
        if not isinstance(options, dict):
            raise ValueError
    except ValueError:
        return values, None, f"Model options must be a JSON object like {json.dumps(entry.options) or '{}'}"
    values["model_options"] = options
    try:
        num_classes, shape = data_shape(values["data"])
        summary = summarize(values["model"], values["activation"], values["batchnorm"], values["dropout"],
                            json.dumps(options, sort_keys=True), num_classes, shape)  # fmt: skip
        summary["shape"], summary["classes"] = shape, num_classes
    except GlyphError as e:
        return values, None, str(e)
    except TypeError as e:  # an option the builder does not take
        return values, None, f"Model options: {e}"
    return values, summary, None


def show_summary(summary: dict | None, error: str | None, values: dict) -> None:
    st.subheader("Model")
    if error:
        st.error(error)
        return
    assert summary is not None
    c1, c2 = st.columns(2)
    c1.metric("Parameters", f"{summary['trainable']:,}")
    c2.metric("MFLOPs / image", f"{summary['flops'] / 1e6:,.1f}")
    shape = "x".join(map(str, summary["shape"]))
    st.caption(f"{values['model']} · {values['activation']} · input {shape} · {summary['classes']} classes")
    budget = values.get("param_budget")
    if budget and summary["trainable"] > budget:
        st.warning(f"{summary['trainable']:,} parameters is over the budget of {budget:,}: the run will refuse to start.")
    st.dataframe(summary["rows"], hide_index=True, height=320, column_order=["name", "type", "output_shape", "params"],
                 column_config={"name": st.column_config.TextColumn(width=120),
                                "type": st.column_config.TextColumn(width=95),
                                "output_shape": st.column_config.TextColumn("output", width=75),
                                "params": st.column_config.NumberColumn(format="localized", width=70)})  # fmt: skip


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
        if runs.can_resume(info.status) and st.button("Resume", icon=":material/play_arrow:", key=f"tr_resume_{info.run_id}"):
            try:
                runs.resume(info.run_id)
                st.toast(f"Resuming {info.run_id}")
            except GlyphError as e:
                st.error(str(e))

    progress = runs.run_progress(info)
    st.progress(progress.fraction, text=progress.text)
    ips = progress.images_per_s
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Elapsed", clock_text(progress.elapsed_s))
    c2.metric("ETA", clock_text(progress.eta_s))
    c3.metric("Images/s", f"{ips:,.0f}" if ips else "-")
    best = info.best_val_acc
    c4.metric("Best val acc", f"{100 * best:.2f}%" if best is not None else "-",
              help=f"epoch {info.best_epoch}" if info.best_epoch else None)  # fmt: skip

    steps, epochs_df = viz.metrics_frames(events, steps_per_epoch=info.status.get("steps_per_epoch"))
    if steps.empty and epochs_df.empty:
        st.caption("Waiting for the first metrics ...")
    else:
        # while it runs, the x axis spans all planned epochs so the curve grows into a fixed frame
        span = (epochs or None) if state in runs.ACTIVE_STATES else None
        left, right = st.columns(2)
        left.altair_chart(viz.live_curves_chart(steps, epochs_df, "loss", epochs_total=span), width="stretch")
        right.altair_chart(viz.live_curves_chart(steps, epochs_df, "acc", epochs_total=span), width="stretch")
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
            time_of_day_text(e.get("time")) + " "
            + (e.get("message") or f"run ended: {e.get('state')}")
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
    st.dataframe(sweep_table(sweep), hide_index=True, width="stretch",
                 column_config={"best val acc (%)": st.column_config.NumberColumn(format="%.2f")})
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
    finished = [r for r in infos if r.state not in runs.ACTIVE_STATES
                and recent(r.ended or r.status.get("updated"))][-3:]  # fmt: skip
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


def sweep_form(values: dict, error: str | None, name: str) -> None:
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
        text = st.text_input("Values, comma-separated", key=f"tr_sweep_{setting}",
                             placeholder={"lr": "1e-3, 2e-3, 5e-3", "batch_size": "50, 100, 250"}.get(setting, "..."))
        try:
            chosen = [coerce_value(spec, v.strip()) for v in text.split(",") if v.strip()]
        except GlyphError as e:
            st.error(str(e))
            chosen = []
    device = shared.device_info()
    gpus = int(device.get("count") or 1) if device.get("kind") == "cuda" else 0
    parallel = int(st.number_input(
        "Runs at once", 1, 16, max(1, gpus), key="tr_sweep_parallel",
        help="on a CPU, one at a time is fastest (runs at once share the cores); with several GPUs each run "
             "gets its own GPU",
    ))
    if st.button(f"Launch {len(chosen)} runs", disabled=error is not None or not chosen, key="tr_sweep_launch"):
        try:
            sweep_id = launch_sweep(make_config("report", **values), {setting: chosen}, parallel=parallel,
                                    name=name or None)
            st.success(f"Launched sweep `{sweep_id}` of {len(chosen)} runs; watch it below.")
        except GlyphError as e:
            st.error(str(e))


# ----------------------------------------------------------------------------------------------
# the page
# ----------------------------------------------------------------------------------------------
st.title("Train")
form_col, summary_col = st.columns([4, 3], gap="large")
with form_col:
    values, summary, error = config_form()
with summary_col:
    show_summary(summary, error, values)

c1, c2 = st.columns([4, 3], gap="large")
with c1:
    name = st.text_input("Run name (optional)", key="tr_name", max_chars=40)
    gpus = None
    device = shared.device_info()
    if device["kind"] == "cuda" and device["count"] > 1 and values["device"] in ("auto", "cuda"):
        if st.checkbox(f"Use all {device['count']} GPUs (data parallel: one process each, under torchrun)",
                       key="tr_all_gpus"):  # fmt: skip
            gpus = "all"
    if st.button("Launch", icon=":material/rocket_launch:", type="primary", disabled=error is not None, key="tr_launch"):
        try:
            run_id = runs.launch(make_config("report", **values), name=name or None, gpus=gpus)
            st.success(f"Launched `{run_id}`: it trains in its own process; watch it below.")
        except GlyphError as e:
            st.error(str(e))
with c2, st.expander("Sweep: the same settings once per value of one setting"):
    sweep_form(values, error, name)

st.divider()
st.header("Runs in progress")
monitor()
