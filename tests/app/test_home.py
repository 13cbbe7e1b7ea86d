"""Home page (AppTest): what the app is, the device, the data set status with its build button and
progress, links to every page, the latest runs."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs

import pytest

from glyphcore.data import build_glyphs52, dataset_info
from glyphcore.data.fonts import sample_fonts
from glyphcore.jobs import GLYPHS52_BUILD_JOB, get_job, start_job
from glyphcore.train.device import describe_device

pytestmark = pytest.mark.app

PAGE_LABELS = ["Dataset", "Train", "Runs & Compare", "Evaluate", "Draw", "Activations"]
GALLERY_METRICS = ("Report", "Ours")  # each recipe card's two figures


def test_home_shows_device_data_and_links(tiny_glyphs, runs_dir, no_starter, app_page, texts_of, errors_of):
    at = app_page().run()
    assert errors_of(at) == []
    assert at.title[0].value == "Glyph Explorer"
    text = texts_of(at)
    kind = describe_device()["kind"]
    assert {"cuda": "GiB", "mps": "Apple MPS", "cpu": "**CPU**"}[kind] in text
    assert "glyphs-52** is ready" in text
    counts = dataset_info("glyphs-52")["counts"]
    data_metrics = {m.label: m.value for m in at.metric if m.label not in GALLERY_METRICS}
    assert data_metrics == {split: f"{n:,}" for split, n in counts.items()}
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
        assert "Build glyphs-52" not in [b.label for b in at.button]  # no second build while one runs
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


# --------------------------------------------------------------------------------------------
# the "Reproduce a report" gallery


def _recipe_run(
    make_run, runs_dir, run_id: str, recipe: str, acc: float, started: float, split: str | None = None, **config
) -> None:
    """A finished run launched from ``recipe`` (config.json names it after the recipe); its best
    validation accuracy (at its last, lowest-loss epoch) is ``acc``; it validated on ``split`` (as
    the training process records it in config.json; not recorded when None)."""
    from glyphcore import runs

    make_run(run_id, val_accs=[acc - 0.01, acc - 0.005, acc], epochs=3, started=started, **config)
    saved = runs.read_config(runs_dir / run_id)
    dataset = {"dataset": {"splits": {"train": "train", "val": split}}} if split else {}
    runs.write_json_atomic(runs_dir / run_id / runs.CONFIG_FILE, {**saved, "name": recipe, **dataset})


def test_the_gallery_shows_every_recipe_with_the_reports_figure_and_downloads(
    tiny_glyphs, runs_dir, no_starter, app_page, texts_of, errors_of, tmp_path, monkeypatch
):
    from glyphcore.train.recipes import RECIPES

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no ImageNet weights here
    at = app_page().run()
    assert errors_of(at) == []
    assert "Reproduce a report" in [h.value for h in at.subheader]
    reports = [m.value for m in at.metric if m.label == "Report"]
    assert len(reports) == len(RECIPES)
    assert reports[:2] == ["99.03%", "96.9%"] and reports.count("67%") == 3 and "51%" in reports
    assert [m.value for m in at.metric if m.label == "Ours"] == ["no run yet"] * len(RECIPES)
    text = texts_of(at)
    assert text.count("Time here: not measured yet") == len(RECIPES) - 1  # all but the photo folder's
    assert "To download first (11.6 MB): MNIST data (11.6 MB)" in text
    assert "To download first (266.8 MB): CIFAR100 data (169.0 MB), resnet50 weights (97.8 MB)" in text
    launch = {b.key: b for b in at.button if b.key and b.key.startswith("launch_")}
    assert not launch["launch_glyph-report"].disabled  # glyphs-52 is here
    assert not launch["launch_seeds_glyph-report"].disabled
    assert launch["launch_seeds_glyph-report"].label == "Launch with 3 seeds"
    assert launch["launch_mnist-lenet-activation"].disabled and launch["launch_cifar100-resnet50"].disabled
    assert launch["launch_seeds_mnist-lenet-activation"].disabled
    assert launch["launch_mnist-lenet-batchnorm"].label == "Launch the sweep"
    assert launch["launch_seeds_mnist-lenet-batchnorm"].label == "Launch the sweep with 3 seeds"


def test_a_finished_recipe_run_stands_beside_the_reports_figure(
    tiny_glyphs, runs_dir, make_run, no_starter, app_page, texts_of
):
    _recipe_run(make_run, runs_dir, "older", "glyph-report", 0.99, started=1000.0, activation="relu")
    _recipe_run(make_run, runs_dir, "*newest*_run", "glyph-report", 0.9812, started=2000.0)
    make_run("not-a-recipe-run", val_accs=[0.5, 0.6, 0.7])
    at = app_page().run()
    ours = [m for m in at.metric if m.label == "Ours"]
    assert ours[0].value == "98.12%"  # the newest finished run of the glyph report's recipe (its group)
    assert ours[0].proto.delta == "-0.91 points"
    assert all(m.value == "no run yet" for m in ours[1:])
    text = texts_of(at)
    assert "1 seed: run \\*newest\\*\\_run" in text  # a folder name from disk is text, not markdown
    assert "activation=silu: 1 seed" in text  # the recipe's runs form two groups: which one this is


def test_a_card_with_finished_seeds_shows_their_mean_sd_and_n(
    tiny_glyphs, runs_dir, make_run, no_starter, app_page, texts_of
):
    _recipe_run(make_run, runs_dir, "seed-42", "glyph-report", 0.98, started=1000.0, seed=42, split="valid")
    _recipe_run(make_run, runs_dir, "seed-43", "glyph-report", 0.99, started=2000.0, seed=43, split="valid")
    _recipe_run(make_run, runs_dir, "seed-44", "glyph-report", 0.5, started=2500.0, seed=44, state="failed")
    _recipe_run(make_run, runs_dir, "scratch", "cifar100-scratch", 0.40, started=3000.0, split="valid")
    at = app_page().run()
    report = [m for m in at.metric if m.label == "Ours"][0]  # the glyph report's card comes first
    assert report.value == "98.50% ± 0.71"  # sd of 98 and 99 = 0.7071
    assert report.proto.delta == "-0.53 points"
    assert report.proto.help == (
        "best accuracy on the valid split (the split the runs validated on); the report's figure is on its valid split"
    )
    assert "not the same measure" not in report.proto.help
    text = texts_of(at)
    assert "mean 98.50% ± 0.71 (n=2 seeds; ± is the sd)" in text  # the failed seed 44 is not counted
    links = [link for link in at.get("page_link") if "Runs & Compare" in link.proto.label]
    assert any(link.proto.label == "Compare the seeds on Runs & Compare" for link in links)
    assert any("seed-42, seed-43" in link.proto.help for link in links)  # which runs it opens with
    [seeds_link] = [link for link in links if link.proto.label == "Compare the seeds on Runs & Compare"]
    linked = parse_qs(seeds_link.proto.query_string)["run"]  # the page opens with these picked
    assert {"seed-42", "seed-43"} <= set(linked)
    # the CIFAR-100 report published test accuracy: a run that validated on another split says so
    scratch = [m for m in at.metric if m.label == "Ours" and m.value == "40.00%"][0]
    assert "the report's figure is on its test split; not the same measure" in scratch.proto.help
    assert "1 seed: run scratch" in text


def test_measuring_a_recipe_runs_in_the_background_then_shows_the_time(
    tiny_glyphs, runs_dir, no_starter, app_page, texts_of
):
    from glyphcore.jobs import get_job

    at = app_page().run()
    at.button(key="measure_mnist-lenet-batchnorm").click().run()
    job = get_job("time recipe mnist-lenet-batchnorm")
    assert job is not None
    job.wait(120)
    assert job.error is None
    at = app_page().run()
    text = texts_of(at)
    assert "images/s measured" in text
    assert "for its 2 runs, one at a time" in text and "for its 5 runs, one at a time" in text
    assert text.count("with 3 seeds about") == 3  # the seeds' total beside each measured recipe's time
    # the three LeNet recipes start from the same model and batch: one measurement times all three
    assert text.count("Time here: not measured yet") == 10 - 3


@pytest.mark.slow
def test_launch_starts_the_recipes_run(tiny_glyphs, runs_dir, no_starter, app_page, texts_of):
    from glyphcore import runs

    at = app_page().run()
    at.button(key="launch_glyph-7layer").click().run()
    launched = [r for r in runs.list_runs() if not r.is_starter]
    assert len(launched) == 1 and launched[0].name == "glyph-7layer" and launched[0].model == "deep_cnn"
    assert f"Launched {launched[0].run_id}" in texts_of(at).replace("\\", "")
    for _ in range(600):  # the process marks itself running once it has started (0.1 s a look)
        if runs.read_status(launched[0].path)["state"] != "queued":
            break
        time.sleep(0.1)
    runs.cancel(launched[0].run_id, wait=60)
    assert runs.read_status(launched[0].path)["state"] in ("cancelled", "done")


def test_launch_with_3_seeds_starts_one_sweep_of_consecutive_seeds_once(
    tiny_glyphs, runs_dir, no_starter, app_page, texts_of
):
    from glyphcore import runs
    from glyphcore.runs.sweep import cancel_sweep, list_sweeps

    at = app_page().run()
    at.button(key="launch_seeds_glyph-7layer").click().run()
    second = at.button(key="launch_seeds_glyph-7layer")
    assert second.disabled  # the same seeds again would repeat them
    # the second click of a double-click, sent before the browser drew the button disabled
    second.proto.disabled = False
    second.click().run()
    sweeps = list_sweeps()
    assert len(sweeps) == 1 and len(sweeps[0].run_ids) == 3
    configs = [runs.read_config(runs_dir / run_id) for run_id in sweeps[0].run_ids]
    assert [c["seed"] for c in configs] == [42, 43, 44]
    assert {c["name"] for c in configs} == {"glyph-7layer"} and {c["model"] for c in configs} == {"deep_cnn"}
    assert f"Launched {sweeps[0].sweep_id}" in texts_of(at).replace("\\", "")
    assert not at.button(key="launch_glyph-7layer").disabled  # one seed is another launch
    if list_sweeps()[0].active:
        cancel_sweep(sweeps[0].sweep_id, wait=60)
