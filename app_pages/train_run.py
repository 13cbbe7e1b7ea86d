"""The Train page's panel of one run: progress, a clock that ticks while it runs, live curves, its
last log lines, Cancel and Resume; read from the run's files on each tick of the monitor. Not a page."""

from __future__ import annotations

import streamlit as st

from glyphcore import runs, viz
from glyphcore.errors import GlyphError
from glyphcore.timefmt import clock_text, time_of_day_text

__all__ = ["run_panel", "STATE_ICON"]

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


def metrics_of(run_id: str) -> list[dict]:
    """The run's metrics records, read incrementally (only the bytes added since the last tick)."""
    tails = st.session_state.setdefault("tr_metrics", {})
    tail = tails.setdefault(run_id, runs.MetricsTail(run_id))
    return tail.read()


def _act(label: str, icon: str, key: str, action, done: str) -> None:
    """A button that runs ``action()`` and says ``done`` (or the error)."""
    if st.button(label, icon=icon, key=key):
        try:
            action()
            st.toast(done)
        except GlyphError as e:
            st.error(str(e))


def _head(info: runs.RunInfo) -> None:
    """The run's id and state, device and message, Cancel and Resume."""
    head, buttons = st.columns([5, 2])
    head.markdown(f"#### {STATE_ICON.get(info.state, '')} `{info.run_id}` — {info.state}")
    head.caption(" · ".join(x for x in [f"device: {info.device}" if info.device else "", info.message] if x))
    with buttons:
        if info.state in runs.ACTIVE_STATES:
            _act(
                "Cancel",
                ":material/stop:",
                f"tr_cancel_{info.run_id}",
                lambda: runs.stop(info.run_id),
                f"Cancelling {info.run_id}",
            )
        if runs.can_resume(info.status):
            resume = lambda: runs.resume(info.run_id)  # noqa: E731
            _act("Resume", ":material/play_arrow:", f"tr_resume_{info.run_id}", resume, f"Resuming {info.run_id}")


def _figures(info: runs.RunInfo) -> None:
    """Progress bar, elapsed clock (ticking while it runs), ETA, speed, best accuracy."""
    progress = runs.run_progress(info)
    st.progress(progress.fraction, text=progress.text)
    ips = progress.images_per_s
    figures = st.container(horizontal=True, gap="large", key=f"tr_figures_{info.run_id}")  # wraps when narrow
    figures.metric("Elapsed", clock_text(runs.elapsed_now(info.status or {}, info.state)), width="content")
    figures.metric("ETA", clock_text(progress.eta_s), width="content")
    figures.metric("Images/s", f"{ips:,.0f}" if ips else "-", width="content")
    best = info.best_val_acc
    figures.metric(
        "Best val acc",
        f"{100 * best:.2f}%" if best is not None else "-",
        width="content",
        help=f"epoch {info.best_epoch}" if info.best_epoch else None,
    )


def _curves(info: runs.RunInfo, events: list[dict]) -> None:
    """Loss and accuracy as they grow; while it runs the x axis spans every planned epoch."""
    steps, epochs_df = viz.metrics_frames(events, steps_per_epoch=info.status.get("steps_per_epoch"))
    if steps.empty and epochs_df.empty:
        st.caption("Waiting for the first metrics ...")
        return
    span = (int(info.epochs or 0) or None) if info.state in runs.ACTIVE_STATES else None
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


def run_panel(info: runs.RunInfo) -> None:
    """One run: head, figures, curves and its last log lines (shown as text)."""
    events = metrics_of(info.run_id)
    _head(info)
    _figures(info)
    _curves(info, events)
    logs = [e for e in events if e.get("event") in ("log", "end")]
    if logs:
        lines = [
            time_of_day_text(e.get("time")) + " " + str(e.get("message") or f"run ended: {e.get('state')}")
            for e in logs[-LOG_LINES:]
        ]
        st.code("\n".join(lines), language=None, wrap_lines=True)
