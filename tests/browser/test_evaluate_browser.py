"""Evaluate page in a real Chromium: click a confusion-matrix cell and get the gallery of its images."""

from __future__ import annotations

import re

import pytest
from tiny_runs import temporary_tiny_run

from glyphcore.evaluate import evaluate_run

pytestmark = pytest.mark.browser

RUN_ID = "browser-eval-relu"


@pytest.fixture(scope="module")
def eval_run(app_env):
    """A trained run in the test server's runs folder, for this module only (other browser tests
    count the runs they make)."""
    with temporary_tiny_run(app_env.runs_dir, RUN_ID, activation="relu") as run_dir:
        yield run_dir


def cell(page, true: str, pred: str):
    """The matrix cell (true, pred): Vega's SVG marks carry their tooltip fields as aria-label."""
    label = f"predicted: {pred}; true: {true};"
    return page.locator(f'[data-testid=stVegaLiteChart] .mark-rect path[aria-label^="{label}"]')


def test_click_a_confusion_cell_to_see_its_images(
    eval_run, streamlit_server, page, open_page, wait_for_app, save_screenshot
):
    result = evaluate_run(eval_run, split="test")
    true, pred, n = result.most_confused()[0]
    open_page(page, streamlit_server, "evaluate")
    page.get_by_text(result.accuracy_line).wait_for()
    page.get_by_text("Click a cell of the matrix").wait_for()
    target = cell(page, true, pred)
    target.wait_for()
    save_screenshot(page, "evaluate")

    target.click()
    heading = page.get_by_text(re.compile(rf"true {re.escape(true)} → predicted {re.escape(pred)}: {n} images?"))
    heading.wait_for(timeout=60_000)
    wait_for_app(page)
    gallery = page.locator("[data-testid=stImageContainer]").filter(has_text=re.compile(rf"p\({re.escape(true)}\)="))
    assert gallery.count() == min(n, 48)
    save_screenshot(page, "evaluate-cell")

    # another click replaces the gallery: the diagonal cell of the class the model gets right most often
    k = int(result.confusion.diagonal().argmax())
    letter, right = result.classes[k], int(result.confusion[k, k])
    cell(page, letter, letter).click()
    page.get_by_text(re.compile(rf"true {letter} → predicted {letter}: {right} images?")).wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid=stImageContainer]").filter(has_text=re.compile(r"^p=")).count() == min(right, 48)
