"""The elapsed clock of a run that is training now: it keeps ticking between status writes.

A training process writes status.json at its start and then every few steps or epochs; the training
seconds it records (``wall_seconds``) are those up to that write. Read between two writes, the clock
is that figure plus the time since the write (``updated``), so a run that takes ~45 s to reach its
first logged step on a busy machine shows its clock running, not "0:02" frozen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["elapsed_now"]

MAX_ELAPSED_S = 10 * 365 * 86400.0  # a run's clock beyond ten years is a damaged file, not a run (s)


def _seconds(value: Any) -> float | None:
    """A finite, non-negative number of a status field, or None (a damaged or missing value)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= MAX_ELAPSED_S * 1000 else None


def elapsed_now(status: Mapping[str, Any], state: str, now: float | None = None) -> float:
    """Seconds of training of a run at time ``now`` (Unix s; default: now).

    Args:
        status: the run's status.json (``wall_seconds``: training seconds up to the last write;
            ``updated``: the Unix time of that write).
        state: the run's reconciled state; only a "running" run's clock moves on from its last write.
        now: the time to read the clock at.

    Returns:
        ``wall_seconds`` (0 when missing or out of range), plus ``now - updated`` while running (never
        negative: a clock set back does not run it backwards).
    """
    wall = _seconds(status.get("wall_seconds"))
    wall = wall if wall is not None and wall <= MAX_ELAPSED_S else 0.0
    updated = _seconds(status.get("updated"))
    if state != "running" or updated is None:
        return wall
    since = max(0.0, (time.time() if now is None else now) - updated)
    return wall + since if since <= MAX_ELAPSED_S else wall
