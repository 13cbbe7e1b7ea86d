"""glyphs-52, the built-in rendered data set: its folder, manifest and split files, as a data source.

``glyphs-52`` (or ``glyphs-52:<folder>``) reads ``<data_dir>/glyphs-52``: one uint8 ``.npy`` per split,
loaded as read-only memmaps (a cached load takes milliseconds). :mod:`glyphcore.data.build` writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from glyphcore.data.imageset import ImageSet
from glyphcore.data.sources.base import Source
from glyphcore.errors import DataError
from glyphcore.paths import data_dir

__all__ = [
    "GLYPHS52",
    "GLYPHS52_VERSION",
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "SOURCE",
    "SPLITS",
    "glyphs52_dir",
    "glyphs52_ready",
    "read_manifest",
    "split_files",
]

GLYPHS52 = "glyphs-52"
SPLITS: tuple[str, ...] = ("train", "valid", "test", "seen")  # "seen": train fonts, fresh jitter
MANIFEST_FILE = "manifest.json"
# glyphs-52/2: fonts only from declared Python packages by default (machine fonts an opt-in), and a
# share of the images at one em size ("size_modes"); /1 data sets must be rebuilt.
# glyphs-52/3: more handwriting and script families, synthetic hands of the Hershey Script skeletons,
# and a chosen (fixed) split per family of the default build. The files are laid out as in /2, so the
# manifest format stays "glyphcore.glyphs-52/2" and /2 data sets still load.
# glyphs-52/4: 32 more hands, of the Hershey Times skeletons (print written by hand, upright and italic:
# both constructions of a and g), in the family Hershey Times (train). Same layout and format.
GLYPHS52_VERSION = "glyphs-52/4"
MANIFEST_FORMAT = "glyphcore.glyphs-52/2"


def glyphs52_dir() -> Path:
    """``<data_dir>/glyphs-52``: where the built-in data set lives."""
    return data_dir() / GLYPHS52


def split_files(split: str) -> dict[str, str]:
    """File names of one glyphs-52 split: images (N x 1 x H x W uint8), labels (int64), fonts (int32),
    size modes (uint8, index into manifest["size_modes"]["names"])."""
    return {
        "images": f"{split}_images.npy",
        "labels": f"{split}_labels.npy",
        "fonts": f"{split}_fonts.npy",
        "sizes": f"{split}_sizes.npy",
    }


def read_manifest(folder: str | Path | None = None) -> dict:
    """The manifest of a glyphs-52 folder (default: :func:`glyphs52_dir`).

    Raises:
        DataError: no complete data set there (never built, or a build that did not finish).
    """
    folder = Path(folder) if folder is not None else glyphs52_dir()
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise DataError(
            f"no glyphs-52 data set in {folder} (missing {MANIFEST_FILE}): build it with "
            "`python -m glyphcore data build`"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(
            f"{path} is not a readable glyphs-52 manifest ({e}): rebuild with `python -m glyphcore data build`"
        ) from e
    if manifest.get("format") != MANIFEST_FORMAT or not manifest.get("complete"):
        raise DataError(
            f"{path} is not a complete {MANIFEST_FORMAT} manifest: rebuild with `python -m glyphcore data build`"
        )
    return manifest


def glyphs52_ready(folder: str | Path | None = None) -> bool:
    """True when a complete glyphs-52 exists (default in ``paths.data_dir()``): manifest and every
    split file present with the counts the manifest records. Cheap: reads headers only."""
    folder = Path(folder) if folder is not None else glyphs52_dir()
    try:
        manifest = read_manifest(folder)
        for split, n in manifest["counts"].items():
            for name in split_files(split).values():
                arr = np.load(folder / name, mmap_mode="r")
                if arr.shape[0] != n:
                    return False
    except (DataError, OSError, ValueError, KeyError):
        return False
    return True


def _load_glyphs52(folder: Path, split: str, source: str) -> ImageSet:
    manifest = read_manifest(folder)
    if split not in manifest["counts"]:
        raise DataError(f"glyphs-52 has no split {split!r}: expected one of {list(manifest['counts'])}")
    files = split_files(split)
    arrays = {}
    for kind, name in files.items():
        path = folder / name
        try:
            arrays[kind] = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise DataError(
                f"{path} is missing or unreadable ({e}): rebuild with `python -m glyphcore data build`"
            ) from e
    n = manifest["counts"][split]
    if any(a.shape[0] != n for a in arrays.values()) or arrays["images"].ndim != 4:
        raise DataError(
            f"{folder} holds arrays that do not match its manifest for split {split!r}: "
            "rebuild with `python -m glyphcore data build`"
        )
    meta = {
        k: manifest[k]
        for k in (
            "id",
            "hash",
            "version",
            "fonts",
            "frame",
            "families",
            "seed",
            "size_modes",
            "font_options",
            "font_packages",
        )
        if k in manifest
    }
    meta["folder"] = str(folder)
    return ImageSet(
        arrays["images"],
        arrays["labels"],
        list(manifest["classes"]),
        source,
        split,
        arrays["fonts"],
        meta,
        arrays["sizes"],
    )


def _info(source: str, arg: str | None) -> dict[str, Any]:
    """The summary from the manifest alone (no image is read)."""
    m = read_manifest(_folder(arg))
    return {
        "source": source, "id": m["id"], "hash": m["hash"], "counts": dict(m["counts"]),
        "classes": list(m["classes"]), "image_shape": list(m["image_shape"]), "seed": m["seed"],
        "per_class": m["per_class"], "frame": m["frame"], "fonts": m["fonts"],
        "families": m["families"], "skipped": m.get("skipped", []), "built": m.get("built"),
        "version": m.get("version"), "size_modes": m.get("size_modes"),
        "font_options": m.get("font_options"), "font_packages": m.get("font_packages"),
        "build_seconds": m.get("build_seconds"), "folder": str(_folder(arg)),
    }  # fmt: skip


def _folder(arg: str | None) -> Path:
    return Path(arg) if arg else glyphs52_dir()


SOURCE = Source(
    kind=GLYPHS52,
    spec="glyphs-52",
    label="glyphs-52 (built-in)",
    layout="built with `python -m glyphcore data build`",
    widget="none",
    load=lambda arg, split, source, _download: _load_glyphs52(_folder(arg), split, source),
    splits=lambda arg: list(read_manifest(_folder(arg))["counts"]),
    stamp_path=lambda arg: _folder(arg) / MANIFEST_FILE,  # rewritten by every build, after the arrays
    info=_info,
    optional_arg=True,
    order=0,
)
