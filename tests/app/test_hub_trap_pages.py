"""The Draw and Evaluate pages (AppTest) on a crafted checkpoint that asks for pretrained weights,
with a malicious file in torch hub's cache: the pages predict and evaluate with the file's own
weights, and the planted pickle never runs."""

from __future__ import annotations

import pytest
from hub_trap import LETTERS, plant_hub_trap, pretrained_resnet_checkpoint
from tiny_runs import tiny_run

pytestmark = [pytest.mark.app, pytest.mark.usefixtures("no_starter")]


@pytest.fixture
def crafted_run(data_dir, tmp_path, runs_dir, monkeypatch):
    """A real run folder whose best.pt is replaced by the crafted checkpoint; the hub cache is planted."""
    run = tiny_run(runs_dir, "crafted", activation="relu", epochs=1)
    (run / "last.pt").unlink()
    pretrained_resnet_checkpoint(run / "best.pt", LETTERS, 64)
    return run, plant_hub_trap(tmp_path, monkeypatch)


@pytest.mark.slow
def test_draw_page_never_runs_the_hub_cache(crafted_run, app_page):
    from test_draw_page import canvas_value, drawn, predictions

    _, marker = crafted_run
    at = app_page("draw.py")
    at.session_state["canvas-0"] = canvas_value(drawn("A"))
    at.run()
    assert [e.value for e in at.exception] == []
    assert len(predictions(at)) == 1  # predicted with the file's weights
    assert not marker.exists()


def test_evaluate_page_never_runs_the_hub_cache(crafted_run, app_page):
    run, marker = crafted_run
    at = app_page("evaluate.py").run()
    assert [e.value for e in at.exception] == [] and [e.value for e in at.error] == []
    assert "accuracy" in at.subheader[0].value.lower() or "%" in at.subheader[0].value
    assert (run / "eval").is_dir()
    assert not marker.exists()
