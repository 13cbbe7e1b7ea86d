"""Loaders (course layout, image folder, torchvision's MNIST family and CIFAR files), export, and bad input."""

from __future__ import annotations

import struct
import urllib.error

import numpy as np
import pytest
from PIL import Image

from glyphcore.data import export_course_layout, list_splits, load_dataset, parse_source
from glyphcore.errors import DataError
from glyphcore.frame import CLASSES


def _glyph(size: int = 20, value: int = 255) -> np.ndarray:
    """A white plus sign on black."""
    a = np.zeros((size, size), np.uint8)
    a[size // 2 - 1 : size // 2 + 1, 3:-3] = value
    a[3:-3, size // 2 - 1 : size // 2 + 1] = value
    return a


def _course_tree(root, arrays: dict[str, list[np.ndarray]], split: str = "train"):
    i = 0
    for hexname, items in arrays.items():
        d = root / split / hexname
        d.mkdir(parents=True)
        for a in items:
            np.save(d / f"{i}_{hexname}.npy", a)
            i += 1
    return root


def test_course_layout_any_dtype_and_polarity(tmp_path):
    g = _glyph()
    root = _course_tree(
        tmp_path,
        {
            "41": [g, 255 - g],  # 'A': white-on-black and black-on-white uint8
            "7a": [g.astype(np.float32) / 255, 1.0 - g.astype(np.float64) / 255],  # 'z': floats in [0, 1]
        },
    )
    _course_tree(tmp_path, {"42": [g]}, split="valid")
    assert list_splits(f"course:{root}") == ["train", "valid"]
    s = load_dataset(f"course:{root}", "train")
    assert s.classes == CLASSES  # letters: labels match glyphs-52
    assert s.labels.tolist() == [0, 0, 51, 51]
    assert s.images.shape == (4, 1, 20, 20) and s.images.dtype == np.uint8
    for img in s.images[:, 0]:
        np.testing.assert_array_equal(img, g)  # every polarity and dtype -> the same white-on-black glyph
    assert s.meta["hash"] and s.source == f"course:{root}"


def test_course_floats_in_0_255_are_not_rescaled(tmp_path):
    g = _glyph()
    root = _course_tree(tmp_path, {"61": [g.astype(np.float32)]})
    np.testing.assert_array_equal(load_dataset(f"course:{root}", "train").images[0, 0], g)


def test_export_round_trips_through_the_course_loader(tiny_glyphs, tmp_path):
    out = export_course_layout(tmp_path / "course", splits=["valid"])
    files = sorted((out / "valid" / "5a").glob("*.npy"))
    assert files and all(f.name.endswith("_5a.npy") for f in files)
    assert np.load(files[0]).ndim == 2
    original = load_dataset("glyphs-52", "valid")
    loaded = load_dataset(f"course:{out}", "valid")
    # the course loader orders by class, then by the running index in the file name
    order = np.lexsort((np.arange(len(original)), original.labels))
    np.testing.assert_array_equal(loaded.labels, original.labels[order])
    np.testing.assert_array_equal(loaded.images, np.asarray(original.images)[order])
    with pytest.raises(DataError, match="not empty"):
        export_course_layout(out)


def _png(path, array, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def test_image_folder_grayscale_normalised_to_white_on_black(tmp_path):
    g = _glyph(28)
    _png(tmp_path / "A" / "0.png", 255 - g)  # black ink on white paper
    _png(tmp_path / "A" / "1.jpg", 255 - g)
    _png(tmp_path / "b" / "0.png", g)
    rgba = np.zeros((28, 28, 4), np.uint8)  # a transparent canvas export: black ink, alpha = ink
    rgba[..., 3] = g
    _png(tmp_path / "b" / "1.png", rgba, "RGBA")
    _png(tmp_path / "b" / "2.png", np.zeros((40, 40), np.uint8))  # another size: resized
    (tmp_path / "b" / "notes.txt").write_text("not an image: ignored")
    assert list_splits(f"folder:{tmp_path}") == ["all"]
    s = load_dataset(f"folder:{tmp_path}", "all")
    assert s.classes == CLASSES
    assert s.labels.tolist() == [0, 0, 27, 27, 27]
    assert s.images.shape == (5, 1, 28, 28)
    for img in s.images[:4, 0]:
        assert np.abs(img.astype(int) - g).mean() < 8  # jpg is lossy
    assert s.images[4].max() == 0


def test_image_folder_with_splits_and_colour(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            _png(tmp_path / split / cls / "0.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), "RGB")
    assert list_splits(f"folder:{tmp_path}") == ["train", "test"]
    s = load_dataset(f"folder:{tmp_path}", "test")
    assert s.classes == ["cat", "dog"] and s.images.shape == (2, 3, 32, 32)


def _idx(path, arr: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    magic = 0x0800 | arr.ndim  # type 8 = unsigned byte
    path.write_bytes(struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


def _upright_glyph(rng, n: int) -> np.ndarray:
    """n 28x28 images, each with a bar along its top row: an image read transposed has it on the left."""
    x = rng.integers(0, 100, (n, 28, 28), dtype=np.uint8)
    x[:, 0, :] = 255
    return x


# (source, raw folder, file prefix of the train / test files, classes torchvision names, labels on disk)
MNIST_FAMILY = [
    ("MNIST", "MNIST", ("train", "t10k"), [str(d) for d in range(10)], 10),
    (
        "FashionMNIST",
        "FashionMNIST",
        ("train", "t10k"),
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        10,
    ),
    ("KMNIST", "KMNIST", ("train", "t10k"), ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"], 10),
    # EMNIST stores its images transposed and the letters' labels as 1..26 (0 is "N/A")
    (
        "EMNIST-letters",
        "EMNIST",
        ("emnist-letters-train", "emnist-letters-test"),
        [chr(c) for c in range(ord("a"), ord("z") + 1)],
        26,
    ),
    (
        "EMNIST-byclass",
        "EMNIST",
        ("emnist-byclass-train", "emnist-byclass-test"),
        [str(d) for d in range(10)] + [chr(c) for c in range(65, 91)] + [chr(c) for c in range(97, 123)],
        62,
    ),
]


@pytest.mark.parametrize("name, folder, prefixes, classes, n_classes", MNIST_FAMILY, ids=[m[0] for m in MNIST_FAMILY])
def test_torchvision_mnist_family_from_idx_files(tmp_path, monkeypatch, name, folder, prefixes, classes, n_classes):
    """torchvision's own reader on files laid out as its downloads leave them (no network here)."""
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path))
    raw = tmp_path / "torchvision" / folder / "raw"
    rng = np.random.default_rng(0)
    emnist = folder == "EMNIST"
    first = 1 if name == "EMNIST-letters" else 0
    written = {}
    for prefix, n in zip(prefixes, (6, 4)):
        images = _upright_glyph(rng, n)
        labels = (np.arange(n) % n_classes + first).astype(np.uint8)
        _idx(raw / f"{prefix}-images-idx3-ubyte", images.transpose(0, 2, 1) if emnist else images)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        written[prefix] = images
    s = load_dataset(f"torchvision:{name}", "train")
    assert s.images.shape == (6, 1, 28, 28) and s.images.dtype == np.uint8
    np.testing.assert_array_equal(s.images[:, 0], written[prefixes[0]])  # upright, EMNIST included
    assert s.labels.tolist() == list(range(6)) and s.labels.dtype == np.int64
    assert s.classes == classes
    assert len(load_dataset(f"torchvision:{name}", "test")) == 4
    assert list_splits(f"torchvision:{name}") == ["train", "test"]


@pytest.mark.parametrize("name", ["CIFAR10", "CIFAR100"])
def test_torchvision_cifar_from_python_batches(tmp_path, monkeypatch, name):
    """CIFAR's python-version batches (pickled dicts of N x 3072 rows) come out as N x 3 x 32 x 32."""
    import pickle

    import torchvision.datasets as tvd
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path))
    cls = getattr(tvd, name)
    # The md5 sums torchvision checks are those of the real downloads, which cannot be had here.
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    folder = tmp_path / "torchvision" / cls.base_folder
    folder.mkdir(parents=True)
    label_key = "labels" if name == "CIFAR10" else "fine_labels"
    n_classes = 10 if name == "CIFAR10" else 100
    names = [f"class{i}" for i in range(n_classes)]
    rng = np.random.default_rng(0)
    rows = {}
    for k, (filename, _md5) in enumerate(cls.train_list + cls.test_list):
        data = rng.integers(0, 255, (2, 3072), dtype=np.uint8)
        rows[filename] = data
        with open(folder / filename, "wb") as f:
            pickle.dump({"data": data, label_key: [k % n_classes, (k + 1) % n_classes]}, f)
    with open(folder / cls.meta["filename"], "wb") as f:
        pickle.dump({cls.meta["key"]: names}, f)
    s = load_dataset(f"torchvision:{name}", "train")
    assert s.images.shape == (2 * len(cls.train_list), 3, 32, 32) and s.images.dtype == np.uint8
    # a row is 1024 red, then 1024 green, then 1024 blue values, row-major
    np.testing.assert_array_equal(s.images[0], rows[cls.train_list[0][0]][0].reshape(3, 32, 32))
    assert s.classes == names
    test = load_dataset(f"torchvision:{name}", "test")
    assert len(test) == 2 and test.labels.dtype == np.int64


def test_missing_torchvision_set_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=str(tmp_path / "torchvision")) as e:
        load_dataset("torchvision:FashionMNIST", "train")
    assert "data fetch FashionMNIST" in str(e.value)


def test_failed_download_is_a_data_error(tmp_path, monkeypatch):
    # The network is not reachable in tests: stand in for torchvision's download step.
    import torchvision.datasets as tvd

    def offline(self):
        raise urllib.error.URLError("offline")

    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(tvd.KMNIST, "download", offline)
    with pytest.raises(DataError, match="torchvision"):
        load_dataset("torchvision:KMNIST", "train", download=True)


def test_a_failed_download_says_why_on_one_line(tmp_path, monkeypatch):
    # torchvision's own MNIST.download runs; only the fetch of each mirror's file is stood in for
    import torchvision.datasets.mnist as tv_mnist

    def unreachable(url, **kw):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", unreachable)
    with pytest.raises(DataError) as e:
        load_dataset("torchvision:MNIST", "train", download=True)
    message = str(e.value)
    assert "\n" not in message
    assert "RuntimeError: Error downloading train-images-idx3-ubyte.gz" in message
    assert "Temporary failure in name resolution" in message  # the cause, not an empty reason


# --- bad input: each a DataError naming the file and the expected form ----------------------


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"course:{tmp_path / 'nope'}", "train")
    with pytest.raises(DataError, match="is empty"):
        load_dataset(f"course:{tmp_path}", "train")
    with pytest.raises(DataError, match="is empty"):
        load_dataset(f"folder:{tmp_path}", "all")
    (tmp_path / "train" / "41").mkdir(parents=True)
    with pytest.raises(DataError, match="no .npy files"):
        load_dataset(f"course:{tmp_path}", "train")


def test_class_folder_not_a_hex_code(tmp_path):
    _course_tree(tmp_path, {"41": [_glyph()], "letterB": [_glyph()]})
    with pytest.raises(DataError, match="letterB.*hex"):
        load_dataset(f"course:{tmp_path}", "train")


@pytest.mark.parametrize(
    "array, pattern",
    [
        (np.zeros((2, 20, 20), np.uint8), r"shape \(2, 20, 20\).*2-D"),
        (np.zeros((20, 20), np.int64), "dtype int64.*uint8"),
        (np.full((20, 20), np.nan, np.float32), "NaN"),
    ],
)
def test_array_of_wrong_shape_or_dtype(tmp_path, array, pattern):
    _course_tree(tmp_path, {"41": [_glyph()], "42": [array]})
    with pytest.raises(DataError, match=pattern) as e:
        load_dataset(f"course:{tmp_path}", "train")
    assert "1_42.npy" in str(e.value)


def test_arrays_of_different_sizes(tmp_path):
    _course_tree(tmp_path, {"41": [_glyph(20), _glyph(24)]})
    with pytest.raises(DataError, match="1_41.npy.*same size"):
        load_dataset(f"course:{tmp_path}", "train")


def test_corrupt_npy_file(tmp_path):
    _course_tree(tmp_path, {"41": [_glyph()]})
    (tmp_path / "train" / "41" / "7_41.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="7_41.npy.*not a readable .npy"):
        load_dataset(f"course:{tmp_path}", "train")


def test_corrupt_image(tmp_path):
    _png(tmp_path / "A" / "0.png", _glyph())
    (tmp_path / "A" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match="1.png.*corrupt"):
        load_dataset(f"folder:{tmp_path}", "all")


def test_unknown_source_and_split(tmp_path, tiny_glyphs):
    with pytest.raises(DataError, match="unknown data source"):
        parse_source("mnist")
    with pytest.raises(DataError, match="unknown torchvision"):
        load_dataset("torchvision:SVHN", "train")
    with pytest.raises(DataError, match="no split 'val'"):
        load_dataset("glyphs-52", "val")
