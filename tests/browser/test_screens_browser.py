"""Every page at 900 px and 1400 px wide, sidebar open and collapsed, light and dark theme, in a real
Chromium: nothing is cut or spills out of the page (a chart's texts included), the Train form's fields
show their values, the Draw canvas is whole and takes strokes (and Ctrl+Z undoes them), a run's answer
is not squeezed.

Screenshots land in screenshots/screen-<page>-<width>-<theme>-<sidebar>.png for a person to look at.
The dark theme is a server started with ``--theme.base dark``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from test_draw_browser import CANVAS, PREDICTION, VERDICT, draw_letter
from tiny_runs import temporary_tiny_run

from glyphcore.viz import palette

pytestmark = pytest.mark.browser

LONG_RUN = "screens-relu-with-a-long-run-id"
OTHER_RUN = "screens-silu"
PAGES = {
    "home": "",
    "dataset": "dataset",
    "train": "train",
    "runs": "runs",
    "evaluate": f"evaluate?run={LONG_RUN}",
    "draw": f"draw?run={LONG_RUN}&run={OTHER_RUN}",
    "activations": f"activations?run={LONG_RUN}",
}
WIDTHS = (900, 1400)

# Everything a person reads or uses, inside the main block's content box or in a box that scrolls
# sideways; texts that are cut with an ellipsis or scrolled inside their box; the page not wider than
# the window. Returns one line per problem.
PROBLEMS_JS = """() => {
  const problems = [];
  const main = document.querySelector('[data-testid=stMainBlockContainer]');
  const box = main.getBoundingClientRect();
  const pad = parseFloat(getComputedStyle(main).paddingRight);
  const right = box.right - pad + 1;
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push(`page ${document.documentElement.scrollWidth} px wide in a ${window.innerWidth} px window`);
  }
  const scrolls = (el) => {
    for (let e = el.parentElement; e && e !== main; e = e.parentElement) {
      const o = getComputedStyle(e).overflowX;
      if ((o === 'auto' || o === 'scroll') && e.scrollWidth > e.clientWidth) return true;
    }
    return false;
  };
  const name = (el) => (el.getAttribute('aria-label') || el.innerText || el.value || el.tagName).slice(0, 60);
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const things = main.querySelectorAll(
    '.vega-embed > svg, .vega-embed > canvas, [data-testid=stMetric], [data-testid=stImage] img, '
    + '[data-testid=stDataFrame], [data-testid=stSelectbox], [data-testid=stNumberInput], [data-testid=stButton], '
    + '[data-testid=stHeading], [data-testid=stCaptionContainer]');
  for (const el of things) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.right > right && !scrolls(el)) problems.push(`spills ${Math.round(r.right - right)} px: ${name(el)}`);
  }
  // a metric's or button's text is cut by a box inside it (overflow hidden, ellipsis): not by the <p>
  const clipped = (el) => [el, ...el.querySelectorAll('*')].find(
    (x) => x.clientWidth > 0 && x.scrollWidth > x.clientWidth + 1 && getComputedStyle(x).overflowX !== 'visible');
  const texts = main.querySelectorAll(
    '[data-testid=stMetricValue], [data-testid=stMetricLabel], [data-testid=stButton], [data-testid=stDownloadButton]');
  for (const el of texts) {
    const box = shown(el) && el.innerText ? clipped(el) : undefined;
    if (box) problems.push(`cut (${box.clientWidth} of ${box.scrollWidth} px): ${name(el)}`);
  }
  // a chart's labels, titles and legend inside its drawing: Vega cuts off what falls outside the svg
  // (3 px of slack: a rotated axis title's box reaches 2 px past the edge and is drawn whole)
  for (const svg of main.querySelectorAll('.vega-embed > svg')) {
    const r = shown(svg) ? svg.getBoundingClientRect() : undefined;
    for (const t of r ? svg.querySelectorAll('text') : []) {
      const b = t.getBoundingClientRect();
      if (t.textContent && (b.right > r.right + 3 || b.left < r.left - 3)) {
        problems.push(`chart text cut: ${t.textContent.slice(0, 60)}`);
      }
    }
  }
  const fields = main.querySelectorAll('[data-testid=stSelectbox] input, [data-testid=stNumberInput] input');
  for (const el of fields) {
    if (shown(el) && el.value && el.scrollWidth > el.clientWidth + 1) {
      problems.push(`cut (${el.clientWidth} of ${el.scrollWidth} px): ${name(el)}`);
    }
  }
  return problems;
}"""


def page_background(page) -> str:
    """The app's background colour as #rrggbb."""
    rgb = page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
    r, g, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def chart_colours() -> list[str]:
    return [
        *palette.SERIES_COLORS.values(),
        *palette.ACTIVATION_COLORS.values(),
        *palette.RIGHT_WRONG_COLORS.values(),
        palette.BAR_TOP,
        palette.BAR_OTHER,
        palette.DIAGONAL_GREY,
    ]


@pytest.fixture(scope="module")
def screen_runs(app_env):
    with (
        temporary_tiny_run(app_env.runs_dir, LONG_RUN, activation="relu"),
        temporary_tiny_run(app_env.runs_dir, OTHER_RUN, activation="silu"),
    ):
        yield


@pytest.fixture(scope="module")
def servers(server_factory, streamlit_server):
    return {"light": streamlit_server, "dark": server_factory(["--theme.base", "dark"])}


def open_at(page, url: str, path: str, width: int, sidebar: str, wait_for_app) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{url}/{path}")
    wait_for_app(page)
    # the browser keeps a collapsed sidebar collapsed on the next page
    if sidebar == "collapsed" and page.locator("[data-testid=stSidebar]").get_attribute("data-collapsed") != "true":
        page.locator("[data-testid=stSidebar]").hover()  # the collapse button shows on hover
        page.get_by_role("button", name="Collapse sidebar").click()
        expect(page.locator("[data-testid=stSidebar]")).to_have_attribute("data-collapsed", "true")
        # the main area now starts at the window's left edge (the sidebar is 300 px wide when open)
        page.wait_for_function("() => document.querySelector('[data-testid=stMain]').getBoundingClientRect().left < 50")
    page.wait_for_timeout(800)  # charts lay out after the script run
    wait_for_app(page)


# Every width with the sidebar open and collapsed in the light theme; the dark theme, whose sizes are the
# light theme's, at the narrowest of them (each setting opens every page: about 40 s here).
LAYOUTS = [(w, sidebar, "light") for w in WIDTHS for sidebar in ("open", "collapsed")] + [(min(WIDTHS), "open", "dark")]


@pytest.mark.parametrize(("width", "sidebar", "theme"), LAYOUTS, ids=["-".join(map(str, t)) for t in LAYOUTS])
def test_no_page_cuts_or_spills_anything(
    screen_runs, servers, page, wait_for_app, save_screenshot, theme, sidebar, width
):
    problems = {}
    for name, path in PAGES.items():
        open_at(page, servers[theme], path, width, sidebar, wait_for_app)
        assert page.get_by_test_id("stException").count() == 0, f"{name}: an exception on the page"
        background = page_background(page)
        # the server's theme reached the page, and every chart colour stands out from its real background
        assert (palette.relative_luminance(background) < 0.05) == (theme == "dark"), background
        low = {
            c: round(palette.contrast_ratio(c, background), 2)
            for c in chart_colours()
            if palette.contrast_ratio(c, background) < palette.MIN_GRAPHIC_CONTRAST
        }
        assert not low, f"{name}: below 3:1 on {background}: {low}"
        found = page.evaluate(PROBLEMS_JS)
        if found:
            problems[name] = found
        save_screenshot(page, f"screen-{name}-{width}-{theme}-{sidebar}")
    assert not problems, problems


@pytest.mark.parametrize("width", WIDTHS)
def test_train_fields_show_their_values(screen_runs, streamlit_server, page, wait_for_app, width):
    open_at(page, streamlit_server, "train?preset=report", width, "open", wait_for_app)  # the report model: 702,948
    for label in ("Preset", "Data set", "Model", "Activation", "Optimizer", "LR schedule", "Augmentation", "Device"):
        field = page.get_by_role("combobox", name=label, exact=True)
        value = field.input_value()
        assert value, label
        fits = field.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
        assert fits, f"{label}: {value!r} is cut at {width} px"
    params = page.get_by_test_id("stMetric").filter(has_text="Parameters").get_by_test_id("stMetricValue")
    expect(params).to_have_text("702,948")
    # the value's text box (it ends in an ellipsis when too narrow; its <p> has no width of its own)
    assert params.get_by_test_id("stMarkdownContainer").evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    data_set = page.get_by_role("combobox", name="Data set", exact=True)
    assert data_set.bounding_box()["width"] >= 120  # "gl" was a 20 px strip


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_canvas_is_whole_takes_strokes_and_ctrl_z_undoes(
    screen_runs, servers, page, wait_for_app, save_screenshot, width, theme
):
    open_at(page, servers[theme], PAGES["draw"], width, "open", wait_for_app)
    canvas = page.locator(CANVAS)
    expect(canvas).to_have_count(1, timeout=60_000)
    box = canvas.bounding_box()
    assert box["width"] >= 279 and box["height"] >= 279  # the 280 px canvas, not cut to a strip
    main = page.get_by_test_id("stMainBlockContainer").bounding_box()
    assert main["x"] <= box["x"] and box["x"] + box["width"] <= main["x"] + main["width"]
    # the canvas itself is what is under the pointer at its corners (nothing covers it; the canvas's
    # own toolbar floats above it once the pointer is over the canvas)
    for fx, fy in ((0.05, 0.05), (0.95, 0.05), (0.05, 0.95), (0.95, 0.95), (0.5, 0.5)):
        x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
        page.mouse.move(x, y)
        page.wait_for_timeout(400)  # the toolbar's move up takes 0.1 s after a 0.1 s delay
        hit = canvas.evaluate("(c, [x, y]) => c.getRootNode().elementFromPoint(x, y) === c", [x, y])
        assert hit, f"the canvas is covered at {fx, fy} of it"

    draw_letter(page, "A")
    answers = page.locator(f"{PREDICTION}, {VERDICT}")  # a letter, or "unsure / not a letter"
    answers.first.wait_for(timeout=60_000)
    wait_for_app(page)
    expect(answers).to_have_count(2)  # both runs answer
    for run_id in (LONG_RUN, OTHER_RUN):
        head = page.get_by_text(f"{run_id} says", exact=True)
        lines = head.evaluate("e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)")
        assert lines < 2.5, f"{run_id} says: {lines:.1f} lines at {width} px"
    for caption in page.get_by_text(re.compile(r"^what it sees \(\d+x\d+\)$")).all():
        lines = caption.evaluate("e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)")
        assert lines < 1.5, f"{caption.inner_text()!r} wraps"
    save_screenshot(page, f"screen-draw-answers-{width}-{theme}")

    # Ctrl+Z takes the last stroke back, stroke by stroke: the canvas ends empty, the hint returns
    for _ in range(6):
        page.keyboard.press("Control+z")
        page.wait_for_timeout(300)
    page.get_by_text("Draw a letter on the canvas").wait_for(timeout=60_000)
    assert page.locator(PREDICTION).count() == 0
    page.keyboard.press("Control+Shift+z")  # redo brings the first stroke back: the models answer it
    page.locator(PREDICTION).first.wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator("button.gx-undo").click()  # the visible Undo button takes it back again
    page.get_by_text("Draw a letter on the canvas").wait_for(timeout=60_000)
    assert page.locator(PREDICTION).count() == 0


@pytest.mark.parametrize("width", WIDTHS)
def test_the_comparison_views_fit(
    screen_runs, streamlit_server, page, wait_for_app, save_screenshot, choose_option, width
):
    open_at(page, streamlit_server, "runs", width, "open", wait_for_app)
    pick = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
    for run_id in (LONG_RUN, OTHER_RUN):  # other tests' runs share the folder: pick these two by name
        choose_option(page, pick, run_id)
        wait_for_app(page)
    page.keyboard.press("Escape")
    expect(pick.get_by_role("group", name="Selected values").locator("[data-tag]")).to_have_count(2)
    expect(page.get_by_text("Click a point to see its glyph.").first).to_be_visible(timeout=120_000)
    wait_for_app(page)
    page.wait_for_timeout(1000)
    charts = page.locator(".vega-embed")
    assert charts.count() >= 4  # loss, accuracy, settings vs results, embedding map
    problems = page.evaluate(PROBLEMS_JS)
    save_screenshot(page, f"screen-runs-compare-{width}")
    assert not problems, problems
