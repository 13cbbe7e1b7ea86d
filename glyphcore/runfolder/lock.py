"""One writer per run folder: OS file locks (``fcntl.flock``) in the run folder.

Two locks, two files:

- ``.lock``, the trainer lock: taken (never waited for) by the training process before it writes
  anything into the folder, and held for its whole life. A second trainer, ``train --resume`` or
  ``runs resume`` on a live run finds it taken and is refused. The OS drops it when the process
  ends, however it ends (SIGKILL included), so a dead run never looks locked.
- ``.status.lock``, held for the few milliseconds of a status.json read-modify-write (the
  launcher, cancel and the training process all update that file).

Both are re-entrant within a process (a thread lock plus a count), because flock does not stop
two open files of one process from locking the same file. No torch here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from glyphcore.errors import RunError, os_reason

__all__ = [
    "STATUS_LOCK_FILE",
    "TRAINER_LOCK_FILE",
    "hold_trainer_lock",
    "pid_start_time",
    "release_trainer_lock",
    "status_lock",
    "trainer_lock_taken",
    "try_lock_file",
]

TRAINER_LOCK_FILE = ".lock"
STATUS_LOCK_FILE = ".status.lock"

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there rely on the status checks alone
    fcntl = None  # type: ignore[assignment]


class _Held:
    """One lock file held by this process: its open file, a count, and a thread lock."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.count = 0
        self.owner: int | None = None  # thread ident holding it (status locks: exclusive per thread)
        self.thread_lock = threading.RLock()


_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _entry(path: Path) -> _Held:
    key = os.path.realpath(path)
    with _HELD_GUARD:
        return _HELD.setdefault(key, _Held())


def _open_lock_file(path: Path) -> int:
    # never through a symlink: a link planted in a copied run folder must not make us create or
    # lock a file elsewhere
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    return os.open(path, flags, 0o644)


def hold_trainer_lock(run_dir: str | os.PathLike) -> None:
    """Take the run folder's trainer lock for this process (again: counted), or refuse.

    Raises:
        RunError: another process holds it (a live training process of this run), or the folder
            cannot be written (read-only, full): the message says which and what to do.
    """
    run_dir = Path(run_dir)
    path = run_dir / TRAINER_LOCK_FILE
    held = _entry(path)
    with held.thread_lock:
        if held.count:
            held.count += 1
            return
        try:
            fd = _open_lock_file(path)
        except OSError as e:
            raise RunError(
                f"cannot write to the run folder {run_dir}: {os_reason(e)}; "
                f"free space or make it writable, or use another --run-dir"
            ) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunError(
                        f"run {run_dir.name} is being trained by another process right now (it holds "
                        f"{path.name}); wait for it to end or cancel it (`python -m glyphcore runs cancel "
                        f"{run_dir.name}`), then resume"
                    ) from None
                raise RunError(f"cannot lock the run folder {run_dir}: {os_reason(e)}") from None
        with contextlib.suppress(OSError):  # who holds it, for a person looking at the folder
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        held.fd, held.count = fd, 1


def release_trainer_lock(run_dir: str | os.PathLike) -> None:
    """Drop one hold of the trainer lock; the last one unlocks it (the file stays)."""
    held = _entry(Path(run_dir) / TRAINER_LOCK_FILE)
    with held.thread_lock:
        if not held.count:
            return
        held.count -= 1
        if held.count == 0 and held.fd is not None:
            os.close(held.fd)  # closing the only open file of the lock releases the flock
            held.fd = None


def trainer_lock_taken(run_dir: str | os.PathLike) -> bool:
    """Whether a process (this one included) holds the run folder's trainer lock right now."""
    path = Path(run_dir) / TRAINER_LOCK_FILE
    held = _entry(path)
    if held.count:
        return True
    if fcntl is None or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # drops the probe's lock, if it got it
    return False


@contextlib.contextmanager
def status_lock(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold the run folder's status lock inside the block (waiting for it): one status.json
    read-modify-write at a time, across processes and threads. Re-entrant in one thread.

    A folder where the lock file cannot be created (read-only) is not locked: nothing can write
    its status.json anyway, and the write itself reports why.
    """
    path = Path(run_dir) / STATUS_LOCK_FILE
    held = _entry(path)
    with held.thread_lock:
        if held.count:
            held.count += 1
            try:
                yield
            finally:
                held.count -= 1
            return
        try:
            fd = _open_lock_file(path)
        except OSError:
            yield
            return
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            held.fd, held.count = fd, 1
            try:
                yield
            finally:
                held.count, held.fd = 0, None
        finally:
            os.close(fd)


def try_lock_file(path: str | os.PathLike) -> int | None:
    """Take an exclusive flock on ``path`` (created if missing) without waiting: the open file's
    descriptor while this process holds it (close it to release), None when another holds it.
    Where the OS has no flock every try succeeds.

    Raises:
        OSError: the file cannot be created or opened.
    """
    fd = _open_lock_file(Path(path))
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
    return fd


def pid_start_time(pid: int | None) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc/<pid>/stat`` field
    22); None where that cannot be read (no such process, not Linux).

    A pid is reused by the OS once its process has ended; its start time is not, so (pid, start)
    names one process for good.
    """
    if not pid:
        return None
    try:
        stat = (Path("/proc") / str(int(pid)) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # Field 2 (the command name) is in parentheses and may hold spaces: split after the last ")".
    rest = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(rest[19])  # fields 3.. are rest[0..]: field 22 is rest[19]
    except (IndexError, ValueError):
        return None
