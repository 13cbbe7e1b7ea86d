"""``recipes launch NAME --seeds N`` and ``train --recipe NAME --seeds N``: the recipe's replicates as
one sweep of consecutive seeds, named after the recipe (so its gallery card finds them); real
launches on the tiny glyphs-52, cancelled once their folders are checked."""

from __future__ import annotations

import pytest

from glyphcore import runs
from glyphcore.cli import main
from glyphcore.runs.sweep import cancel_sweep, list_sweeps, read_sweep


def _replicates(sweep_id: str, runs_dir) -> list[dict]:
    """The sweep's runs' config.json, in its order; the sweep stopped (nothing left running)."""
    sweep = read_sweep(sweep_id)
    configs = [runs.read_config(runs_dir / run_id) for run_id in sweep.run_ids]
    if read_sweep(sweep_id).active:
        cancel_sweep(sweep_id, wait=60)
    return configs


def test_recipes_launch_with_seeds_makes_one_sweep_of_consecutive_seeds(tiny_glyphs, runs_dir, capsys):
    assert main(["recipes", "launch", "glyph-7layer", "--seeds", "3"]) == 0
    out = capsys.readouterr().out
    sweep_id = out.splitlines()[0]
    assert "the recipe x 3 seeds, one run at a time" in out
    assert read_sweep(sweep_id).grid == {"seed": [42, 43, 44]}
    configs = _replicates(sweep_id, runs_dir)
    assert [c["seed"] for c in configs] == [42, 43, 44]
    assert {c["name"] for c in configs} == {"glyph-7layer"} and {c["model"] for c in configs} == {"deep_cnn"}
    assert len([d for d in runs_dir.iterdir() if d.is_dir() and d.name != "sweeps"]) == 3  # one sweep, 3 runs


def test_train_recipe_with_seeds_launches_the_recipes_replicates(tiny_glyphs, runs_dir, capsys):
    argv = ["train", "--recipe", "glyph-7layer", "--seeds", "2", "--epochs", "1", "--detach"]
    assert main(argv) == 0
    sweep_id = capsys.readouterr().out.splitlines()[0]
    configs = _replicates(sweep_id, runs_dir)
    assert [c["seed"] for c in configs] == [42, 43]
    assert {c["name"] for c in configs} == {"glyph-7layer"}  # the gallery's card counts them
    assert {c["model"] for c in configs} == {"deep_cnn"} and {c["epochs"] for c in configs} == {1}  # flags on top
    assert main([*argv, "--name", "mine"]) == 2
    assert "leave out --name" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse refuses it before anything starts
        main(["recipes", "launch", "glyph-7layer", "--seeds", "0"])
    assert "expected a whole number of at least 1" in capsys.readouterr().err
    assert len(list_sweeps()) == 1
