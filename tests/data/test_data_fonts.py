"""glyphs-52/2 and /3: fonts only from declared Python packages by default, >= 30 design families, machine
fonts as a recorded opt-in, and a share of every split at one em size."""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

import numpy as np
import pytest

from glyphcore.data import build_glyphs52, load_dataset, read_manifest
from glyphcore.data import fonts as fonts_mod
from glyphcore.data.fonts import (
    DEFAULT_FONT_SOURCES,
    FONT_PACKAGES,
    design_family,
    discover_fonts,
    font_packages,
    sample_fonts,
    weight_of,
)
from glyphcore.data.hands import HAND_COUNT
from glyphcore.data.render import (
    SMALL_CAPS_PROBES,
    ink_rows,
    render_font_set,
    render_letters,
    small_caps_letters,
)
from glyphcore.data.sources.glyphs52 import GLYPHS52_VERSION
from glyphcore.data.splits import DEFAULT_SPLITS, HELD_OUT_HANDWRITING
from glyphcore.frame import BASELINE_ROW, CAP_HEIGHT, CAP_ROW, CLASSES, EM_SIZE

REPO = Path(__file__).resolve().parents[2]
OPEN_LICENCES = {"OFL-1.1", "Apache-2.0"}


def _pillow_font_folder(folder: Path) -> Path:
    """A font folder holding one real font that no default source has under that name: Pillow's
    embedded Aileron written out as a file (its faces are named "Aileron Regular", the Pillow source's
    "Aileron Regular (Pillow default)")."""
    from PIL import ImageFont

    folder.mkdir()
    (folder / "Aileron-Regular.ttf").write_bytes(ImageFont.load_default(size=20).font_bytes)
    return folder


@pytest.fixture(scope="module")
def package_build(tmp_path_factory):
    """A tiny glyphs-52 from the default font sources (every declared package)."""
    out = tmp_path_factory.mktemp("g52pkg") / "glyphs-52"
    return build_glyphs52(out, per_class=(6, 3, 3), seen_per_class=0, seed=5)


def test_the_default_sources_are_the_declared_packages_only():
    assert "system" not in DEFAULT_FONT_SOURCES
    assert set(DEFAULT_FONT_SOURCES) == {"streamlit", "pillow", "packages", "hershey"}


def test_default_discovery_never_reads_the_machines_font_folders(tmp_path, monkeypatch):
    folder = _pillow_font_folder(tmp_path / "machine-fonts")
    monkeypatch.setattr(fonts_mod, "system_font_dirs", lambda: [folder])
    default, _ = discover_fonts()
    assert {f.source for f in default} == {"streamlit", "pillow", "packages", "hershey"}
    assert not any(str(folder) in f.file for f in default)
    opted, _ = discover_fonts(DEFAULT_FONT_SOURCES + ("system",))
    system = [f for f in opted if f.source == "system"]
    assert [f.name for f in system] == ["Aileron Regular"] and system[0].file.startswith(str(folder))


@pytest.mark.slow
def test_machine_fonts_are_an_opt_in_recorded_in_the_manifest(tmp_path, monkeypatch):
    from glyphcore.cli import main

    folder = _pillow_font_folder(tmp_path / "machine-fonts")
    monkeypatch.setattr(fonts_mod, "system_font_dirs", lambda: [folder])
    common = [
        "data",
        "build",
        "--per-class",
        "1",
        "--seen-per-class",
        "0",
        "--quiet",
        "--no-source",
        "streamlit",
        "--no-source",
        "packages",
    ]
    assert main(common + ["--out", str(tmp_path / "plain")]) == 0
    plain = read_manifest(tmp_path / "plain")
    assert plain["font_options"]["system_fonts"] is False and plain["font_options"]["font_dirs"] == []
    assert not any(f["source"] == "system" for f in plain["fonts"])

    assert main(common + ["--out", str(tmp_path / "sys"), "--system-fonts"]) == 0
    opted = read_manifest(tmp_path / "sys")
    assert opted["font_options"]["system_fonts"] is True and "system" in opted["font_options"]["sources"]
    assert [f["file"] for f in opted["fonts"] if f["source"] == "system"] == [str(folder / "Aileron-Regular.ttf")]

    other = _pillow_font_folder(tmp_path / "more-fonts")
    assert main(common + ["--out", str(tmp_path / "dir"), "--font-dir", str(other)]) == 0
    by_dir = read_manifest(tmp_path / "dir")
    assert by_dir["font_options"] == {
        "sources": ["pillow", "hershey"],
        "system_fonts": False,
        "font_dirs": [str(other.resolve())],
        "fonts_given": False,
    }
    assert [f["file"] for f in by_dir["fonts"] if f["source"] == "system"] == [str(other / "Aileron-Regular.ttf")]
    assert by_dir["hash"] != plain["hash"]


def test_package_fonts_are_found_inside_their_installed_distributions():
    found, skipped = discover_fonts(("packages",))
    missing = [s.name for s in skipped if "not installed" in s.reason]
    assert not missing, f"font packages missing: pip install -e . ({missing})"
    assert {f.package for f in found} == set(FONT_PACKAGES)
    for f in found:
        root = Path(str(md.distribution(f.package).locate_file(""))).resolve()
        assert Path(f.file).resolve().is_relative_to(root) and f.source == "packages"
    info = font_packages()
    for name, pinned in FONT_PACKAGES.items():
        assert info[name]["installed"] == pinned, f"{name}: {info[name]['installed']} installed, {pinned} pinned"
        assert info[name]["licence"] in OPEN_LICENCES, (name, info[name]["licence"])


def test_the_project_pins_every_font_package():
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)$", "\n".join(deps), re.M))
    for name, version in FONT_PACKAGES.items():
        assert pins.get(name) == version, f"pyproject.toml must pin {name}=={version}"
    assert "fontpkg" in pins  # the packages' shared dependency, pinned too


def test_docs_name_every_font_package_and_its_licence():
    doc = (REPO / "docs" / "fonts.md").read_text()
    for name, version in FONT_PACKAGES.items():
        assert f"`{name}=={version}`" in doc, name
    assert "OFL-1.1" in doc and "Apache-2.0" in doc


def test_family_and_weight_come_from_the_font_names():
    found, _ = discover_fonts(("packages",))
    fams = {f.family for f in found}
    # The name table's family, with the design's own words kept ("Light" is part of this name).
    assert {"Shadows Into Light", "EB Garamond", "IBM Plex Mono", "Roboto Slab", "Open Sans"} <= fams
    assert design_family("Shadows Into Light") == "Shadows Into"  # what a name-only guess would do
    assert design_family("Shadows Into Light", declared="Shadows Into Light") == "Shadows Into Light"
    assert design_family("Roboto Condensed Light", declared="Roboto") == "Roboto"
    styles = {f.family: f.style for f in found}
    assert styles["IBM Plex Mono"] == styles["Inconsolata"] == styles["Space Mono"] == "mono"
    assert styles["Roboto Slab"] == styles["Arvo"] == "slab"
    assert styles["Caveat"] == styles["Dancing Script"] == "script"
    assert styles["EB Garamond"] == "serif" and styles["Open Sans"] == "sans"
    # A variable font gives its named weights at the normal width; static files only those weights.
    roboto = sorted(f.variation for f in found if f.family == "Roboto")
    assert "Condensed Bold" not in roboto and {"Bold", "Bold Italic", "Regular", "Italic"} <= set(roboto)
    assert not any(f.name.endswith(("Medium", "Thin")) for f in found)
    assert weight_of("SemiBold Italic") == ("Semibold", True)
    assert weight_of("Condensed Light") == ("Light", False)
    assert weight_of("Book") == ("Regular", False) and weight_of("Medium")[0] is None


def test_a_small_caps_face_fails_the_check_and_text_faces_pass():
    font = next(f for f in sample_fonts() if f.name == "KaTeX Main Regular")
    letters = render_letters(font)
    assert small_caps_letters(list(letters)) == []  # a text face: lowercase has its own shapes
    # The same face with its lowercase replaced by its capitals drawn at 70 % (a small-caps face).
    from PIL import Image

    fake = letters.copy()
    for c in SMALL_CAPS_PROBES:
        cap = Image.fromarray(letters[CLASSES.index(c.upper())])
        small = np.asarray(cap.resize((70, 70), Image.BILINEAR))
        fake[CLASSES.index(c)] = 0
        fake[CLASSES.index(c)][BASELINE_ROW - 70 + 12 : BASELINE_ROW + 12, 15:85] = small
    assert small_caps_letters(list(fake)) == list(SMALL_CAPS_PROBES)


@pytest.mark.slow
def test_declared_packages_give_at_least_30_design_families_in_every_style(package_build):
    m = read_manifest(package_build)
    assert m["version"] == GLYPHS52_VERSION == "glyphs-52/4"
    assert len(m["families"]) >= 30, sorted(m["families"])
    assert {f["source"] for f in m["fonts"]} == {"streamlit", "pillow", "packages", "hershey"}
    assert m["font_options"]["system_fonts"] is False and m["font_options"]["font_dirs"] == []
    styles = {info["style"] for info in m["families"].values()}
    assert styles == {"sans", "serif", "slab", "mono", "script", "stroke"}
    for name, info in m["font_packages"].items():
        assert info["families"], f"{name} gave no font that passed the render check"


@pytest.mark.slow
def test_package_build_splits_are_family_disjoint_and_stratified(package_build):
    m = read_manifest(package_build)
    fams = {}
    for split in ("train", "valid", "test"):
        ids = np.unique(load_dataset(f"glyphs-52:{package_build}", split).font_ids)
        fams[split] = {m["fonts"][i]["family"] for i in ids}
        assert len({m["families"][f]["style"] for f in fams[split]}) >= 3, (split, fams[split])
    assert not fams["train"] & fams["valid"] and not fams["train"] & fams["test"]
    assert not fams["valid"] & fams["test"]
    assert len(fams["train"]) > len(fams["valid"]) + len(fams["test"]) - 2


@pytest.mark.slow
def test_the_default_build_takes_every_split_from_the_table_and_trains_on_the_hands(package_build):
    m = read_manifest(package_build)
    assert {f: info["split"] for f, info in m["families"].items()} == DEFAULT_SPLITS
    assert {info["split_by"] for info in m["families"].values()} == {"chosen"}
    hands = [f for f in m["fonts"] if f["hand"] is not None]
    assert len(hands) == HAND_COUNT
    assert {(f["family"], f["split"]) for f in hands} == {("Hershey Script", "train"), ("Hershey Times", "train")}
    train_ids = np.unique(load_dataset(f"glyphs-52:{package_build}", "train").font_ids)
    assert any(m["fonts"][i]["hand"] is not None for i in train_ids)  # hands are drawn into training images
    held_out = {f for f, info in m["families"].items() if info["split"] == "test" and info["style"] == "script"}
    assert held_out == set(HELD_OUT_HANDWRITING)


@pytest.mark.slow
def test_a_third_of_each_split_is_at_one_em_size(package_build):
    m = read_manifest(package_build)
    sm = m["size_modes"]
    assert sm["names"] == ["cap", "em"] and sm["em_size_px"] == EM_SIZE and sm["cap_height_px"] == CAP_HEIGHT
    for split, n in m["counts"].items():
        s = load_dataset(f"glyphs-52:{package_build}", split)
        assert s.size_modes.dtype == np.uint8 and len(s.size_modes) == n
        em = int((s.size_modes == 1).sum())
        assert sm["counts"][split] == {"cap": n - em, "em": em}
        assert em == round(n * sm["em_share"]) and abs(sm["em_share"] - 1 / 3) < 1e-9
    # Each font's em-size capitals are as tall as its design makes them: spread around the 60 px frame.
    heights = np.array([f["em_cap_height_px"] for f in m["fonts"]])
    assert heights.min() <= 50 and heights.max() >= 64 and 50 <= np.median(heights) <= 60
    assert sm["em_cap_height_px"]["min"] == heights.min()


def test_em_size_capitals_spread_and_cap_normalised_ones_do_not():
    found, _ = discover_fonts(("packages", "pillow"))
    fonts = [f for f in found if f.variation in (None, "Regular") and not f.name.endswith("Italic")]
    rendered = render_font_set(fonts, em=True)
    h = CLASSES.index("H")

    def heights(images):
        return np.array([ink_rows(img[h])[1] - ink_rows(img[h])[0] + 1 for img in images])

    cap, em = heights(rendered.images), heights(rendered.em_images)
    assert np.all(np.abs(cap - CAP_HEIGHT) <= 2)  # the cap-normalised frame
    assert em.min() <= 48 and em.max() >= 64 and np.ptp(em) >= 15, sorted(em)
    assert ((em >= 45) & (em <= 66)).mean() >= 0.8  # most capitals as real text has them
    # Same baseline: the ink of 'H' ends on the row above it in both modes; never scaled to the ink box.
    # (A handwriting face's 'H' may dip below its baseline or stop short of it, as the hand drew it.)
    for f, img_c, img_e in zip(rendered.fonts, rendered.images, rendered.em_images):
        if f.style == "script":
            continue
        assert abs(ink_rows(img_c[h])[1] + 1 - BASELINE_ROW) <= 2
        assert abs(ink_rows(img_e[h])[1] + 1 - BASELINE_ROW) <= 2
        assert abs(ink_rows(img_c[h])[0] - CAP_ROW) <= 2
    # Lowercase sits at each font's own x-height, below its capitals, in the em mode too.
    x = CLASSES.index("x")
    xh = np.array([ink_rows(img[x])[1] - ink_rows(img[x])[0] + 1 for img in rendered.em_images])
    text = np.array([f.style != "script" for f in rendered.fonts])  # a hand may draw x as tall as H
    assert np.all(xh[text] < em[text]) and np.median(xh / em) < 0.8 and xh.min() < 35


@pytest.mark.slow
def test_built_em_images_have_smaller_spread_capitals(package_build):
    s = load_dataset(f"glyphs-52:{package_build}", "train")
    labels = np.asarray(s.labels)
    caps = np.isin(labels, [CLASSES.index(c) for c in "ABDEFHIKLMNPRTUVWXYZ"])  # no overshoot, no tail
    tall = []
    for mode in (0, 1):
        sel = np.flatnonzero(caps & (np.asarray(s.size_modes) == mode))
        tall.append(
            [ink_rows(np.asarray(s.images[i, 0]))[1] - ink_rows(np.asarray(s.images[i, 0]))[0] + 1 for i in sel]
        )
    assert np.median(tall[1]) < np.median(tall[0])  # em-size capitals are smaller than 60 px on the whole
    assert np.std(tall[1]) > np.std(tall[0])  # and spread more: each font's own cap height


@pytest.mark.slow
def test_the_package_build_is_deterministic(package_build, tmp_path):
    again = build_glyphs52(tmp_path / "glyphs-52", per_class=(6, 3, 3), seen_per_class=0, seed=5)
    a, b = read_manifest(package_build), read_manifest(again)
    assert a["hash"] == b["hash"] and [f["name"] for f in a["fonts"]] == [f["name"] for f in b["fonts"]]
    assert (package_build / "valid_sizes.npy").read_bytes() == (again / "valid_sizes.npy").read_bytes()
