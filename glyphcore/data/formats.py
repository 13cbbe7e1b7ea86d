"""Data sets in one in-memory form (:class:`ImageSet`), from every source glyphcore reads.

Source specs:

- ``glyphs-52`` (or ``glyphs-52:<folder>``): the built-in rendered set in ``<data_dir>/glyphs-52``;
  one uint8 ``.npy`` per split, loaded as read-only memmaps (a cached load takes milliseconds);
- ``course:<root>``: the course layout ``<root>/<split>/<hex>/<i>_<hex>.npy``: class folders named
  by the hex ASCII code of the letter (``41`` -> ``A``, ``5a`` -> ``Z``, ``7a`` -> ``z``), one 2-D
  uint8 or float array per image, either polarity (normalised to white on black);
- ``folder:<root>``: an image folder, one sub-folder of PNG/JPG per class (optionally below split
  folders ``train``/``valid``/``test``); grayscale unless the images are in colour;
- ``torchvision:<NAME>``: MNIST, EMNIST-letters, EMNIST-byclass, FashionMNIST, KMNIST, CIFAR10,
  CIFAR100, kept in ``<data_dir>/torchvision``; downloaded only when asked (``download=True``).

Bad input raises :class:`glyphcore.errors.DataError` naming the file and the expected form.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from glyphcore.errors import DataError
from glyphcore.frame import CLASSES, FRAME_SIZE, frame_dict
from glyphcore.paths import data_dir

__all__ = [
    "ImageSet",
    "GLYPHS52",
    "GLYPHS52_VERSION",
    "SPLITS",
    "MANIFEST_FILE",
    "TORCHVISION_SETS",
    "glyphs52_dir",
    "glyphs52_ready",
    "read_manifest",
    "split_files",
    "parse_source",
    "load_dataset",
    "list_splits",
    "dataset_info",
    "export_course_layout",
    "torchvision_dir",
    "content_hash",
]

GLYPHS52 = "glyphs-52"
SPLITS: tuple[str, ...] = ("train", "valid", "test", "seen")  # "seen": train fonts, fresh jitter
MANIFEST_FILE = "manifest.json"
# glyphs-52/2: fonts only from declared Python packages by default (machine fonts an opt-in), and a
# share of the images at one em size ("size_modes"); /1 data sets must be rebuilt.
GLYPHS52_VERSION = "glyphs-52/2"
MANIFEST_FORMAT = f"glyphcore.{GLYPHS52_VERSION}"
COURSE_LAYOUT = "<root>/<split>/<hex>/<i>_<hex>.npy (e.g. valid/5a/1775_5a.npy: a 2-D uint8 or float array)"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_SPLIT_ORDER = ("train", "valid", "val", "validation", "test", "seen", "all")
_HEX_NAME = re.compile(r"^[0-9a-fA-F]{2,6}$")

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


@dataclass
class ImageSet:
    """One split of a data set, in memory (or memory-mapped).

    Attributes:
        images: uint8 array N x C x H x W (C=1 for glyphs/MNIST, 3 for CIFAR); may be a read-only memmap.
        labels: int64 array N; label i <-> classes[i].
        classes: class names.
        source: the source spec it came from ("glyphs-52", "course:/path", "folder:/p", "torchvision:MNIST").
        split: "train" | "valid" | "test" | "seen", or the source's own split name.
        font_ids: int32 array N, index into meta["fonts"] (glyphs-52 only), else None.
        meta: {"id", "hash", "fonts", "frame", ...}: what a run records about its data.
        size_modes: uint8 array N, index into meta["size_modes"]["names"] ("cap": cap-normalised,
            "em": one em size; glyphs-52 only), else None.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    source: str
    split: str
    font_ids: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    size_modes: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


# ---------------------------------------------------------------------------------------------
# glyphs-52 storage


def glyphs52_dir() -> Path:
    """``<data_dir>/glyphs-52``: where the built-in data set lives."""
    return data_dir() / GLYPHS52


def split_files(split: str) -> dict[str, str]:
    """File names of one glyphs-52 split: images (N x 1 x H x W uint8), labels (int64), fonts (int32),
    size modes (uint8, index into manifest["size_modes"]["names"])."""
    return {"images": f"{split}_images.npy", "labels": f"{split}_labels.npy", "fonts": f"{split}_fonts.npy",
            "sizes": f"{split}_sizes.npy"}


def content_hash(arrays: list[np.ndarray]) -> str:
    """sha256 over the raw bytes of arrays, in order (with dtype and shape, so a reshape changes it)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data.cast("B"))
    return h.hexdigest()


def read_manifest(folder: str | Path | None = None) -> dict:
    """The manifest of a glyphs-52 folder (default: :func:`glyphs52_dir`).

    Raises:
        DataError: no complete data set there (never built, or a build that did not finish).
    """
    folder = Path(folder) if folder is not None else glyphs52_dir()
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise DataError(f"no glyphs-52 data set in {folder} (missing {MANIFEST_FILE}): build it with "
                        "`python -m glyphcore data build`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable glyphs-52 manifest ({e}): rebuild with "
                        "`python -m glyphcore data build`") from e
    if manifest.get("format") != MANIFEST_FORMAT or not manifest.get("complete"):
        raise DataError(f"{path} is not a complete {MANIFEST_FORMAT} manifest: rebuild with "
                        "`python -m glyphcore data build`")
    return manifest


def glyphs52_ready(folder: str | Path | None = None) -> bool:
    """True when a complete glyphs-52 exists (default in ``paths.data_dir()``): manifest and every
    split file present with the counts the manifest records. Cheap: reads headers only."""
    folder = Path(folder) if folder is not None else glyphs52_dir()
    try:
        manifest = read_manifest(folder)
        for split, n in manifest["counts"].items():
            for kind, name in split_files(split).items():
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
            raise DataError(f"{path} is missing or unreadable ({e}): rebuild with "
                            "`python -m glyphcore data build`") from e
    n = manifest["counts"][split]
    if any(a.shape[0] != n for a in arrays.values()) or arrays["images"].ndim != 4:
        raise DataError(f"{folder} holds arrays that do not match its manifest for split {split!r}: "
                        "rebuild with `python -m glyphcore data build`")
    meta = {k: manifest[k] for k in ("id", "hash", "version", "fonts", "frame", "families", "seed", "size_modes",
                                         "font_options", "font_packages")
            if k in manifest}
    meta["folder"] = str(folder)
    return ImageSet(arrays["images"], arrays["labels"], list(manifest["classes"]), source, split,
                    arrays["fonts"], meta, arrays["sizes"])


# ---------------------------------------------------------------------------------------------
# helpers shared by the course and folder loaders


def _normalise_polarity(img: np.ndarray) -> np.ndarray:
    """White ink on black: invert a 2-D uint8 image whose border is mostly bright."""
    border = np.concatenate([img[:2].ravel(), img[-2:].ravel(), img[:, :2].ravel(), img[:, -2:].ravel()])
    return 255 - img if np.median(border) > 127 else img


def _class_list(names: list[str]) -> list[str]:
    """The glyph classes (so labels match glyphs-52) when every name is a letter, else sorted names."""
    if names and set(names) <= set(CLASSES):
        return list(CLASSES)
    return sorted(set(names))


def _sorted_splits(names: list[str]) -> list[str]:
    order = {s: i for i, s in enumerate(_SPLIT_ORDER)}
    return sorted(names, key=lambda s: (order.get(s, len(order)), s))


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _require_folder(root: Path, what: str, expected: str) -> None:
    if not root.is_dir():
        raise DataError(f"{what} folder {root} does not exist: expected {expected}")
    if not any(not p.name.startswith(".") for p in root.iterdir()):
        raise DataError(f"{what} folder {root} is empty: expected {expected}")


def _file_index(p: Path) -> tuple[int, str]:
    head = p.stem.split("_", 1)[0]
    return (int(head), p.name) if head.isdigit() else (-1, p.name)


# ---------------------------------------------------------------------------------------------
# course layout


def _hex_class(folder: Path) -> str:
    if not _HEX_NAME.match(folder.name):
        raise DataError(f"class folder {folder} is not named by a hex ASCII code: expected e.g. '41' for "
                        f"'A' or '7a' for 'z' ({COURSE_LAYOUT})")
    code = int(folder.name, 16)
    if not (0x20 < code < 0x110000) or not chr(code).isprintable():
        raise DataError(f"class folder {folder} names code {code:#x}, not a printable character: "
                        f"expected e.g. '41' for 'A' ({COURSE_LAYOUT})")
    return chr(code)


def _course_splits(root: Path) -> dict[str, Path]:
    """split name -> folder. A root whose sub-folders are class folders is one split, "all"."""
    _require_folder(root, "course", COURSE_LAYOUT)
    subs = _subdirs(root)
    if not subs:
        raise DataError(f"course folder {root} has no sub-folders: expected {COURSE_LAYOUT}")
    if all(_HEX_NAME.match(p.name) for p in subs) and not any(_subdirs(p) for p in subs):
        return {"all": root}
    return {p.name: p for p in subs}


def _load_course(root: Path, split: str, source: str) -> ImageSet:
    splits = _course_splits(root)
    if split not in splits:
        raise DataError(f"course folder {root} has no split {split!r}: found {_sorted_splits(list(splits))}")
    split_dir = splits[split]
    class_dirs = _subdirs(split_dir)
    if not class_dirs:
        raise DataError(f"split folder {split_dir} is empty: expected class folders ({COURSE_LAYOUT})")
    chars = [_hex_class(d) for d in class_dirs]
    classes = _class_list(chars)
    index = {c: i for i, c in enumerate(classes)}
    files: list[tuple[Path, int]] = []
    for d, ch in sorted(zip(class_dirs, chars), key=lambda t: index[t[1]]):
        npys = sorted(d.glob("*.npy"), key=_file_index)
        if not npys:  # the class would silently get no images of this split
            raise DataError(f"class folder {d} holds no .npy files: add its images or remove the folder "
                            f"({COURSE_LAYOUT})")
        files += [(p, index[ch]) for p in npys]
    if not files:
        raise DataError(f"split folder {split_dir} holds no .npy files: expected {COURSE_LAYOUT}")

    arrays: list[np.ndarray] = []
    shape = None
    for p, _ in files:
        try:
            a = np.load(p, allow_pickle=False)
        except Exception as e:  # truncated file, not .npy, pickled object array...
            raise DataError(f"{p} is not a readable .npy array ({e}): expected a 2-D uint8 or float "
                            "array saved with numpy.save") from e
        if a.ndim != 2:
            raise DataError(f"{p} has shape {a.shape}: expected a 2-D image array (H x W)")
        if not (a.dtype == np.uint8 or a.dtype.kind == "f" or a.dtype == np.bool_):
            raise DataError(f"{p} has dtype {a.dtype}: expected uint8 (0-255) or float (0-1 or 0-255)")
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise DataError(f"{p} has shape {a.shape} but the other images are {shape}: expected every "
                            "image of a split to have the same size")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise DataError(f"{p} contains NaN or infinite values: expected finite pixel values")
        arrays.append(a)
    assert shape is not None  # there is at least one file
    # Per file: floats in [0, 1] are scaled to 0-255; a file with floats beyond 1 is taken as 0-255
    # already (one 0-255 file among 0-1 files must not darken all the others).
    images = np.empty((len(arrays), 1, *shape), np.uint8)
    for i, a in enumerate(arrays):
        if a.dtype == np.uint8:
            u8 = a
        elif a.dtype == np.bool_:
            u8 = a.astype(np.uint8) * 255
        else:
            float_scale = 255.0 if float(a.max()) <= 1.0 else 1.0
            u8 = np.clip(np.rint(a.astype(np.float64) * float_scale), 0, 255).astype(np.uint8)
        images[i, 0] = _normalise_polarity(u8)
    labels = np.array([lab for _, lab in files], np.int64)
    meta = {"id": source, "hash": content_hash([images, labels]), "root": str(root),
            "frame": frame_dict() if shape == (FRAME_SIZE, FRAME_SIZE) else None}
    return ImageSet(images, labels, classes, source, split, None, meta)


# ---------------------------------------------------------------------------------------------
# image folder

_FOLDER_LAYOUT = "<root>/<class>/*.png|jpg (or <root>/<split>/<class>/*.png|jpg)"


def _folder_splits(root: Path) -> dict[str, Path]:
    _require_folder(root, "image", _FOLDER_LAYOUT)
    subs = _subdirs(root)
    if not subs:
        raise DataError(f"image folder {root} has no class sub-folders: expected {_FOLDER_LAYOUT}")
    names = {p.name.lower() for p in subs}
    if names <= set(_SPLIT_ORDER) and all(_subdirs(p) for p in subs):
        return {p.name: p for p in subs}
    return {"all": root}


def _open_image(p: Path):
    from PIL import Image

    try:
        with Image.open(p) as im:
            im.load()
            return im.copy()
    except Exception as e:
        raise DataError(f"image file {p} is corrupt or not an image ({e}): expected a PNG or JPG file") from e


def _to_gray_or_rgb(im, color: bool):
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels are background: flatten on white, then polarity makes it black.
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    return im.convert("RGB" if color else "L")


def _is_colour(im) -> bool:
    if im.mode in ("L", "1", "I", "F", "I;16", "LA"):
        return False
    rgb = np.asarray(im.convert("RGB"), np.int16)
    return bool(np.abs(rgb[..., 0] - rgb[..., 1]).max() > 8 or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 8)


def _load_folder(root: Path, split: str, source: str) -> ImageSet:
    from PIL import Image

    splits = _folder_splits(root)
    if split not in splits:
        raise DataError(f"image folder {root} has no split {split!r}: found {_sorted_splits(list(splits))}")
    class_dirs = _subdirs(splits[split])
    if not class_dirs:
        raise DataError(f"split folder {splits[split]} has no class sub-folders: expected {_FOLDER_LAYOUT}")
    classes = _class_list([d.name for d in class_dirs])
    index = {c: i for i, c in enumerate(classes)}
    files = [(p, index[d.name]) for d in sorted(class_dirs, key=lambda d: index[d.name])
             for p in sorted(d.iterdir(), key=_file_index) if p.suffix.lower() in IMAGE_EXTENSIONS]
    present = {lab for _, lab in files}
    empty = [d for d in class_dirs if index[d.name] not in present]
    if empty:  # the class would silently get no images of this split
        raise DataError(f"class folder {empty[0]} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}): "
                        f"add its images or remove the folder")
    if not files:
        raise DataError(f"image folder {splits[split]} holds no images: expected {_FOLDER_LAYOUT}")
    images = [_open_image(p) for p, _ in files]
    # Colour is kept (C=3) only when the images really are in colour, e.g. CIFAR-like photos.
    color = any(_is_colour(im) for im in images)
    size = Counter(im.size for im in images).most_common(1)[0][0]  # (W, H)
    c = 3 if color else 1
    out = np.empty((len(images), c, size[1], size[0]), np.uint8)
    for i, im in enumerate(images):
        im = _to_gray_or_rgb(im, color)
        if im.size != size:
            im = im.resize(size, Image.Resampling.BILINEAR)
        a = np.asarray(im)
        out[i] = a.transpose(2, 0, 1) if color else _normalise_polarity(a)[None]
    labels = np.array([lab for _, lab in files], np.int64)
    meta = {"id": source, "hash": content_hash([out, labels]), "root": str(root),
            "frame": frame_dict() if (c == 1 and size == (FRAME_SIZE, FRAME_SIZE)) else None,
            "resized_to": [size[1], size[0]]}
    return ImageSet(out, labels, classes, source, split, None, meta)


# ---------------------------------------------------------------------------------------------
# torchvision


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
    if name not in TORCHVISION_SETS:
        raise DataError(f"unknown torchvision data set {name!r}: expected one of {list(TORCHVISION_SETS)}")
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
            raise DataError(f"downloading torchvision:{name} into {root} failed ({_one_line_reason(e)}): "
                            f"check the network, or put the files there by hand: {_torchvision_expected(name)}") from e
        raise DataError(f"torchvision:{name} is not in {root}: download it with "
                        f"`python -m glyphcore data fetch {name}` (needs the network), or put the files "
                        f"there by hand: {_torchvision_expected(name)}") from e
    except (OSError, ValueError, TypeError, AssertionError) as e:  # offline, or broken files
        raise DataError(f"torchvision:{name} in {root} could not be {'downloaded' if download else 'read'} "
                        f"({_one_line_reason(e)}): expected {_torchvision_expected(name)}") from e
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


# ---------------------------------------------------------------------------------------------
# public entry points


def source_stamp(source: str) -> str:
    """Where a source's files are and when they last changed: a cache key that changes when the data
    set is rebuilt or its folder edited (the app's cached loaders and tables are keyed by it). An
    unknown source gets a stamp too: loading it is what reports the problem."""
    try:
        kind, arg = parse_source(source)
    except DataError:
        return f"{source}@unknown"
    if kind == GLYPHS52:
        folder = Path(arg) if arg else glyphs52_dir()
        target = folder / MANIFEST_FILE  # rewritten by every build, after the arrays
    elif kind in ("course", "folder"):
        target = Path(str(arg)).expanduser()
    else:
        target = torchvision_dir()
    try:
        return f"{target}@{target.stat().st_mtime_ns}"
    except OSError:
        return f"{target}@missing"


def parse_source(source: str) -> tuple[str, str | None]:
    """Split a source spec into (kind, argument): ("glyphs-52", None | folder), ("course", root),
    ("folder", root), ("torchvision", NAME).

    Raises:
        DataError: an unknown kind, or a kind without its argument.
    """
    if source == GLYPHS52:
        return GLYPHS52, None
    kind, sep, arg = source.partition(":")
    if kind in (GLYPHS52, "course", "folder", "torchvision") and sep and arg:
        return kind, arg
    raise DataError(f"unknown data source {source!r}: expected 'glyphs-52', 'course:<root>', "
                    f"'folder:<root>' or 'torchvision:<NAME>' (NAME one of {list(TORCHVISION_SETS)})")


def load_dataset(source: str = GLYPHS52, split: str = "train", *, download: bool = False) -> ImageSet:
    """Load one split of a data source as an :class:`ImageSet`.

    Args:
        source: a source spec (see the module docstring).
        split: the split name; :func:`list_splits` tells which exist.
        download: torchvision sources only: download when the files are missing (needs the network).

    Returns:
        The split, images uint8 N x C x H x W (glyphs-52: a read-only memmap).

    Raises:
        DataError: missing or empty folder, bad class folder name, wrong array shape or dtype,
            corrupt image, unknown split, or a torchvision set that is not there.
    """
    kind, arg = parse_source(source)
    if kind == GLYPHS52:
        return _load_glyphs52(Path(arg) if arg else glyphs52_dir(), split, source)
    assert arg is not None  # parse_source gives every other kind its argument
    if kind == "course":
        return _load_course(Path(arg).expanduser(), split, source)
    if kind == "folder":
        return _load_folder(Path(arg).expanduser(), split, source)
    return _load_torchvision(arg, split, source, download)


def list_splits(source: str) -> list[str]:
    """The split names of a source, e.g. ["train", "valid", "test", "seen"] for glyphs-52."""
    kind, arg = parse_source(source)
    if kind == GLYPHS52:
        return list(read_manifest(Path(arg) if arg else None)["counts"])
    assert arg is not None  # parse_source gives every other kind its argument
    if kind == "course":
        return _sorted_splits(list(_course_splits(Path(arg).expanduser())))
    if kind == "folder":
        return _sorted_splits(list(_folder_splits(Path(arg).expanduser())))
    if arg not in TORCHVISION_SETS:
        raise DataError(f"unknown torchvision data set {arg!r}: expected one of {list(TORCHVISION_SETS)}")
    return ["train", "test"]


def dataset_info(source: str = GLYPHS52) -> dict:
    """Summary of a source: counts per split, classes, image shape, id, hash; for glyphs-52 also the
    manifest summary (seed, fonts with family/style/source/split, families, skipped fonts).

    glyphs-52 reads only the manifest; other sources load every split.
    """
    kind, arg = parse_source(source)
    if kind == GLYPHS52:
        m = read_manifest(Path(arg) if arg else None)
        return {
            "source": source, "id": m["id"], "hash": m["hash"], "counts": dict(m["counts"]),
            "classes": list(m["classes"]), "image_shape": list(m["image_shape"]), "seed": m["seed"],
            "per_class": m["per_class"], "frame": m["frame"], "fonts": m["fonts"],
            "families": m["families"], "skipped": m.get("skipped", []), "built": m.get("built"),
            "version": m.get("version"), "size_modes": m.get("size_modes"),
            "font_options": m.get("font_options"), "font_packages": m.get("font_packages"),
            "build_seconds": m.get("build_seconds"), "folder": str(Path(arg) if arg else glyphs52_dir()),
        }
    counts, hashes, shape, classes = {}, {}, None, None
    for split in list_splits(source):
        s = load_dataset(source, split)
        counts[split] = len(s)
        hashes[split] = s.meta.get("hash")
        shape, classes = list(s.images.shape[1:]), s.classes
    combined = hashlib.sha256("".join(f"{k}:{v}" for k, v in hashes.items()).encode()).hexdigest()
    return {"source": source, "id": source, "hash": combined, "counts": counts, "classes": classes,
            "image_shape": shape}


def export_course_layout(
    out_root: str | Path,
    source: str = GLYPHS52,
    splits: list[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Path:
    """Write a data set in the course layout ``<out_root>/<split>/<hex>/<i>_<hex>.npy`` (2-D uint8).

    ``i`` runs over the whole split (as in the course set, e.g. ``valid/5a/1775_5a.npy``). The
    export is written into a temporary folder and renamed into place.

    Args:
        out_root: the folder to create; it must not exist yet, or be empty.
        source: a source spec whose classes are single characters (glyphs-52 by default).
        splits: which splits (default: all of the source's).
        progress: called as ``progress(done, total, split)``.

    Returns:
        ``out_root``.

    Raises:
        DataError: out_root is a non-empty folder, the source is missing, or a class name is not a
            single character (no hex folder name exists for it).
    """
    out_root = Path(out_root).expanduser()
    if out_root.exists() and (not out_root.is_dir() or any(out_root.iterdir())):
        raise DataError(f"export folder {out_root} already exists and is not empty: expected a new folder")
    splits = list(splits) if splits else list_splits(source)
    sets = [load_dataset(source, s) for s in splits]
    for s in sets:
        bad = [c for c in s.classes if len(c) != 1]
        if bad:
            raise DataError(f"{source} has class names {bad[:3]} that are not single characters: the "
                            "course layout names class folders by one character's hex code")
        if s.images.shape[1] != 1:
            raise DataError(f"{source} has {s.images.shape[1]}-channel images: the course layout "
                            "holds 2-D grayscale arrays")
    import secrets
    import shutil

    tmp = out_root.parent / f".{out_root.name}.tmp-{secrets.token_hex(4)}-{os.getpid()}"
    total = sum(len(s) for s in sets)
    done = 0
    try:
        for s in sets:
            hexes = [format(ord(c), "02x") for c in s.classes]
            for h in set(hexes[int(lab)] for lab in np.unique(s.labels)):
                (tmp / s.split / h).mkdir(parents=True, exist_ok=True)
            for i in range(len(s)):
                h = hexes[int(s.labels[i])]
                np.save(tmp / s.split / h / f"{i}_{h}.npy", np.ascontiguousarray(s.images[i, 0]))
                done += 1
                if progress is not None and (done % 1000 == 0 or done == total):
                    progress(done, total, s.split)
        if out_root.exists():
            out_root.rmdir()  # empty, checked above
        out_root.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_root
