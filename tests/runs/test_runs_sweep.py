"""glyphcore.runs.sweep: one run per activation, together or queued (the queue itself is exercised with
real training in tests/app/test_train_page.py)."""

from __future__ import annotations

import pytest
from run_folders import write_run

from glyphcore.errors import ConfigError, RunError
from glyphcore.runs.sweep import cancel_queued, launch_sweep, sweep_configs
from glyphcore.train.config import make_config


def test_one_config_per_activation_all_else_equal():
    base = make_config("report", epochs=2, lr=1e-3)
    configs = sweep_configs(base, ["relu", "elu", "relu"])
    assert [c.activation for c in configs] == ["relu", "elu"]
    assert all(c.lr == 1e-3 and c.epochs == 2 for c in configs)
    assert base.activation == "silu"  # the form's config is not changed


def test_bad_sweeps_are_explained():
    with pytest.raises(ConfigError, match="at least one activation"):
        sweep_configs(make_config(), [])
    with pytest.raises(ConfigError, match="unknown activation.*swish.*choose from"):
        sweep_configs(make_config(), ["relu", "swish"])
    with pytest.raises(ConfigError, match="sweep mode"):
        launch_sweep(make_config(), ["relu"], mode="parallel")


def test_only_a_waiting_run_can_be_cancelled_in_the_queue(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    write_run(tmp_path, "finished")
    with pytest.raises(RunError, match="not waiting in a queue"):
        cancel_queued("finished")
    write_run(tmp_path, "waiting", state="queued")  # young and without a pid: still queued
    assert cancel_queued("waiting")["state"] == "cancelled"


@pytest.mark.slow
def test_together_launches_one_training_process_per_activation(tiny_glyphs, tmp_path, monkeypatch):
    import time

    from glyphcore import runs

    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    config = make_config("report", model="tiny_conv", epochs=1, batch_size=128, threads=1)
    ids = launch_sweep(config, ["relu", "tanh"], mode="together")
    assert [runs.read_config(i)["activation"] for i in ids] == ["relu", "tanh"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and any(runs.read_status(i)["state"] in runs.ACTIVE_STATES for i in ids):
        time.sleep(0.5)
    assert [runs.read_status(i)["state"] for i in ids] == ["done", "done"]
