"""Real browser: pick two runs on Runs & Compare and get their curves overlaid."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from run_folders import write_run  # tests/run_folders.py

pytestmark = pytest.mark.browser

ROW_PX = 35  # height of a header or data row of st.dataframe's grid


@pytest.fixture(scope="module")
def two_runs(app_env):
    write_run(app_env.runs_dir, "cmp-relu", activation="relu", val_accs=[0.6, 0.8, 0.9], started=1000.0)
    write_run(app_env.runs_dir, "cmp-silu", activation="silu", val_accs=[0.7, 0.85, 0.95], started=1001.0)
    return ["cmp-relu", "cmp-silu"]


def test_two_runs_overlaid(two_runs, page, streamlit_server, open_page, wait_for_app, save_screenshot, choose_option):
    open_page(page, streamlit_server, "runs")
    table = page.get_by_test_id("stDataFrame").first
    for run_id in two_runs:
        # the grid is drawn on a canvas; its cells are mirrored in an accessible table
        expect(table.locator("[role=gridcell]").filter(has_text=re.compile(f"^{run_id}$"))).to_be_attached()
    # narrow the table to these two runs, then tick both rows (the grid is a canvas: click by position)
    page.get_by_label("Filter").fill("cmp-")
    page.get_by_label("Filter").press("Enter")
    wait_for_app(page)
    expect(page.get_by_text("2 of ")).to_be_visible()
    box = page.get_by_test_id("stDataFrame").first.bounding_box()
    for row in range(2):
        page.mouse.click(box["x"] + 15, box["y"] + ROW_PX * (row + 1.5))
        wait_for_app(page)
    picked = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
    for run_id in two_runs:
        expect(picked).to_contain_text(run_id)
    expect(page.get_by_text(re.compile(r"^2 runs overlaid, coloured by run"))).to_be_visible()
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(3)  # loss and accuracy (both runs in each), and the settings-vs-results view
    expect(charts.first.locator("canvas, svg").first).to_be_visible()
    cards = page.get_by_test_id("stCode").last
    expect(cards).to_contain_text("| cmp-relu | seed_cnn | relu |")
    expect(cards).to_contain_text("| cmp-silu | seed_cnn | silu |")

    choose_option(page, page.get_by_test_id("stSelectbox").filter(has_text="Colour by"), "activation")
    wait_for_app(page)
    expect(page.get_by_text("coloured by activation")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
    save_screenshot(page, "runs-compare")
