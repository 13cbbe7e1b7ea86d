"""Runs & Compare: every run in a sortable, filterable table (delete after a confirmation; download
a run's model as its checkpoint or as ONNX / .pt2 / safetensors); pick several runs for overlaid
curves, their config differences, a one-factor ablation table and report cards that copy as Markdown
rows.
"""

from __future__ import annotations

import functools

import streamlit as st

from app_pages import shared
from glyphcore import runs, viz
from glyphcore.runs import compare
from glyphcore.errors import GlyphError


GROUP_KEYS = ("activation", "batchnorm", "optimizer", "lr", "model", "augment", "schedule", "batch_size",
              "dropout", "seed", "data")  # fmt: skip
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


FORMAT_LABELS = {"onnx": "ONNX", "pt2": "torch.export (.pt2)", "safetensors": "safetensors"}


def export_bytes(run_dir: str, fmt: str) -> bytes:
    """The run's best.pt in format ``fmt``, built into its export/ folder on the first click and
    again only after the checkpoint changed (``fresh_export`` compares modification times)."""
    from glyphcore.models.export import fresh_export

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
    cols[0].download_button("best.pt", data=ckpt.read_bytes, file_name=f"{run_id}-best.pt", key="rc_dl_pt",
                            icon=":material/download:", help="the native checkpoint (torch.load(weights_only=True))")
    for col, fmt in zip(cols[1:], export.FORMATS):
        missing = export.missing_packages(fmt)
        target = export.default_export_path(ckpt, fmt)
        col.download_button(
            FORMAT_LABELS[fmt], data=functools.partial(export_bytes, str(info.path), fmt), file_name=target.name,
            key=f"rc_dl_{fmt}", icon=":material/download:", disabled=bool(missing),
            help=f"needs {', '.join(missing)}: {export.INSTALL_HINT}" if missing
            else f"built on the click into {target}",
        )
    st.caption(f"{run_id}: best epoch {info.best_epoch or '-'} · the exports take the model's input as float32 "
               f"N x C x H x W in [0, 1] and carry the class list as metadata (`glyphcore export --help`)")


st.title("Runs & Compare")
infos = runs.list_runs()
if not infos:
    st.info("No runs yet.")
    st.page_link("app_pages/train.py", label="Launch one on the Train page", icon=":material/model_training:")
    st.stop()

# --- the table -----------------------------------------------------------------------------------
c1, c2, c3 = st.columns([2, 2, 2])
query = c1.text_input("Filter", key="rc_filter", placeholder="run id, model or activation contains ...")
states = sorted({r.state for r in infos})
shown_states = c2.multiselect("State", states, key="rc_states", placeholder="all states")
models = sorted({r.model for r in infos if r.model})
shown_models = c3.multiselect("Model", models, key="rc_models", placeholder="all models")
q = query.strip().lower()
shown = [
    r for r in infos
    if (not q or q in " ".join(str(x) for x in (r.run_id, r.model, r.activation, r.name or "")).lower())
    and (not shown_states or r.state in shown_states)
    and (not shown_models or r.model in shown_models)
]  # fmt: skip
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

if st.session_state.get("rc_delete_error"):
    st.error(st.session_state.pop("rc_delete_error"))
with st.expander("Delete a run", expanded=bool(st.session_state.get("rc_delete_pending"))):
    delete_flow([r.run_id for r in infos if not r.is_starter])
with st.expander("Download a run's model"):
    download_flow(infos)

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

c1, c2 = st.columns([1, 3])
color_by = c1.selectbox("Colour by", ("run",) + GROUP_KEYS, key="rc_color_by")
splits = c2.multiselect("Curves", ["train", "val"], default=["train", "val"], key="rc_splits")
groups = None if color_by == "run" else {
    r: f"{color_by}={compare.value_text(configs[r].get(color_by))}" for r in picked
}  # fmt: skip
curves = viz.curves_frame(events, groups)
if curves.empty:
    st.info("These runs have no finished epoch yet.")
else:
    left, right = st.columns(2)
    color = "run" if color_by == "run" else "group"
    left.altair_chart(viz.overlay_curves_chart(curves, "loss", color=color, splits=splits), width="stretch")
    right.altair_chart(viz.overlay_curves_chart(curves, "acc", color=color, splits=splits), width="stretch")
    st.caption(f"{curves['run'].nunique()} runs overlaid ({', '.join(dict.fromkeys(curves['run']))}), "
               f"coloured by {color_by}; dashed = train, solid = val")  # fmt: skip

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
    st.dataframe(ablations, hide_index=True, column_config={
        "params": st.column_config.NumberColumn(format="localized"),
        "best val acc (%)": st.column_config.NumberColumn(format="%.2f"),
    })  # fmt: skip
else:
    st.caption(
        "No two of these runs differ in exactly one of " + ", ".join(compare.ABLATION_KEYS) + " with all else equal."
    )

st.subheader("Report cards")
cards = [compare.report_card(r, events[r.run_id]) for r in chosen]
st.dataframe(cards, hide_index=True)
st.caption("Markdown rows, ready to paste into a report (copy button at the top right):")
st.code(compare.markdown_table(cards), language="text")
