"""Pages over run folders with wrong-type values (AppTest): one damaged run is shown as such, the
others as usual, and no page raises."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.app


@pytest.fixture
def good_and_bad(make_run, no_starter):
    make_run("run-good", val_accs=[0.6, 0.8], epochs=2, started=1000.0)
    bad = make_run("run-bad", val_accs=[0.6, 0.8], epochs=2, started=2000.0)
    status = json.loads((bad / "status.json").read_text())
    status.update(epoch="abc", best_val_acc="high", started=[1], params={"n": 1}, state=3)
    (bad / "status.json").write_text(json.dumps(status))
    config = json.loads((bad / "config.json").read_text())
    config.update(lr="fast", epochs="many", model=["x"], batch_size=None, activation=7)
    (bad / "config.json").write_text(json.dumps(config))
    return bad


def test_runs_page_lists_the_good_run_beside_a_damaged_one(good_and_bad, app_page, errors_of):
    at = app_page("runs.py").run()
    assert [e.value for e in at.exception] == []
    table = at.dataframe[0].value
    assert set(table["run"]) == {"run-good", "run-bad"}
    assert table.set_index("run").loc["run-bad", "state"] == "unknown"
    at.multiselect(key="rc_pick").set_value(["run-good", "run-bad"]).run()
    assert [e.value for e in at.exception] == []


def test_evaluate_page_survives_a_damaged_run(good_and_bad, app_page):
    at = app_page("evaluate.py").run()
    assert [e.value for e in at.exception] == []
