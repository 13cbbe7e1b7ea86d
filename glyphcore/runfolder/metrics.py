"""metrics.jsonl (written append-only, read in chunks that tolerate a torn last line) and the
run's train.log (its tail, its last error line). No torch here.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from glyphcore.errors import RunError
from glyphcore.runfolder.files import LOG_FILE, METRICS_FILE, json_safe, open_in_run, open_regular, resolve_run

__all__ = ["MetricsLog", "MetricsChunk", "read_metrics", "clean_record", "last_error_line", "log_tail"]

_INT_LIMIT = 2**53  # a whole number beyond this is no count or step a run could reach (and loses float precision)
_COUNT_KEYS = ("epoch", "step", "epochs", "steps", "best_epoch")  # never negative


def clean_record(rec: dict[str, Any]) -> dict[str, Any]:
    """A metrics record with every damaged value replaced by None: non-finite floats, whole numbers
    beyond 2**53, negative counts and a non-text ``event``; readers then show "unknown" for that
    value alone."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        elif isinstance(v, int) and not isinstance(v, bool) and (abs(v) > _INT_LIMIT or (k in _COUNT_KEYS and v < 0)):
            v = None
        out[k] = v
    if not isinstance(out.get("event"), str):
        out["event"] = None
    return out


class MetricsLog:
    """The writer side of metrics.jsonl: append-only lines, flushed at once.

    ``offset`` is the file size after the last write; a checkpoint stores it so that a resumed run
    can cut off the records written after its resume point (``truncate``).
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self._f = open_in_run(self.path, "a")  # never through a link: truncate must not reach elsewhere
        self.offset = self._f.tell()

    def append(self, *records: dict[str, Any]) -> int:
        """Write one line per record (``time`` added when absent); returns the new offset."""
        now = time.time()
        text = "".join(json.dumps(json_safe({**r, "time": r.get("time", now)})) + "\n" for r in records)
        self._f.write(text)
        self._f.flush()
        self.offset = self._f.tell()
        return self.offset

    def truncate(self, offset: int) -> None:
        """Cut the file back to ``offset`` bytes (records after a resume point are abandoned)."""
        self._f.flush()
        self._f.truncate(offset)
        self._f.seek(offset)
        self.offset = offset

    def close(self) -> None:
        self._f.close()


class MetricsChunk(list):
    """Records read from metrics.jsonl: a list of dicts, plus where to continue.

    Attributes:
        offset: byte offset after the last complete line read; pass it as ``since_offset`` next time.
        reset: True when the file was shorter than ``since_offset`` (a resumed run cut off records
            written after its resume point): the records are then the whole file, from the start.
    """

    offset: int = 0
    reset: bool = False


def read_metrics(run: str | Path, since_offset: int = 0) -> MetricsChunk:
    """Read metrics.jsonl records, from ``since_offset`` bytes on.

    A torn last line (being written right now) is left for the next read; a corrupt complete line
    is skipped.

    Args:
        run: run id, folder or "starter".
        since_offset: the ``offset`` of the previous chunk (0 = from the start).

    Returns:
        MetricsChunk (a list of dicts) with ``.offset`` and ``.reset``.
    """
    path = resolve_run(run) / METRICS_FILE
    chunk = MetricsChunk()
    chunk.offset, chunk.reset = 0, False
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if since_offset > size:
                chunk.reset, since_offset = True, 0
            f.seek(since_offset)
            data = f.read()
    except FileNotFoundError:
        chunk.reset = since_offset > 0
        return chunk
    except OSError as e:  # a folder by that name, no permission...
        raise RunError(
            f"{path} cannot be read ({e.strerror or e}): the run folder is damaged; delete the run or restore the file"
        ) from None
    end = data.rfind(b"\n") + 1  # only complete lines
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            chunk.append(clean_record(rec))
    chunk.offset = since_offset + end
    return chunk


_ERROR_LINE = re.compile(r"^(error: |[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b:?)")


def last_error_line(run_dir: Path, tail_bytes: int = 16_384) -> str:
    """The last error line the run's process printed to train.log (``error: ...`` from the CLI,
    or the last line of a traceback, ``RuntimeError: ...``), cut to 300 characters; "" if none."""
    try:
        with open_regular(Path(run_dir) / LOG_FILE) as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - tail_bytes))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if _ERROR_LINE.match(line.strip()):
            return line.strip()[:300]
    return ""


def log_tail(run_dir: Path, max_lines: int = 200, tail_bytes: int = 65_536) -> str:
    """The last ``max_lines`` lines of the run's train.log (read from its last ``tail_bytes`` bytes,
    so a huge log costs no more); "" when the run has no log."""
    try:
        with open_regular(Path(run_dir) / LOG_FILE) as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - tail_bytes))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = text.splitlines()
    if size > tail_bytes and lines:
        lines = lines[1:]  # the first line read is probably cut
    return "\n".join(lines[-max_lines:])
