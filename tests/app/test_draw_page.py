"""Draw page (AppTest): a drawing on the canvas -> every chosen run's prediction, top 5, input,
saliency, nearest glyphs and feature maps; the empty-drawing hint; Clear; the upload box; keeping a
drawing and scoring runs on the kept set.

A drawing is injected the way the browser sends it: the canvas component's value
``{"drawing": {"raw": ..., "data": <PNG data URL>}}`` under the canvas key (see the page's docstring).
The strokes are a letter from ``glyphcore.testing.letter_strokes`` along the page's guide lines.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from tiny_runs import tiny_run

from glyphcore.frame import CLASSES
from glyphcore.infer import load_predictor, preprocess
from glyphcore.testing import letter_strokes, render_canvas

# the page lists only each test's runs, whether or not the repository has its starter model
pytestmark = [pytest.mark.app, pytest.mark.usefixtures("no_starter")]

PAGE = "draw.py"


def canvas_value(rgba: np.ndarray) -> dict:
    """The canvas component's value for a drawing, as the browser reports it."""
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"drawing": {"raw": {"objects": [{"type": "path"}]}, "data": url}, "backgroundFit": None}


def drawn(letter: str) -> np.ndarray:
    """A letter as the page's canvas returns it: white strokes on a transparent background."""
    rgba = render_canvas(letter_strokes(letter), style="default")
    rgba[..., :3] = 255  # the page draws in white
    return rgba


def predictions(at) -> list[str]:
    """The predicted letters shown, one per run."""
    out = []
    for md in at.markdown:
        if "data-testid='draw-prediction'" in md.value:
            out.append(md.value.split(">")[1].split("<")[0])
    return out


def answers(at) -> list[str]:
    """The letter each run answered: the one shown, or the best guess of an "unsure / not a letter"
    answer (a tiny model judges many drawings not to be letters)."""
    out = []
    for md in at.markdown:
        if "data-testid='draw-prediction'" in md.value:
            out.append(md.value.split(">")[1].split("<")[0])
        elif "data-testid='draw-verdict'" in md.value:
            out.append(md.value.split("data-guess='")[1].split("'")[0])
    return out


def image_captions(at) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def topk_frames(at) -> list:
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    out = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        if spec.get("title") == "top 5":
            out.append(convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data))
    return out


@pytest.fixture
def run(data_dir, runs_dir):
    return tiny_run(runs_dir, "tiny-relu", activation="relu")


def test_no_drawing_shows_a_hint_not_a_prediction(run, app_page, texts_of, errors_of):
    at = app_page(PAGE).run()
    assert errors_of(at) == []
    assert at.multiselect(key="draw_runs").value == ["tiny-relu"]
    assert "Draw a letter on the canvas" in texts_of(at)
    assert predictions(at) == [] and topk_frames(at) == []


def test_a_drawn_letter_is_predicted_with_top5_input_saliency_and_neighbours(run, app_page, errors_of):
    rgba = drawn("A")
    at = app_page(PAGE)
    at.session_state["canvas-0"] = canvas_value(rgba)
    at.run()
    assert errors_of(at) == []
    # what the page shows is what the model says about this drawing
    expected = load_predictor(run).predict(preprocess(rgba), topk=5)[0]
    assert predictions(at) == [expected.label]
    [top] = topk_frames(at)
    assert list(top["class"]) == [c for c, _ in expected.topk]
    np.testing.assert_allclose(top["p"], [p for _, p in expected.topk], rtol=1e-5)
    assert top["p"].is_monotonic_decreasing and top["p"].sum() <= 1.0 + 1e-6
    caps = image_captions(at)
    assert "what it sees (100x100)" in caps and "where it looked (Grad-CAM)" in caps
    neighbours = [c for c in caps if " · " in c]
    assert len(neighbours) == 8 and all(c.split(" · ")[0] in CLASSES for c in neighbours)


def test_model_features_space_and_feature_maps(run, app_page, errors_of):
    at = app_page(PAGE)
    at.session_state["canvas-0"] = canvas_value(drawn("x"))
    at.run()
    at.radio(key="nn_space").set_value("features")
    at.toggle(key="show_maps").set_value(True).run()
    assert errors_of(at) == []
    caps = image_captions(at)
    assert len([c for c in caps if " · " in c]) == 8
    maps = [c for c in caps if " maps of " in c]
    assert [m.split(":")[0] for m in maps] == ["features.conv1", "features.conv2", "features.conv3"]


def test_a_nearly_empty_drawing_is_not_predicted(run, app_page, texts_of):
    dot = render_canvas([[(140.0, 140.0)]], stroke_width=4, style="default")
    at = app_page(PAGE)
    at.session_state["canvas-0"] = canvas_value(dot)
    at.run()
    assert predictions(at) == []
    assert "almost nothing is drawn" in texts_of(at)


def test_clear_mounts_an_empty_canvas(run, app_page, texts_of):
    at = app_page(PAGE)
    at.session_state["canvas-0"] = canvas_value(drawn("B"))
    at.run()
    assert len(answers(at)) == 1
    at.button[0].click().run()  # Clear
    assert answers(at) == [] and "Draw a letter on the canvas" in texts_of(at)


@pytest.mark.slow
def test_several_runs_answer_side_by_side(data_dir, runs_dir, app_page, errors_of):
    tiny_run(runs_dir, "tiny-relu", activation="relu")
    tiny_run(runs_dir, "tiny-tanh", activation="tanh")
    at = app_page(PAGE)
    at.session_state["canvas-0"] = canvas_value(drawn("o"))
    at.run()
    at.multiselect(key="draw_runs").set_value(["tiny-relu", "tiny-tanh"]).run()
    assert errors_of(at) == []
    assert len(answers(at)) == 2 and len(topk_frames(at)) == 2


def test_the_starter_model_is_asked_by_default(data_dir, runs_dir, no_starter, app_page):
    tiny_run(runs_dir, "tiny-relu", activation="relu")
    tiny_run(no_starter.parent, no_starter.name, activation="tanh")  # stands in for checkpoints/starter
    at = app_page(PAGE)
    at.session_state["canvas-0"] = canvas_value(drawn("A"))
    at.run()
    assert at.multiselect(key="draw_runs").value == ["starter"]
    assert len(answers(at)) == 1 and "**starter** says" in [m.value for m in at.markdown]


def test_a_link_with_run_asks_that_run(data_dir, runs_dir, app_page):
    tiny_run(runs_dir, "tiny-relu", activation="relu")
    tiny_run(runs_dir, "tiny-tanh", activation="tanh")
    at = app_page(PAGE)
    at.query_params["run"] = "tiny-tanh"
    at.run()
    assert at.multiselect(key="draw_runs").value == ["tiny-tanh"]


def test_an_uploaded_image_is_predicted(run, app_page, errors_of):
    img = Image.fromarray(255 - drawn("H")[..., 3])  # black ink on white, as a scan would be
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    at = app_page(PAGE).run()
    at.radio(key="draw_mode").set_value("Upload an image").run()
    at.file_uploader(key="upload").set_value(("h.png", buf.getvalue(), "image/png")).run()
    assert errors_of(at) == []
    expected = load_predictor(run).predict(preprocess(buf.getvalue()))[0].label
    assert answers(at) == [expected]


def test_an_upload_that_is_not_an_image_is_explained(run, app_page):
    at = app_page(PAGE).run()
    at.radio(key="draw_mode").set_value("Upload an image").run()
    at.file_uploader(key="upload").set_value(("x.png", b"not an image at all", "image/png")).run()
    assert at.exception == []
    assert any("not an image" in e.value for e in at.error)
    assert predictions(at) == []


def test_keep_a_drawing_and_score_runs_on_the_set(run, data_dir, app_page, errors_of, texts_of):
    rgba = drawn("A")
    at = app_page(PAGE)
    at.session_state["canvas-0"] = canvas_value(rgba)
    at.run()
    assert {m.label: m.value for m in at.metric}["Drawings kept"] == "0"
    at.selectbox(key="keep_label").set_value("A").run()
    [keep] = [b for b in at.button if b.label == "Keep this drawing"]
    keep.click().run()
    assert errors_of(at) == []
    assert "Kept your `A`" in texts_of(at)
    assert {m.label: m.value for m in at.metric}["Drawings kept"] == "1"
    kept = list((data_dir / "drawings").glob("*.png"))
    assert len(kept) == 1 and kept[0].name.startswith("41_")  # 0x41 = "A"

    at.toggle(key="score_runs").set_value(True).run()
    assert errors_of(at) == []
    scores = at.dataframe[0].value.set_index("run")
    right = load_predictor(run).predict(preprocess(rgba))[0].label == "A"
    assert scores.loc["tiny-relu", "correct"] == f"{int(right)} / 1"
    assert scores.loc["tiny-relu", "accuracy"] == pytest.approx(float(right))


def test_neighbour_distances_keep_their_digits(run, app_page):
    at = app_page(PAGE)
    at.session_state["canvas-0"] = canvas_value(drawn("x"))
    at.run()
    at.radio(key="nn_space").set_value("features").run()
    distances = [c.split(" · ")[1] for c in image_captions(at) if " · " in c]
    assert len(distances) == 8
    values = [float(d) for d in distances]
    assert values == sorted(values) and len(set(distances)) > 1  # not all "0.00"
    assert all(d == "0" or float(d) > 0 for d in distances)


def test_a_kept_drawing_can_be_deleted(run, data_dir, app_page, errors_of):
    from glyphcore.data.drawings import list_drawings
    from glyphcore.infer.drawings import keep_drawing

    keep_drawing(drawn("A")[..., 3], "A")
    keep_drawing(drawn("b")[..., 3], "b")
    at = app_page(PAGE).run()
    pick = at.selectbox(key="kept_pick")
    assert len(pick.options) == 2 and pick.options[0].startswith("b · ")  # the newest first
    older_a = next(p.name for p, lab in list_drawings() if lab == "A")
    pick.set_value(older_a).run()
    at.button(key="kept_delete").click().run()
    assert errors_of(at) == []
    assert [lab for _, lab in list_drawings()] == ["b"]
    assert {m.label: m.value for m in at.metric}["Drawings kept"] == "1"


def test_class_names_from_a_checkpoint_are_text_never_markup(run, app_page, errors_of):
    """A checkpoint whose class names are HTML: every place the page shows a label escapes it."""
    from evil_names import make_classes_evil

    classes = make_classes_evil(run / "best.pt")
    at = app_page(PAGE)
    at.session_state["canvas-0"] = canvas_value(drawn("A"))
    at.run()
    assert errors_of(at) == []
    html_blocks = [md.value for md in at.markdown if "data-testid=" in md.value]
    assert html_blocks, "the page showed no answer"
    for block in html_blocks:
        assert "<img" not in block and "<iframe" not in block and "<script" not in block, block
        assert "onmouseover='" not in block, block
    shown = answers(at)
    import html

    assert [html.unescape(a) for a in shown][0] in classes  # the name itself is still shown, as text
