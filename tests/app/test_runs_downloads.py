"""Runs & Compare page (AppTest): a run's download buttons give its best.pt and each export format,
built on the click into the run's export/ folder."""

from __future__ import annotations

import json

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager

pytestmark = [pytest.mark.app, pytest.mark.slow]

PAGE = "runs.py"


@pytest.fixture
def clicks(monkeypatch) -> dict[str, object]:
    """file name -> what a click on that download button returns: the page hands each button a
    callable, which the server runs on the click; this records the callables (the real ones still run)."""
    seen: dict[str, object] = {}
    original = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        seen[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return seen


@pytest.fixture
def two_runs(tiny_glyphs, runs_dir, no_starter, make_run):
    """A real tiny run (with best.pt) and a run folder without checkpoints."""
    from tiny_runs import tiny_run  # tests/tiny_runs.py

    make_run("no-ckpt", started=1.0)
    return tiny_run(runs_dir, "tiny-relu", activation="relu")


def test_download_buttons_give_the_checkpoint_and_every_export(two_runs, app_page, clicks, errors_of):
    import onnxruntime as ort
    import torch
    from safetensors import safe_open

    at = app_page(PAGE).run()
    assert errors_of(at) == []
    assert at.selectbox(key="rc_download_target").options == ["tiny-relu"]  # only runs with a best.pt
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["best.pt", "ONNX", "torch.export (.pt2)", "safetensors"]
    assert not any(b.proto.disabled for b in at.get("download_button"))
    assert set(clicks) == {
        "tiny-relu-best.pt",
        "tiny-relu-best.onnx",
        "tiny-relu-best.pt2",
        "tiny-relu-best.safetensors",
    }
    export_dir = two_runs / "export"
    assert not export_dir.exists()  # nothing is built before a click

    assert clicks["tiny-relu-best.pt"]() == (two_runs / "best.pt").read_bytes()
    onnx = clicks["tiny-relu-best.onnx"]()
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["run"] == "tiny-relu"
    assert onnx == (export_dir / "tiny-relu-best.onnx").read_bytes()  # built into the run's export/ folder
    pt2 = clicks["tiny-relu-best.pt2"]()
    program = torch.export.load(str(export_dir / "tiny-relu-best.pt2"))
    assert pt2 == (export_dir / "tiny-relu-best.pt2").read_bytes()
    assert program.module()(torch.zeros(2, 1, 100, 100)).shape == (2, 52)
    clicks["tiny-relu-best.safetensors"]()
    with safe_open(str(export_dir / "tiny-relu-best.safetensors"), framework="pt") as f:
        assert len(json.loads(f.metadata()["classes"])) == 52


def test_the_run_picked_for_comparison_is_the_one_offered(two_runs, runs_dir, app_page):
    import shutil

    shutil.copytree(two_runs, runs_dir / "tiny-copy")
    at = app_page(PAGE)
    at.session_state["rc_pick"] = ["tiny-copy"]
    at.run()
    assert at.selectbox(key="rc_download_target").value == "tiny-copy"
    assert at.get("download_button")[0].proto.label == "best.pt"


def test_a_format_without_its_package_is_disabled_with_the_install_line(two_runs, app_page, monkeypatch):
    import dataclasses

    from glyphcore.models import export

    row = dataclasses.replace(export.FORMATS["onnx"], requires=("glyphcore_no_such_package",))
    monkeypatch.setitem(export.FORMATS, "onnx", row)
    at = app_page(PAGE).run()
    buttons = {b.proto.label: b.proto for b in at.get("download_button")}
    assert buttons["ONNX"].disabled and "pip install glyph-explorer[export]" in buttons["ONNX"].help
    assert not buttons["safetensors"].disabled
