"""AppTest fixtures: a temporary runs folder, run folders written through glyphcore.runs, and a
stand-in training process for the live monitor.

The run folders are what a training process writes (config.json, status.json, metrics.jsonl in
the formats of glyphcore.runs); the pages only read files, so a page test needs no training.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from run_folders import write_run  # tests/run_folders.py
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_TIMEOUT_S = 60  # an AppTest run on a busy 2-core machine (first torch import included)


def app_page(page: str | None = None) -> AppTest:
    """An AppTest of app.py, switched to ``app_pages/<page>`` when given (page links then resolve)."""
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=APP_TIMEOUT_S)
    if page:
        at.switch_page(f"app_pages/{page}")
    return at


@pytest.fixture
def no_starter(tmp_path, monkeypatch) -> Path:
    """Hide the repository's committed starter run, so that a page lists exactly the test's runs.

    Returns the (empty) folder the starter is looked for in now, for a test that puts one there."""
    from glyphcore import paths

    monkeypatch.setattr(paths, "starter_dir", lambda: tmp_path / "starter")
    return tmp_path / "starter"


def errors_of(at: AppTest) -> list[str]:
    """Uncaught exceptions and st.error messages of the last run."""
    return [e.value for e in at.exception] + [e.value for e in at.error]


def texts_of(at: AppTest) -> str:
    """Every markdown, caption, info, success, warning and error text, joined (for 'in' checks)."""
    parts = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "title", "header", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def charts_of(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:  # noqa: F821 (pandas, imported inside)
    """Every Altair/Vega-Lite chart of the last run as (spec, data of its first dataset)."""
    import pandas as pd
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    out = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        datasets = chart.proto.datasets
        data = convert_arrow_bytes_to_pandas_df(datasets[0].data.data) if datasets else pd.DataFrame()
        out.append((spec, data))
    return out


@pytest.fixture
def data_dir(tiny_glyphs, tmp_path, monkeypatch):
    """The tiny glyphs-52 in a data folder of this test's own (GLYPH_DATA_DIR), so kept drawings stay in it."""
    d = tmp_path / "data"
    d.mkdir()
    os.symlink(tiny_glyphs, d / "glyphs-52")
    monkeypatch.setenv("GLYPH_DATA_DIR", str(d))
    return d


@pytest.fixture
def make_run(runs_dir):
    """``make_run(run_id, **kw)``: write_run into this test's runs folder."""
    return lambda run_id, **kw: write_run(runs_dir, run_id, **kw)


@pytest.fixture(name="app_page")
def _app_page_fixture():
    """``app_page("train.py")`` -> an AppTest of that page (not yet run)."""
    return app_page


@pytest.fixture(name="errors_of")
def _errors_of_fixture():
    return errors_of


@pytest.fixture(name="charts_of")
def _charts_of_fixture():
    return charts_of


@pytest.fixture(name="texts_of")
def _texts_of_fixture():
    return texts_of
