"""Home page (AppTest): what the app is, the device, the data set status with its build button and
progress, links to every page, the latest runs."""

from __future__ import annotations

import threading

import pytest

from glyphcore.data import build_glyphs52, dataset_info
from glyphcore.data.fonts import sample_fonts
from glyphcore.jobs import GLYPHS52_BUILD_JOB, get_job, start_job
from glyphcore.train.device import describe_device

pytestmark = pytest.mark.app

PAGE_LABELS = ["Dataset", "Train", "Runs & Compare", "Evaluate", "Draw", "Activations"]


def test_home_shows_device_data_and_links(tiny_glyphs, runs_dir, no_starter, app_page, texts_of, errors_of):
    at = app_page().run()
    assert errors_of(at) == []
    assert at.title[0].value == "Glyph Explorer"
    text = texts_of(at)
    kind = describe_device()["kind"]
    assert {"cuda": "GiB", "mps": "Apple MPS", "cpu": "**CPU**"}[kind] in text
    assert "glyphs-52** is ready" in text
    counts = dataset_info("glyphs-52")["counts"]
    assert {m.label: m.value for m in at.metric} == {split: f"{n:,}" for split, n in counts.items()}
    assert sorted(link.proto.label for link in at.get("page_link")) == sorted(PAGE_LABELS)
    assert "No runs yet" in text


def test_home_lists_the_latest_runs_newest_first(tiny_glyphs, make_run, no_starter, app_page, texts_of):
    for i in range(7):  # seven different settings: seven rows
        make_run(f"run-{i}", activation="relu" if i % 2 else "silu", lr=1e-4 * (i + 1), started=1000.0 + i)
    at = app_page().run()
    table = at.dataframe[0].value
    assert list(table["run"]) == ["run-6", "run-5", "run-4", "run-3", "run-2"]
    assert list(table["activation"][:2]) == ["silu", "relu"]
    assert "2 more on the Runs & Compare page" in texts_of(at)


def test_home_lists_a_group_of_seeds_as_one_row(tiny_glyphs, make_run, no_starter, app_page, texts_of):
    for seed, acc in zip((1, 2, 3), (0.90, 0.92, 0.91)):
        make_run(f"gelu-s{seed}", activation="gelu", seed=seed, val_accs=[0.5, acc], epochs=2, started=1000.0 + seed)
    make_run("relu-s1", activation="relu", seed=1, started=2000.0)
    at = app_page().run()
    table = at.dataframe[0].value
    assert list(table["run"]) == ["relu-s1", "gelu-s1 + 2 more"]
    group = table.set_index("run").loc["gelu-s1 + 2 more"]
    assert group["seeds"] == 3 and group["state"] == "3 done"
    assert group["best val acc (%)"] == pytest.approx(91.0) and group["sd (points)"] == pytest.approx(1.0)
    assert "more on the Runs & Compare page" not in texts_of(at)


def test_without_data_the_home_page_offers_the_build(tmp_path, monkeypatch, runs_dir, app_page, texts_of):
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "empty"))
    at = app_page().run()
    assert "glyphs-52** is not built yet" in texts_of(at)
    assert at.button[0].label == "Build glyphs-52"


def test_a_running_build_shows_progress_then_the_data_set(tmp_path, monkeypatch, runs_dir, app_page, texts_of):
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "data"))
    gate = threading.Event()

    def small_build(progress):
        progress(0, 100, "rendering")
        gate.wait(60)  # hold the build until the page has been looked at
        return build_glyphs52(per_class=(2, 1, 1), seen_per_class=0, fonts=sample_fonts(), progress=progress)

    job = start_job(GLYPHS52_BUILD_JOB, small_build)
    try:
        at = app_page().run()
        bar = at.get("progress")[0]
        assert bar.proto.text == "Building glyphs-52: rendering (0 / 100)"
        assert not at.button  # no second build while one runs
    finally:
        gate.set()
    job.wait(120)
    assert job.error is None
    at = app_page().run()
    assert "glyphs-52** is ready: 208 images" in texts_of(at)
    assert not at.get("progress")


@pytest.mark.slow
def test_build_button_builds_the_default_data_set(tmp_path, monkeypatch, runs_dir, app_page, texts_of):
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "data"))
    at = app_page().run()
    at.button[0].click().run()
    job = get_job(GLYPHS52_BUILD_JOB)
    assert job is not None
    job.wait(600)
    assert job.error is None
    at = app_page().run()
    assert {m.label: m.value for m in at.metric}["train"] == "41,600"
    assert "glyphs-52** is ready" in texts_of(at)
