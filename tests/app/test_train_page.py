"""Train page (AppTest): the config form with the model summary before launch, Launch, the
activation sweep, and the live monitor (progress, curves, log lines, Cancel, Resume)."""

from __future__ import annotations

import json
import time

import pytest
from run_folders import wait_until_ended, write_run  # tests/run_folders.py

from app_pages.train_estimate import ESTIMATING
from glyphcore import runs
from glyphcore.models import create_model, model_summary
from glyphcore.runs.sweep import list_sweeps
from glyphcore.train.config import make_config

pytestmark = pytest.mark.app

PAGE = "train.py"


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def estimate_of(at, timeout_s: float = 300.0) -> str:
    """The "Estimated time" figure once its background measurement has landed (the page reruns meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while (value := metric(at, "Estimated time")) == ESTIMATING and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    return value


def table(at, key: str):
    """The table inside the page's container keyed ``key`` (found by key, never by position)."""
    return at.get_by_key(key).dataframe[0].value


def tiny_form(at):
    """The form set to one epoch of the tiny model (a real run of a few seconds on tests' tiny data)."""
    at.selectbox(key="tr_model").set_value("tiny_conv").run()
    at.number_input(key="tr_epochs").set_value(1).run()
    at.number_input(key="tr_batch_size").set_value(128).run()
    return at


def params_of(model: str, **kw) -> int:
    net = create_model(model, num_classes=52, in_channels=1, input_size=100, **kw)
    return model_summary(net, (1, 100, 100)).trainable_params


def test_the_page_opens_on_the_quick_recipe_on_a_cpu_and_shows_the_reports_model_on_request(
    runs_dir, app_page, errors_of
):
    import torch

    at = app_page(PAGE).run()
    assert errors_of(at) == []
    expected = "report" if torch.cuda.is_available() else "quick"  # the quick recipe where there is no GPU
    assert at.selectbox(key="tr_preset").value == expected
    assert at.selectbox(key="tr_model").value == make_config(expected).model
    at.selectbox(key="tr_preset").set_value("report").run()
    assert metric(at, "Parameters") == "702,948"  # the report's seed CNN
    layers = table(at, "tr_layers")
    assert {"Conv2d", "BatchNorm2d", "Linear"} <= set(layers["type"])


def test_summary_follows_the_form(runs_dir, app_page):
    at = app_page(PAGE).run()
    at.selectbox(key="tr_model").set_value("lenet").run()
    assert metric(at, "Parameters") == f"{params_of('lenet'):,}"
    at.checkbox(key="tr_batchnorm").uncheck().run()
    assert metric(at, "Parameters") == f"{params_of('lenet', batchnorm=False):,}"
    assert "BatchNorm2d" not in set(table(at, "tr_layers")["type"])


def test_bad_model_options_are_explained_and_block_launch(runs_dir, app_page):
    at = app_page(PAGE).run()
    options = f"tr_options_{at.selectbox(key='tr_model').value}"
    at.text_input(key=options).set_value('{"depth": 3}').run()
    assert any("depth" in e.value for e in at.error)
    assert at.button(key="tr_launch").disabled
    at.text_input(key=options).set_value("not json").run()
    assert any("JSON" in e.value for e in at.error)


def test_parameter_budget_warns_before_launch(runs_dir, app_page):
    at = app_page(PAGE).run()
    at.checkbox(key="tr_pbudget").check().run()
    at.number_input(key="tr_pbudget_n").set_value(100_000).run()
    assert any("over the budget of 100,000" in w.value for w in at.warning)


def test_monitor_shows_a_running_run(make_run, standin_process, app_page, charts_of):
    make_run("run-live", state="running", pid=standin_process(), epochs=3, epochs_done=1, step=5)
    at = app_page(PAGE).run()
    bar = at.get("progress")[0]
    assert bar.proto.text == "epoch 2/3 · step 5/10"
    assert bar.proto.value == 50  # 15 of 30 steps
    assert metric(at, "Images/s") == "500"
    assert metric(at, "Best val acc").startswith("63.33")
    loss_spec, loss_data = charts_of(at)[0]
    assert set(loss_data["series"]) == {"train (per step)", "train", "val"}
    assert loss_data["x"].max() == pytest.approx(1.5)  # 15 steps of 10 per epoch
    assert "Saving model" in at.code[0].value
    assert any("run-live" in m.value for m in at.markdown)


def test_monitor_after_a_reload_still_shows_the_run(make_run, standin_process, app_page):
    make_run("run-live", state="running", pid=standin_process(), epochs=3, epochs_done=1, step=2)
    first = app_page(PAGE).run()
    second = app_page(PAGE).run()  # a new session: nothing carried over but the files
    for at in (first, second):
        assert at.get("progress")[0].proto.text == "epoch 2/3 · step 2/10"


def test_cancel_stops_the_process_and_resume_is_offered(make_run, standin_process, app_page):
    pid = standin_process()
    make_run("run-live", state="running", pid=pid, epochs=3, epochs_done=1, step=5)
    at = app_page(PAGE).run()
    at.button(key="tr_cancel_run-live").click().run()
    deadline = time.monotonic() + 10
    while runs.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not runs.pid_alive(pid)
    at = app_page(PAGE).run()
    # the stand-in cannot mark itself cancelled; the run store does, since a cancel was requested
    assert any("run-live` — cancelled" in m.value for m in at.markdown)
    assert at.button(key="tr_resume_run-live")


def test_no_run_in_progress(runs_dir, app_page, texts_of):
    at = app_page(PAGE).run()
    assert "No run in progress" in texts_of(at)


@pytest.mark.slow
def test_launch_trains_in_its_own_process_and_the_monitor_follows(tiny_glyphs, runs_dir, app_page, charts_of):
    at = app_page(PAGE).run()
    at.selectbox(key="tr_model").set_value("tiny_conv").run()
    at.number_input(key="tr_epochs").set_value(2).run()
    at.number_input(key="tr_batch_size").set_value(64).run()
    at.button(key="tr_launch").click().run()
    assert [e.value for e in at.error] == []
    (run_dir,) = list(runs_dir.iterdir())
    assert any(run_dir.name in s.value for s in at.success)
    status = wait_until_ended(run_dir.name)
    assert status["state"] == "done", status["message"]
    at = app_page(PAGE).run()
    assert any(run_dir.name in m.value and "done" in m.value for m in at.markdown)
    assert at.get("progress")[0].proto.value == 100
    (_, loss), (_, acc) = charts_of(at)[:2]
    assert sorted(set(loss["series"])) == ["train", "train (per step)", "val"]
    assert loss.loc[loss["series"] == "val", "x"].tolist() == [1.0, 2.0]
    assert "Saving model" in at.code[0].value


@pytest.mark.slow
def test_a_sweep_is_one_panel_in_order_and_cancel_sweep_stops_all_of_it(tiny_glyphs, runs_dir, app_page):
    at = tiny_form(app_page(PAGE).run())
    at.multiselect(key="tr_sweep_acts").set_value(["relu", "tanh", "elu"]).run()
    assert at.number_input(key="tr_sweep_parallel").value == 1  # a CPU machine: one at a time
    at.button(key="tr_sweep_launch").click().run()
    [sweep] = list_sweeps()
    assert any(sweep.sweep_id in s.value for s in at.success)
    assert at.button(key="tr_sweep_launch").disabled  # launched with these settings: no second sweep
    by_act = {runs.read_config(i)["activation"]: i for i in sweep.run_ids}
    assert list(by_act) == ["relu", "tanh", "elu"]  # grid order
    assert wait_until_ended(by_act["relu"])["state"] == "done"

    at = app_page(PAGE).run()
    results = table(at, f"tr_sweep_table_{sweep.sweep_id}")  # one table for the sweep
    assert results["activation"].tolist() == ["relu", "tanh", "elu"]
    assert results.loc[0, "state"] == "done" and results.loc[0, "best val acc (%)"] is not None
    at.button(key=f"tr_cancel_sweep_{sweep.sweep_id}").click().run()
    for act in ("tanh", "elu"):
        assert wait_until_ended(by_act[act])["state"] == "cancelled"
    # the last one was still waiting: it never started
    assert not (runs_dir / by_act["elu"] / runs.LAST_CKPT).exists()
    assert not list_sweeps()[0].active


def test_summary_follows_the_data_source(tmp_path, runs_dir, app_page, monkeypatch):
    from PIL import Image

    for cls in ("cat", "dog", "emu"):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (28, 28), 40 * i).save(tmp_path / "pets" / cls / f"{i}.png")
    at = app_page(PAGE).run()
    at.selectbox(key="tr_data_choice").set_value("other source ...").run()
    at.text_input(key="tr_data_other").set_value(f"folder:{tmp_path / 'pets'}").run()
    assert any("input 1x28x28 · 3 classes" in c.value for c in at.caption)
    model = at.selectbox(key="tr_model").value
    options = json.loads(at.text_input(key=f"tr_options_{model}").value)  # the preset's, on the form
    net = create_model(model, num_classes=3, in_channels=1, input_size=28, **options)
    assert metric(at, "Parameters") == f"{model_summary(net, (1, 28, 28)).trainable_params:,}"

    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "offline"))
    at.selectbox(key="tr_data_choice").set_value("torchvision:MNIST").run()
    assert any("torchvision:MNIST is not in" in e.value for e in at.error)
    assert at.button(key="tr_launch").disabled


def test_all_gpus_option_launches_under_torchrun(runs_dir, app_page, monkeypatch):
    # No GPU here: the device report and the launcher are the stand-ins for a 2-GPU machine.
    import streamlit as st

    from glyphcore.train import device

    monkeypatch.setattr(device, "describe_device", lambda: {"kind": "cuda", "name": "GPU", "count": 2})
    launched = []
    monkeypatch.setattr(runs, "launch", lambda config, name=None, gpus=None: launched.append(gpus) or "run-x")
    st.cache_resource.clear()
    at = app_page(PAGE).run()
    box = at.checkbox(key="tr_all_gpus")
    assert "Use all 2 GPUs" in box.label
    box.check().run()
    at.button(key="tr_launch").click().run()
    assert launched == ["all"]
    st.cache_resource.clear()


def test_no_multi_gpu_option_on_a_single_device(runs_dir, app_page):
    import streamlit as st

    st.cache_resource.clear()
    at = app_page(PAGE).run()
    assert not [c for c in at.checkbox if c.key == "tr_all_gpus"]


def test_a_preset_sets_every_setting_and_the_page_link_reproduces_the_form(runs_dir, app_page):
    from glyphcore.train.config import make_config

    at = app_page(PAGE).run()
    at.selectbox(key="tr_preset").set_value("fast").run()
    fast = make_config("fast")
    assert at.number_input(key="tr_batch_size").value == fast.batch_size
    assert at.number_input(key="tr_lr").value == pytest.approx(fast.lr)
    assert at.selectbox(key="tr_schedule").value == fast.schedule
    at.number_input(key="tr_epochs").set_value(3).run()
    at.selectbox(key="tr_activation").set_value("gelu").run()
    # the settings that differ from the preset are the page's query parameters: a reload or a copied link
    assert dict(at.query_params) == {"preset": "fast", "epochs": "3", "activation": "gelu"}

    reloaded = app_page(PAGE)
    reloaded.query_params.update(dict(at.query_params))
    reloaded.run()
    assert reloaded.selectbox(key="tr_preset").value == "fast"
    assert reloaded.number_input(key="tr_epochs").value == 3
    assert reloaded.selectbox(key="tr_activation").value == "gelu"
    assert reloaded.number_input(key="tr_batch_size").value == fast.batch_size


def test_a_bad_value_in_the_link_is_reported_and_left_out(runs_dir, app_page):
    at = app_page(PAGE)
    at.query_params.update({"preset": "report", "lr": "abc", "epochs": "7"})
    at.run()
    assert any("`lr` is not a valid value" in w.value for w in at.warning)
    assert at.number_input(key="tr_lr").value == pytest.approx(2e-4)  # the preset's
    assert at.number_input(key="tr_epochs").value == 7


@pytest.mark.slow
def test_the_form_offers_fine_tuning_momentum_and_an_estimate_before_launch(make_run, runs_dir, app_page):
    import json

    from glyphcore.train.config import make_config

    make_run("donor")
    (runs_dir / "donor" / "best.pt").write_bytes(b"")  # listed as a checkpointed run
    at = app_page(PAGE).run()
    assert "donor" in at.selectbox(key="tr_init_from").options
    assert at.number_input(key="tr_momentum").disabled  # SGD only
    at.selectbox(key="tr_optimizer").set_value("sgd").run()
    assert not at.number_input(key="tr_momentum").disabled
    estimate = estimate_of(at)
    minutes, seconds = (int(x) for x in estimate.split(":")[-2:])
    assert minutes * 60 + seconds > 0
    # the estimate rests on this machine's measured speed for that model and batch: more epochs of
    # the same model need no new measurement, and the estimate follows them at once
    at.number_input(key="tr_epochs").set_value(30).run()
    longer = metric(at, "Estimated time")
    assert longer not in (estimate, ESTIMATING)
    at.selectbox(key="tr_init_from").set_value("donor").run()
    at.button(key="tr_launch").click().run()
    [run_dir] = [d for d in runs_dir.iterdir() if d.name != "donor"]
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["init_from"] == "donor" and saved["optimizer"] == "sgd" and saved["epochs"] == 30
    assert saved["batch_size"] == make_config(saved["preset"]).batch_size


def test_seeds_and_every_setting_round_trip_through_the_link(runs_dir, app_page):
    at = app_page(PAGE).run()
    assert at.number_input(key="tr_seeds").value == 1  # one run unless asked
    at.number_input(key="tr_seeds").set_value(3).run()
    at.number_input(key="tr_lr").set_value(3e-3).run()
    assert at.query_params["seeds"] == "3"
    assert at.button(key="tr_launch").label == "Launch 3 seeds"
    # a clone link of a run with settings the form has no widget for (compile, eval batch)
    link = dict(at.query_params) | {"compile": "default", "eval_batch_size": "250"}
    reloaded = app_page(PAGE)
    reloaded.query_params.update(link)
    reloaded.run()
    assert reloaded.number_input(key="tr_seeds").value == 3
    assert reloaded.number_input(key="tr_lr").value == pytest.approx(3e-3)
    assert any("compile = default" in c.value for c in reloaded.caption)
    assert dict(reloaded.query_params) == link  # kept, not dropped


@pytest.mark.slow
def test_a_double_click_on_launch_starts_one_run(runs_dir, app_page):
    at = app_page(PAGE).run()
    at.number_input(key="tr_epochs").set_value(1).run()
    at.button(key="tr_launch").click().run()
    second = at.button(key="tr_launch")
    assert second.disabled  # until a setting changes
    # the second click of a double-click, sent before the browser drew the button disabled
    second.proto.disabled = False
    second.click().run()
    launched = [d for d in runs_dir.iterdir() if d.is_dir()]
    assert len(launched) == 1
    assert any(launched[0].name in s.value for s in at.success)
    at.number_input(key="tr_epochs").set_value(2).run()  # a change: another launch is allowed
    assert not at.button(key="tr_launch").disabled
    for d in launched:
        wait_until_ended(d.name)  # no glyphs-52 here: the run ends at once; nothing is left running


def test_the_page_renders_while_the_estimate_is_measured(runs_dir, app_page, monkeypatch):
    import threading

    from glyphcore.train import estimate

    release, calls = threading.Event(), []

    def slow_measure(config, shape, num_classes):  # a big model on a busy machine: minutes
        calls.append(config.batch_size)
        release.wait(60)
        return 1000.0

    monkeypatch.setattr(estimate, "measure_in_subprocess", slow_measure)
    at = app_page(PAGE)
    at.query_params.update({"preset": "quick", "batch_size": "37"})  # a batch no other test measures
    at.run()
    assert metric(at, "Estimated time") == ESTIMATING  # the page did not wait
    assert metric(at, "Parameters")  # ... and the rest of it is there
    release.set()
    assert estimate_of(at) != ESTIMATING
    assert calls == [37]


def write_sweep(runs_dir, sweep_id: str, accs: dict[tuple[str, int], float]) -> None:
    """A finished sweep over activation x seed: one run per (activation, seed), then its record."""
    from glyphcore.runs.sweep import SWEEPS_DIR

    run_ids, now = [], time.time()
    for i, ((act, seed), acc) in enumerate(accs.items()):
        run_id = f"sw-{act}-{seed}"
        write_run(runs_dir, run_id, epochs=1, val_accs=[acc], activation=act, seed=seed, started=now + i)
        run_ids.append(run_id)
    grid = {"activation": list(dict.fromkeys(a for a, _ in accs)), "seed": sorted({s for _, s in accs})}
    record = {"sweep_id": sweep_id, "grid": grid, "runs": run_ids, "parallel": 1, "devices": [], "created": now}
    (runs_dir / SWEEPS_DIR).mkdir(exist_ok=True)
    (runs_dir / SWEEPS_DIR / f"{sweep_id}.json").write_text(json.dumps(record))


def test_the_sweep_panel_leads_with_verdicts_against_a_chosen_baseline(runs_dir, app_page):
    accs = {("relu", 1): 0.9477, ("relu", 2): 0.9537, ("relu", 3): 0.9468}
    accs |= {("gelu", 1): 0.9581, ("gelu", 2): 0.9633, ("gelu", 3): 0.9575}  # +1.04, +0.96, +1.07 points
    accs |= {("tanh", 1): 0.9300}  # one seed only
    write_sweep(runs_dir, "sw-verdict", accs)
    at = app_page(PAGE).run()
    verdicts = table(at, "tr_verdicts_sw-verdict")
    by_arm = {arm: row for arm, row in zip(verdicts["arm"], verdicts.to_dict("records"))}
    gelu = next(r for a, r in by_arm.items() if "gelu" in a)
    tanh = next(r for a, r in by_arm.items() if "tanh" in a)
    assert gelu["verdict"] == "better" and gelu["pairs"] == 3
    assert "better than" in gelu["in words"] and "3 seeds" in gelu["in words"]
    assert "1 seed: cannot tell noise from effect" in tanh["in words"]
    assert any("Bonferroni over 2 arms" in c.value for c in at.caption)  # the correction, named
    groups = table(at, "tr_groups_sw-verdict")
    assert groups["n"].tolist() == [3, 3, 1]  # relu, gelu, tanh: one row per group, in grid order
    assert groups.iloc[0, 2] == pytest.approx(100 * (0.9477 + 0.9537 + 0.9468) / 3, abs=0.01)

    # another baseline: relu is now the worse arm
    baseline = at.selectbox(key="tr_baseline_sw-verdict")
    baseline.set_value(next(o for o in baseline.options if "gelu" in o)).run()
    verdicts = table(at, "tr_verdicts_sw-verdict")
    relu = verdicts[verdicts["arm"].str.contains("relu")].iloc[0]
    assert relu["verdict"] == "worse"
    # a margin wider than the interval's ends does not turn a clear difference into "no difference"
    at.number_input(key="tr_margin_sw-verdict").set_value(5.0).run()
    relu = table(at, "tr_verdicts_sw-verdict").iloc[0]
    assert relu["verdict"] == "worse"


def test_the_sweep_margin_decides_no_difference(runs_dir, app_page):
    accs = {("relu", s): a for s, a in ((1, 0.9500), (2, 0.9540), (3, 0.9470))}
    accs |= {("gelu", s): a for s, a in ((1, 0.9502), (2, 0.9541), (3, 0.9473))}  # +0.02, +0.01, +0.03 points
    write_sweep(runs_dir, "sw-margin", accs)
    at = app_page(PAGE).run()
    assert at.number_input(key="tr_margin_sw-margin").value == pytest.approx(0.3)  # glyphcore.stats' default
    assert table(at, "tr_verdicts_sw-margin").iloc[0]["verdict"] == "no difference"
    at.number_input(key="tr_margin_sw-margin").set_value(0.01).run()
    assert table(at, "tr_verdicts_sw-margin").iloc[0]["verdict"] == "undecided"


@pytest.mark.slow
def test_seeds_launch_one_sweep_over_seed_shown_as_one_group(tiny_glyphs, runs_dir, app_page):
    at = tiny_form(app_page(PAGE).run())
    at.number_input(key="tr_seed").set_value(7).run()
    at.number_input(key="tr_seeds").set_value(2).run()
    at.button(key="tr_launch").click().run()
    [sweep] = list_sweeps()
    assert sweep.grid == {"seed": [7, 8]}
    assert sorted(runs.read_config(i)["seed"] for i in sweep.run_ids) == [7, 8]
    for run_id in sweep.run_ids:
        assert wait_until_ended(run_id)["state"] == "done"
    at = app_page(PAGE).run()
    groups = table(at, f"tr_groups_{sweep.sweep_id}")
    assert groups["n"].tolist() == [2]  # two seeds of one setting: one group row
    with pytest.raises(KeyError):  # one arm: nothing to compare
        at.get_by_key(f"tr_verdicts_{sweep.sweep_id}")
