"""What a run's files mean while it trains: progress, ETA, speed, its ticking clock, its metrics as
they grow, its label.

The Train page's panels, the Runs page and ``glyphcore runs show`` read runs through these, so the
meaning of "how far along", "how long left" and "which cancel applies" lives here, under unit tests.

The elapsed clock of a run that is training now keeps ticking between status writes: a training
process writes status.json at its start and then every few steps or epochs; the training seconds it
records (``wall_seconds``) are those up to that write. Read between two writes, the clock is that
figure plus the time since the write (``updated``), so a run that takes ~45 s to reach its first
logged step on a busy machine shows its clock running, not "0:02" frozen (:func:`elapsed_now`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glyphcore.errors import GlyphError
from glyphcore.runfolder.store import BEST_CKPT, RunInfo, list_runs, read_metrics

__all__ = ["RunProgress", "run_progress", "elapsed_now", "MetricsTail", "run_label", "checkpointed_runs", "file_stamp"]


@dataclass(frozen=True)
class RunProgress:
    """How far a run is.

    Attributes:
        fraction: 0..1 of all planned optimizer steps (1.0 once done).
        text: ``"epoch 3/15 · step 120/832"`` while running, ``"epoch 15/15"`` otherwise.
        elapsed_s: seconds of training so far (all sessions of a resumed run).
        eta_s: seconds left at the pace so far; None unless running and past 1 % (too early to tell).
        images_per_s: training images per second (status.json's, from the last epoch or step records).
    """

    fraction: float
    text: str
    elapsed_s: float
    eta_s: float | None
    images_per_s: float | None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_progress(info: RunInfo) -> RunProgress:
    """The progress of a run from its (reconciled) status: status "step" is the global optimizer
    step, "epoch" the epochs finished, "steps_per_epoch" the steps of one epoch."""
    status = info.status or {}
    epochs = int(_number(info.epochs) or 0)
    done_epochs = int(_number(status.get("epoch")) or 0)
    step = int(_number(status.get("step")) or 0)
    spe = int(_number(status.get("steps_per_epoch")) or 0)
    total_steps = spe * epochs
    if info.state == "done":
        fraction = 1.0
    elif total_steps:
        fraction = min(1.0, step / total_steps)
    else:
        fraction = min(1.0, done_epochs / epochs) if epochs else 0.0
    if info.state == "running" and spe and done_epochs < epochs:
        text = f"epoch {done_epochs + 1}/{epochs} · step {step - done_epochs * spe}/{spe}"
    else:
        text = f"epoch {done_epochs}/{epochs or '?'}"
    elapsed = float(_number(status.get("wall_seconds")) or 0.0)
    eta = elapsed * (1 - fraction) / fraction if info.state == "running" and fraction > 0.01 else None
    return RunProgress(fraction, text, elapsed, eta, _number(status.get("images_per_s")))


MAX_ELAPSED_S = 10 * 365 * 86400.0  # a run's clock beyond ten years is a damaged file, not a run (s)


def _seconds(value: Any) -> float | None:
    """A finite, non-negative number of a status field, or None (a damaged or missing value)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= MAX_ELAPSED_S * 1000 else None


def elapsed_now(status: Mapping[str, Any], state: str, now: float | None = None) -> float:
    """Seconds of training of a run at time ``now`` (Unix s; default: now), ticking between status writes.

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


class MetricsTail:
    """A run's metrics.jsonl read incrementally: each ``read()`` returns every record so far,
    reading only the bytes added since the last call (a resumed run that cut records off is read
    again from the start)."""

    def __init__(self, run: str | Path) -> None:
        self.run = run
        self.offset = 0
        self.events: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        """All records so far (the previous ones when the run folder cannot be read right now)."""
        try:
            chunk = read_metrics(self.run, since_offset=self.offset)
        except GlyphError:
            return self.events
        self.events = list(chunk) if chunk.reset else self.events + list(chunk)
        self.offset = chunk.offset
        return self.events


def run_label(info: RunInfo) -> str:
    """A run as a menu shows it: ``<run id> · <model> / <activation> · val 99.03%``."""
    acc = f" · val {info.best_val_acc:.2%}" if isinstance(info.best_val_acc, int | float) else ""
    return f"{info.run_id} · {info.model or '?'} / {info.activation or '?'}{acc}"


def checkpointed_runs() -> dict[str, RunInfo]:
    """The runs that have a best.pt (the ones a model can be loaded from), newest first."""
    return {r.run_id: r for r in list_runs() if (r.path / BEST_CKPT).is_file()}


def file_stamp(path: str | Path) -> tuple[int, int]:
    """(size, mtime_ns) of a file, (0, 0) when missing: a cache key that changes with the file."""
    try:
        s = Path(path).stat()
        return s.st_size, s.st_mtime_ns
    except OSError:
        return 0, 0
