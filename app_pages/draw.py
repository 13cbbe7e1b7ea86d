"""Draw: draw a letter (or upload an image) and see what every model thinks, and why.

The canvas is the glyph frame scaled to 280 px: its guide lines (cap line, x-height, baseline) come
from ``glyphcore.testing.guide_rows`` and ``glyphcore.infer.preprocess`` maps them back onto the frame,
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
from glyphcore import runs, viz
from glyphcore.frame import CANVAS_SIZE, STROKE_WIDTH, guide_rows
from glyphcore.data.drawings import drawings_stamp, keep_drawing, list_drawings
from glyphcore.errors import GlyphError
from glyphcore.frame import CLASSES
from glyphcore.infer import Prepared, feature_maps, preprocess, saliency
from glyphcore.infer.neighbours import SPACES, nearest_glyphs


UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
MAX_RUNS_SIDE_BY_SIDE = 2


@st.cache_data(show_spinner=False)
def guide_image(size: int) -> Image.Image:
    return Image.fromarray(viz.guide_lines_image(guide_rows(size), size))


def canvas_key() -> str:
    """The canvas's widget key; Clear bumps the generation, which mounts a fresh, empty canvas."""
    return f"canvas-{st.session_state.get('canvas_gen', 0)}"


def clear_canvas() -> None:
    st.session_state["canvas_gen"] = st.session_state.get("canvas_gen", 0) + 1


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
    head, bars = st.columns([1, 2], vertical_alignment="center")
    with head:
        st.markdown(f"**{info.run_id}** says")
        judged = trust.verdict(answer)  # "unsure / not a letter" in place of a confident answer
    if not judged:
        head.markdown(
            # a monospace face, so that I and l (and O and 0) look different
            f"<div data-testid='draw-prediction' style='font-size:72px;line-height:1.1;font-weight:700;"
            f"font-family:\"Source Code Pro\",monospace'>"
            f"{answer.label}</div>",
            unsafe_allow_html=True,
        )
        head.caption(f"{answer.topk[0][1]:.1%} sure · {info.model} / {info.activation}")
    bars.altair_chart(viz.topk_chart(answer.topk, title="top 5"), width="stretch")
    trust.placement_note(pred, prepared)

    x = prepared.tensor[0].mean(dim=0).numpy()  # C x H x W -> H x W (grey models: C = 1)
    model_input = np.rint(x * 255).astype(np.uint8)
    h, w = model_input.shape
    scale = max(1, 140 // max(h, w))
    a, b, c = st.columns([1, 1, 2])
    a.image(big_frame(model_input, scale), caption=f"what it sees ({w}x{h})", output_format="PNG")
    b.image(viz.saliency_overlay(model_input, cam, scale=scale), caption="where it looked (Grad-CAM)",
            output_format="PNG")
    with c:
        try:
            near = nearest_glyphs(prepared, pred, k=8, space=space)
        except GlyphError as e:
            st.caption(f"Nearest training glyphs unavailable: {e}")
        else:
            st.image([n.image for n in near], caption=[f"{n.label} · {n.distance:.2f}" for n in near], width=52,
                     output_format="PNG")
            st.caption(f"the nearest training glyphs ({'model features' if space == 'features' else 'pixels'})")
    if show_maps:
        with st.expander("Feature maps", expanded=True):
            for name, maps in feature_maps(pred, prepared):
                st.image(viz.feature_map_grid(maps, ncols=8, scale=max(1, 48 // maps.shape[-1])),
                         caption=f"{name}: {maps.shape[0]} maps of {maps.shape[2]}x{maps.shape[1]}",
                         output_format="PNG")


st.title("Draw")
st.caption(
    "Draw one letter between the guide lines: capitals from the **blue cap line** to the **red baseline**, "
    "lowercase letters up to the **grey dashed x-height** (ascenders to the cap line, descenders below "
    "the baseline)."
)

checkpointed = runs.checkpointed_runs()

space, show_maps = SPACES[0], False
left, right = st.columns([3, 5], gap="large")
with left:
    mode = st.radio("Input", ["Draw", "Upload an image"], horizontal=True, key="draw_mode",
                    label_visibility="collapsed")
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
        c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
        c1.button("Clear", on_click=clear_canvas)
        c2.slider("Stroke width", 4, 40, STROKE_WIDTH, help="px on the 280 px canvas", key="stroke")
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
            "Ask these runs", list(checkpointed), default=default, format_func=lambda r: runs.run_label(checkpointed[r]),
            key="draw_runs",
        )
        opts = st.columns([3, 2, 1], vertical_alignment="bottom")
        space = opts[0].radio("Nearest glyphs by", SPACES, horizontal=True, key="nn_space",
                              format_func=lambda s: {"pixels": "pixels", "features": "model features"}[s])
        show_maps = opts[1].toggle("Feature maps", value=False, key="show_maps")

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
            row = chosen[start : start + MAX_RUNS_SIDE_BY_SIDE]
            for col, run_id in zip(st.columns(len(row)), row):
                with col, st.container(border=True):
                    show_run(checkpointed[run_id], image, space, show_maps)

# --- the personal drawings set ---------------------------------------------------------------
st.divider()
st.subheader("Your drawings set")
kept = list_drawings()
keep_cols = st.columns([1, 1, 3], vertical_alignment="bottom")
can_keep = prepared is not None and not prepared.empty
label = keep_cols[0].selectbox("True label", CLASSES, index=None, placeholder="which letter is it?", key="keep_label",
                               disabled=not can_keep)
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
            rows.append({"run": info.run_id, "model": info.model, "accuracy": score["accuracy"], "correct": correct,
                         "note": score.get("error", "")})
        st.dataframe(
            pd.DataFrame(rows), hide_index=True, width="stretch",
            column_config={"accuracy": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")},
        )
        latest = sorted(kept, key=lambda item: item[0].name.split("_", 1)[1])[-24:]  # <hex>_<UTC time>_...
        st.image([np.asarray(Image.open(p)) for p, _ in latest], caption=[lab for _, lab in latest], width=50)
        st.caption("your latest drawings (the Runs page shows each run's score on this set as a column)")
