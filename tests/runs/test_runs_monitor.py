"""What a run's files mean while it trains (glyphcore.runs.monitor): the elapsed clock of a running run
ticks between status writes."""

from __future__ import annotations

from glyphcore.runs.monitor import elapsed_now


def test_a_running_runs_clock_moves_on_from_its_last_status_write():
    status = {"wall_seconds": 2.0, "updated": 1000.0}
    assert elapsed_now(status, "running", now=1000.0) == 2.0
    assert elapsed_now(status, "running", now=1045.0) == 47.0  # 45 s on a busy machine before the next write


def test_a_finished_runs_clock_stands_still():
    status = {"wall_seconds": 74.0, "updated": 1000.0}
    assert elapsed_now(status, "done", now=5000.0) == 74.0


def test_damaged_values_never_break_the_clock():
    assert elapsed_now({"wall_seconds": "abc", "updated": 1e300}, "running", now=1000.0) == 0.0
    assert elapsed_now({"wall_seconds": float("nan"), "updated": 990.0}, "running", now=1000.0) == 10.0
    assert elapsed_now({"wall_seconds": 5.0, "updated": 2000.0}, "running", now=1000.0) == 5.0  # clock set back
    assert elapsed_now({}, "running", now=1000.0) == 0.0
