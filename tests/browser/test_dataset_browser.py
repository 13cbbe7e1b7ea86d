"""Real browser, real server: the home page, the Dataset page, and a fresh server's first request."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PAGE_LABELS = ["Dataset", "Train", "Runs & Compare", "Evaluate", "Draw", "Activations"]


def no_exceptions(page) -> None:
    assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id("stException").first.inner_text()


def test_home_page_shows_device_data_and_links(page, streamlit_server, open_page, save_screenshot):
    open_page(page, streamlit_server)
    expect(page.get_by_role("heading", name="Glyph Explorer")).to_be_visible()
    expect(page.get_by_text("glyphs-52 is ready")).to_be_visible()
    expect(page.get_by_text("CPU").first.or_(page.get_by_text("CUDA").first)).to_be_visible()
    links = page.get_by_test_id("stPageLink")
    for label in PAGE_LABELS:
        expect(links.filter(has_text=label).first).to_be_visible()
    # a local tool: .streamlit/config.toml's minimal toolbar has no Deploy button
    expect(page.get_by_test_id("stAppDeployButton")).to_have_count(0)
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
    no_exceptions(page)
    save_screenshot(page, "home")


def test_dataset_page_shows_counts_chart_and_grid(page, streamlit_server, open_page, wait_for_app, save_screenshot):
    open_page(page, streamlit_server)
    page.get_by_test_id("stPageLink").filter(has_text="Dataset").first.click()
    page.wait_for_url("**/dataset")
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Dataset")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="train")).to_be_visible()
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()  # class distribution
    grid = page.locator("[data-testid=stTabPanel]:visible [data-testid=stImage] img")
    expect(grid.first).to_be_visible()
    assert grid.count() >= 8
    # reshuffle draws a new sample: the captions (class and index) change
    captions = page.locator("[data-testid=stTabPanel]:visible [data-testid=stImageCaption]").all_inner_texts()
    page.get_by_role("button", name="Reshuffle").click()
    wait_for_app(page)
    expect(page.locator("[data-testid=stTabPanel]:visible [data-testid=stImageCaption]").first).not_to_have_text(
        captions[0]
    )
    no_exceptions(page)
    save_screenshot(page, "dataset")


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp{,6} give them) of sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_fresh_server_first_request_to_dataset_page(page, server_factory, open_page, save_screenshot):
    url = server_factory()  # nobody has opened this server yet
    # started like a plain `streamlit run app.py` (only the port given): it listens on loopback only
    loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1
    addresses = listening_addresses(int(url.rsplit(":", 1)[1]))
    assert addresses and addresses <= loopback, addresses
    open_page(page, url, "dataset")
    expect(page.get_by_role("heading", name="Dataset")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="train")).to_be_visible()
    expect(page.locator("[data-testid=stTabPanel]:visible [data-testid=stImage] img").first).to_be_visible()
    # the sidebar lists every page by its title (st.navigation, not the legacy file-name discovery)
    nav = page.get_by_test_id("stSidebarNav")
    for label in ("Home", "Dataset", "Train", "Runs & Compare", "Evaluate", "Draw", "Activations"):
        expect(nav.get_by_text(label, exact=True)).to_be_visible()
    no_exceptions(page)
    save_screenshot(page, "dataset-fresh-server")
