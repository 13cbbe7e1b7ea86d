"""One-factor ablations over real runs: two tiny runs trained with different activations (and
nothing else) make one activation row each, although their derived model_args differ too."""

from __future__ import annotations

import pytest
from tiny_runs import tiny_run  # tests/tiny_runs.py

from glyphcore import runs
from glyphcore.runs import compare

pytestmark = pytest.mark.slow


def test_two_real_runs_differing_only_in_activation_form_an_activation_ablation(tiny_glyphs, tmp_path):
    root = tmp_path / "runs"
    a, b = tiny_run(root, "tiny-relu", activation="relu"), tiny_run(root, "tiny-gelu", activation="gelu")
    configs = {d.name: runs.read_config(d) for d in (a, b)}
    # the training process recorded the model it built: its arguments carry the activation too
    assert configs["tiny-relu"]["model_args"] != configs["tiny-gelu"]["model_args"]

    rows = compare.one_factor_ablations(configs, {d.name: {"best val acc (%)": 1.0} for d in (a, b)})

    assert [(r["factor"], r["value"], r["run"]) for r in rows] == [
        ("activation", "gelu", "tiny-gelu"),
        ("activation", "relu", "tiny-relu"),
    ]
    differences = compare.config_differences(configs)
    assert [row["setting"] for row in differences] == ["activation"]
