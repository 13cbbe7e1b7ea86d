"""Evaluate: how a run does on a split, where it goes wrong, and where two runs disagree.

``glyphcore.evaluate.evaluate_run`` does the work and keeps it in the run's eval/ folder; this page
caches the result per run, split and checkpoint version and draws it. ``/evaluate?run=<run id>``
opens a run directly (the newest run otherwise).

Test seam: the confusion matrix is ``st.altair_chart(..., on_select="rerun", key=cm_key(run, split))``;
its value in ``st.session_state`` is ``{"selection": {"cell": [{"true": "I", "pred": "l"}]}}`` after a
click (``{"cell": {}}`` when nothing is selected). AppTest injects a click by setting that key.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import shared, trust
from glyphcore import runs, viz
from glyphcore.data import source_stamp
from glyphcore.errors import GlyphError
from glyphcore.evaluate import compare_predictions, stored_splits

GALLERY_MAX = 48  # images per gallery
ERRORS_ONLY_ABOVE = 0.9  # the confusion matrix opens with "errors only" on for a model more accurate than this
SPLITS = ("test", "valid", "seen", "train")  # offered when the data set has them, in this order
MERGE_LABELS = {
    "case_insensitive": "case-insensitive",
    "I/l": "I and l merged",
    "size_only": "size-only case pairs merged",
    "I/l+size_only": "I/l + size-only merged",
}


@st.cache_data(show_spinner=False)
def available_splits(source: str, data_key: str) -> list[str]:
    from glyphcore.data import list_splits

    have = list_splits(source)
    return [s for s in SPLITS if s in have] + [s for s in have if s not in SPLITS]


def cm_key(run_id: str, split: str) -> str:
    """Widget key of the confusion matrix (per run and split, so a selection does not leak)."""
    return f"cm-{run_id}-{split}"


def gallery(images, indices: np.ndarray, captions: list[str], width: int = 72) -> None:
    """Show the split's images at ``indices`` (at most GALLERY_MAX) with their captions.

    ``images`` is None when the data set is not on this machine: the captions are listed instead.
    """
    idx = np.asarray(indices)[:GALLERY_MAX]
    if idx.size == 0:
        st.caption("no images")
        return
    if images is None:
        st.caption(
            "build the data set to see these images (`python -m glyphcore data build`): "
            + " | ".join(f"#{i} {c}" for i, c in zip(idx, captions))
        )
        return
    order = np.argsort(idx)  # a memmap reads fastest in order
    rows = np.empty((idx.size, *images.shape[1:]), dtype=np.uint8)
    rows[order] = images[idx[order]]
    pictures = [r[0] if r.shape[0] == 1 else r.transpose(1, 2, 0) for r in rows]  # grey H x W or RGB H x W x 3
    st.image(pictures, caption=captions[: idx.size], width=width, output_format="PNG")


def selected_cell(event) -> tuple[str, str] | None:
    """(true, pred) of the clicked confusion cell, or None (an empty selection is ``{}``)."""
    points = ((event or {}).get("selection") or {}).get(viz.CONFUSION_SELECTION) or []
    if isinstance(points, list) and points and isinstance(points[0], dict):
        p = points[0]
        if "true" in p and "pred" in p:
            return str(p["true"]), str(p["pred"])
    return None


def pick_run() -> tuple[str, runs.RunInfo, dict, Any]:
    """The run picker (``?run=<id>`` preselects one); stops when no run has a checkpoint yet."""
    checkpointed = runs.checkpointed_runs()
    if not checkpointed:
        st.info("No run with a checkpoint yet: train one on the **Train** page (or add the starter model).")
        st.stop()
    cols = st.columns([3, 1], vertical_alignment="bottom")
    linked = st.query_params.get("run")  # /evaluate?run=<run id> opens that run
    run_ids = list(checkpointed)
    run_id = cols[0].selectbox(
        "Run",
        run_ids,
        index=run_ids.index(linked) if linked in checkpointed else 0,
        format_func=lambda r: runs.run_label(checkpointed[r]),
        key="eval_run",
    )
    return run_id, checkpointed[run_id], checkpointed, cols[1]


def pick_split(run_id: str, info, source: str, where) -> tuple[str, str]:
    """(split, why the images cannot be shown or ""): the splits of the run's data set, or of its stored
    evaluations when the data set is not on this machine."""
    missing_data = ""
    try:
        splits = available_splits(source, source_stamp(source))
    except GlyphError as e:
        # A fresh install without the data set: the starter's evaluations come with it in eval/<split>/.
        missing_data = str(e)
        stored = stored_splits(info.path)
        splits = [s for s in SPLITS if s in stored]
        if not splits:
            st.error(f"The data set of {run_id} ({source}) is not available: {e}")
            st.stop()
        st.warning(f"Stored evaluations only, without images: {e}")
    return where.selectbox("Split", splits, key="eval_split"), missing_data


def load_result(run_id: str, info, source: str, split: str, missing_data: str):
    """(the evaluation, the split's images or None); warns when the run is still training or unsaved."""
    try:
        result = shared.evaluation(str(info.path), split, runs.file_stamp(info.path / runs.BEST_CKPT))
        images = None if missing_data else shared.load_set(source, split, source_stamp(source)).images
    except GlyphError as e:
        st.error(str(e))
        st.stop()
    if info.state in runs.ACTIVE_STATES:
        st.warning(
            f"**{run_id} is still training** (epoch {info.epoch} of {info.epochs or '?'} done): these figures are "
            f"its best checkpoint so far ({result.checkpoint.name}) and change as it trains.",
            icon=":material/hourglass_top:",
        )
    if result.not_saved:
        st.warning(f"{result.not_saved}. The figures below are computed afresh each time.")
    return result, images


def figures(result) -> None:
    """The accuracy line, the merged accuracies and the error count."""
    st.subheader(result.accuracy_line)
    merged = result.merged
    # a row that wraps: each figure as wide as its label, so no label is cut on a narrow screen
    row = st.container(horizontal=True, gap="large", key="eval_figures")
    row.metric("accuracy", f"{result.accuracy:.2%}", help="share of images predicted right", width="content")
    for name in MERGE_LABELS:
        if name in merged:
            row.metric(MERGE_LABELS[name], f"{merged[name]:.2%}", width="content")
    errors = int(np.sum(result.labels != result.preds))
    row.metric(
        "errors",
        f"{errors:,}",
        help=f"{result.case_swap_share:.0%} of them only swap the letter's case",
        width="content",
    )
    st.caption(
        f"{result.case_swap_share:.0%} of the errors are case swaps of the right letter (c for C). "
        f"I and l are the same stroke in many sans fonts, and c/C, o/O, s/S, ... differ by size only: the merged "
        f"accuracies count those pairs as one class. Mean loss {result.mean_loss:.4f} · "
        f"checkpoint {result.checkpoint.name} · "
        f"{'from eval/ cache' if result.cached else f'evaluated in {result.seconds:.1f} s'}"
    )


def confusion_section(result, key: str, table_key: str, pairs: list) -> tuple[tuple[str, str] | None, bool]:
    """The clickable confusion matrix; returns (the cell to show, errors-only on)."""
    st.subheader("Confusion matrix")
    toggles = st.container(horizontal=True, gap="large")  # side by side, each as wide as its label
    normalize = toggles.toggle("row-normalised (share of each true class)", key="cm_norm")
    # a good model's diagonal (hundreds per cell) washes its few mistakes out of one shared colour scale
    errors_only = toggles.toggle(
        "errors only",
        value=result.accuracy > ERRORS_ONLY_ABOVE,
        key="cm_errors",
        help="grey the diagonal (the right answers): the colour scale spans the mistakes only",
    )
    # the cell to show: the one clicked last, in the matrix or in the most-confused table (whose state from
    # the previous run is in session_state before the table is drawn below)
    row_sel = (st.session_state.get(table_key) or {}).get("selection", {}).get("rows", []) if pairs else []
    row_cell = (pairs[row_sel[0]][0], pairs[row_sel[0]][1]) if row_sel and row_sel[0] < len(pairs) else None
    with st.container(key="eval_matrix"):  # scrolls sideways when the page is narrower than the matrix
        chart = viz.confusion_matrix_chart(
            result.confusion, result.classes, normalize=normalize, errors_only=errors_only
        )
        event = st.altair_chart(chart, on_select="rerun", key=key, width="content")
    chart_cell = selected_cell(event)
    last = st.session_state.get("eval_last_cells", {}).get(key, (None, None))
    cell: tuple[str, str] | None
    if row_cell is not None and row_cell != last[1]:
        cell = row_cell
    elif chart_cell != last[0]:
        cell = chart_cell
    else:
        cell = st.session_state.get("eval_cell", {}).get(key, chart_cell)
    st.session_state.setdefault("eval_last_cells", {})[key] = (chart_cell, row_cell)
    st.session_state.setdefault("eval_cell", {})[key] = cell
    return cell, errors_only


def cell_gallery(result, images, cell: tuple[str, str] | None, errors_only: bool) -> None:
    """How to read the matrix, and the images of the chosen cell."""
    st.caption(
        "Rows: the true class; columns: the prediction. Click a cell (or a row of *Most confused*) to see its "
        "images; double-click to clear."
        + (" Grey: the diagonal (right answers), left out of the colour scale." if errors_only else "")
    )
    if cell is None:
        st.info("Click a cell of the matrix to see the images in it.")
        return
    true, pred = cell
    idx = result.cell_indices(true, pred)
    # letters in code spans: a monospace face tells I from l; their names say it in any font
    st.markdown(f"#### true `{true}` → predicted `{pred}`: {idx.size:,} image{'s' if idx.size != 1 else ''}")
    st.caption(
        f"{viz.letter_name(true)} → {viz.letter_name(pred)}"
        + (f" · the {GALLERY_MAX} with the largest loss" if idx.size > GALLERY_MAX else "")
    )
    captions = [
        f"p({true})={result.p_true[i]:.2f} · p({pred})={result.p_pred[i]:.2f}"
        if true != pred
        else f"p={result.p_true[i]:.2f}"
        for i in idx[:GALLERY_MAX]
    ]
    gallery(images, idx, captions, width=96)


def tables_section(result, table_key: str, pairs: list) -> None:
    """Per-class precision, recall and F1 beside the most confused pairs (a row opens its images)."""
    tables = st.container(horizontal=True, gap="large")  # side by side when wide, stacked when narrow
    left, right = tables.container(key="eval_perclass"), tables.container(key="eval_confused")
    with left:
        st.subheader("Per class")
        st.dataframe(
            pd.DataFrame(result.per_class),
            hide_index=True,
            width="stretch",
            height=360,
            column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("precision", "recall", "f1")},
        )
    with right:
        st.subheader("Most confused")
        if not pairs:
            st.success("No confusions at all on this split.")
            return
        st.dataframe(
            pd.DataFrame(pairs, columns=["true", "predicted", "images"]),
            hide_index=True,
            width="stretch",
            height=360,
            key=table_key,
            on_select="rerun",
            selection_mode="single-row",
        )
        st.caption("Tick a row to see its images above.")


def top_losses(result, images) -> None:
    """The images the model got most wrong."""
    st.subheader("Top losses")
    st.caption("The images the model got most wrong (largest cross-entropy): true → predicted, loss, p(true).")
    losses = result.top_losses(k=24)
    gallery(
        images,
        np.array([t.index for t in losses], dtype=np.int64),
        [f"{t.actual}→{t.predicted} · {t.loss:.2f} · p={t.p_true:.2f}" for t in losses],
        width=96,
    )


def compare_section(result, images, run_id: str, split: str, source: str, checkpointed: dict) -> None:
    """Run A vs run B on the same split: who is right where, and the images where they differ."""
    st.subheader("Run A vs run B")
    others = [r for r in checkpointed if r != run_id and (checkpointed[r].data or "glyphs-52") == source]
    if not others:
        st.caption(f"Train another run on {source} to see where two runs disagree.")
        return
    other_id = st.selectbox(
        "Compare with", others, format_func=lambda r: runs.run_label(checkpointed[r]), key="eval_other"
    )
    other = checkpointed[other_id]
    try:
        result_b = shared.evaluation(str(other.path), split, runs.file_stamp(other.path / runs.BEST_CKPT))
        comp = compare_predictions(result, result_b)
    except GlyphError as e:
        st.error(str(e))
        return
    c = comp.counts
    m = st.container(horizontal=True, gap="large")  # wraps: each label whole, however long the run ids
    m.metric("both right", f"{c['both_right']:,}", width="content")
    m.metric(f"only A ({run_id}) right", f"{c['only_a_right']:,}", width="content")
    m.metric(f"only B ({other_id}) right", f"{c['only_b_right']:,}", width="content")
    m.metric("both wrong", f"{c['both_wrong_same'] + c['both_wrong_different']:,}", width="content")
    st.markdown(f"**{len(comp.indices):,}** images where A and B answer differently (true · A · B):")
    rows = comp.rows(limit=GALLERY_MAX)
    gallery(
        images,
        np.array([r["index"] for r in rows], dtype=np.int64),
        [f"{r['actual']} · A:{r['pred_a']} · B:{r['pred_b']}" for r in rows],
        width=96,
    )


st.title("Evaluate")
run_id, info, checkpointed, split_column = pick_run()
source = info.data or "glyphs-52"
split, missing_data = pick_split(run_id, info, source, split_column)
result, images = load_result(run_id, info, source, split, missing_data)
figures(result)
pairs = result.most_confused(min_count=1)[:20]
table_key = f"eval_confused-{run_id}-{split}"
cell, errors_only = confusion_section(result, cm_key(run_id, split), table_key, pairs)
cell_gallery(result, images, cell, errors_only)
tables_section(result, table_key, pairs)
trust_row = st.container(horizontal=True, gap="large")  # side by side when wide, stacked when narrow
family, calibration = trust_row.container(key="eval_family"), trust_row.container(key="eval_calibration")
with family:
    trust.family_section(result)
with calibration:
    stamp = runs.file_stamp(info.path / runs.BEST_CKPT)
    trust.calibration_section(result, calibrated=shared.predictor(str(info.path), stamp).calibration is not None)
top_losses(result, images)
compare_section(result, images, run_id, split, source, checkpointed)
