"""The folder a glyphs-52 build replaces: checked before, swapped in whole after, leftovers cleaned.

A build writes into a fresh ``.<name>.tmp-<random>-<pid>`` folder beside its target and renames it
into place only when complete, so a reader never sees half a data set.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

from glyphcore.data.sources.glyphs52 import GLYPHS52, MANIFEST_FILE
from glyphcore.errors import DataError

__all__ = ["check_replaceable", "clean_stale", "swap_into_place"]


def clean_stale(parent: Path, name: str) -> None:
    """Remove temporary folders of builds whose process is gone (killed mid-build)."""
    for p in parent.glob(f".{name}.*-*"):
        try:
            pid = int(p.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        alive = True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            alive = False
        except (PermissionError, OSError):
            pass
        if not alive:
            shutil.rmtree(p, ignore_errors=True)


def check_replaceable(out_dir: Path) -> None:
    """Refuse to build into ``out_dir`` unless it is absent, an empty folder, or a glyphs-52 build
    (its manifest.json names glyphs-52): a build replaces its folder whole, and must never delete
    a folder of the user's own files given by mistake as ``--out``.

    Raises:
        DataError: ``out_dir`` is a file, or a non-empty folder that is not a glyphs-52 build.
    """
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir():
        raise DataError(f"{out_dir} is a file, not a folder: pass another --out (a new or empty folder)")
    if not any(out_dir.iterdir()):
        return
    try:
        manifest = json.loads((out_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("name") != GLYPHS52:
        raise DataError(
            f"{out_dir} is a non-empty folder that is not a glyphs-52 build (no glyphs-52 {MANIFEST_FILE}); "
            f"a build replaces its folder whole, so it refuses to delete these files. Pass a new or empty "
            f"folder as --out, or remove {out_dir} yourself"
        )


def swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename the finished ``tmp`` folder to ``out_dir``, replacing an older build (two renames:
    a folder cannot be renamed over a non-empty one). If the second rename fails, the old build
    is put back. Only a glyphs-52 build (or an empty folder) is ever replaced: ``check_replaceable``."""
    check_replaceable(out_dir)
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{secrets.token_hex(4)}-{os.getpid()}"
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None and not out_dir.exists():
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
