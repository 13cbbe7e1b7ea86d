"""glyphcore.runs.sweep: a grid over any setting, one sweep id, runs in order at most `parallel` at a
time, one cancel for the whole sweep, and a results table that fills in as runs finish."""

from __future__ import annotations

import json
import time

import pytest
from run_folders import write_run

from glyphcore import runs
from glyphcore.cli import main
from glyphcore.errors import ConfigError, RunError
from glyphcore.runs.sweep import (
    cancel_queued,
    cancel_sweep,
    launch_sweep,
    list_sweeps,
    read_sweep,
    sweep_configs,
    sweep_table,
)
from glyphcore.train.config import make_config


def test_a_list_is_one_config_per_activation_all_else_equal():
    base = make_config("report", epochs=2, lr=1e-3)
    configs = sweep_configs(base, ["relu", "elu", "relu"])
    assert [c.activation for c in configs] == ["relu", "elu"]
    assert all(c.lr == 1e-3 and c.epochs == 2 for c in configs)
    assert base.activation == "silu"  # the form's config is not changed


def test_a_grid_over_any_settings_is_their_product_in_order():
    configs = sweep_configs(make_config(), {"batchnorm": [True, False], "lr": [1e-3, 2e-3]})
    assert [(c.batchnorm, c.lr) for c in configs] == [(True, 1e-3), (True, 2e-3), (False, 1e-3), (False, 2e-3)]


def test_bad_sweeps_are_explained():
    with pytest.raises(ConfigError, match="no values"):
        sweep_configs(make_config(), [])
    with pytest.raises(ConfigError, match="unknown activation.*swish.*choose from"):
        sweep_configs(make_config(), ["relu", "swish"])
    with pytest.raises(ConfigError, match="cannot sweep colour: not a training setting"):
        sweep_configs(make_config(), {"colour": ["red"]})
    with pytest.raises(ConfigError, match="cannot sweep preset"):
        sweep_configs(make_config(), {"preset": ["fast"]})
    with pytest.raises(ConfigError, match="lr must be above 0"):
        sweep_configs(make_config(), {"lr": [1e-3, -1.0]})
    with pytest.raises(ConfigError, match="parallel must be at least 1"):
        launch_sweep(make_config(), ["relu"], parallel=0)


def test_only_a_waiting_run_can_be_cancelled_in_the_queue(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    write_run(tmp_path, "finished")
    with pytest.raises(RunError, match="not waiting in a queue"):
        cancel_queued("finished")
    waiting = write_run(tmp_path, "waiting", state="queued")  # young and without a pid: still queued
    config = json.loads((waiting / "config.json").read_text())
    (waiting / "config.json").write_text(json.dumps({**config, "sweep": "a-sweep", "sweep_index": 0}))
    assert cancel_queued("waiting")["state"] == "cancelled"


def test_runs_at_once_on_a_cpu_share_its_cores_and_several_gpus_take_one_each():
    import os

    from glyphcore.runs.sweep import placed_configs

    configs = sweep_configs(make_config("quick"), ["relu", "silu", "tanh"])
    cores = os.cpu_count() or 1
    two = placed_configs(configs, gpus=0, n_at_once=2)
    assert [c.threads for c in two] == [max(1, cores // 2)] * 3 and [c.device for c in two] == ["auto"] * 3
    assert [c.threads for c in placed_configs(configs, gpus=0, n_at_once=1)] == [None] * 3  # torch's choice
    own = sweep_configs(make_config("quick", threads=3), ["relu", "silu"])
    assert [c.threads for c in placed_configs(own, gpus=0, n_at_once=2)] == [3, 3]  # a choice of the user's
    gpu = placed_configs(configs, gpus=2, n_at_once=2)
    assert [c.device for c in gpu] == ["cuda:0", "cuda:1", "cuda:0"] and [c.threads for c in gpu] == [None] * 3


def _wait_inactive(sweep_id: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while read_sweep(sweep_id).active:
        assert time.monotonic() < deadline, f"sweep {sweep_id} still running after {timeout} s"
        time.sleep(0.5)


@pytest.mark.slow
def test_a_sweep_trains_its_runs_one_after_another_and_tables_them(tiny_glyphs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    config = make_config("report", model="tiny_conv", epochs=1, batch_size=128, threads=1)
    sweep_id = launch_sweep(config, {"activation": ["relu", "tanh"]})

    assert [s.sweep_id for s in list_sweeps()] == [sweep_id]
    sweep = read_sweep(sweep_id)
    assert sweep.parallel == 1 and [runs.read_config(r)["sweep"] for r in sweep.run_ids] == [sweep_id] * 2
    _wait_inactive(sweep_id)

    first, second = (runs.read_status(r) for r in sweep.run_ids)
    assert first["state"] == second["state"] == "done"
    assert first["ended"] <= second["started"]  # one at a time on a CPU machine
    rows = sweep_table(sweep_id)
    assert [r["activation"] for r in rows] == ["relu", "tanh"]
    assert all(r["state"] == "done" and 0 <= r["best val acc (%)"] <= 100 and r["best epoch"] == 1 for r in rows)
    assert main(["sweep", "show", sweep_id]) == 0
    out = capsys.readouterr().out
    assert "relu" in out and "tanh" in out and "done" in out


@pytest.mark.slow
def test_cancel_sweep_stops_the_running_run_and_every_waiting_one(tiny_glyphs, tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    config = make_config("report", model="tiny_conv", epochs=200, batch_size=16, threads=1)
    sweep_id = launch_sweep(config, ["relu", "tanh", "elu"])
    first = read_sweep(sweep_id).run_ids[0]
    deadline = time.monotonic() + 120
    while runs.read_status(first)["state"] != "running" or not runs.read_metrics(first):
        assert time.monotonic() < deadline, "the sweep's first run did not start"
        time.sleep(0.2)

    sweep = cancel_sweep(sweep_id, wait=60)

    assert [r.state for r in sweep.runs] == ["cancelled", "cancelled", "cancelled"]
    assert (tmp_path / first / runs.LAST_CKPT).is_file()  # the running one saved its resume point
    for waiting in sweep.run_ids[1:]:  # the others never started
        assert not (tmp_path / waiting / runs.METRICS_FILE).exists()
    with pytest.raises(RunError, match="nothing waiting or running"):
        cancel_sweep(sweep_id)


def test_seeds_cross_the_grid_each_point_becoming_a_group_of_replicates():
    from glyphcore.runs.sweep import sweep_grid

    base = make_config("quick", seed=5)
    configs = sweep_configs(base, ["relu", "gelu"], seeds=3)
    assert [(c.activation, c.seed) for c in configs] == [
        ("relu", 5),
        ("relu", 6),
        ("relu", 7),
        ("gelu", 5),
        ("gelu", 6),
        ("gelu", 7),
    ]
    assert [c.seed for c in sweep_configs(base, {}, seeds=2)] == [5, 6]  # train --seeds: a sweep of seeds alone
    assert sweep_grid(base, {"lr": [1e-3, 1e-3]}, seeds=1) == {"lr": [1e-3], "seed": [5]}
    with pytest.raises(ConfigError, match="either a number of seeds or seed values"):
        sweep_configs(base, {"seed": [1, 2]}, seeds=2)
    with pytest.raises(ConfigError, match="seeds must be a whole number of at least 1"):
        sweep_configs(base, ["relu"], seeds=0)
    with pytest.raises(ConfigError, match="at least one setting to vary"):
        sweep_configs(base, {})
