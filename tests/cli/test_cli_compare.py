"""``glyphcore compare`` and ``sweep show``: the verdict table, the group table, JSON, terminal-safe
text from files; ``train --seeds`` / ``sweep start --seeds`` and their errors."""

from __future__ import annotations

import json

import pytest
from run_folders import write_run

from glyphcore import paths
from glyphcore.cli import main


@pytest.fixture
def arms(tmp_path, monkeypatch):
    """relu and gelu, three seeds each; gelu is +0.5 points on every seed, its seed 3 failed; a
    run named with a terminal escape sequence is its own group."""
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(paths, "starter_dir", lambda: tmp_path / "no-starter")
    for seed, acc in ((1, 0.900), (2, 0.910), (3, 0.920)):
        write_run(tmp_path, f"relu-{seed}", epochs=1, val_accs=[acc], seed=seed, activation="relu", started=seed)
        state = "failed" if seed == 3 else "done"
        write_run(
            tmp_path,
            f"gelu-{seed}",
            epochs=1,
            val_accs=[acc + 0.005],
            seed=seed,
            activation="gelu",
            started=10 + seed,
            state=state,
        )
    write_run(tmp_path, "evil\x1b]0;owned\x07", epochs=1, val_accs=[0.5], seed=1, activation="tanh", started=20)
    return tmp_path


def test_compare_prints_verdicts_with_sentences_then_the_groups(arms, capsys):
    ids = ["relu-1", "relu-2", "relu-3", "gelu-1", "gelu-2", "gelu-3"]
    assert main(["compare", *ids, "--baseline", "activation=relu"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Verdicts on best_val_acc (differences arm - baseline in points)"
    assert "- activation=gelu is better than activation=relu by 0.50 points of best val acc" in out
    assert "  1 pair left out: seed 3 failed in activation=gelu" in out
    assert "Paired by seed: t interval of the mean difference arm - baseline, 95% overall." in out
    group_lines = lines[lines.index("Groups (runs equal but for the seed)") + 1 :]
    assert group_lines[1].split()[:4] == ["activation=relu", "3", "91", "1"]
    assert "gelu-3: failed" in group_lines[2]


def test_compare_json_and_a_wider_margin(arms, capsys):
    assert main(["compare", "relu-1", "relu-2", "gelu-1", "gelu-2", "--json", "--margin", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    acc, loss = report["verdicts"]  # best valid accuracy and best valid loss, unless told otherwise
    assert (acc["metric"], loss["metric"]) == ("best_val_acc", "best_val_loss")
    assert acc["n_pairs"] == 2 and acc["mean_diff"] == pytest.approx(0.5) and acc["verdict"] == "better"
    assert loss["mean_diff"] == 0.0 and loss["verdict"] == "no difference"  # run_folders: one loss curve
    assert [g["n"] for g in report["groups"]] == [2, 2]
    assert main(["compare", "relu-1", "relu-2", "gelu-1", "gelu-2", "--json", "--metric", "val_acc"]) == 0
    (last,) = json.loads(capsys.readouterr().out)["verdicts"]
    assert last["metric"] == "val_acc" and last["mean_diff"] == pytest.approx(0.5)  # from the last epoch record


def test_a_negative_margin_and_an_unknown_baseline_are_explained(arms, capsys):
    with pytest.raises(SystemExit):
        main(["compare", "relu-1", "--margin", "-1"])
    assert "the margin must be 0 or more" in capsys.readouterr().err
    assert main(["compare", "relu-1", "gelu-1", "--baseline", "swish"]) == 2
    assert "no group match 'swish'; name one group by its label or a run id" in capsys.readouterr().err


def test_strings_from_files_cannot_drive_the_terminal(arms, capsys):
    assert main(["compare", "relu-1", "evil\x1b]0;owned\x07"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "owned" not in out and "evil" in out  # the title-setting sequence is dropped whole


def test_seeds_flags_refuse_what_cannot_go_together(arms, capsys):
    assert main(["train", "--seeds", "2", "--run-dir", str(arms / "x")]) == 2
    assert "--seeds starts one run folder per seed itself" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--seeds", "0"])
    assert "expected a whole number of at least 1" in capsys.readouterr().err
    assert main(["sweep", "start"]) == 2
    assert "a sweep needs --vary SETTING=V1,V2 or --seeds N" in capsys.readouterr().err
    assert main(["sweep", "start", "--vary", "seed=1,2", "--seeds", "2"]) == 2
    assert "either a number of seeds or seed values" in capsys.readouterr().err
    assert main(["sweep", "start", "--vary", "activation=relu,gelu", "--max-seeds", "4"]) == 2
    assert "go with --until-decided" in capsys.readouterr().err
    assert (
        main(["sweep", "start", "--vary", "activation=relu", "--until-decided", "--seeds", "5", "--max-seeds", "3"])
        == 2
    )
    assert "1 <= --seeds <= --max-seeds" in capsys.readouterr().err
    assert not (arms / "sweeps").exists()  # nothing was started


@pytest.mark.slow
def test_train_with_seeds_starts_one_sweep_of_replicates(tiny_glyphs, tmp_path, monkeypatch, capsys):
    from glyphcore import runs
    from glyphcore.runs.groups import group_runs
    from glyphcore.runs.sweep import cancel_sweep, read_sweep

    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    argv = ["train", "--seeds", "2", "--seed", "7", "--detach", "--model", "tiny_conv", "--epochs", "50"]
    assert main([*argv, "--batch-size", "16", "--threads", "1"]) == 0
    sweep_id = capsys.readouterr().out.strip()
    try:
        sweep = read_sweep(sweep_id)
        assert sweep.grid == {"seed": [7, 8]}
        assert [runs.read_config(r)["seed"] for r in sweep.run_ids] == [7, 8]
        (group,) = group_runs(sweep.runs)  # the replicates are one group
        assert sorted(group.seeds.values()) == [7, 8]
    finally:
        cancel_sweep(sweep_id, wait=60)
    assert not read_sweep(sweep_id).active


def test_sweep_show_of_a_round_reads_every_round_of_its_until_decided_series(arms, capsys):
    from glyphcore import runs

    (arms / "sweeps").mkdir()
    plan = {"series": "until-decided-x", "looks": 3, "max_seeds": 4, "baseline": "activation=relu", "margin": 0.3}
    for i, run_ids in enumerate((["gelu-1", "relu-1", "gelu-2", "relu-2"], ["gelu-3", "relu-3"]), 1):
        record = {"sweep_id": f"s{i}", "grid": {"activation": ["gelu", "relu"]}, "runs": run_ids, "created": i}
        runs.write_json_atomic(arms / "sweeps" / f"s{i}.json", {**record, "until_decided": {**plan, "round": i}})
    assert main(["sweep", "show", "s2"]) == 0
    out = capsys.readouterr().out
    # the baseline of the plan, every round's runs, and intervals spent over 3 looks x 1 arm
    assert "activation=gelu is better than activation=relu" in out
    assert "Bonferroni over 3 planned looks (until decided); so each interval is at 98.33%." in out
    assert "Runs (rounds: s1, s2)" in out and "relu-3" in out and "gelu-1" in out
    assert main(["compare", "s1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdicts"][0]["n_pairs"] == 2 and report["verdicts"][0]["confidence"] == pytest.approx(1 - 0.05 / 3)
