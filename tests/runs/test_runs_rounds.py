"""glyphcore.runs.rounds: seeds added in rounds until every comparison is decided, on scripted
verdicts (like early stopping tested on scripted losses), and two real rounds of tiny runs."""

from __future__ import annotations

import pytest

from glyphcore.errors import ConfigError
from glyphcore.runs import groups, rounds
from glyphcore.runs.sweep import read_sweep
from glyphcore.train.config import make_config


def _row(arm: str, kind: str) -> dict:
    return {
        "arm": f"activation={arm}",
        "verdict": kind,
        "settings": {"activation": arm},
        "baseline_settings": {"activation": "relu"},
    }


class Script:
    """launch/wait/judge steps that record what was launched and answer with scripted verdicts."""

    def __init__(self, verdicts_per_round: list[list[dict]]):
        self.verdicts = list(verdicts_per_round)
        self.launched: list[dict] = []
        self.judged: list[tuple[list[str], int]] = []

    def launch(self, config, grid, *, seeds, extra, parallel, name):
        self.launched.append({"grid": grid, "seed": config.seed, "seeds": seeds, "extra": extra})
        return f"sweep-{len(self.launched)}"

    def wait(self, sweep_id):
        assert sweep_id == f"sweep-{len(self.launched)}"

    def judge(self, sweep_ids, looks):
        self.judged.append((list(sweep_ids), looks))
        return self.verdicts.pop(0)

    def run(self, **kwargs):
        config = make_config("quick", seed=7)
        return rounds.decide_in_rounds(
            config, ["relu", "gelu", "silu"], launch=self.launch, wait=self.wait, judge=self.judge, **kwargs
        )


def test_rounds_add_one_seed_to_the_baseline_and_the_undecided_arms_until_all_are_decided():
    script = Script(
        [
            [_row("gelu", "undecided"), _row("silu", "better")],
            [_row("gelu", "undecided"), _row("silu", "better")],
            [_row("gelu", "no difference"), _row("silu", "better")],
            [_row("gelu", "worse"), _row("silu", "better")],  # never reached
        ]
    )
    result = script.run(seeds=3, max_seeds=10)

    assert [r.round for r in result] == [1, 2, 3] and [r.seeds for r in result] == [[7, 8, 9], [10], [11]]
    assert [launch["grid"] for launch in script.launched] == [
        ["relu", "gelu", "silu"],
        {"activation": ["relu", "gelu"]},  # silu is decided: it gets no more seeds
        {"activation": ["relu", "gelu"]},
    ]
    assert [(launch["seed"], launch["seeds"]) for launch in script.launched] == [(7, 3), (10, 1), (11, 1)]
    # every look judges every round so far, with the error rate spent over the 8 planned looks
    assert script.judged == [(["sweep-1"], 8), (["sweep-1", "sweep-2"], 8), (["sweep-1", "sweep-2", "sweep-3"], 8)]
    plans = [launch["extra"]["until_decided"] for launch in script.launched]
    assert [p["round"] for p in plans] == [1, 2, 3] and len({p["series"] for p in plans}) == 1
    assert result[-1].undecided == []


def test_rounds_stop_at_the_most_seeds_with_the_undecided_left_undecided():
    script = Script([[_row("gelu", "undecided"), _row("silu", "one seed")]] * 3)
    result = script.run(seeds=1, max_seeds=3)
    assert [r.seeds for r in result] == [[7], [8], [9]]
    assert [launch["grid"] for launch in script.launched][1:] == [{"activation": ["relu", "gelu", "silu"]}] * 2
    assert [r["arm"] for r in result[-1].undecided] == ["activation=gelu", "activation=silu"]
    assert [looks for _, looks in script.judged] == [3, 3, 3]


def test_one_round_is_enough_when_the_first_decides_everything():
    script = Script([[_row("gelu", "better"), _row("silu", "worse")]])
    assert len(script.run(seeds=2, max_seeds=5)) == 1 and len(script.launched) == 1


def test_bad_plans_are_explained():
    with pytest.raises(ConfigError, match="1 <= --seeds <= --max-seeds"):
        Script([]).run(seeds=4, max_seeds=3)
    with pytest.raises(ConfigError, match="adds the seeds itself"):
        rounds.decide_in_rounds(make_config("quick"), {"seed": [1, 2]}, launch=None, wait=None, judge=None)
    assert rounds.planned_looks(3, 10) == 8


@pytest.mark.slow
def test_two_real_rounds_pair_by_seed_and_decide_a_no_op_is_no_difference(tiny_glyphs, tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path))
    # early stopping with more patience than there are epochs never stops anything: a no-op. With
    # one seed the first round cannot decide; the second seed pairs to a difference of exactly 0.
    config = make_config("report", model="tiny_conv", epochs=1, batch_size=64, lr=3e-3, threads=1, augment="light")
    result = rounds.decide_in_rounds(config, {"patience": [None, 50]}, seeds=1, max_seeds=3)

    assert [r.seeds for r in result] == [[42], [43]]
    assert [row["verdict"] for row in result[0].verdicts] == ["one seed"]
    (row,) = result[-1].verdicts
    assert (row["arm"], row["baseline"]) == ("patience=50", "patience=None")
    assert (row["n_pairs"], row["mean_diff"], row["low"], row["high"]) == (2, 0.0, 0.0, 0.0)
    assert row["verdict"] == "no difference" and "2 seeds" in row["sentence"]
    assert row["confidence"] == pytest.approx(1 - 0.05 / 3)  # spent over the 3 planned looks
    base, arm = groups.group_runs(i for r in result for i in read_sweep(r.sweep_id).runs)
    assert base.values_by_seed() == arm.values_by_seed()  # seed k: the same data order, draws and weights
    assert len(set(base.values_by_seed().values())) == 2  # while the two seeds differ from each other
    sweep_ids, plan = rounds.series_sweeps(result[0].sweep_id)
    assert sweep_ids == [r.sweep_id for r in result] and plan["looks"] == 3
