"""The registry of data sources: one module per kind, read by the loaders, the command's help and the pages."""

from __future__ import annotations

import pytest

from glyphcore.data import SOURCES, parse_source, source_stamp
from glyphcore.data.sources import list_splits
from glyphcore.errors import DataError


def test_every_kind_is_registered_in_menu_order_with_what_the_pages_need():
    assert list(SOURCES) == ["glyphs-52", "course", "folder", "torchvision"]
    for kind, row in SOURCES.items():
        assert row.kind == kind and row.spec.startswith(kind) and row.label and row.layout
        assert row.widget in ("none", "folder", "choice")
        assert bool(row.choices) == (row.widget == "choice")
    assert "MNIST" in SOURCES["torchvision"].choices and SOURCES["torchvision"].downloadable


def test_specs_parse_by_the_table_and_an_unknown_one_lists_every_form():
    assert parse_source("glyphs-52") == ("glyphs-52", None)
    assert parse_source("course:/x") == ("course", "/x")
    with pytest.raises(DataError) as e:
        parse_source("course")  # a folder kind needs its folder
    for row in SOURCES.values():
        assert row.spec in str(e.value)
    assert "NAME one of ['MNIST'" in str(e.value)


def test_a_folder_source_reads_its_splits_and_stamps_its_folder(tmp_path):
    (tmp_path / "train" / "A").mkdir(parents=True)
    (tmp_path / "train" / "A" / "1.png").write_bytes(b"")
    (tmp_path / "test" / "A").mkdir(parents=True)
    assert list_splits(f"folder:{tmp_path}") == ["train", "test"]
    assert source_stamp(f"folder:{tmp_path}").startswith(f"{tmp_path}@")
    assert source_stamp("nope:1") == "nope:1@unknown"
