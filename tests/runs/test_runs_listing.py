"""Runs as the lists show them: a group of seed replicates is one row (mean, sd, n), newest first."""

from __future__ import annotations

import json

import pytest
from run_folders import write_run  # tests/run_folders.py

from glyphcore import runs
from glyphcore.runs.listing import SD_COL, SEEDS_COL, listing_rows


@pytest.fixture
def listed(runs_dir, tmp_path, monkeypatch):
    """gelu seeds 1-3 (one failed), a relu run of its own, and a run whose config.json is unreadable."""
    from glyphcore import paths

    monkeypatch.setattr(paths, "starter_dir", lambda: tmp_path / "no-starter")
    write_run(runs_dir, "gelu-s1", activation="gelu", seed=1, val_accs=[0.5, 0.7, 0.90], started=1000.0)
    write_run(runs_dir, "gelu-s2", activation="gelu", seed=2, val_accs=[0.5, 0.7, 0.94], started=1001.0)
    write_run(runs_dir, "gelu-s3", activation="gelu", seed=3, state="failed", epochs_done=1, started=1002.0)
    write_run(runs_dir, "relu-s1", activation="relu", seed=1, started=3000.0)
    write_run(runs_dir, "broken", started=500.0)
    (runs_dir / "broken" / runs.CONFIG_FILE).write_text("{not json")
    return listing_rows(runs.list_runs())


def test_a_group_of_seeds_is_one_row_with_mean_sd_and_n(listed):
    group = next(item for item in listed if len(item.run_ids) > 1)
    assert group.run_ids == ["gelu-s1", "gelu-s2", "gelu-s3"]
    row = group.row
    assert row["run"] == "gelu-s1 + 2 more"
    assert row[SEEDS_COL] == 2  # the failed seed is not counted
    assert row["best val acc (%)"] == pytest.approx(92.0)
    assert row[SD_COL] == pytest.approx(2.83)  # sd of 90 and 94: 2 * sqrt(2), rounded to 2 decimals
    assert row["state"] == "2 done, 1 failed"


def test_rows_are_newest_first_and_an_ungroupable_run_still_listed(listed):
    assert [item.row["run"] for item in listed] == ["relu-s1", "gelu-s1 + 2 more", "broken"]
    lone = listed[0].row
    assert lone[SEEDS_COL] == 1 and lone[SD_COL] is None and lone["activation"] == "relu"
    assert listed[2].run_ids == ["broken"]
    json.dumps([item.row for item in listed])  # plain values, ready for a table
