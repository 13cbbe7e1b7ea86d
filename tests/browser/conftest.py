"""Real-browser test fixtures: a real ``streamlit run app.py`` server and Debian's Chromium.

Fixtures (names are stable; the Evaluate/Draw/Activations browser tests use them too):

- ``app_env`` (session): an :class:`AppEnv` with a tiny glyphs-52 (the ``tiny_glyphs`` fixture of
  tests/conftest.py) and an empty temporary runs folder; ``app_env.env`` is the environment the
  server (and every run it launches) gets.
- ``streamlit_server`` (session): the base URL (``http://127.0.0.1:<port>``) of a server started once
  with ``app_env``; killed at the end of the session.
- ``server_factory`` (session): ``server_factory()`` starts another, FRESH server (same env) and
  returns its base URL; used to test a fresh server's very first request. ``server_factory(
  extra_args=["--theme.base", "dark"])`` passes more ``streamlit run`` options (e.g. the dark theme).
- ``browser`` (session) / ``page`` (function): Playwright's sync API on ``/usr/bin/chromium``; the
  tests never download a browser.

Helpers, requested as fixtures that return the plain function (``def test_x(page, wait_for_app): ...``):

- ``wait_for_app(page)``: wait until the script run has finished
  (``[data-testid=stApp][data-test-script-state=notRunning]``) and the page shows an element.
- ``open_page(page, base_url, path="")``: go to a page URL (``""`` home, ``"Dataset"``, ...) and wait.
- ``save_screenshot(page, name)``: write ``<repo>/screenshots/<name>.png`` (git-ignored) for a person
  to look at; returns the path.
- ``choose_option(page, widget, name)``: pick the option ``name`` in a Streamlit selectbox or multiselect.

A test that fails leaves ``screenshots/FAILED-<test>.png``: the page as it was at the failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from chromium import APP_READY, CHROMIUM_ARGS  # tests/browser/chromium.py

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "screenshots"

SERVER_START_TIMEOUT_S = 90.0  # a cold start imports streamlit + altair on a busy 2-core machine
VIEWPORT = {"width": 1400, "height": 1000}


@dataclass
class AppEnv:
    """What a test server runs against.

    Attributes:
        env: the full process environment for the server (GLYPH_DATA_DIR / GLYPH_RUNS_DIR set).
        data_dir: the folder holding the tiny ``glyphs-52/``.
        runs_dir: the (initially empty) runs folder; runs launched from the app land here.
    """

    env: dict[str, str]
    data_dir: Path
    runs_dir: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _stop_runs_started_by_tests(runs_dir: Path) -> None:
    """Stop run processes that the test servers launched and that are still going (by pid only)."""
    for status_file in runs_dir.glob("*/status.json"):
        try:
            status = json.loads(status_file.read_text())
        except (OSError, ValueError):
            continue
        pid = status.get("pid")
        if status.get("state") in ("running", "queued") and isinstance(pid, int) and pid > 0:
            if _pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


@pytest.fixture(scope="session")
def app_env(tiny_glyphs, tmp_path_factory) -> AppEnv:
    """A tiny glyphs-52 and an empty runs folder, as the environment for test servers."""
    # tiny_glyphs builds the data set and points GLYPH_DATA_DIR at it (tests/conftest.py).
    data_dir = Path(os.environ["GLYPH_DATA_DIR"])
    runs_dir = tmp_path_factory.mktemp("browser-runs")
    env = dict(os.environ)
    env.update(
        {
            "GLYPH_DATA_DIR": str(data_dir),
            "GLYPH_RUNS_DIR": str(runs_dir),
            # 2 shared cores: one torch thread per process is faster than oversubscribing.
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        }
    )
    yield AppEnv(env=env, data_dir=data_dir, runs_dir=runs_dir)
    _stop_runs_started_by_tests(runs_dir)


class _Server:
    def __init__(self, env: dict[str, str], log_path: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        # Only the port (and what a test asks for): every other setting comes from
        # .streamlit/config.toml, as for a user's plain `streamlit run app.py`.
        argv = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port), *extra_args]
        # Own session so that stop() ends exactly this server and its children, nothing else.
        self.proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_healthy(self, timeout: float = SERVER_START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"streamlit did not become healthy in {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self._log.close()


@pytest.fixture(scope="session")
def server_factory(app_env, tmp_path_factory):
    """Start fresh servers on demand: ``url = server_factory()``; all are stopped at session end."""
    servers: list[_Server] = []
    log_dir = tmp_path_factory.mktemp("streamlit-logs")

    def start(extra_args: tuple[str, ...] | list[str] = ()) -> str:
        server = _Server(app_env.env, log_dir / f"server-{len(servers)}.log", tuple(extra_args))
        servers.append(server)
        server.wait_healthy()
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def streamlit_server(server_factory) -> str:
    """Base URL of the session's shared server (``http://127.0.0.1:<port>``)."""
    return server_factory()


def _chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.fail("Chromium is missing: install Debian's 'chromium' package (make test does it as root)")
    return path


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the session (Playwright sync API, Debian's binary)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=_chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so that ``page`` can tell a failed test at teardown."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser, request):
    """A fresh browser context and page per test (no shared cookies or session state)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOT_DIR.mkdir(exist_ok=True)
        name = "".join(c if c.isalnum() or c in "-_" else "-" for c in request.node.name)
        pg.screenshot(path=str(SCREENSHOT_DIR / f"FAILED-{name}.png"), full_page=True)
    context.close()


def wait_for_app(page, timeout: float = 60_000) -> None:
    """Wait until the app's script run has finished and the page shows something (timeout in ms): the
    script-state flag reads "not running" before the first run starts too."""
    page.wait_for_selector(
        f"{APP_READY} [data-testid=stMainBlockContainer] [data-testid=stElementContainer]", timeout=timeout
    )


def open_page(page, base_url: str, path: str = "", timeout: float = 60_000) -> None:
    """Go to ``<base_url>/<path>`` ("" is home; "Dataset", "Train", "runs", ...) and wait."""
    page.goto(f"{base_url}/{path}".rstrip("/") if path else base_url)
    wait_for_app(page, timeout=timeout)


# Streamlit scrolls inside its main container, not the document: measure that to see everything.
_CONTENT_HEIGHT_JS = """() => {
  const main = document.querySelector('[data-testid=stMain]')
    || document.querySelector('[data-testid=stAppViewContainer]');
  return Math.max(main ? main.scrollHeight : 0, document.documentElement.scrollHeight);
}"""
MAX_SCREENSHOT_HEIGHT = 6000  # px


def save_screenshot(page, name: str) -> Path:
    """Save a screenshot of the whole page to ``<repo>/screenshots/<name>.png`` (git-ignored).

    The viewport is stretched to the content's height for the shot (Streamlit's main area scrolls
    inside a container, which ``full_page`` alone does not capture) and put back afterwards.
    """
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    size = page.viewport_size or VIEWPORT
    height = min(MAX_SCREENSHOT_HEIGHT, max(size["height"], int(page.evaluate(_CONTENT_HEIGHT_JS))))
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(400)  # let charts re-layout
    # an <img> whose src just changed keeps showing the old picture until the new one has loaded
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=10_000)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def choose_option(page, widget, name: str, tries: int = 3) -> None:
    """Pick the option ``name`` in a Streamlit selectbox or multiselect (``widget``: its stSelectbox
    or stMultiSelect locator).

    The box's text is cleared and the name typed in, which opens the list filtered to it, so an
    option far down a long list (only the rows in view are rendered) is shown too; the option is
    clicked by its exact name (Enter would take whichever option is first while the list still
    filters). A list that closed before the click reached it is opened again, at most ``tries``
    times in all; a selectbox must show ``name`` at the end, a multiselect must hold it.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    box = widget.get_by_role("combobox")
    option = page.get_by_role("option", name=name, exact=True)
    for attempt in range(tries):
        box.fill("")
        box.press_sequentially(name)
        try:
            option.click(timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
    if widget.get_attribute("data-testid") == "stMultiSelect":
        expect(widget).to_contain_text(name)
    else:
        expect(box).to_have_value(name)


@pytest.fixture(name="wait_for_app")
def _wait_for_app_fixture():
    return wait_for_app


@pytest.fixture(name="open_page")
def _open_page_fixture():
    return open_page


@pytest.fixture(name="save_screenshot")
def _save_screenshot_fixture():
    return save_screenshot


@pytest.fixture(name="choose_option")
def _choose_option_fixture():
    return choose_option
