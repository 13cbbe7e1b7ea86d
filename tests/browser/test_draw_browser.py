"""Draw page in a real Chromium: the mouse draws a letter on the canvas and the prediction appears.

The strokes are ``glyphcore.testing.letter_strokes`` (a letter along the page's guide lines, in
canvas pixels) scaled to the canvas element's box on screen, drawn with mouse down / move / up on the
component's Fabric.js ``canvas.upper-canvas`` (in an open shadow root, which Playwright's CSS
selectors pierce; the component is not in an iframe).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from tiny_runs import temporary_tiny_run

from glyphcore import paths, runs
from glyphcore.frame import CANVAS_SIZE, CLASSES
from glyphcore.testing import letter_strokes

pytestmark = pytest.mark.browser

RUN_ID = "browser-draw-relu"
CANVAS = "[data-testid=stBidiComponentIsolated] canvas.upper-canvas"
PREDICTION = "[data-testid=draw-prediction]"
VERDICT = "[data-testid=draw-verdict]"  # "unsure / not a letter" in place of a letter


@pytest.fixture(scope="module")
def draw_run(app_env):
    """A trained run in the test server's runs folder, for this module only."""
    with temporary_tiny_run(app_env.runs_dir, RUN_ID, activation="relu") as run_dir:
        yield run_dir


def draw_letter(page, letter: str) -> None:
    """Draw ``letter`` with the mouse, one mouse-down/move/up per pen stroke."""
    canvas = page.locator(CANVAS)
    # A freshly mounted canvas (after Clear) reports its empty value once, which reruns the page;
    # strokes drawn during that rerun can be lost, as a person's would be. Let the page settle:
    # until then the cleared canvas and its replacement can both be in the page.
    expect(canvas.first).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1000)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]")
    expect(canvas).to_have_count(1, timeout=60_000)
    box = canvas.bounding_box()
    sx, sy = box["width"] / CANVAS_SIZE, box["height"] / CANVAS_SIZE
    for stroke in letter_strokes(letter):
        x0, y0 = stroke[0]
        page.mouse.move(box["x"] + x0 * sx, box["y"] + y0 * sy)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=3)
        page.mouse.up()


def test_draw_a_letter_and_its_prediction_appears(
    draw_run, streamlit_server, page, open_page, wait_for_app, save_screenshot
):
    open_page(page, streamlit_server, f"draw?run={RUN_ID}")
    page.get_by_text("Draw a letter on the canvas").wait_for()
    assert page.locator(PREDICTION).count() == 0
    page.get_by_text(RUN_ID).first.wait_for()  # the linked run is the one asked

    draw_letter(page, "A")
    page.locator(PREDICTION).wait_for(timeout=60_000)
    wait_for_app(page)
    predicted = page.locator(PREDICTION).inner_text().strip()
    assert predicted in CLASSES
    page.get_by_text(f"{RUN_ID} says").wait_for()
    page.get_by_text("what it sees (100x100)").wait_for()
    page.get_by_text("where it looked (Grad-CAM)").wait_for()
    assert page.get_by_text("Draw a letter on the canvas").count() == 0
    save_screenshot(page, "draw")

    page.get_by_role("button", name="Clear", exact=True).click()
    page.get_by_text("Draw a letter on the canvas").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator(PREDICTION).count() == 0
    draw_letter(page, "o")  # the fresh canvas takes a new drawing
    page.locator(PREDICTION).wait_for(timeout=60_000)


def test_the_starter_model_names_drawn_letters(streamlit_server, page, open_page, wait_for_app, save_screenshot):
    """The Draw page's default model (the committed starter) reads easy letters drawn with the mouse."""
    assert (paths.starter_dir() / runs.BEST_CKPT).is_file(), (
        "the committed starter model (checkpoints/starter/best.pt) is missing: the Draw page asks it by default"
    )
    open_page(page, streamlit_server, "draw")
    page.get_by_text("Draw a letter on the canvas").wait_for()
    assert page.locator(PREDICTION).count() == 0
    for letter in ("A", "e"):
        draw_letter(page, letter)
        page.locator(PREDICTION).wait_for(timeout=60_000)
        wait_for_app(page)
        page.get_by_text("starter says").wait_for()
        assert page.locator(PREDICTION).inner_text().strip() == letter
        save_screenshot(page, f"draw-starter-{letter}")
        page.get_by_role("button", name="Clear", exact=True).click()
        page.get_by_text("Draw a letter on the canvas").wait_for(timeout=60_000)
        wait_for_app(page)


def test_class_names_that_are_markup_never_run_in_the_page(app_env, streamlit_server, page, open_page, wait_for_app):
    """A best.pt whose class names are <img onerror=...> / <iframe srcdoc="<script>...">: the Draw
    page shows them as text, and none of their script runs (it would set window.__pwned and the title)."""
    from evil_names import make_classes_evil

    with temporary_tiny_run(app_env.runs_dir, "browser-evil", activation="relu") as run_dir:
        classes = make_classes_evil(run_dir / runs.BEST_CKPT)
        open_page(page, streamlit_server, "draw?run=browser-evil")
        page.get_by_text("Draw a letter on the canvas").wait_for()
        draw_letter(page, "A")
        page.locator(f"{PREDICTION}, {VERDICT}").first.wait_for(timeout=60_000)
        wait_for_app(page)
        page.wait_for_timeout(2000)  # ms: time for an injected onerror or iframe script to run
        assert page.evaluate("window.__pwned") is None
        assert page.title() != "pwned"
        assert page.locator("iframe[srcdoc]").count() == 0 and page.locator("img[src=x]").count() == 0
        if page.locator(PREDICTION).count():
            shown = page.locator(PREDICTION).first.inner_text().strip()
        else:
            shown = page.locator(VERDICT).first.get_attribute("data-guess")
        assert shown in classes  # the name itself, as text
