"""glyphcore.atomic.atomic_write: the file is either the old one or the new one, whole; a failure
leaves the old one and no temporary file; the result is readable by everyone (0644)."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from glyphcore.atomic import atomic_write

CHUNK = 64 * 1024  # bytes per write() call
VERSION_BYTES = 4 * 1024 * 1024  # one version of the file: 64 writes


def _version(i: int) -> bytes:
    """Version ``i`` of the file: its number repeated, so any mix of two versions is recognisable."""
    return (f"{i:07d}\n".encode()) * (VERSION_BYTES // 8)


def test_the_block_writes_the_file_in_text_or_binary(tmp_path):
    with atomic_write(tmp_path / "a.txt", "w") as f:
        f.write("hello\n")
    with atomic_write(tmp_path / "b.bin") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "a.txt").read_text() == "hello\n" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


@pytest.mark.parametrize(
    "error", [OSError(28, "No space left on device"), KeyboardInterrupt()], ids=["disk full", "interrupted"]
)
def test_a_failure_inside_the_block_keeps_the_previous_file_and_no_temp_file(tmp_path, error):
    target = tmp_path / "status.json"
    target.write_text('{"epoch": 3}\n')
    with pytest.raises(type(error)):
        with atomic_write(target, "w") as f:
            f.write('{"epoch": 4, "half')  # half the new content is written ...
            f.flush()
            raise error  # ... when the write fails
    assert target.read_text() == '{"epoch": 3}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]
    # a failure on a file that did not exist yet leaves nothing at all
    with pytest.raises(type(error)):
        with atomic_write(tmp_path / "new.json", "w") as f:
            f.write("{")
            raise error
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_the_file_is_readable_by_everyone_whatever_the_umask(tmp_path):
    old = os.umask(0o077)  # a private umask: a plain open() would make 0600
    try:
        with atomic_write(tmp_path / "best.pt", fsync=True) as f:
            f.write(b"weights")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "best.pt").stat().st_mode) == 0o644


def test_a_reader_sees_the_old_file_or_the_new_one_never_a_part(tmp_path):
    """A writer rewrites a 4 MB file in 64 KB pieces, again and again, while a reader keeps reading
    it: every read must be one whole version. (A plain open() truncates the file first and grows it
    piece by piece, so the reader would see empty and partial files.)"""
    target = tmp_path / "big.json"
    target.write_bytes(_version(0))
    versions = {_version(i): i for i in range(13)}
    done = threading.Event()
    bad: list[int] = []
    seen: set[int] = set()
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            data = target.read_bytes()
            reads += 1
            if data in versions:
                seen.add(versions[data])
            else:
                bad.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 13):
            data = _version(i)
            with atomic_write(target) as f:
                for start in range(0, len(data), CHUNK):
                    f.write(data[start : start + CHUNK])
                    f.flush()  # each piece reaches the file as it is written
    finally:
        done.set()
        thread.join()
    assert not bad, f"{len(bad)} of {reads} reads saw a partial file (sizes {sorted(set(bad))[:5]})"
    assert len(seen) >= 3, (reads, seen)  # the reader really read while the file was being rewritten
    assert target.read_bytes() == _version(12)
    assert [p.name for p in tmp_path.iterdir()] == ["big.json"]
