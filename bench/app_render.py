"""App render times and live-curve lag, in a real browser against a real, warm server.

    .venv/bin/python bench/app_render.py [--runs 20] [--repeat 3] [--live-seconds 20]

Sets up a temporary runs folder with ``--runs`` finished runs (written as a training process
leaves them: config.json, status.json, metrics.jsonl of 15 epochs) plus one live run whose
metrics.jsonl a writer process appends to 5 times a second, starts ``streamlit run app.py``
(``--server.fileWatcherType none``) on the data folder of this checkout (GLYPH_DATA_DIR; build
glyphs-52 first for figures on the full 72,800 images), and with Debian's Chromium measures:

* each page's render time: from navigation to the end of the script run
  (``[data-test-script-state=notRunning]`` with the page's title visible): the first (cold) visit,
  then the median / max of ``--repeat`` warm visits, both in a new tab (a new app session) and by a
  click on the sidebar link inside one session;
* the live-curve lag: how long after a step record is written to metrics.jsonl the Train page's
  monitor shows it (its caption names the latest loss, which the writer makes unique per record).

Targets: every page <= 2 s warm, live-curve lag <= 2 s. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # run_folders: run folders as training leaves them
sys.path.insert(0, str(REPO / "tests" / "browser"))  # chromium: the flags and the ready selector

from chromium import APP_READY, CHROMIUM_ARGS  # noqa: E402
from run_folders import write_run  # noqa: E402

import app_pages  # noqa: E402
from glyphcore import paths  # noqa: E402

# (url path, heading on the page, sidebar label), in sidebar order
PAGES = [(p.url_path, "Glyph Explorer" if p.url_path == "" else p.title, p.title) for p in app_pages.PAGES]
LIVE_RUN = "live-bench-run"
WRITER_HZ = 5.0  # step records per second written to the live run
Times = dict[str, list[float]]  # seconds of each visit, by page url path

# The live run's writer: appends a step record with a unique loss (1 + k/10^4) WRITER_HZ times a
# second and keeps status.json current, like a training process. Its command line carries
# "-m glyphcore.bench" so that glyphcore.runs counts its pid as a live training process.
WRITER = textwrap.dedent("""
    import sys, time
    from glyphcore import runs
    run_dir, hz, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    log = runs.MetricsLog(run_dir)
    t0 = time.time(); k = 0
    while time.time() - t0 < seconds:
        k += 1
        log.append({"event": "step", "epoch": 1 + k // 100, "step": k, "loss": 1 + k / 1e4})
        runs.update_status(run_dir, step=k, wall_seconds=time.time() - t0)
        time.sleep(1 / hz)
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.25)
    raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}")


def new_context(browser):
    """A fresh browser context (its own cookies and cache) with the window size the benches use."""
    return browser.new_context(viewport={"width": 1400, "height": 1000})


def open_ready(context, url: str):
    """A new tab on ``url``, once the app's first script run has ended."""
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(APP_READY, timeout=60_000)
    return page


def wait_rendered(page, title: str) -> None:
    """Waits until the page shows its title and its script run has ended."""
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    page.wait_for_selector(APP_READY, timeout=60_000)


def render_seconds(context, url: str, title: str) -> float:
    """A new tab (a new app session; the browser's HTTP cache is warm): seconds from navigation
    until the script run has ended and the page's title is shown."""
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    wait_rendered(page, title)
    seconds = time.perf_counter() - t0
    errors = page.get_by_test_id("stException").count()
    page.close()
    if errors:
        print(f"  warning: {url} shows {errors} exception(s)")
    return seconds


def switch_seconds(page, label: str, title: str) -> float:
    """In one session: seconds from a click on the page's sidebar link to the end of its run."""
    t0 = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_text(label, exact=True).click()
    wait_rendered(page, title)
    return time.perf_counter() - t0


def live_lag(browser, url: str, run_dir: Path, seconds: float) -> list[float]:
    """Lags (s) between a step record's write and its loss appearing on the Train page's monitor."""
    context = new_context(browser)
    page = open_ready(context, url + "/train")
    seen: dict[int, float] = {}
    pattern = re.compile(r"train loss (1\.\d{4}) at epoch")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for text in page.get_by_text(pattern).all_inner_texts():
            m = pattern.search(text)
            if m:
                k = round((float(m.group(1)) - 1) * 1e4)
                seen.setdefault(k, time.time())
        page.wait_for_timeout(50)  # poll the DOM at 20 Hz
    context.close()
    from glyphcore import runs

    written = {round(r["step"]): r["time"] for r in runs.read_metrics(run_dir) if r.get("event") == "step"}
    return [t - written[k] for k, t in seen.items() if k in written]


def parse_args() -> argparse.Namespace:
    """The command line: runs on disk, warm visits per page and how long to watch the live run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="finished runs on disk")
    ap.add_argument("--repeat", type=int, default=3, help="warm visits per page")
    ap.add_argument("--live-seconds", type=float, default=20.0, help="how long to watch the live run (s)")
    return ap.parse_args()


def glyphs52_images() -> int:
    """The number of images in glyphs-52; exits with a hint when it is not built."""
    from glyphcore.data import dataset_info, glyphs52_ready

    if not glyphs52_ready():
        raise SystemExit(f"glyphs-52 is not built in {paths.data_dir()}: run `python -m glyphcore data build` first")
    return sum(dataset_info("glyphs-52")["counts"].values())


def finished_runs(n: int) -> Path:
    """A new temporary runs folder holding ``n`` finished runs of varied activation and learning rate."""
    runs_dir = Path(tempfile.mkdtemp(prefix="glyph-bench-runs-"))
    acts = ["relu", "silu", "elu", "gelu", "tanh"]
    for i in range(n):
        write_run(
            runs_dir,
            f"bench-{i:02d}-{acts[i % 5]}",
            activation=acts[i % 5],
            epochs=15,
            steps_per_epoch=832 // 50,
            lr=2e-4 * (1 + i // 5),
            started=time.time() - 3600 + i,
        )
    return runs_dir


def page_times(context, url: str, repeat: int) -> tuple[dict[str, float], Times, Times]:
    """Each page's cold visit, then ``repeat`` warm visits in new tabs and by sidebar clicks in one session."""
    first = {path: render_seconds(context, f"{url}/{path}", title) for path, title, _ in PAGES}
    tabs = {path: [render_seconds(context, f"{url}/{path}", title) for _ in range(repeat)] for path, title, _ in PAGES}
    nav = open_ready(context, url)
    switches: Times = {path: [] for path, _, _ in PAGES}
    for _ in range(repeat):
        for path, title, label in PAGES:
            switches[path].append(switch_seconds(nav, label, title))
    return first, tabs, switches


def print_page_times(first: dict[str, float], tabs: Times, switches: Times) -> None:
    """One line per page (first, median / max in new tabs and by switches), then the slowest warm render."""
    worst = 0.0
    for path, _, _ in PAGES:
        t, w = tabs[path], switches[path]
        worst = max(worst, max(t), max(w))
        print(
            f"{'/' + path:<20}{first[path]:>8.2f}{statistics.median(t):>9.2f} / {max(t):<4.2f}"
            f"{statistics.median(w):>9.2f} / {max(w):<4.2f}"
        )
    print(f"slowest warm render: {worst:.2f} s (target <= 2 s)")


def start_writer(runs_dir: Path, env: dict[str, str], seconds: float, writers: list[subprocess.Popen]) -> Path:
    """Writes the live run and starts its writer (kept in ``writers`` for the cleanup); returns the run."""
    run_dir = write_run(
        runs_dir,
        LIVE_RUN,
        state="running",
        epochs=1000,
        epochs_done=0,
        steps_per_epoch=100,
        started=time.time(),
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run_dir), str(WRITER_HZ), str(seconds + 15), "-m", "glyphcore.bench"],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
    )
    writers.append(writer)
    # the writer's pid makes the run "running" on the monitor
    from glyphcore import runs

    runs.update_status(run_dir, pid=writer.pid)
    return run_dir


def browse(
    args: argparse.Namespace,
    url: str,
    runs_dir: Path,
    env: dict[str, str],
    n_images: int,
    writers: list[subprocess.Popen],
) -> list[float]:
    """In Chromium: prints every page's render times, then watches the live run; returns its lags."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        print(f"app render: {args.runs} runs on disk, glyphs-52 of {n_images:,} images, {os.cpu_count()} CPUs")
        print(
            f"  new tab = a new session (HTTP cache warm); switch = sidebar click in one session; "
            f"warm = median / max of {args.repeat}"
        )
        print(f"{'page':<20}{'first s':>8}{'new tab s':>16}{'switch s':>16}")
        context = new_context(browser)
        print_page_times(*page_times(context, url, args.repeat))
        context.close()

        run_dir = start_writer(runs_dir, env, args.live_seconds, writers)
        lags = live_lag(browser, url, run_dir, args.live_seconds)
        browser.close()
    return lags


def print_lags(lags: list[float]) -> None:
    """The live curve's lag: median, p95 and max over the records the monitor showed."""
    if lags:
        lags.sort()
        p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))]
        print(
            f"live curve lag behind metrics.jsonl ({WRITER_HZ:g} records/s, {len(lags)} records seen): "
            f"median {statistics.median(lags):.2f} s, p95 {p95:.2f} s, max {lags[-1]:.2f} s (target <= 2 s)"
        )
    else:
        print("live curve lag: the monitor showed no record (is the Train page broken?)")


def main() -> int:
    """Sets up the runs, starts the server, measures in Chromium and always cleans up after."""
    args = parse_args()
    n_images = glyphs52_images()
    runs_dir = finished_runs(args.runs)
    env = {**os.environ, "GLYPH_RUNS_DIR": str(runs_dir), "OMP_NUM_THREADS": "1"}
    writers: list[subprocess.Popen] = []  # the live run's writer, once browse() has started it
    proc, url = start_server(env, runs_dir / "server.log")
    try:
        print_lags(browse(args, url, runs_dir, env, n_images, writers))
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.terminate()
                writer.wait(10)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        shutil.rmtree(runs_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
