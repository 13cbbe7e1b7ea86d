"""Runs & Compare: every run in a sortable, filterable table (links to a run's Evaluate / Draw /
Activations views, its train.log, delete after a confirmation, download its model as its checkpoint or
as ONNX / .pt2 / safetensors); pick several runs for overlaid curves (smoothing, step-level loss, x
axis by epoch, step, images seen or training time), a parallel-coordinates chart of settings vs
results, their config differences, a one-factor ablation table, report cards that copy as Markdown
rows, and an embedding map of one run's penultimate features.
"""

from __future__ import annotations

import functools
from typing import Any

import streamlit as st

from app_pages import shared
from glyphcore import runs, viz
from glyphcore.errors import GlyphError
from glyphcore.runs import compare
from glyphcore.runs.store import log_tail
from glyphcore.viz.embedding import EMBEDDING_SELECTION, embedding_chart, embedding_frame, pca_2d
from glyphcore.viz.hparams import hparams_frame, parallel_coordinates_chart

GROUP_KEYS = (
    "activation",
    "batchnorm",
    "optimizer",
    "lr",
    "model",
    "augment",
    "schedule",
    "batch_size",
    "dropout",
    "seed",
    "data",
)
DRAWINGS_COL = "drawings acc (%)"


def drawings_column(infos: list[runs.RunInfo], rows: list[dict]) -> None:
    """Add each run's accuracy on the personal drawings set, when there are drawings."""
    from glyphcore.data.drawings import drawings_stamp, list_drawings

    if not list_drawings():
        return
    for info, row in zip(infos, rows):
        ckpt = info.path / runs.BEST_CKPT
        ok = ckpt.is_file() and info.state not in runs.ACTIVE_STATES
        score = shared.drawings_score(str(info.path), runs.file_stamp(ckpt), drawings_stamp()) if ok else None
        row[DRAWINGS_COL] = round(100 * score["accuracy"], 1) if score and score["accuracy"] is not None else None


def on_table_select() -> None:
    """A selection in the table becomes the runs to compare."""
    selected = st.session_state["rc_table"].selection.rows
    ids = st.session_state.get("rc_table_ids", [])
    st.session_state["rc_pick"] = [ids[i] for i in selected if i < len(ids)]


def delete_flow(run_ids: list[str]) -> None:
    """Pick a run, ask for a confirmation, delete its folder."""
    pending = st.session_state.get("rc_delete_pending")
    if pending:
        st.warning(f"Delete run `{pending}` and all its files (checkpoints, metrics)? This cannot be undone.")
        c1, c2, _ = st.columns([1, 1, 4])
        if c1.button("Yes, delete it", type="primary", key="rc_delete_yes"):
            st.session_state["rc_delete_pending"] = None
            try:
                runs.delete(pending)
                st.session_state["rc_pick"] = [r for r in st.session_state.get("rc_pick", []) if r != pending]
                st.toast(f"Deleted {pending}")
            except GlyphError as e:
                st.session_state["rc_delete_error"] = str(e)  # shown after the rerun
            st.rerun()  # the table above still lists the run
        if c2.button("Keep it", key="rc_delete_no"):
            st.session_state["rc_delete_pending"] = None
            st.rerun()
        return
    c1, c2 = st.columns([3, 1])
    target = c1.selectbox("Run to delete", run_ids, index=None, key="rc_delete_target", placeholder="choose a run")
    c2.write("")
    if c2.button("Delete ...", icon=":material/delete:", disabled=target is None, key="rc_delete"):
        st.session_state["rc_delete_pending"] = target
        st.rerun()


VIEWS = (
    ("app_pages/evaluate.py", "Evaluate", ":material/grid_on:"),
    ("app_pages/draw.py", "Draw", ":material/draw:"),
    ("app_pages/activations.py", "Activations", ":material/show_chart:"),
)
LINKED_RUNS_MAX = 6  # runs whose view links are listed under the table
LOG_LINES = 200  # lines of a run's train.log shown
MAP_PER_CLASS = 10  # images per class on the embedding map (52 x 10 = 520 points)


def run_links(infos: list[runs.RunInfo]) -> None:
    """For each run ticked in the table (else the newest): links to its Evaluate / Draw / Activations views."""
    checkpointed = {r.run_id for r in infos if (r.path / runs.BEST_CKPT).is_file()}
    picked = [r for r in st.session_state.get("rc_pick", []) if r in checkpointed]
    shown = picked[:LINKED_RUNS_MAX] or [r.run_id for r in infos if r.run_id in checkpointed][:1]
    for run_id in shown:
        row = st.container(horizontal=True, vertical_alignment="center", key=f"rc_links_{run_id}")
        row.markdown(f"`{run_id}`")
        for page, label, icon in VIEWS:
            row.page_link(page, label=label, icon=icon, query_params={"run": run_id})
    if not picked:
        st.caption("The newest run's views; tick runs in the table for theirs.")


def log_flow(infos: list[runs.RunInfo]) -> None:
    """The tail of one run's train.log."""
    ids = [r.run_id for r in infos if not r.is_starter]
    if not ids:
        st.caption("No trained run yet.")
        return
    picked = [r for r in st.session_state.get("rc_pick", []) if r in ids]
    run_id = st.selectbox("Run", ids, index=ids.index(picked[0]) if picked else 0, key="rc_log_run")
    info = next(r for r in infos if r.run_id == run_id)
    text = log_tail(info.path, LOG_LINES)
    if text:
        st.code(text, language="text", height=320)
        st.caption(f"the last {LOG_LINES} lines at most of {info.path / runs.LOG_FILE}")
    else:
        st.caption(f"{run_id} has no train.log (runs launched from this app or `glyphcore train --detach` write one).")


@st.cache_data(show_spinner="Computing the model's features on a sample of the split ...", max_entries=8)
def embedding_data(run_dir: str, ckpt_stamp: tuple, split: str, per_class: int):
    """PCA of a run's penultimate features on ``per_class`` images per class of ``split``:
    (points frame, share of variance on the two axes, the sample's images)."""
    from glyphcore.infer import load_predictor
    from glyphcore.infer.embedding import split_features

    sf = split_features(load_predictor(run_dir), split, per_class=per_class)
    coords, share = pca_2d(sf.features)
    return embedding_frame(coords, sf.labels, sf.preds, sf.classes, sf.indices), share, sf.images


def embedding_flow(chosen: list[runs.RunInfo]) -> None:
    """One run's embedding map; a click on a point shows its glyph."""
    from glyphcore.data import list_splits

    ready = [r for r in chosen if (r.path / runs.BEST_CKPT).is_file()]
    if not ready:
        st.caption("None of these runs has a checkpoint yet.")
        return
    cols = st.columns([2, 1, 1], vertical_alignment="bottom")
    run_id = cols[0].selectbox("Run", [r.run_id for r in ready], key="rc_map_run")
    info = next(r for r in ready if r.run_id == run_id)
    try:
        splits = list_splits(info.data or "glyphs-52")
    except GlyphError as e:
        st.caption(f"The map needs {run_id}'s data set: {e}")
        return
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
    try:
        frame, share, images = embedding_data(
            str(info.path), runs.file_stamp(info.path / runs.BEST_CKPT), split, MAP_PER_CLASS
        )
    except GlyphError as e:
        st.error(str(e))
        return
    left, right = st.columns([3, 1], gap="medium")
    event = left.altair_chart(
        embedding_chart(frame, color_by=color_by), on_select="rerun", width="stretch", key=f"rc_map_{run_id}_{split}"
    )
    left.caption(
        f"{len(frame)} images of {split} ({MAP_PER_CLASS} per class), their penultimate features projected "
        f"on the first two principal axes ({share[0]:.0%} and {share[1]:.0%} of the variance); "
        f"{int((frame['outcome'] == 'wrong').sum())} predicted wrong. Click a point to see its glyph."
    )
    state: Any = event or {}  # {"selection": {"point": [{"index": ...}]}} after a click
    points = (state.get("selection") or {}).get(EMBEDDING_SELECTION) or []
    with right:
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


def export_bytes(run_dir: str, fmt: str) -> bytes:
    """The run's best.pt in format ``fmt``, built into its export/ folder on the first click and
    again only after the checkpoint changed (``fresh_export`` compares modification times)."""
    from glyphcore.infer.run_export import fresh_export

    return fresh_export(run_dir, fmt).read_bytes()


def download_flow(infos: list[runs.RunInfo]) -> None:
    """Download buttons for one run: the native best.pt and each export format (built on the click)."""
    from glyphcore.models import export

    ready = [r for r in infos if (r.path / runs.BEST_CKPT).is_file()]
    if not ready:
        st.caption("No run has a best.pt yet: it is written at the end of a run's first epoch.")
        return
    ids = [r.run_id for r in ready]
    picked = [r for r in st.session_state.get("rc_pick", []) if r in ids]
    if st.session_state.get("rc_download_target") not in ids:
        st.session_state["rc_download_target"] = picked[0] if picked else ids[0]  # the run picked below
    run_id = st.selectbox("Run", ids, key="rc_download_target")
    info = next(r for r in ready if r.run_id == run_id)
    ckpt = info.path / runs.BEST_CKPT
    cols = st.columns(1 + len(export.FORMATS))
    cols[0].download_button(
        "best.pt",
        data=ckpt.read_bytes,
        file_name=f"{run_id}-best.pt",
        key="rc_dl_pt",
        icon=":material/download:",
        help="the native checkpoint (torch.load(weights_only=True))",
    )
    for col, fmt in zip(cols[1:], export.FORMATS):
        missing = export.missing_packages(fmt)
        target = export.default_export_path(ckpt, fmt)
        col.download_button(
            export.FORMATS[fmt].label,
            data=functools.partial(export_bytes, str(info.path), fmt),
            file_name=target.name,
            key=f"rc_dl_{fmt}",
            icon=":material/download:",
            disabled=bool(missing),
            help=f"needs {', '.join(missing)}: {export.INSTALL_HINT}"
            if missing
            else f"built on the click into {target}",
        )
    st.caption(
        f"{run_id}: best epoch {info.best_epoch or '-'} · the exports take the model's input as float32 "
        f"N x C x H x W in [0, 1] and carry the class list as metadata (`glyphcore export --help`)"
    )


st.title("Runs & Compare")
infos = runs.list_runs()
if not infos:
    st.info("No runs yet.")
    st.page_link("app_pages/train.py", label="Launch one on the Train page", icon=":material/model_training:")
    st.stop()

# --- the table -----------------------------------------------------------------------------------
filters = st.container(horizontal=True, key="row_rc_filters")  # wraps on a narrow screen
c1, c2, c3 = filters.container(), filters.container(), filters.container()
query = c1.text_input("Filter", key="rc_filter", placeholder="run id, model or activation contains ...")
states = sorted({r.state for r in infos})
shown_states = c2.multiselect("State", states, key="rc_states", placeholder="all states")
models = sorted({r.model for r in infos if r.model})
shown_models = c3.multiselect("Model", models, key="rc_models", placeholder="all models")
q = query.strip().lower()
shown = [
    r
    for r in infos
    if (not q or q in " ".join(str(x) for x in (r.run_id, r.model, r.activation, r.name or "")).lower())
    and (not shown_states or r.state in shown_states)
    and (not shown_models or r.model in shown_models)
]
rows = [compare.run_row(r) for r in shown]
drawings_column(shown, rows)
st.session_state["rc_table_ids"] = [r.run_id for r in shown]
st.dataframe(
    rows,
    hide_index=True,
    key="rc_table",
    on_select=on_table_select,
    selection_mode="multi-row",
    column_config={
        "params": st.column_config.NumberColumn(format="localized"),
        "best val acc (%)": st.column_config.NumberColumn(format="%.2f"),
        "wall s": None,  # sorting helper; "wall time" is the readable one
    },
)
st.caption(f"{len(shown)} of {len(infos)} runs · click column headers to sort · tick rows to compare them")

run_links(shown)
if st.session_state.get("rc_delete_error"):
    st.error(st.session_state.pop("rc_delete_error"))
with st.expander("Delete a run", expanded=bool(st.session_state.get("rc_delete_pending"))):
    delete_flow([r.run_id for r in infos if not r.is_starter])
with st.expander("Download a run's model"):
    download_flow(infos)
with st.expander("Training log (train.log)"):
    log_flow(infos)

# --- compare -------------------------------------------------------------------------------------
st.header("Compare")
by_id = {r.run_id: r for r in infos}
st.session_state["rc_pick"] = [r for r in st.session_state.get("rc_pick", []) if r in by_id]
picked = st.multiselect("Runs to compare", list(by_id), key="rc_pick", placeholder="pick two or more runs")
if not picked:
    st.info("Pick runs here or tick them in the table.")
    st.stop()
chosen = [by_id[r] for r in picked]
configs = {r.run_id: shared.run_config(r) for r in chosen}
events = {r.run_id: shared.run_metrics(r) for r in chosen}

c1, c2 = st.columns([1, 2])
color_by = c1.selectbox("Colour by", ("run",) + GROUP_KEYS, key="rc_color_by")
splits = c2.multiselect(
    "Curves",
    [viz.TRAIN, viz.VAL, viz.TRAIN_STEPS],
    default=[viz.TRAIN, viz.VAL],
    key="rc_splits",
    help="train (per step): the loss of every logged optimizer step",
)
c3, c4 = st.columns([1, 2])
x_axis = c3.selectbox("x axis", list(viz.X_AXES), format_func=lambda k: viz.X_AXES[k], key="rc_x") or "epoch"
smoothing = c4.slider(
    "Smoothing",
    0.0,
    0.99,
    0.0,
    0.01,
    key="rc_smooth",
    help="TensorBoard's exponential moving average (debiased); 0 = the raw values",
)
groups = (
    None if color_by == "run" else {r: f"{color_by}={compare.value_text(configs[r].get(color_by))}" for r in picked}
)
batch_sizes = {r: configs[r].get("batch_size") for r in picked}
curves = viz.curves_frame(events, groups, batch_sizes=batch_sizes, step_curves=viz.TRAIN_STEPS in splits)
curves = viz.smooth_curves(curves, smoothing)
if curves.empty:
    st.info("These runs have no finished epoch yet.")
else:
    color = "run" if color_by == "run" else "group"
    # one above the other: each chart gets the page's width, its legend below it (nothing cut at 900 px)
    for metric in ("loss", "acc"):
        st.altair_chart(viz.overlay_curves_chart(curves, metric, color=color, splits=splits, x=x_axis), width="stretch")
    st.caption(
        f"{curves['run'].nunique()} runs overlaid, coloured by {color_by}; dashed = train, solid = val, "
        f"dotted = train per step" + (f"; smoothed ({smoothing:.2f})" if smoothing else "")
    )

st.subheader("Settings vs results")
if len(picked) < 2:
    st.caption("Pick at least two runs to see their settings against their results.")
else:
    setting_keys = [row["setting"] for row in compare.config_differences(configs)]
    scores = {
        r.run_id: {
            "best val acc (%)": round(100 * r.best_val_acc, 2) if r.best_val_acc is not None else None,
            "best val loss": round(r.best_val_loss, 4) if r.best_val_loss is not None else None,
        }
        for r in chosen
    }
    hp = hparams_frame(configs, scores, keys=setting_keys)
    if hp.empty:
        st.caption("These runs have no settings or results to compare yet.")
    else:
        st.altair_chart(
            parallel_coordinates_chart(hp, color_by="best val acc (%)", theme=st.context.theme.type), width="stretch"
        )
        st.caption(
            "One line per run across the settings that differ and the results; each axis spans its own "
            "range (text settings in sorted order); colour: best val accuracy, orange lowest, blue highest."
        )

st.subheader("Config differences")
diffs = compare.config_differences(configs)
if len(picked) < 2:
    st.caption("Pick at least two runs to see their differences.")
elif not diffs:
    st.info("These runs have the same settings.")
else:
    st.dataframe(diffs, hide_index=True)

st.subheader("One-factor ablations")
results = {
    r.run_id: {
        "best val acc (%)": round(100 * r.best_val_acc, 2) if r.best_val_acc is not None else None,
        "best val loss": round(r.best_val_loss, 4) if r.best_val_loss is not None else None,
        "best epoch": r.best_epoch,
        "params": r.params,
        "wall time": compare.run_row(r)["wall time"],
    }
    for r in chosen
}
ablations = compare.one_factor_ablations(configs, results)
if ablations:
    st.dataframe(
        ablations,
        hide_index=True,
        column_config={
            "params": st.column_config.NumberColumn(format="localized"),
            "best val acc (%)": st.column_config.NumberColumn(format="%.2f"),
        },
    )
else:
    st.caption(
        "No two of these runs differ in exactly one of " + ", ".join(compare.ABLATION_KEYS) + " with all else equal."
    )

st.subheader("Report cards")
cards = [compare.report_card(r, events[r.run_id]) for r in chosen]
st.dataframe(cards, hide_index=True)
st.caption("Markdown rows, ready to paste into a report (copy button at the top right):")
st.code(compare.markdown_table(cards), language="text")

st.subheader("Embedding map")
embedding_flow(chosen)
