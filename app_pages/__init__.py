"""The app's pages: one thin file each (widgets -> plain values -> glyphcore -> charts).

``PAGES`` is the one list of them, in sidebar order: ``app.py`` builds ``st.navigation`` from it
and the home page's links read it. The folder is not named ``pages/``: Streamlit's legacy page
discovery would take over a folder of that name.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PageInfo", "PAGES"]


class PageInfo(NamedTuple):
    """One page: its file (relative to the repository root), title, icon, URL path and what it is for."""

    file: str
    title: str
    icon: str
    url_path: str
    what: str


PAGES: list[PageInfo] = [
    PageInfo("app_pages/home.py", "Home", ":material/home:", "", "what Glyph Explorer is, the device, the data set"),
    PageInfo(
        "app_pages/dataset.py",
        "Dataset",
        ":material/dataset:",
        "dataset",
        "browse glyphs-52 and other sources: counts, samples, fonts, augmentation",
    ),
    PageInfo(
        "app_pages/train.py",
        "Train",
        ":material/model_training:",
        "train",
        "configure and launch runs, sweep activations, watch live curves",
    ),
    PageInfo(
        "app_pages/runs.py",
        "Runs & Compare",
        ":material/compare_arrows:",
        "runs",
        "every run in a table; overlay curves, ablations",
    ),
    PageInfo(
        "app_pages/evaluate.py",
        "Evaluate",
        ":material/grid_on:",
        "evaluate",
        "confusion matrix, per-class metrics, top losses",
    ),
    PageInfo("app_pages/draw.py", "Draw", ":material/draw:", "draw", "draw a letter and see what every model thinks"),
    PageInfo(
        "app_pages/activations.py",
        "Activations",
        ":material/show_chart:",
        "activations",
        "activation functions and what they do inside a run",
    ),
]
