"""The data sources glyphcore reads, as a registry: one module per kind, each defining ``SOURCE``.

A source spec is ``<kind>`` or ``<kind>:<argument>``:

- ``glyphs-52`` (or ``glyphs-52:<folder>``): the built-in rendered set (:mod:`.glyphs52`);
- ``course:<root>``: the course layout of ``.npy`` files (:mod:`.course`);
- ``folder:<root>``: an image folder, one sub-folder per class (:mod:`.folder`);
- ``torchvision:<NAME>``: MNIST, EMNIST, FashionMNIST, KMNIST, CIFAR (:mod:`.torchvision_sets`).

Every module of this package that defines ``SOURCE`` (a :class:`~.base.Source`) is registered, in
``SOURCE.order``: adding a kind is adding its module. The pages read each kind's label, layout hint
and widget from the table. Bad input raises :class:`glyphcore.errors.DataError` naming the file and
the expected form.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from typing import Any

from glyphcore.data.imageset import ImageSet
from glyphcore.data.sources.base import Source
from glyphcore.data.sources.glyphs52 import GLYPHS52
from glyphcore.errors import DataError

__all__ = [
    "SOURCES",
    "Source",
    "dataset_info",
    "list_splits",
    "load_dataset",
    "parse_source",
    "source_of",
    "source_stamp",
]


def _discover() -> dict[str, Source]:
    """Every ``SOURCE`` defined by a module of this package, by kind, in order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        row = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SOURCE", None)
        if isinstance(row, Source):
            found.append(row)
    return {s.kind: s for s in sorted(found, key=lambda s: (s.order, s.kind))}


SOURCES: dict[str, Source] = _discover()


def _expected() -> str:
    specs = [f"'{s.spec}'" for s in SOURCES.values()]
    notes = "".join(
        f" ({s.spec.partition(':')[2].strip('<>')} one of {list(s.choices)})" for s in SOURCES.values() if s.choices
    )
    return f"{', '.join(specs[:-1])} or {specs[-1]}{notes}" if len(specs) > 1 else f"{specs[0]}{notes}"


def parse_source(source: str) -> tuple[str, str | None]:
    """Split a source spec into (kind, argument): ("glyphs-52", None | folder), ("course", root),
    ("folder", root), ("torchvision", NAME).

    Raises:
        DataError: an unknown kind, or a kind without its argument.
    """
    kind, sep, arg = source.partition(":")
    row = SOURCES.get(kind)
    if row is not None and sep and arg:
        return kind, arg
    if row is not None and not sep and row.optional_arg:
        return kind, None
    raise DataError(f"unknown data source {source!r}: expected {_expected()}")


def source_of(source: str) -> tuple[Source, str | None]:
    """The registry row of a spec and its argument (see :func:`parse_source`)."""
    kind, arg = parse_source(source)
    return SOURCES[kind], arg


def source_stamp(source: str) -> str:
    """Where a source's files are and when they last changed: a cache key that changes when the data
    set is rebuilt or its folder edited (the app's cached loaders and tables are keyed by it). An
    unknown source gets a stamp too: loading it is what reports the problem."""
    try:
        row, arg = source_of(source)
    except DataError:
        return f"{source}@unknown"
    target = row.stamp_path(arg)
    try:
        return f"{target}@{target.stat().st_mtime_ns}"
    except OSError:
        return f"{target}@missing"


def load_dataset(source: str = GLYPHS52, split: str = "train", *, download: bool = False) -> ImageSet:
    """Load one split of a data source as an :class:`ImageSet`.

    Args:
        source: a source spec (see the module docstring).
        split: the split name; :func:`list_splits` tells which exist.
        download: sources that download (torchvision): fetch the files when missing (needs the network).

    Returns:
        The split, images uint8 N x C x H x W (glyphs-52: a read-only memmap).

    Raises:
        DataError: missing or empty folder, bad class folder name, wrong array shape or dtype,
            corrupt image, unknown split, or a torchvision set that is not there.
    """
    row, arg = source_of(source)
    return row.load(arg, split, source, download)


def list_splits(source: str) -> list[str]:
    """The split names of a source, e.g. ["train", "valid", "test", "seen"] for glyphs-52."""
    row, arg = source_of(source)
    return row.splits(arg)


def dataset_info(source: str = GLYPHS52) -> dict[str, Any]:
    """Summary of a source: counts per split, classes, image shape, id, hash; for glyphs-52 also the
    manifest summary (seed, fonts with family/style/source/split, families, skipped fonts).

    A source that summarises itself (glyphs-52: the manifest only) does; other sources load every split.
    """
    row, arg = source_of(source)
    if row.info is not None:
        return row.info(source, arg)
    counts, hashes, shape, classes = {}, {}, None, None
    for split in row.splits(arg):
        s = row.load(arg, split, source, False)
        counts[split] = len(s)
        hashes[split] = s.meta.get("hash")
        shape, classes = list(s.images.shape[1:]), s.classes
    combined = hashlib.sha256("".join(f"{k}:{v}" for k, v in hashes.items()).encode()).hexdigest()
    return {"source": source, "id": source, "hash": combined, "counts": counts, "classes": classes,
            "image_shape": shape}  # fmt: skip
