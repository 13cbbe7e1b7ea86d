"""Long work in a background thread, with progress that a polling UI can read.

The app must not block its script thread for ~30 s (a data set build): a page starts a
:class:`BackgroundJob` and polls ``job.fraction`` / ``job.stage`` from a fragment that refreshes every second.
The job's function gets a ``progress(done, total, stage)`` callback and calls no UI code.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["BackgroundJob", "start_job", "get_job", "GLYPHS52_BUILD_JOB"]

ProgressFn = Callable[[int, int, str], None]
GLYPHS52_BUILD_JOB = "build glyphs-52"  # the home page's data set build


class BackgroundJob:
    """One call of ``fn(progress)`` in a daemon thread.

    Example:
        >>> job = BackgroundJob("build", lambda progress: progress(1, 1, "done") or 42).start()
        >>> job.wait(5).result
        42
    """

    def __init__(self, name: str, fn: Callable[[ProgressFn], Any]) -> None:
        self.name = name
        self._fn = fn
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.done = 0  # units of work finished (as reported by fn)
        self.total = 0  # units of work in all (0 until fn reports)
        self.stage = "waiting"
        self.result: Any = None
        self.error: str | None = None  # message of the exception fn raised, if any
        self.started: float | None = None  # time.time() at start
        self.ended: float | None = None

    def _progress(self, done: int, total: int, stage: str) -> None:
        with self._lock:
            self.done, self.total, self.stage = int(done), int(total), str(stage)

    def _run(self) -> None:
        try:
            self.result = self._fn(self._progress)
            self.stage = "finished"
        except Exception as exc:  # reported to the UI, never raised into a dead thread
            self.error = f"{type(exc).__name__}: {exc}"
            self.stage = "failed"
            traceback.print_exc()
        finally:
            self.ended = time.time()

    def start(self) -> BackgroundJob:
        """Start the thread (once); returns self."""
        if self._thread is None:
            self.started = time.time()
            self._thread = threading.Thread(target=self._run, name=f"glyph-job-{self.name}", daemon=True)
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """True while fn is still working."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def fraction(self) -> float:
        """Progress in [0, 1] (0 until fn reports a total)."""
        with self._lock:
            return min(1.0, self.done / self.total) if self.total else 0.0

    def wait(self, timeout: float | None = None) -> BackgroundJob:
        """Block until the job ends or ``timeout`` seconds pass; returns self."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self


# One registry per process: a job started by one browser session is seen by every other (and by
# the page after a reload), and a second click while it runs does not start a second one.
_JOBS: dict[str, BackgroundJob] = {}
_JOBS_LOCK = threading.Lock()


def start_job(name: str, fn: Callable[[ProgressFn], Any]) -> BackgroundJob:
    """Start ``fn`` as the job called ``name`` unless a job of that name is running; return the job."""
    with _JOBS_LOCK:
        job = _JOBS.get(name)
        if job is None or not job.running:
            job = _JOBS[name] = BackgroundJob(name, fn).start()
        return job


def get_job(name: str) -> BackgroundJob | None:
    """The latest job called ``name`` (running or finished), or None."""
    return _JOBS.get(name)
