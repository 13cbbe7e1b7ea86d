"""glyphcore.jobs: long work in a background thread with progress a page can poll."""

from __future__ import annotations

import threading
import time

from glyphcore.jobs import BackgroundJob, get_job, start_job


def test_progress_result_and_error_are_reported():
    gate = threading.Event()

    def work(progress):
        progress(3, 4, "rendering")
        gate.wait(10)
        return "done"

    job = BackgroundJob("t", work).start()
    deadline = time.monotonic() + 10
    while job.stage != "rendering" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job.running and job.fraction == 0.75 and (job.done, job.total) == (3, 4)
    gate.set()
    assert job.wait(10).result == "done" and job.stage == "finished" and not job.running

    def broken(progress):
        raise ValueError("no fonts")

    failed = BackgroundJob("t", broken).start().wait(10)
    assert failed.error == "ValueError: no fonts" and failed.stage == "failed"


def test_one_job_per_name_while_it_runs():
    gate = threading.Event()
    first = start_job("test-registry", lambda p: gate.wait(10))
    second = start_job("test-registry", lambda p: "other")
    assert second is first and get_job("test-registry") is first
    gate.set()
    first.wait(10)
    third = start_job("test-registry", lambda p: "again").wait(10)
    assert third is not first and third.result == "again"
