"""The trust sections of the Draw and Evaluate pages (AppTest): "unsure / not a letter" instead of a
confident answer, the off-the-guides note with a centred reading, the calibration and per-family sections."""

from __future__ import annotations

import json

import pytest
from test_draw_page import canvas_value, drawn, predictions
from tiny_runs import tiny_run

from glyphcore.checkpoint import load_checkpoint, save_checkpoint
from glyphcore.infer import load_predictor, preprocess
from glyphcore.infer.preprocess import recentre
from glyphcore.testing import letter_strokes, render_canvas

pytestmark = [pytest.mark.app, pytest.mark.usefixtures("no_starter")]


@pytest.fixture
def run(data_dir, runs_dir):
    return tiny_run(runs_dir, "tiny-relu", activation="relu")


def _verdicts(at) -> list[str]:
    return [md.value.split(">")[1].split("<")[0] for md in at.markdown if "data-testid='draw-verdict'" in md.value]


def test_an_unsure_answer_is_shown_as_unsure_with_its_reason(run, app_page, errors_of):
    # thresholds that no drawing passes: every answer is "unsure" (the page must not name a letter)
    ckpt = load_checkpoint(run / "best.pt")
    ckpt["calibration"]["letter"]["min_confidence"] = 1.01
    save_checkpoint(ckpt, run / "best.pt")
    at = app_page("draw.py")
    at.session_state["canvas-0"] = canvas_value(drawn("A"))
    at.run()
    assert errors_of(at) == []
    assert _verdicts(at) == ["Unsure"] and predictions(at) == []
    assert any("unsure: the best guess" in c.value for c in at.caption)


def test_a_letter_the_model_knows_is_named(run, app_page, errors_of):
    rgba = drawn("A")
    [answer] = load_predictor(run).predict(preprocess(rgba))
    at = app_page("draw.py")
    at.session_state["canvas-0"] = canvas_value(rgba)
    at.run()
    assert errors_of(at) == []
    if answer.letter:
        assert predictions(at) == [answer.label] and _verdicts(at) == []
    else:  # what the page shows follows the model's judgement either way
        assert predictions(at) == [] and _verdicts(at) in (["Unsure"], ["Not a letter"])


def test_a_small_letter_in_a_corner_gets_the_note_and_a_centred_reading(run, app_page, errors_of):
    small = [[(x * 0.3 + 12, y * 0.3 + 12) for x, y in s] for s in letter_strokes("E")]
    rgba = render_canvas(small)
    rgba[..., :3] = 255
    at = app_page("draw.py")
    at.session_state["canvas-0"] = canvas_value(rgba)
    at.run()
    assert errors_of(at) == []
    assert any("Off the guide lines" in w.value and "small" in w.value for w in at.warning)
    pred = load_predictor(run)
    [centred] = pred.predict(recentre(pred.prepare(rgba)))
    shown = [md.value for md in at.markdown if "draw-centred" in md.value]
    assert len(shown) == 1 and f"`{centred.label}`" in shown[0]


def test_a_letter_on_the_guides_gets_no_note(run, app_page):
    at = app_page("draw.py")
    at.session_state["canvas-0"] = canvas_value(drawn("E"))
    at.run()
    assert not any("Off the guide lines" in w.value for w in at.warning)


def test_evaluate_shows_calibration_and_per_family_accuracy(run, app_page, errors_of):
    at = app_page("evaluate.py").run()
    assert errors_of(at) == []
    heads = [h.value for h in at.subheader]
    assert "Calibration" in heads and "Per design family" in heads
    metrics = {m.label: m.value for m in at.metric}
    t = load_checkpoint(run / "best.pt")["calibration"]["temperature"]
    assert metrics["temperature"] == f"{t:.3f}" and metrics["ECE shown"].endswith("%")
    # whether calibration helped on this split, in words, with the two ECEs shown above
    [said] = [x.value for x in at.text if x.value.startswith("On test, calibration")]
    assert any(w in said for w in ("helped", "made it worse", "made no real difference"))
    assert metrics["ECE shown"] in said and metrics["ECE uncalibrated"] in said
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert any('"title": "confidence"' in json.dumps(s) for s in specs)  # the reliability diagram
    [table] = [df for df in at.dataframe if "family" in df.value.columns]
    from glyphcore.data import load_dataset

    test = load_dataset("glyphs-52", "test")
    fams = {test.meta["fonts"][i]["family"] for i in set(test.font_ids.tolist())}
    assert set(table.value["family"]) == fams and int(table.value["n"].sum()) == len(test)
