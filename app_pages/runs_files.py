"""Runs & Compare, a run's files: delete a run (only one that is not training), download its model
(best.pt or an export) and read the tail of its train.log. Each section follows the runs ticked in
the table: when the ticks change, it shows the first ticked run."""

from __future__ import annotations

import functools

import streamlit as st

from app_pages import shared
from glyphcore import runs
from glyphcore.errors import GlyphError
from glyphcore.runfolder.store import log_tail

LOG_LINES = 200  # lines of a run's train.log shown
TRAIN_PAGE = "app_pages/train.py"


def follow_pick(key: str, ids: list[str]) -> None:
    """Point the run selectbox ``key`` (options ``ids``) at the first ticked run whenever the ticks
    change; otherwise keep what the user chose there (or the first option when that is gone)."""
    picked = [r for r in st.session_state.get("rc_pick", []) if r in ids]
    seen = f"{key}_pick_seen"
    if picked and st.session_state.get(seen) != picked:
        st.session_state[key] = picked[0]
    elif st.session_state.get(key) not in ids:
        st.session_state[key] = ids[0]
    st.session_state[seen] = picked


def _confirm_delete(pending: str) -> None:
    st.warning(f"Delete run `{pending}` and all its files (checkpoints, metrics)? This cannot be undone.")
    row = st.container(horizontal=True)  # two buttons as wide as their labels
    if row.button("Yes, delete it", type="primary", key="rc_delete_yes"):
        st.session_state["rc_delete_pending"] = None
        try:
            runs.delete(pending)
            st.session_state["rc_pick"] = [r for r in st.session_state.get("rc_pick", []) if r != pending]
            st.toast(f"Deleted {pending}")
        except GlyphError as e:  # it started training between the two clicks
            st.session_state["rc_delete_error"] = str(e)  # shown after the rerun
        st.rerun()  # the table above still lists the run
    if row.button("Keep it", key="rc_delete_no"):
        st.session_state["rc_delete_pending"] = None
        st.rerun()


def _live_runs_note(live: list[runs.RunInfo]) -> None:
    """Why a training run is not offered, and where to stop it."""
    names = ", ".join(f"{shared.plain(r.run_id)} ({r.state})" for r in live)
    st.caption(
        f"Not offered while they train: {names}. Cancel a run on the Train page (its live panel has "
        f"Cancel) or with `python -m glyphcore runs cancel RUN`, then delete it here."
    )
    st.page_link(TRAIN_PAGE, label="Cancel on the Train page", icon=":material/stop:")


def delete_flow(infos: list[runs.RunInfo]) -> None:
    """Pick a run that is not training, ask for a confirmation, delete its folder."""
    pending = st.session_state.get("rc_delete_pending")
    if pending:
        _confirm_delete(pending)
        return
    candidates = [r for r in infos if not r.is_starter]
    live = [r for r in candidates if r.state in runs.ACTIVE_STATES]
    run_ids = [r.run_id for r in candidates if r.state not in runs.ACTIVE_STATES]
    c1, c2 = st.columns([3, 1])
    target = c1.selectbox("Run to delete", run_ids, index=None, key="rc_delete_target", placeholder="choose a run")
    c2.write("")
    if c2.button("Delete ...", icon=":material/delete:", disabled=target is None, key="rc_delete"):
        st.session_state["rc_delete_pending"] = target
        st.rerun()
    if live:
        _live_runs_note(live)


def export_bytes(run_dir: str, fmt: str) -> bytes:
    """The run's best.pt in format ``fmt``, built into its export/ folder on the first click and
    again only after the checkpoint changed (``fresh_export`` compares modification times)."""
    from glyphcore.infer.run_export import fresh_export

    return fresh_export(run_dir, fmt).read_bytes()


def _download_buttons(info: runs.RunInfo) -> None:
    from glyphcore.models import export

    ckpt = info.path / runs.BEST_CKPT
    row = st.container(horizontal=True)  # buttons as wide as their labels, wrapping when narrow
    row.download_button(
        "best.pt",
        data=ckpt.read_bytes,
        file_name=f"{info.run_id}-best.pt",
        key="rc_dl_pt",
        icon=":material/download:",
        help="the native checkpoint (torch.load(weights_only=True))",
    )
    for fmt in export.FORMATS:
        missing = export.missing_packages(fmt)
        target = export.default_export_path(ckpt, fmt)
        row.download_button(
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


def download_flow(infos: list[runs.RunInfo]) -> None:
    """Download buttons for one run (the first ticked one, else the newest): the native best.pt and
    each export format (built on the click)."""
    ready = [r for r in infos if (r.path / runs.BEST_CKPT).is_file()]
    if not ready:
        st.caption("No run has a best.pt yet: it is written at the end of a run's first epoch.")
        return
    ids = [r.run_id for r in ready]
    follow_pick("rc_download_target", ids)
    run_id = st.selectbox("Run", ids, key="rc_download_target")
    info = next(r for r in ready if r.run_id == run_id)
    _download_buttons(info)
    st.caption(
        f"{run_id}: best epoch {info.best_epoch or '-'} · the exports take the model's input as float32 "
        f"N x C x H x W in [0, 1] and carry the class list as metadata (`glyphcore export --help`)"
    )


def log_flow(infos: list[runs.RunInfo]) -> None:
    """The tail of one run's train.log (the first ticked run, else the newest)."""
    ids = [r.run_id for r in infos if not r.is_starter]
    if not ids:
        st.caption("No trained run yet.")
        return
    follow_pick("rc_log_run", ids)
    run_id = st.selectbox("Run", ids, key="rc_log_run")
    info = next(r for r in infos if r.run_id == run_id)
    text = log_tail(info.path, LOG_LINES)
    if text:
        st.code(text, language="text", height=320)
        st.caption(f"the last {LOG_LINES} lines at most of {info.path / runs.LOG_FILE}")
    else:
        st.caption(f"{run_id} has no train.log (runs launched from this app or `glyphcore train --detach` write one).")


def files_sections(infos: list[runs.RunInfo]) -> None:
    """The delete, download and log expanders under the table."""
    if st.session_state.get("rc_delete_error"):
        st.error(st.session_state.pop("rc_delete_error"))
    with st.expander("Delete a run", expanded=bool(st.session_state.get("rc_delete_pending"))):
        delete_flow(infos)
    with st.expander("Download a run's model"):
        download_flow(infos)
    with st.expander("Training log (train.log)"):
        log_flow(infos)
