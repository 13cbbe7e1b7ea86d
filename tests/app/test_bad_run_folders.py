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


@pytest.fixture
def extreme(make_run, no_starter):
    """A good run beside one whose status.json holds values beyond any range: a pid above the C int
    range (OverflowError in os.kill), a start time of 1e300 (beyond any date), NaN and Infinity."""
    make_run("run-good", val_accs=[0.6, 0.8], epochs=2, started=1000.0)
    bad = make_run("run-bad", val_accs=[0.6, 0.8], epochs=2, state="running", started=2000.0)
    text = (bad / "status.json").read_text()
    status = json.loads(text)
    status.update(pid="__PID__", launcher_pid="__PID__", started="__T__", ended="__T__", best_val_acc="__NAN__")
    raw = json.dumps(status).replace('"__PID__"', "2147483648").replace('"__T__"', "1e300")
    (bad / "status.json").write_text(raw.replace('"__NAN__"', "NaN"))
    (bad / "metrics.jsonl").open("a").write('{"event": "epoch", "epoch": 1e300, "val_loss": Infinity, "time": 1e300}\n')
    return bad


@pytest.mark.parametrize("page", ["home.py", "runs.py", "train.py", "evaluate.py", "draw.py", "activations.py"])
def test_every_page_that_lists_runs_survives_values_beyond_any_range(extreme, page, app_page):
    at = app_page(page).run()
    assert [e.value for e in at.exception] == []
