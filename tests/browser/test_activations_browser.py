"""Activations page in a real Chromium: the curves, the formulas (KaTeX) and a run's histograms render."""

from __future__ import annotations

import pytest
from tiny_runs import temporary_tiny_run

from glyphcore.models import ACTIVATIONS

pytestmark = pytest.mark.browser

RUN_ID = "browser-act-tanh"


@pytest.fixture(scope="module")
def act_run(app_env):
    """A trained run in the test server's runs folder, for this module only."""
    with temporary_tiny_run(app_env.runs_dir, RUN_ID, activation="tanh") as run_dir:
        yield run_dir


def test_curves_formulas_and_histograms_render(act_run, streamlit_server, page, open_page, save_screenshot):
    open_page(page, streamlit_server, f"activations?run={RUN_ID}")
    page.get_by_text("Inside a trained run").wait_for()
    charts = page.locator("[data-testid=stVegaLiteChart]")
    # 2 overviews + ONE faceted chart of every activation + ONE faceted chart of every layer's histogram
    charts.nth(3).wait_for(timeout=60_000)
    page.get_by_role("heading", name="Inside a trained run").wait_for()
    assert charts.count() == 4
    assert page.locator("[data-testid=stVegaLiteChart] svg, [data-testid=stVegaLiteChart] canvas").count() >= 2
    assert page.locator(".katex").count() >= 2 * len(ACTIVATIONS)  # f and f' of each, typeset
    page.locator("[data-testid=stDataFrame]").wait_for()  # the per-layer table
    save_screenshot(page, "activations")
