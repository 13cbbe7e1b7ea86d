"""The pages' cached loaders, in one place: a model, an evaluation or a data set that two pages show
is loaded once per server (``st.cache_resource``) or computed once per version of its files
(``st.cache_data``, keyed by a stamp that changes with them). Not a page: app.py does not list it.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from glyphcore import runs
from glyphcore.errors import GlyphError

__all__ = [
    "plain",
    "device_info",
    "predictor",
    "evaluation",
    "drawings_score",
    "dataset_info",
    "load_set",
    "run_config",
    "run_metrics",
]


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]~$#|])")


def plain(text: str) -> str:
    """``text`` with Streamlit's markdown characters escaped, so a message shows as written: a path
    pattern like ``<root>/<class>/*.png`` keeps its ``*`` (not italics), a ``$`` is not LaTeX."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


@st.cache_resource(show_spinner="Looking for a GPU ...")
def device_info() -> dict:
    """What this machine offers (torch counts the GPUs once per server)."""
    from glyphcore.train.device import describe_device

    return describe_device()


@st.cache_resource(show_spinner="Loading the model ...", max_entries=8)
def predictor(run_path: str, ckpt_stamp: Any):
    """A warm predictor per run and checkpoint version (``runs.file_stamp`` of its best.pt)."""
    from glyphcore.infer import load_predictor

    return load_predictor(run_path)


@st.cache_data(show_spinner="Evaluating (the first time for this checkpoint and split) ...", max_entries=32)
def evaluation(run_path: str, split: str, ckpt_stamp: Any):
    """``evaluate_run`` per run, split and checkpoint version (the run's eval/ folder caches it too)."""
    from glyphcore.evaluate import evaluate_run

    return evaluate_run(run_path, split=split)


@st.cache_data(show_spinner="Scoring runs on your drawings ...", max_entries=256)
def drawings_score(run_path: str, ckpt_stamp: Any, drawings_stamp: tuple) -> dict:
    """``score_run_on_drawings`` per checkpoint version and set of kept drawings
    (``drawings_stamp()``); for a run that cannot name drawn letters (e.g. one trained on digits)
    ``{"accuracy": None, "error": <why>}``."""
    from glyphcore.infer.drawings import score_run_on_drawings

    try:
        return score_run_on_drawings(run_path)
    except GlyphError as e:
        return {"accuracy": None, "n": 0, "correct": 0, "error": str(e)}


@st.cache_data(show_spinner="Reading the data set ...")
def dataset_info(source: str, stamp: str) -> dict:
    """``glyphcore.data.dataset_info`` per source and version of its files (``source_stamp``)."""
    from glyphcore.data import dataset_info as info

    return info(source)


@st.cache_resource(show_spinner="Loading images ...", max_entries=12)
def load_set(source: str, split: str, stamp: str):
    """One split as an ImageSet (memory-mapped for glyphs-52): shared by every session, never copied."""
    from glyphcore.data import load_dataset

    return load_dataset(source, split)


@st.cache_data(show_spinner=False, max_entries=256)
def _config(run_dir: str, stamp: tuple[int, int]) -> dict:
    try:
        return runs.read_config(run_dir)
    except GlyphError:
        return {}


@st.cache_data(show_spinner=False, max_entries=256)
def _metrics(run_dir: str, stamp: tuple[int, int]) -> list[dict]:
    return list(runs.read_metrics(run_dir))


def run_config(info: runs.RunInfo) -> dict:
    """A run's config.json ({} when unreadable), re-read only when the file changes."""
    return _config(str(info.path), runs.file_stamp(info.path / runs.CONFIG_FILE))


def run_metrics(info: runs.RunInfo) -> list[dict]:
    """All metrics records of a run, re-read only when metrics.jsonl changes."""
    return _metrics(str(info.path), runs.file_stamp(info.path / runs.METRICS_FILE))
