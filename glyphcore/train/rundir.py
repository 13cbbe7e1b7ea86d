"""Claiming a run folder for one trainer: the checks, the lock and its release, in one place.

``claimed_run_dir`` is what ``fit`` (and the ``train`` command, from its first check on) holds for
as long as the folder is theirs: the folder is checked (not a file, not the read-only starter, a
path the OS can take), created, its trainer lock taken (a second trainer is refused:
``glyphcore.runfolder.lock``), the temporary files of killed writers removed; leaving the block releases
the lock however the block ends. The lock is re-entrant within a process, so the command and the
fit it runs can both hold it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from glyphcore import paths
from glyphcore.errors import RunError, os_reason
from glyphcore.runfolder import store
from glyphcore.runfolder.lock import hold_trainer_lock, release_trainer_lock

__all__ = ["check_run_dir", "claimed_run_dir"]


def check_run_dir(run_dir: Path) -> None:
    """Refuse a run folder no trainer may write: a NUL in the path, a file, a link, a folder that is
    not a run (it would lose its config.json and status.json), the starter's folder.

    Raises:
        RunError: naming the problem and what to pass instead.
    """
    if "\0" in str(run_dir):
        raise RunError("--run-dir contains a NUL byte: pass a plain folder path")
    store.check_run_dir_claimable(run_dir)  # a file, a link, or a folder that is not a run: refused
    if run_dir.resolve() == paths.starter_dir().resolve():
        raise RunError(
            "the starter run is read-only, even with --overwrite: train into another folder "
            "(fine-tune it with --init-from starter) and copy the files over yourself if you mean to replace it"
        )


@contextlib.contextmanager
def claimed_run_dir(run_dir: str | os.PathLike | None, *, create: bool = True) -> Iterator[bool]:
    """Hold ``run_dir``'s trainer lock inside the block (None: nothing to claim).

    Args:
        run_dir: the run folder.
        create: make the folder when it does not exist; with False a missing folder is left alone
            (nothing is held: the fit that creates it claims it) and the block gets False.

    Yields:
        Whether the lock is held.

    Raises:
        RunError: a folder no trainer may write (``check_run_dir``), one that cannot be created, or
            one another process trains in.
    """
    if run_dir is None:
        yield False
        return
    path = Path(run_dir)
    check_run_dir(path)
    if not path.exists() and not create:
        yield False
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot create the run folder {path}: {os_reason(e)}") from None
    hold_trainer_lock(path)
    try:
        store.clean_orphan_tmps(path)
        yield True
    finally:
        release_trainer_lock(path)
