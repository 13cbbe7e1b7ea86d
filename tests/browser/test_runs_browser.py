"""Real browser: Runs & Compare. Pick two runs and get their curves overlaid; pick seed groups and
get the verdict first, a row per group, group bands and the cost view (light and dark, 1400 and
900 px wide); delete a run only after a second click. Sections are found by their container's key
(``.st-key-<key>``), not by position."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from run_folders import write_run  # tests/run_folders.py
from test_screens_browser import PROBLEMS_JS

pytestmark = pytest.mark.browser

ROW_PX = 35  # height of a header or data row of st.dataframe's grid
NARROW = {"width": 900, "height": 1000}


def section(page, key: str):
    """The page's container keyed ``key``."""
    return page.locator(f".st-key-{key}")


def tick_rows(page, wait_for_app, rows: int) -> None:
    """Tick the first ``rows`` rows of the runs table (a canvas grid: clicked by position in it)."""
    box = section(page, "rc_runs").get_by_test_id("stDataFrame").bounding_box()
    for row in range(rows):
        page.mouse.click(box["x"] + 15, box["y"] + ROW_PX * (row + 1.5))
        wait_for_app(page)


@pytest.fixture(scope="module")
def two_runs(app_env):
    write_run(app_env.runs_dir, "cmp-relu", activation="relu", val_accs=[0.6, 0.8, 0.9], started=1000.0, lr=1e-3)
    write_run(app_env.runs_dir, "cmp-silu", activation="silu", val_accs=[0.7, 0.85, 0.95], started=1001.0, lr=1e-3)
    return ["cmp-relu", "cmp-silu"]


def test_two_runs_overlaid(two_runs, page, streamlit_server, open_page, wait_for_app, save_screenshot, choose_option):
    open_page(page, streamlit_server, "runs")
    table = section(page, "rc_runs").get_by_test_id("stDataFrame")
    for run_id in two_runs:
        # the grid is drawn on a canvas; its cells are mirrored in an accessible table
        expect(table.locator("[role=gridcell]").filter(has_text=re.compile(f"^{run_id}$"))).to_be_attached()
    # narrow the table to these two runs, then tick both rows
    page.get_by_label("Filter").fill("cmp-")
    page.get_by_label("Filter").press("Enter")
    wait_for_app(page)
    expect(page.get_by_text("2 of ")).to_be_visible()
    tick_rows(page, wait_for_app, 2)
    picked = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
    for run_id in two_runs:
        expect(picked).to_contain_text(run_id)
    expect(section(page, "rc_verdicts")).to_contain_text("1 seed: cannot tell noise from effect")
    expect(page.get_by_text(re.compile(r"^2 runs overlaid, coloured by run"))).to_be_visible()
    for key in ("rc_curves_loss", "rc_curves_acc", "rc_hparams"):
        expect(section(page, key).locator("canvas, svg").first).to_be_visible()
    cards = section(page, "rc_cards_markdown")
    expect(cards).to_contain_text("| cmp-relu | seed_cnn | relu |")
    expect(cards).to_contain_text("| cmp-silu | seed_cnn | silu |")

    choose_option(page, page.get_by_test_id("stSelectbox").filter(has_text="Colour by"), "activation")
    wait_for_app(page)
    expect(page.get_by_text("coloured by activation")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
    save_screenshot(page, "runs-compare")


@pytest.fixture(scope="module")
def seed_groups(app_env):
    """Three seeds each of relu and gelu (gelu better by about 3 points), newest of all runs."""
    started = 5000.0
    for act, accs in (("relu", (0.90, 0.92, 0.91)), ("gelu", (0.929, 0.951, 0.94))):
        for seed, acc in zip((1, 2, 3), accs):
            started += 1
            write_run(
                app_env.runs_dir,
                f"grp-{act}-s{seed}",
                activation=act,
                seed=seed,
                lr=2e-3,
                val_accs=[0.5, 0.7, acc],
                started=started,
            )


def show_groups(page, base_url, open_page, wait_for_app) -> None:
    """Open Runs & Compare, narrow the table to the two groups and tick both group rows."""
    open_page(page, base_url, "runs")
    page.get_by_label("Filter").fill("grp-")
    page.get_by_label("Filter").press("Enter")
    wait_for_app(page)
    expect(page.get_by_text("6 of ")).to_contain_text("in 2 rows")
    tick_rows(page, wait_for_app, 2)  # a group's row picks its three runs
    expect(page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")).to_contain_text("grp-gelu-s3")


def test_seed_groups_lead_with_the_verdict(
    seed_groups, page, streamlit_server, open_page, wait_for_app, save_screenshot
):
    show_groups(page, streamlit_server, open_page, wait_for_app)
    verdicts = section(page, "rc_verdicts")
    expect(verdicts).to_be_visible()
    expect(verdicts).to_contain_text("activation=gelu is better than activation=relu by 3.00 points")
    # the verdict comes before the per-run views
    assert verdicts.bounding_box()["y"] < section(page, "rc_cards").bounding_box()["y"]
    page.get_by_test_id("stRadio").filter(has_text="Cost").get_by_text("wall time").click()  # no FLOPs here
    wait_for_app(page)
    for key in ("rc_differences", "rc_groups", "rc_bands_loss", "rc_bands_acc", "rc_cost"):
        expect(section(page, key).first).to_be_visible()
    page.get_by_test_id("stExpander").filter(has_text="activation=gelu · 3 run(s)").locator("summary").click()
    expect(section(page, "rc_clone_1").get_by_role("link", name="Clone and change")).to_have_attribute(
        "href", re.compile(r"train\?.*seeds=3")
    )
    assert page.get_by_test_id("stException").count() == 0
    save_screenshot(page, "runs-groups-1400")
    page.set_viewport_size(NARROW)
    wait_for_app(page)
    section(page, "rc_verdicts").scroll_into_view_if_needed()
    save_screenshot(page, "runs-groups-900")


def test_seed_groups_in_the_dark_theme(seed_groups, page, server_factory, open_page, wait_for_app, save_screenshot):
    dark = server_factory(extra_args=["--theme.base", "dark"])
    show_groups(page, dark, open_page, wait_for_app)
    expect(section(page, "rc_bands_acc").locator("canvas, svg").first).to_be_visible()
    page.get_by_test_id("stRadio").filter(has_text="Cost").get_by_text("wall time").click()
    wait_for_app(page)
    assert page.get_by_test_id("stException").count() == 0
    section(page, "rc_verdicts").scroll_into_view_if_needed()
    save_screenshot(page, "runs-groups-dark-1400")
    page.set_viewport_size(NARROW)
    wait_for_app(page)
    section(page, "rc_cost").scroll_into_view_if_needed()
    save_screenshot(page, "runs-groups-dark-900")


def test_delete_asks_first_keeps_on_no_and_deletes_on_yes(
    app_env, page, streamlit_server, open_page, wait_for_app, choose_option
):
    run = write_run(app_env.runs_dir, "del-me", activation="relu", val_accs=[0.5, 0.6], started=1002.0)
    page.set_viewport_size(NARROW)  # with the sidebar open: about 550 px of page
    field = page.get_by_test_id("stSelectbox").filter(has_text="Run to delete")

    def ask() -> None:
        open_page(page, streamlit_server, "runs")  # a fresh page: the section is closed
        page.get_by_text("Delete a run", exact=True).click()
        choose_option(page, field, "del-me")
        wait_for_app(page)
        assert page.evaluate(PROBLEMS_JS) == []  # the choice and its button whole at 900 px
        page.get_by_role("button", name="Delete ...").click()
        wait_for_app(page)
        expect(page.get_by_text("Delete run del-me and all its files")).to_be_visible()

    ask()
    assert page.evaluate(PROBLEMS_JS) == []  # "Yes, delete it" and "Keep it" whole at 900 px
    page.get_by_role("button", name="Keep it").click()
    wait_for_app(page)
    expect(page.get_by_text("Delete run del-me and all its files")).to_have_count(0)
    assert (run / "status.json").is_file()  # kept
    ask()
    page.get_by_role("button", name="Yes, delete it").click()
    wait_for_app(page)
    expect(page.get_by_text("Deleted del-me")).to_be_visible()  # the toast
    assert not run.exists()
    assert page.get_by_test_id("stException").count() == 0
