"""Draw: draw a letter (or upload an image) and see what every model thinks, and why.

The canvas is the glyph frame scaled to 280 px: its guide lines (cap line, x-height, baseline) come
from ``glyphcore.frame.guide_rows`` and ``glyphcore.infer.preprocess`` maps them back onto the frame,
so a letter drawn on the lines lands where the training glyphs sit.

``/Draw?run=<run id>`` (repeatable) asks those runs; by default the starter model is asked.

Test seam: the canvas is a Streamlit component whose value lives in ``st.session_state[canvas_key()]``
(``"canvas-0"`` until Clear is pressed) as ``{"drawing": {"raw": <fabric json>, "data": <PNG data
URL>}}``. AppTest injects a drawing by setting that key before a run; the page reads it back through
``st_canvas`` exactly as it reads a real browser's drawing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image
from streamlit_drawable_canvas import st_canvas  # only here: it needs a running Streamlit (components v2)

from app_pages import shared, trust
from app_pages.canvas_keys import undo_controls
from glyphcore import runs, viz
from glyphcore.data.drawings import delete_drawing, drawings_stamp, list_drawings
from glyphcore.errors import GlyphError
from glyphcore.frame import CANVAS_SIZE, CLASSES, STROKE_WIDTH, guide_rows
from glyphcore.infer import Prepared, feature_maps, preprocess, saliency
from glyphcore.infer.drawings import keep_drawing
from glyphcore.infer.neighbours import SPACES, nearest_glyphs

UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
MAX_RUNS_SIDE_BY_SIDE = 2
INPUT_WIDTH = CANVAS_SIZE + 24  # px: the canvas column never gets narrower than the canvas
# The canvas (key draw_input) and the answers (draw_answers, draw_run_<i>) sit in wrapping rows that
# app_pages/layout.py gives minimum widths: on a narrow screen the answers go below the canvas.


@st.cache_data(show_spinner=False)
def guide_image(size: int) -> Image.Image:
    return Image.fromarray(viz.guide_lines_image(guide_rows(size), size))


def canvas_key() -> str:
    """The canvas's widget key; Clear bumps the generation, which mounts a fresh, empty canvas."""
    return f"canvas-{st.session_state.get('canvas_gen', 0)}"


def clear_canvas() -> None:
    st.session_state["canvas_gen"] = st.session_state.get("canvas_gen", 0) + 1


def distance_text(d: float) -> str:
    """A neighbour's distance with two significant digits (cosine distances of a good model are ~0.001)."""
    return "0" if d == 0 else f"{d:.2g}"


def big_frame(a: np.ndarray, scale: int = 2) -> np.ndarray:
    """A small grey image enlarged with crisp pixels (st.image would blur it)."""
    return np.asarray(a).repeat(scale, axis=0).repeat(scale, axis=1)


def show_run(info: runs.RunInfo, image: np.ndarray | bytes, space: str, show_maps: bool) -> None:
    """One run's answer: the prediction, top-5, its exact input, saliency, neighbours, feature maps."""
    try:
        pred = shared.predictor(str(info.path), runs.file_stamp(info.path / runs.BEST_CKPT))
        prepared = pred.prepare(image)
        if prepared.empty:
            return
        [answer] = pred.predict(prepared, topk=5)
        cam = saliency(pred, prepared)
    except GlyphError as e:
        st.error(f"{info.run_id}: {e}")
        return
    # the answer and the bars wrap under each other when the panel is narrow (no run id over 5 lines)
    top = st.container(horizontal=True, vertical_alignment="center", gap="medium")
    with top.container(width="content"):
        st.markdown(f"**{info.run_id}** says")
        judged = trust.verdict(answer)  # "unsure / not a letter" in place of a confident answer
        if not judged:
            st.markdown(
                # a monospace face, so that I and l (and O and 0) look different
                f"<div data-testid='draw-prediction' style='font-size:72px;line-height:1.1;font-weight:700;"
                f'font-family:"Source Code Pro",monospace\'>'
                f"{answer.label}</div>",
                unsafe_allow_html=True,
            )
            st.caption(f"{answer.topk[0][1]:.1%} sure · {info.model} / {info.activation}")
    with top.container(key=f"draw_bars_{info.run_id}"):
        st.altair_chart(viz.topk_chart(answer.topk, title="top 5", theme=st.context.theme.type), width="stretch")
    trust.placement_note(pred, prepared)

    x = prepared.tensor[0].mean(dim=0).numpy()  # C x H x W -> H x W (grey models: C = 1)
    model_input = np.rint(x * 255).astype(np.uint8)
    h, w = model_input.shape
    scale = max(2, 200 // max(h, w))  # 200 px: room for the captions on one line each
    pictures = st.container(horizontal=True, gap="medium")
    pictures.image(
        big_frame(model_input, scale), caption=f"what it sees ({w}x{h})", output_format="PNG", width="content"
    )
    pictures.image(
        viz.saliency_overlay(model_input, cam, scale=scale),
        caption="where it looked (Grad-CAM)",
        output_format="PNG",
        width="content",
    )
    try:
        near = nearest_glyphs(prepared, pred, k=8, space=space)
    except GlyphError as e:
        st.caption(f"Nearest training glyphs unavailable: {e}")
    else:
        st.image(
            [n.image for n in near],
            caption=[f"{n.label} · {distance_text(n.distance)}" for n in near],
            width=64,
            output_format="PNG",
        )
        how = "cosine distance of the model's features" if space == "features" else "pixel distance"
        st.caption(f"the nearest training glyphs ({how}; smaller is nearer)")
    if show_maps:
        with st.expander("Feature maps", expanded=True):
            for name, maps in feature_maps(pred, prepared):
                st.image(
                    viz.feature_map_grid(maps, ncols=8, scale=max(1, 48 // maps.shape[-1])),
                    caption=f"{name}: {maps.shape[0]} maps of {maps.shape[2]}x{maps.shape[1]}",
                    output_format="PNG",
                )


st.title("Draw")
st.caption(
    "Draw one letter between the guide lines: capitals from the **blue cap line** to the **red baseline**, "
    "lowercase letters up to the **grey dashed x-height** (ascenders to the cap line, descenders below "
    "the baseline)."
)

checkpointed = runs.checkpointed_runs()

space, show_maps = SPACES[0], False
row = st.container(horizontal=True, gap="large", key="draw_row")
left = row.container(width=INPUT_WIDTH, key="draw_input")
right = row.container(key="draw_answers")
with left:
    mode = st.radio(
        "Input", ["Draw", "Upload an image"], horizontal=True, key="draw_mode", label_visibility="collapsed"
    )
    image: np.ndarray | bytes | None = None
    if mode == "Draw":
        st.container(height=16, border=False)  # room for the canvas's toolbar, which floats above it
        width = st.session_state.get("stroke", STROKE_WIDTH)
        result = st_canvas(
            stroke_width=width,
            stroke_color="#FFFFFF",
            background_color="#000000",
            background_image=guide_image(CANVAS_SIZE),
            width=CANVAS_SIZE,
            height=CANVAS_SIZE,
            drawing_mode="freedraw",
            return_image_data=True,
            key=canvas_key(),
        )
        tools = st.container(horizontal=True, vertical_alignment="center")
        tools.button("Clear", on_click=clear_canvas)
        with tools:
            undo_controls()
        st.slider("Stroke width", 4, 40, STROKE_WIDTH, help="px on the 280 px canvas", key="stroke")
        image = result.image_data
    else:
        upload = st.file_uploader("An image of one letter", type=UPLOAD_TYPES, key="upload")
        if upload is not None:
            image = upload.getvalue()

    try:
        prepared: Prepared | None = preprocess(image) if image is not None else None
        input_error = None
    except GlyphError as e:
        prepared, input_error = None, str(e)

    if input_error:
        st.error(input_error)

with right:
    if not checkpointed:
        st.warning("No trained model yet: train a run on the **Train** page, or add the starter model.")
        chosen: list[str] = []
    else:
        # ?run=<id> (repeatable) links straight to runs; else the starter model, else the newest run
        linked = [r for r in st.query_params.get_all("run") if r in checkpointed]
        default = linked or (["starter"] if "starter" in checkpointed else [next(iter(checkpointed))])
        chosen = st.multiselect(
            "Ask these runs",
            list(checkpointed),
            default=default,
            format_func=lambda r: runs.run_label(checkpointed[r]),
            key="draw_runs",
        )
        opts = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
        space = opts.radio(
            "Nearest glyphs by",
            SPACES,
            horizontal=True,
            key="nn_space",
            format_func=lambda s: {"pixels": "pixels", "features": "model features"}[s],
        )
        show_maps = opts.toggle("Feature maps", value=False, key="show_maps")

    if input_error is not None:
        pass  # the error is shown under the input
    elif prepared is None or prepared.empty:  # nothing (or a speck) drawn: a hint, never a prediction
        note = prepared.note if prepared is not None else ""
        st.info(
            "Draw a letter on the canvas (or upload an image) and the models' answers appear here."
            + (f"\n\n_{note}_" if note else ""),
        )
    else:
        assert image is not None  # prepared came from it
        for start in range(0, len(chosen), MAX_RUNS_SIDE_BY_SIDE):
            pair = chosen[start : start + MAX_RUNS_SIDE_BY_SIDE]
            side = st.container(horizontal=True, gap="medium")  # wraps: one run per line when narrow
            for i, run_id in enumerate(pair):
                with side.container(border=True, key=f"draw_run_{i}"):
                    show_run(checkpointed[run_id], image, space, show_maps)

# --- the personal drawings set ---------------------------------------------------------------
st.divider()
st.subheader("Your drawings set")
kept = list_drawings()
keep_row = st.container(horizontal=True, vertical_alignment="bottom", key="row_draw_keep")  # wraps when narrow
keep_cols = [keep_row.container(), keep_row.container(), keep_row.container()]
can_keep = prepared is not None and not prepared.empty
label = keep_cols[0].selectbox(
    "True label", CLASSES, index=None, placeholder="which letter is it?", key="keep_label", disabled=not can_keep
)
if keep_cols[1].button("Keep this drawing", disabled=not can_keep or label is None):
    try:
        path = keep_drawing(prepared, str(label))
    except GlyphError as e:
        st.error(str(e))
    else:
        kept = list_drawings()
        st.success(f"Kept your `{label}` ({path.name}).")
keep_cols[2].metric("Drawings kept", len(kept))

if kept and st.toggle(f"Score every run on your {len(kept)} drawings", key="score_runs"):
    with st.container(border=True):
        rows = []
        for info in checkpointed.values():
            score = shared.drawings_score(str(info.path), runs.file_stamp(info.path / runs.BEST_CKPT), drawings_stamp())
            correct = f"{score['correct']} / {score['n']}" if score["accuracy"] is not None else None
            rows.append(
                {
                    "run": info.run_id,
                    "model": info.model,
                    "accuracy": score["accuracy"],
                    "correct": correct,
                    "note": score.get("error", ""),
                }
            )
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            width="stretch",
            column_config={"accuracy": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")},
        )
        latest = sorted(kept, key=lambda item: item[0].name.split("_", 1)[1])[-24:]  # <hex>_<UTC time>_...
        st.image([np.asarray(Image.open(p)) for p, _ in latest], caption=[lab for _, lab in latest], width=50)
        st.caption("your latest drawings (the Runs page shows each run's score on this set as a column)")

if kept:
    with st.expander(f"Your {len(kept)} kept drawings: look at one, or delete it"):
        newest = sorted(kept, key=lambda item: item[0].name.split("_", 1)[1], reverse=True)  # <hex>_<UTC time>_...
        names = [p.name for p, _ in newest]
        by_name = {p.name: (p, lab) for p, lab in newest}
        pick = st.selectbox(
            "Drawing",
            names,
            key="kept_pick",
            format_func=lambda n: f"{by_name[n][1]} · {n.split('_', 1)[1].rsplit('.', 1)[0]}",
        )
        path, lab = by_name[pick]
        shown = st.container(horizontal=True, vertical_alignment="center")
        shown.image(np.asarray(Image.open(path)), width=100, caption=f"labelled {lab}")
        if shown.button("Delete this drawing", icon=":material/delete:", key="kept_delete"):
            try:
                delete_drawing(path)
            except GlyphError as e:
                st.error(str(e))
            else:
                st.toast(f"Deleted the drawing of {lab}")
                st.rerun()
