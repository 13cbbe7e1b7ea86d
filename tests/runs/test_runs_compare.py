"""glyphcore.runs.compare: run table rows, config differences, one-factor ablations, report cards."""

from __future__ import annotations

from run_folders import write_run

from glyphcore import paths, runs
from glyphcore.runs import compare


def _configs():
    base = {
        "model": "seed_cnn",
        "activation": "relu",
        "batchnorm": True,
        "optimizer": "adam",
        "lr": 2e-4,
        "epochs": 15,
        "run_id": "x",
        "created": 1.0,
        "versions": {"torch": "2.15"},
        "device": "auto",
    }
    return {
        "relu": {**base, "run_id": "relu"},
        "silu": {**base, "activation": "silu", "run_id": "silu", "device": "cuda"},  # device is bookkeeping
        "adamw": {**base, "optimizer": "adamw"},
        "nobn-lr": {**base, "batchnorm": False, "lr": 1e-3},  # two factors at once
    }


def test_config_differences_list_only_what_differs():
    rows = compare.config_differences({k: v for k, v in _configs().items() if k in ("relu", "silu")})
    assert rows == [{"setting": "activation", "relu": "relu", "silu": "silu"}]
    assert compare.config_differences({"a": _configs()["relu"], "b": _configs()["relu"]}) == []


def test_one_factor_ablations_group_runs_equal_in_everything_else():
    results = {k: {"acc": i} for i, k in enumerate(_configs())}
    rows = compare.one_factor_ablations(_configs(), results)
    by_factor = {}
    for r in rows:
        by_factor.setdefault(r["factor"], []).append((r["value"], r["run"], r["acc"]))
    assert by_factor == {
        "activation": [("relu", "relu", 0), ("silu", "silu", 1)],
        "optimizer": [("adam", "relu", 0), ("adamw", "adamw", 2)],
    }  # nobn-lr differs in two keys: in no group


def test_ablation_sorts_numeric_values():
    base = _configs()["relu"]
    configs = {"hi": {**base, "lr": 1e-2}, "lo": {**base, "lr": 1e-4}, "mid": {**base, "lr": 1e-3}}
    rows = compare.one_factor_ablations(configs, {})
    assert [r["run"] for r in rows] == ["lo", "mid", "hi"]
    assert [r["value"] for r in rows] == ["0.0001", "0.001", "0.01"]


def test_run_row_and_report_card_from_a_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(paths, "starter_dir", lambda: tmp_path / "no-starter")  # only the test's run
    write_run(tmp_path, "r1", activation="elu", val_accs=[0.5, 0.9912], epochs=2, started=1_700_000_000.0)
    (info,) = runs.list_runs()
    row = compare.run_row(info)
    assert row["run"] == "r1" and row["activation"] == "elu" and row["best val acc (%)"] == 99.12
    assert row["best epoch"] == 2 and row["epochs"] == "2/2" and row["wall time"] == "2 s"
    card = compare.report_card(info, runs.read_metrics("r1"))
    assert card["params"] == "702,948" and card["val acc (%)"] == "99.12" and card["images/s"] == "500"
    md = compare.markdown_table([card]).splitlines()
    assert md[0] == "| " + " | ".join(compare.REPORT_CARD_COLUMNS) + " |"
    assert md[2] == "| r1 | seed_cnn | elu | 702,948 | 2/2 | 99.12 | 2 s | cpu | 500 |"
    assert compare.markdown_table([card], header=False) == md[2]


def test_where_and_how_a_run_runs_is_never_a_difference():
    from glyphcore.train.config import RUNTIME_KEYS

    base = _configs()["relu"]
    elsewhere = {**base, "threads": 2, "amp": "off", "compile": "default", "log_every": 5, "eval_batch_size": 10}
    elsewhere.update(sweep="s1", sweep_index=3, device="cuda:1")
    assert set(RUNTIME_KEYS) <= compare.BOOKKEEPING_KEYS
    assert compare.config_differences({"a": base, "b": elsewhere}) == []
    assert compare.config_differences({"a": base, "b": {**elsewhere, "seed": 7}}) == [
        {"setting": "seed", "a": "None", "b": "7"}
    ]
