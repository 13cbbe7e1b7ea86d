"""Atomic file writes: readers (the app, a resuming run) never see half a file.

One mechanism for every file glyphcore rewrites in place: checkpoints, status.json, eval results,
kept drawings. The data set build renames a whole folder instead (glyphcore.data.build).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, fsync: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path``; when the block ends without error, rename it over
    ``path``, otherwise remove it (so a crash or a full disk leaves the previous file intact).

    Args:
        path: the file to (re)write.
        mode: "wb" or "w".
        fsync: flush the data to disk before the rename (checkpoints: the resume point must survive
            a power loss, not just a crash).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; run files are for every reader
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
