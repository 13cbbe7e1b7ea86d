"""Times and durations as people read them: the CLI, the run tables and the app's panels share these."""

from __future__ import annotations

import time

__all__ = ["duration_text", "clock_text", "date_text", "time_of_day_text"]


def duration_text(seconds: float | None) -> str:
    """A duration in words: ``"42 s"``, ``"3.5 min"``, ``"1.20 h"``; ``""`` for none or zero."""
    if not seconds:
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def clock_text(seconds: float | None) -> str:
    """A duration on a clock: ``"4:05"``, ``"1:02:03"``; ``"-"`` when unknown."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def date_text(t: float | None, empty: str = "") -> str:
    """A Unix time as local ``"YYYY-mm-dd HH:MM"``; ``empty`` when unknown."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else empty


def time_of_day_text(t: float | None) -> str:
    """A Unix time as local ``"HH:MM:SS"`` (log lines)."""
    return time.strftime("%H:%M:%S", time.localtime(t or 0))
