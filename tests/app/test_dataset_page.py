"""Dataset page (AppTest): sources, counts and class distribution, the sample grid (class filter,
split, reshuffle), the per-class grid, one sample, mean glyphs, augmentation preview, fonts."""

from __future__ import annotations

import re

import numpy as np
import pytest

from glyphcore.data import dataset_info, export_course_layout, load_dataset

pytestmark = pytest.mark.app

PAGE = "dataset.py"
CAPTION = re.compile(r"^(?P<cls>\S+) · #(?P<index>\d+)$")


def tab(at, name: str):
    """The tab called ``name``, opened first when it is not (only the open tab's content runs)."""
    if at.session_state["ds_tab"] != name:
        at.session_state["ds_tab"] = name
        at.run()
    return next(t for t in at.tabs if t.label == name)


def class_distribution(charts) -> tuple[dict, object]:
    """The class distribution chart (found by what it plots, not by its place on the page)."""
    return next((spec, data) for spec, data in charts if spec.get("encoding", {}).get("x", {}).get("field") == "class")


def font_table(at):
    """The Fonts tab's table of font instances (found by its columns)."""
    return next(d.value for d in tab(at, "Fonts").dataframe if {"name", "family"} <= set(d.value.columns))


def unescape(markdown: str) -> str:
    """A message as the page shows it: the page escapes markdown characters with a backslash."""
    return re.sub(r"\\(.)", r"\1", markdown)


def captions(element) -> list[str]:
    return [img.caption for img in element.proto.imgs]


@pytest.fixture
def page(tiny_glyphs, runs_dir, app_page):
    return app_page(PAGE).run()


def test_counts_and_class_distribution(page, charts_of, errors_of):
    assert errors_of(page) == []
    counts = dataset_info("glyphs-52")["counts"]
    metrics = {m.label: m.value for m in page.metric}
    assert metrics == {**{s: f"{n:,}" for s, n in counts.items()}, "total": f"{sum(counts.values()):,}"}
    spec, data = class_distribution(charts_of(page))
    assert spec["encoding"]["x"]["field"] == "class"
    assert data.groupby("split")["images"].sum().to_dict() == counts
    assert len(set(data["class"])) == 52


def test_sample_grid_labels_match_the_images(page):
    train = load_dataset("glyphs-52", "train")
    grid = tab(page, "Samples").image[0]
    caps = captions(grid)
    assert len(caps) == 40
    for cap in caps:
        m = CAPTION.match(cap)
        assert train.classes[train.labels[int(m["index"])]] == m["cls"]


def test_class_filter_split_and_reshuffle(page, texts_of):
    page.pills(key="ds_grid_classes").set_value(["A", "b"]).run()
    caps = captions(tab(page, "Samples").image[0])
    assert {CAPTION.match(c)["cls"] for c in caps} == {"A", "b"}
    assert "20 of 20 images in train" in texts_of(page)  # 10 per class in the tiny set

    page.pills(key="ds_grid_classes").set_value([]).run()
    page.selectbox(key="ds_split").set_value("valid").run()
    assert "40 of 208 images in valid" in texts_of(page)
    before = captions(tab(page, "Samples").image[0])
    page.button(key="ds_reshuffle").click().run()
    assert captions(tab(page, "Samples").image[0]) != before


def test_per_class_grid_has_every_class(page):
    strips = tab(page, "Per class").image[0]
    assert captions(strips) == list(load_dataset("glyphs-52", "train").classes)


def test_one_sample_shows_label_font_family_split(page):
    train = load_dataset("glyphs-52", "train")
    tab(page, "One sample")
    page.number_input(key="ds_one_index").set_value(7).run()
    table = next(d.value for d in tab(page, "One sample").dataframe if "field" in d.value.columns)
    fields = dict(table[["field", "value"]].values)
    font = train.meta["fonts"][int(train.font_ids[7])]
    assert fields["class"] == train.classes[train.labels[7]]
    assert fields["font"] == font["name"] and fields["family"] == font["family"]
    assert fields["split"] == "train" and fields["index"] == "7"


def test_mean_glyphs_and_augmentation_preview(page):
    assert captions(tab(page, "Mean glyphs").image[0]) == list(load_dataset("glyphs-52", "train").classes)
    tab(page, "Augmentation")
    page.slider(key="ds_aug_draws").set_value(6).run()
    page.radio(key="ds_aug_strength").set_value("strong").run()
    caps = captions(tab(page, "Augmentation").image[0])
    assert caps == ["original"] + [f"draw {i}" for i in range(1, 7)]
    urls = [img.url for img in tab(page, "Augmentation").image[0].proto.imgs]
    assert len(set(urls)) == 7  # every draw differs from the original and from each other


def test_font_list_with_families_and_splits(page):
    fonts = dataset_info("glyphs-52")["fonts"]
    table = font_table(page)
    assert len(table) == len(fonts)
    assert {"name", "family", "split"} <= set(table.columns)
    page.multiselect(key="ds_font_splits").set_value(["valid"]).run()
    table = font_table(page)
    assert set(table["split"]) == {"valid"} and len(table) == sum(f["split"] == "valid" for f in fonts)


def test_fonts_tab_names_the_packages_their_licences_and_the_sizes(tmp_path, runs_dir, app_page, monkeypatch):
    from glyphcore.data import build_glyphs52
    from glyphcore.data.fonts import discover_fonts, sample_fonts

    [package_font, *_] = [f for f in discover_fonts(("packages",))[0] if f.family == "Lora"]
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "data"))
    build_glyphs52(per_class=(4, 2, 2), seen_per_class=1, seed=0, fonts=[*sample_fonts(), package_font])
    at = app_page(PAGE).run()
    fonts_tab = tab(at, "Fonts")
    packages = next(d.value for d in fonts_tab.dataframe if "licence" in d.value.columns)
    assert packages.to_dict("records") == [
        {"package": "fontpkg-lora", "pinned": "3.8", "installed": "3.8", "licence": "OFL-1.1", "families": "Lora"}
    ]
    sizes = dataset_info("glyphs-52")["size_modes"]
    assert any(f"drawn at one em size ({sizes['em_size_px']} px" in c.value for c in fonts_tab.caption)
    assert not fonts_tab.warning  # built from packages only: no machine fonts


def test_course_folder_source(tiny_glyphs, tmp_path, runs_dir, app_page, errors_of):
    root = export_course_layout(tmp_path / "course", splits=["train", "valid"])
    at = app_page(PAGE).run()
    at.radio(key="ds_kind").set_value("course .npy folder").run()
    at.text_input(key="ds_course_root").set_value(str(root)).run()
    assert errors_of(at) == []
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["train"] == "520" and metrics["valid"] == "208"
    assert len(captions(tab(at, "Samples").image[0])) == 40


def test_missing_folder_is_named_in_the_error(tiny_glyphs, tmp_path, runs_dir, app_page):
    at = app_page(PAGE).run()
    at.radio(key="ds_kind").set_value("image folder").run()
    at.text_input(key="ds_folder_root").set_value(str(tmp_path / "nowhere")).run()
    assert any(str(tmp_path / "nowhere") in unescape(e.value) for e in at.error)


def test_torchvision_offline_says_where_the_files_go(tmp_path, monkeypatch, runs_dir, app_page):
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "data"))
    at = app_page(PAGE).run()
    at.radio(key="ds_kind").set_value("torchvision").run()
    at.selectbox(key="ds_tv_name").set_value("KMNIST").run()
    (error,) = at.error
    text = unescape(error.value)
    assert "torchvision:KMNIST is not in" in text and str(tmp_path / "data" / "torchvision") in text
    assert at.button(key="ds_download")


def test_glyphs52_missing_links_to_the_build(tmp_path, monkeypatch, runs_dir, app_page):
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "empty"))
    at = app_page(PAGE).run()
    assert any("not built yet" in w.value for w in at.warning)
    assert at.get("page_link")[0].proto.label == "Build it on the home page"


def test_the_class_filter_matches_letters_exactly(page, texts_of):
    pills = page.pills(key="ds_grid_classes")
    assert pills.options[:3] == ["A", "B", "C"] and "g" in pills.options and "G" in pills.options
    pills.set_value(["g"]).run()
    caps = captions(tab(page, "Samples").image[0])
    assert {CAPTION.match(c)["cls"] for c in caps} == {"g"}  # not G as well
    assert "10 of 10 images in train" in texts_of(page)


def _image_folder(root, letters):
    from PIL import Image

    train = load_dataset("glyphs-52", "train")
    for letter in letters:
        (root / letter).mkdir(parents=True)
        for i, idx in enumerate(np.flatnonzero(train.labels == train.classes.index(letter))[:3]):
            Image.fromarray(np.asarray(train.images[idx, 0])).save(root / letter / f"{i}.png")
    return root


def test_an_image_folder_shows_its_own_classes(
    tiny_glyphs, tmp_path, runs_dir, app_page, charts_of, texts_of, errors_of
):
    root = _image_folder(tmp_path / "abc", "ABC")
    at = app_page(PAGE).run()
    at.radio(key="ds_kind").set_value("image folder").run()
    at.text_input(key="ds_folder_root").set_value(str(root)).run()
    assert errors_of(at) == []
    assert "· 3 classes (labels in a space of 52)" in texts_of(at)
    _, data = class_distribution(charts_of(at))
    assert sorted(set(data["class"])) == ["A", "B", "C"]
    assert at.pills(key="ds_grid_classes").options == ["A", "B", "C"]


def test_a_folder_error_keeps_its_file_pattern(tiny_glyphs, tmp_path, runs_dir, app_page):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.txt").write_text("no class folders here")
    at = app_page(PAGE).run()
    at.radio(key="ds_kind").set_value("image folder").run()
    at.text_input(key="ds_folder_root").set_value(str(tmp_path / "flat")).run()
    (error,) = at.error
    assert "\\*.png" in error.value  # escaped: the markdown shows "*.png", not italics
    assert "<root>/<class>/*.png|jpg" in unescape(error.value)
