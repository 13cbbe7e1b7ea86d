"""torchvision's classic sets as a data source: ``torchvision:<NAME>`` (MNIST, EMNIST-letters,
EMNIST-byclass, FashionMNIST, KMNIST, CIFAR10, CIFAR100), kept in ``<data_dir>/torchvision`` and
downloaded only when asked (``download=True``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glyphcore.data.imageset import ImageSet, content_hash
from glyphcore.data.sources.base import Source
from glyphcore.errors import DataError
from glyphcore.paths import data_dir

__all__ = ["SOURCE", "TORCHVISION_SETS", "torchvision_dir"]

# torchvision data sets: name -> (class name, constructor kwargs)
TORCHVISION_SETS: dict[str, tuple[str, dict]] = {
    "MNIST": ("MNIST", {}),
    "EMNIST-letters": ("EMNIST", {"split": "letters"}),
    "EMNIST-byclass": ("EMNIST", {"split": "byclass"}),
    "FashionMNIST": ("FashionMNIST", {}),
    "KMNIST": ("KMNIST", {}),
    "CIFAR10": ("CIFAR10", {}),
    "CIFAR100": ("CIFAR100", {}),
}


def torchvision_dir() -> Path:
    """``<data_dir>/torchvision``: where torchvision data sets are downloaded to and read from."""
    return data_dir() / "torchvision"


def _torchvision_expected(name: str) -> str:
    cls, kw = TORCHVISION_SETS[name]
    root = torchvision_dir()
    if cls == "EMNIST":
        return f"{root / 'EMNIST' / 'raw'}/emnist-{kw['split']}-{{train,test}}-{{images-idx3,labels-idx1}}-ubyte"
    if cls in ("MNIST", "FashionMNIST", "KMNIST"):
        return f"{root / cls / 'raw'}/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte"
    folder = "cifar-10-batches-py" if cls == "CIFAR10" else "cifar-100-python"
    return f"{root / folder}/ (the extracted python-version archive)"


_REASON_MAX = 400  # characters of an exception's text kept in a one-line error


def _one_line_reason(e: BaseException) -> str:
    """An exception as one line: its type and its whole text, lines joined (torchvision puts the real
    cause, e.g. ``Tried <mirror>, got: <urlopen error ...>``, on the lines after the first), cut to
    _REASON_MAX characters; the chained cause is added when the text does not already say it."""
    text = " ".join(str(e).split())
    cause = e.__cause__ or e.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" (caused by {type(cause).__name__}: {' '.join(str(cause).split())})"
    reason = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return reason if len(reason) <= _REASON_MAX else reason[: _REASON_MAX - 3] + "..."


def _load_torchvision(name: str, split: str, source: str, download: bool) -> ImageSet:
    _check_name(name)
    if split not in ("train", "test"):
        raise DataError(f"torchvision:{name} has no split {split!r}: expected 'train' or 'test'")
    import torchvision.datasets as tvd

    cls_name, kw = TORCHVISION_SETS[name]
    root = torchvision_dir()
    if download:
        root.mkdir(parents=True, exist_ok=True)
    try:
        ds = getattr(tvd, cls_name)(root=str(root), train=(split == "train"), download=download, **kw)
    except RuntimeError as e:
        if download:
            raise DataError(
                f"downloading torchvision:{name} into {root} failed ({_one_line_reason(e)}): "
                f"check the network, or put the files there by hand: {_torchvision_expected(name)}"
            ) from e
        raise DataError(
            f"torchvision:{name} is not in {root}: download it with "
            f"`python -m glyphcore data fetch {name}` (needs the network), or put the files "
            f"there by hand: {_torchvision_expected(name)}"
        ) from e
    except (OSError, ValueError, TypeError, AssertionError) as e:  # offline, or broken files
        raise DataError(
            f"torchvision:{name} in {root} could not be {'downloaded' if download else 'read'} "
            f"({_one_line_reason(e)}): expected {_torchvision_expected(name)}"
        ) from e
    data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    targets = np.asarray(ds.targets.numpy() if hasattr(ds.targets, "numpy") else ds.targets, np.int64)
    classes = [str(c) for c in ds.classes]
    if data.ndim == 3:  # MNIST family: N x H x W
        if cls_name == "EMNIST":
            data = data.transpose(0, 2, 1)  # EMNIST's raw images are stored transposed
        images = np.ascontiguousarray(data[:, None])
    else:  # CIFAR: N x H x W x 3
        images = np.ascontiguousarray(data.transpose(0, 3, 1, 2))
    if name == "EMNIST-letters":  # labels 1..26, class 0 is "N/A"
        targets = targets - 1
        classes = classes[1:]
    if cls_name == "MNIST":  # "0 - zero" -> "0"
        classes = [c.split(" - ")[0] for c in classes]
    meta = {"id": source, "hash": content_hash([images, targets]), "root": str(root), "frame": None}
    return ImageSet(images.astype(np.uint8, copy=False), targets, classes, source, split, None, meta)


def _splits(name: str | None) -> list[str]:
    _check_name(name)
    return ["train", "test"]


def _check_name(name: str | None) -> None:
    if name not in TORCHVISION_SETS:
        raise DataError(f"unknown torchvision data set {name!r}: expected one of {list(TORCHVISION_SETS)}")


SOURCE = Source(
    kind="torchvision",
    spec="torchvision:<NAME>",
    label="torchvision",
    layout=f"one of {', '.join(TORCHVISION_SETS)}",
    widget="choice",
    load=lambda arg, split, source, download: _load_torchvision(str(arg), split, source, download),
    splits=_splits,
    stamp_path=lambda _arg: torchvision_dir(),
    choices=tuple(TORCHVISION_SETS),
    downloadable=True,
    order=30,
)
