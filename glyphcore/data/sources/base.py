"""What a data source is (:class:`Source`, one row of the registry) and the folder helpers the
file-based sources share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glyphcore.data.imageset import ImageSet, content_hash
from glyphcore.errors import DataError
from glyphcore.frame import CLASSES, frame_dict

__all__ = [
    "SPLIT_ORDER",
    "Source",
    "class_list",
    "folder_meta",
    "folder_root",
    "folder_source",
    "file_index",
    "normalise_polarity",
    "require_folder",
    "sorted_splits",
    "subdirs",
]

SPLIT_ORDER = ("train", "valid", "val", "validation", "test", "seen", "all")  # how split lists are shown


@dataclass(frozen=True)
class Source:
    """One kind of data source: how its spec reads, how to load it, and how the pages offer it.

    Attributes:
        kind: the spec's prefix (``"course"`` in ``course:<root>``).
        spec: the spec's form for help and errors (``"course:<root>"``).
        label: the name the pages show for the kind.
        layout: what the argument must hold, for the pages' hint and the errors.
        widget: how a page asks for the argument: ``"none"``, ``"folder"`` (a path) or ``"choice"``.
        load: ``load(arg, split, source, download) -> ImageSet``.
        splits: ``splits(arg) -> [split name, ...]``.
        stamp_path: ``stamp_path(arg) -> Path`` whose mtime changes when the data changes.
        info: ``info(source, arg) -> dict`` when the source can summarise itself without loading
            every split; None: :func:`glyphcore.data.dataset_info` loads each split.
        choices: the argument's allowed values for a ``"choice"`` widget.
        optional_arg: the bare kind (no ``:<arg>``) is a valid spec.
        downloadable: the pages may offer a download button.
        order: where the kind comes in menus and help (smaller first).
    """

    kind: str
    spec: str
    label: str
    layout: str
    widget: str
    load: Callable[[str | None, str, str, bool], ImageSet]
    splits: Callable[[str | None], list[str]]
    stamp_path: Callable[[str | None], Path]
    info: Callable[[str, str | None], dict[str, Any]] | None = None
    choices: tuple[str, ...] = ()
    optional_arg: bool = False
    downloadable: bool = False
    order: int = 100


def normalise_polarity(img: np.ndarray) -> np.ndarray:
    """White ink on black: invert a 2-D uint8 image whose border is mostly bright."""
    border = np.concatenate([img[:2].ravel(), img[-2:].ravel(), img[:, :2].ravel(), img[:, -2:].ravel()])
    return 255 - img if np.median(border) > 127 else img


def class_list(names: list[str]) -> list[str]:
    """The glyph classes (so labels match glyphs-52) when every name is a letter, else sorted names."""
    if names and set(names) <= set(CLASSES):
        return list(CLASSES)
    return sorted(set(names))


def sorted_splits(names: list[str]) -> list[str]:
    """Split names in the usual order (train, valid, test, ...), unknown ones after, by name."""
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return sorted(names, key=lambda s: (order.get(s, len(order)), s))


def subdirs(folder: Path) -> list[Path]:
    """The visible sub-folders of a folder, by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def require_folder(root: Path, what: str, expected: str) -> None:
    """DataError unless ``root`` is a folder with something visible in it."""
    if not root.is_dir():
        raise DataError(f"{what} folder {root} does not exist: expected {expected}")
    if not any(not p.name.startswith(".") for p in root.iterdir()):
        raise DataError(f"{what} folder {root} is empty: expected {expected}")


def file_index(p: Path) -> tuple[int, str]:
    """Sort key of an image file: its leading number (``1775_5a.npy`` -> 1775) first, then its name."""
    head = p.stem.split("_", 1)[0]
    return (int(head), p.name) if head.isdigit() else (-1, p.name)


def folder_root(arg: str | None) -> Path:
    """The folder a file-based source's argument names (``~`` expanded)."""
    return Path(str(arg)).expanduser()


def folder_meta(source: str, images: np.ndarray, labels: np.ndarray, root: Path, glyph_frame: bool) -> dict[str, Any]:
    """What a split read from a folder records: id, content hash, root, and the glyph frame when its
    images are in it (one channel, 100 x 100), else None."""
    return {
        "id": source,
        "hash": content_hash([images, labels]),
        "root": str(root),
        "frame": frame_dict() if glyph_frame else None,
    }


def folder_source(
    kind: str,
    label: str,
    layout: str,
    load_root: Callable[[Path, str, str], ImageSet],
    splits_of: Callable[[Path], dict[str, Path]],
    order: int,
) -> Source:
    """The registry row of a source read from a folder given as ``<kind>:<root>``.

    Args:
        kind, label, layout, order: as in :class:`Source`.
        load_root: ``load_root(root, split, source) -> ImageSet``.
        splits_of: ``splits_of(root) -> {split name: folder}``.
    """
    return Source(
        kind=kind,
        spec=f"{kind}:<root>",
        label=label,
        layout=layout,
        widget="folder",
        load=lambda arg, split, source, _download: load_root(folder_root(arg), split, source),
        splits=lambda arg: sorted_splits(list(splits_of(folder_root(arg)))),
        stamp_path=folder_root,
        order=order,
    )
