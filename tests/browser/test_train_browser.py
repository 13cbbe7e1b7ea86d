"""Real browser: launch a run on the Train page, watch the live curve grow, reload mid-run and see the
monitor carry on, cancel it from its panel (then offered Resume) and find it on the Runs page."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

POINTS = re.compile(r"(\d+) loss points")
STOP_TIMEOUT_MS = 120_000  # the signal, the last.pt save and the next monitor tick, on a busy machine


def set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")


def panel(page, run_id: str):
    """The monitor's panel of one run (a container keyed by the run id)."""
    return page.locator(f".st-key-tr_panel_{run_id}")


def wait_for_more_points(page, run_id: str, than: int, timeout_s: float = 120.0) -> int:
    """Wait until the run's live chart has drawn more than ``than`` loss points; return how many."""
    caption = panel(page, run_id).get_by_text(POINTS)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if caption.count():
            n = int(POINTS.search(caption.first.inner_text()).group(1))
            if n > than:
                return n
        page.wait_for_timeout(250)
    raise AssertionError(f"the live curve did not grow past {than} points in {timeout_s:.0f} s")


def test_launch_watch_reload_cancel_and_find_the_run(page, streamlit_server, open_page, wait_for_app, save_screenshot):
    open_page(page, streamlit_server, "train?preset=report")  # a link to the report's recipe
    expect(page.get_by_test_id("stMetric").filter(has_text="Parameters")).to_contain_text("702,948")
    # many epochs and no time budget: the run goes on until the test cancels it, however slow the machine
    set_number(page, "Epochs", 100)
    wait_for_app(page)
    set_number(page, "Batch size", 20)
    wait_for_app(page)
    page.get_by_text("Advanced", exact=True).click()
    set_number(page, "Log loss every (steps)", 4)
    wait_for_app(page)
    set_number(page, "CPU threads (0 = torch's choice)", 1)
    wait_for_app(page)
    page.get_by_role("button", name="Launch").click()
    wait_for_app(page)
    launched = page.get_by_test_id("stAlertContentSuccess").filter(has_text="Launched")
    expect(launched).to_be_visible()
    run_id = re.search(r"Launched (\S+):", launched.inner_text()).group(1)

    # the monitor shows the run and its curve grows as metrics.jsonl grows
    mine = panel(page, run_id)
    expect(mine.get_by_role("heading", name=re.compile(re.escape(run_id)))).to_be_visible(timeout=60_000)
    first = wait_for_more_points(page, run_id, 0)
    second = wait_for_more_points(page, run_id, first)
    expect(mine.get_by_test_id("stProgress")).to_contain_text("epoch")
    save_screenshot(page, "train-live")

    # a reload mid-run: the monitor carries on from the files
    page.reload()
    wait_for_app(page)
    expect(mine.get_by_role("heading", name=re.compile(re.escape(run_id) + r".*running"))).to_be_visible()
    wait_for_more_points(page, run_id, second)

    # Cancel on the run's panel stops the process; it saves last.pt and is offered Resume
    mine.get_by_role("button", name="Cancel").click()
    cancelled = mine.get_by_role("heading", name=re.compile(re.escape(run_id) + r".*cancelled"))
    expect(cancelled).to_be_visible(timeout=STOP_TIMEOUT_MS)
    expect(mine.get_by_role("button", name="Resume")).to_be_visible()
    expect(mine.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(mine.get_by_test_id("stProgress")).to_contain_text("/100")
    expect(mine.get_by_test_id("stCode")).to_contain_text("cancelled at")
    save_screenshot(page, "train-cancelled")

    open_page(page, streamlit_server, "runs")
    table = page.get_by_test_id("stDataFrame").first
    expect(table.locator("[role=gridcell]").filter(has_text=re.compile(f"^{re.escape(run_id)}$"))).to_be_attached()
    assert page.get_by_test_id("stException").count() == 0
    save_screenshot(page, "runs-after-train")


def test_a_double_click_on_launch_starts_one_run(page, streamlit_server, app_env, open_page, wait_for_app):
    before = {d.name for d in app_env.runs_dir.iterdir()}
    open_page(page, streamlit_server, "train?preset=quick&model=tiny_conv&epochs=1")
    launch = page.get_by_role("button", name="Launch", exact=True)
    # the script-state flag reads "not running" before the first run starts: on a loaded machine the
    # form (estimate included) can take longer than expect's 5 s to appear
    expect(launch).to_be_enabled(timeout=60_000)
    launch.dblclick()  # two clicks 0.1 s apart, as a hurried user does
    wait_for_app(page)
    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text="Launched")).to_have_count(1)
    expect(launch).to_be_disabled()  # with these settings: change one to launch another
    page.wait_for_timeout(2000)  # a second launch would have written its folder by now
    wait_for_app(page)
    new = sorted({d.name for d in app_env.runs_dir.iterdir()} - before - {"sweeps"})
    assert len(new) == 1, new
    assert page.get_by_test_id("stException").count() == 0
