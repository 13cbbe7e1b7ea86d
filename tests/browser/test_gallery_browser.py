"""Real browser, real server: Home's "Reproduce a report" gallery, and timing a recipe without blocking."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from glyphcore.train.recipes import RECIPES

pytestmark = pytest.mark.browser


def test_gallery_cards_show_the_reports_figures_and_time_a_recipe_in_the_background(
    page, streamlit_server, open_page, save_screenshot
):
    open_page(page, streamlit_server)
    expect(page.get_by_role("heading", name="Reproduce a report")).to_be_visible()
    cards = page.locator("[class*='st-key-recipe_']")
    expect(cards).to_have_count(len(RECIPES))
    report = page.locator(".st-key-recipe_glyph-report")
    expect(report.get_by_test_id("stMetric").filter(has_text="Report")).to_contain_text("99.03%")
    expect(report.get_by_role("button", name="Launch", exact=True)).to_be_enabled()
    expect(report.get_by_role("button", name="Launch with 3 seeds", exact=True)).to_be_enabled()
    mnist = page.locator(".st-key-recipe_mnist-lenet-batchnorm")
    expect(mnist.get_by_text("To download first (11.6 MB)")).to_be_visible()
    expect(mnist.get_by_role("button", name="Launch the sweep", exact=True)).to_be_disabled()
    expect(mnist.get_by_role("button", name="Launch the sweep with 3 seeds", exact=True)).to_be_disabled()
    # timing runs in the server's background: the page answers at once and fills the time in later
    mnist.get_by_role("button", name="Measure the time here").click()
    expect(mnist.get_by_text("Time here: about")).to_be_visible(timeout=180_000)
    expect(mnist.get_by_text("for its 2 runs, one at a time")).to_be_visible()
    expect(mnist.get_by_text("with 3 seeds about")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
    save_screenshot(page, "home-gallery")
