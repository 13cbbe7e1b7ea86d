"""The command line's one progress bar, and the training console that draws it.

``ProgressBar`` is a ``progress(done, total, stage)`` callable: a data set build, an export, an
evaluation and a training epoch all report through it. On a terminal it redraws one line; into a
log file (``make run`` piped, CI) it writes a line every 10 % or at a new stage.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from glyphcore.train.callbacks import Callback

__all__ = ["ProgressBar", "console_progress"]


class ProgressBar:
    """A text progress bar on a stream (stderr by default).

    Args:
        stream: where to draw.
        width: characters of the bar.
    """

    def __init__(self, stream: IO[str] | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.last: tuple[int, str] | None = None
        self.t0 = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, done: int, total: int, stage: str = "") -> None:
        pct = int(100 * done / total) if total else 100
        # A terminal gets every percent; a log file every 10 % or a new stage.
        key = (pct if self.tty else pct // 10, stage)
        if key == self.last:
            return
        self.last = key
        fill = int(self.width * pct / 100)
        bar = "#" * fill + "-" * (self.width - fill)
        line = f"[{bar}] {pct:3d}% {stage:<18s} {time.perf_counter() - self.t0:5.1f}s"
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        if self.tty and done >= total:
            self.stream.write("\n")
        self.stream.flush()

    def clear(self) -> None:
        """Wipe the bar's line on a terminal (before other output) and forget the last state."""
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()
        self.last = None


def console_progress(
    stream_out: IO[str] | None = None, stream_err: IO[str] | None = None, bar: bool | None = None
) -> Callback:
    """The training console (a ``Callback``): the per-epoch line and log lines on stdout, the
    epoch's ``ProgressBar`` on stderr (only when stderr is a terminal, unless ``bar`` says otherwise)."""
    out = stream_out or sys.stdout
    err = stream_err or sys.stderr
    show_bar = err.isatty() if bar is None else bar
    progress = ProgressBar(err)
    progress.tty = progress.tty or bool(bar)

    class _Console(Callback):
        def __init__(self) -> None:
            self.pos = 0
            self.last_draw = 0.0

        def _messages(self, state: Any) -> None:
            for _, m in state.messages[self.pos :]:
                self._clear()
                print(m, file=out, flush=True)
            self.pos = len(state.messages)

        def _clear(self) -> None:
            if show_bar:
                progress.clear()

        def on_fit_start(self, state: Any) -> None:
            self._messages(state)

        def on_step(self, state: Any) -> None:
            now = time.monotonic()
            if not show_bar or now - self.last_draw < 0.2:
                return
            self.last_draw = now
            progress(state.epoch_step, max(state.steps_per_epoch, 1), f"epoch {state.epoch + 1}/{state.config.epochs}")

        def on_log(self, state: Any, records: list[dict[str, Any]]) -> None:
            self._messages(state)

        def on_epoch_end(self, state: Any, r: dict[str, Any]) -> None:
            self._clear()
            part = " (partial)" if r.get("partial") else ""
            print(
                f"Epoch {r['epoch']}/{state.config.epochs}{part}  train loss {r['train_loss']:.6f} acc "
                f"{100 * r['train_acc']:.2f}%  val loss {r['val_loss']:.6f} acc {100 * r['val_acc']:.2f}%  "
                f"lr {r['lr']:.2e}  {r['seconds']:.1f} s  {r['images_per_s']:,.0f} img/s",
                file=out,
                flush=True,
            )
            self._messages(state)

        def on_fit_end(self, state: Any, result: Any) -> None:
            self._clear()
            self._messages(state)

    return _Console()
