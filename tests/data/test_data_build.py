"""glyphs-52 build: layout, splits disjoint by family, determinism, atomic write."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glyphcore.data import (
    assign_splits,
    build_glyphs52,
    choose_splits,
    dataset_info,
    glyphs52_ready,
    list_splits,
    load_dataset,
    read_manifest,
)
from glyphcore.data.fonts import sample_fonts
from glyphcore.data.splits import DEFAULT_SPLITS
from glyphcore.errors import DataError
from glyphcore.frame import CLASSES, FRAME_SIZE, frame_dict

SMALL = dict(per_class=(3, 2, 2), seen_per_class=1)


def test_tiny_glyphs_layout_and_manifest(tiny_glyphs):
    m = read_manifest(tiny_glyphs)
    assert m["counts"] == {"train": 520, "valid": 208, "test": 208, "seen": 104}
    assert m["classes"] == CLASSES and m["frame"] == frame_dict()
    assert len(m["hash"]) == 64 and m["id"].startswith("glyphs-52-")
    assert {"name", "family", "style", "source", "file", "split"} <= set(m["fonts"][0])
    assert list_splits("glyphs-52") == ["train", "valid", "test", "seen"]
    for split, n in m["counts"].items():
        s = load_dataset("glyphs-52", split)
        assert s.images.shape == (n, 1, FRAME_SIZE, FRAME_SIZE) and s.images.dtype == np.uint8
        assert s.labels.dtype == np.int64 and s.font_ids.dtype == np.int32
        assert np.bincount(s.labels, minlength=52).tolist() == [n // 52] * 52  # balanced classes
        assert s.font_ids.max() < len(m["fonts"])
        assert s.meta["hash"] == m["hash"] and s.meta["frame"] == frame_dict()
        # white glyphs on black: the border is dark, there is ink
        assert np.median(s.images[:, 0, :3, :]) == 0 and s.images.max() == 255
    info = dataset_info("glyphs-52")
    assert info["counts"] == m["counts"] and info["image_shape"] == [1, FRAME_SIZE, FRAME_SIZE]


def test_splits_are_disjoint_by_design_family(tiny_glyphs):
    m = read_manifest(tiny_glyphs)
    fams = {}
    for split in ("train", "valid", "test", "seen"):
        ids = np.unique(load_dataset("glyphs-52", split).font_ids)
        fams[split] = {m["fonts"][i]["family"] for i in ids}
        assert all(m["fonts"][i]["split"] == ("train" if split == "seen" else split) for i in ids)
    assert not fams["train"] & fams["valid"]
    assert not fams["train"] & fams["test"]
    assert not fams["valid"] & fams["test"]
    assert fams["seen"] <= fams["train"]  # the font-seen check: train fonts, fresh jitter
    for fam, info in m["families"].items():
        assert {f["split"] for f in m["fonts"] if f["family"] == fam} == {info["split"]}


def test_seen_split_is_fresh_jitter_not_a_copy(tiny_glyphs):
    train = load_dataset("glyphs-52", "train").images.reshape(520, -1)
    seen = load_dataset("glyphs-52", "seen").images.reshape(104, -1)
    train_rows = {r.tobytes() for r in np.asarray(train)}
    assert not any(r.tobytes() in train_rows for r in np.asarray(seen))


def test_assign_splits_is_stratified_and_deterministic():
    families = (
        {f"Sans {i}": "sans" for i in range(5)}
        | {f"Serif {i}": "serif" for i in range(4)}
        | {f"Mono {i}": "mono" for i in range(3)}
        | {"Script": "script"}
        | {f"Stroke {i}": "stroke" for i in range(2)}
    )
    a = assign_splits(families, seed=0)
    assert a == assign_splits(families, seed=0)
    assert set(a.values()) == {"train", "valid", "test"}
    for style in ("sans", "serif", "mono", "stroke"):
        splits = [a[f] for f, s in families.items() if s == style]
        assert "train" in splits and set(splits) - {"train"}  # trained on, and held out too
    held = {s: {families[f] for f in a if a[f] == s} for s in ("valid", "test")}
    assert len(held["valid"]) >= 2 and len(held["test"]) >= 2  # a mix of styles in each
    assert sum(v == "train" for v in a.values()) > len(families) / 2  # train keeps the broadest set
    assert any(assign_splits(families, seed=s) != a for s in range(1, 5))
    with pytest.raises(DataError, match="at least 3"):
        assign_splits({"A": "sans", "B": "serif"}, seed=0)


def test_same_seed_same_hash_other_seed_other_hash(tmp_path):
    fonts = sample_fonts()
    a = read_manifest(build_glyphs52(tmp_path / "a", seed=7, fonts=fonts, **SMALL))
    b = read_manifest(build_glyphs52(tmp_path / "b", seed=7, fonts=fonts, **SMALL))
    c = read_manifest(build_glyphs52(tmp_path / "c", seed=8, fonts=fonts, **SMALL))
    assert a["hash"] == b["hash"] and a["id"] == b["id"]
    assert (tmp_path / "a" / "train_images.npy").read_bytes() == (tmp_path / "b" / "train_images.npy").read_bytes()
    assert c["hash"] != a["hash"]


def test_an_interrupted_build_leaves_nothing_that_loads(tmp_path):
    out = tmp_path / "glyphs-52"

    def stop_in_valid(done, total, stage):
        if stage.startswith("jittering valid"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_glyphs52(out, fonts=sample_fonts(), progress=stop_in_valid, **SMALL)
    assert not out.exists() and not glyphs52_ready(out)
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone too
    with pytest.raises(DataError, match="build"):
        load_dataset(f"glyphs-52:{out}", "train")


def test_a_killed_build_leaves_a_folder_that_never_loads_and_is_cleaned_up(tmp_path):
    # What `kill -9` mid-build leaves: a temporary folder of a dead process, no manifest.
    dead = tmp_path / ".glyphs-52.tmp-0123abcd-999999999"
    dead.mkdir()
    np.save(dead / "train_images.npy", np.zeros((1, 1, FRAME_SIZE, FRAME_SIZE), np.uint8))
    out = tmp_path / "glyphs-52"
    assert not glyphs52_ready(out)
    build_glyphs52(out, fonts=sample_fonts(), **SMALL)
    assert glyphs52_ready(out) and not dead.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glyphs-52"]


def test_an_interrupted_rebuild_keeps_the_previous_data_set(tmp_path):
    out = tmp_path / "glyphs-52"
    first = read_manifest(build_glyphs52(out, fonts=sample_fonts(), **SMALL))

    def stop(done, total, stage):
        if stage.startswith("writing"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_glyphs52(out, seed=1, fonts=sample_fonts(), progress=stop, **SMALL)
    assert glyphs52_ready(out) and read_manifest(out)["hash"] == first["hash"]


def test_half_written_folders_do_not_load(tmp_path):
    out = build_glyphs52(tmp_path / "glyphs-52", fonts=sample_fonts(), **SMALL)
    (out / "valid_images.npy").unlink()  # a file lost after the fact
    assert not glyphs52_ready(out)
    with pytest.raises(DataError, match="valid_images.npy"):
        load_dataset(f"glyphs-52:{out}", "valid")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="rebuild"):
        load_dataset(f"glyphs-52:{out}", "train")
    (out / "manifest.json").unlink()
    with pytest.raises(DataError, match="data build"):
        load_dataset(f"glyphs-52:{out}", "train")


def test_bad_counts_are_refused(tmp_path):
    with pytest.raises(DataError, match="per_class"):
        build_glyphs52(tmp_path / "x", per_class=(0, 1, 1), fonts=sample_fonts())


@pytest.mark.parametrize("threads", [0, -2, 100_000])
def test_a_thread_count_beyond_the_cores_is_refused_before_any_work(tmp_path, threads, capsys):
    from glyphcore.cli import main

    with pytest.raises(DataError, match=rf"threads must be .* from 1 to \d+ .*got {threads}"):
        build_glyphs52(tmp_path / "x", fonts=sample_fonts(), threads=threads)
    # the command says so and exits with the usage error (100,000 crashed the process before)
    assert main(["data", "build", "--out", str(tmp_path / "y"), "--threads", str(threads)]) == 2
    assert "threads must be" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# glyphs-52/2's split of every print family (every style but script): glyphs-52/3 and /4 keep them.
GLYPHS52_2_PRINT_SPLITS = {
    "valid": {"JetBrains Mono", "Source Code Pro", "IBM Plex Sans", "Open Sans", "IBM Plex Serif", "Zilla Slab"}
    | {"Hershey Sans"},
    "test": {"Space Mono", "KaTeX SansSerif", "Montserrat", "KaTeX Main", "Playfair Display"},
}


def test_the_split_table_keeps_the_print_families_and_holds_out_handwriting():
    for split, fams in GLYPHS52_2_PRINT_SPLITS.items():
        assert {DEFAULT_SPLITS[f] for f in fams} == {split}, split
    script = {"Caveat", "Dancing Script", "Kalam", "Indie Flower", "Shadows Into Light", "Pacifico", "Satisfy"}
    script |= {"Delius", "Great Vibes", "Yellowtail", "Zeyada", "Lobster", "Lobster Two", "Oleo Script"}
    script |= {"Hershey Script"}
    print_train = {f for f in DEFAULT_SPLITS if f not in script} - set().union(*GLYPHS52_2_PRINT_SPLITS.values())
    assert {DEFAULT_SPLITS[f] for f in print_train} == {"train"} and len(print_train) == 23
    assert {f for f in script if DEFAULT_SPLITS[f] == "test"} == {"Dancing Script", "Kalam", "Yellowtail", "Zeyada"}
    assert {f for f in script if DEFAULT_SPLITS[f] == "valid"} == {"Great Vibes", "Lobster Two"}
    assert DEFAULT_SPLITS["Hershey Script"] == "train"  # the skeleton of the synthetic hands


def test_table_families_land_where_it_says_and_unknown_families_are_dealt_among_themselves():
    table = {"Print A": "train", "Print B": "valid", "Print C": "test", "Hand D": "train"}
    unknown = {"Mine 1": "sans", "Mine 2": "serif", "Mine 3": "mono", "Mine 4": "sans"}
    families = {"Print A": "sans", "Print B": "serif", "Print C": "mono", "Hand D": "script"} | unknown
    splits, chosen = choose_splits(families, seed=3, chosen=table)
    assert chosen == set(table) and {f: splits[f] for f in table} == table
    assert {f: splits[f] for f in unknown} == assign_splits(unknown, seed=3)  # as if alone
    assert set(splits) == set(families)  # one split per family: disjoint by family
    # A new family never moves a chosen one, whatever the seed.
    more, _ = choose_splits(families | {"Mine 5": "script"}, seed=9, chosen=table)
    assert {f: more[f] for f in table} == table
    # One or two unknown families cannot be dealt three ways: they are trained on.
    assert choose_splits({**families, "Extra": "sans"}, 0, chosen=table | unknown)[0]["Extra"] == "train"
    # Table families that do not fill train, valid and test: everything is dealt, valid/test never empty.
    dealt, none_chosen = choose_splits(families, seed=3, chosen={"Print A": "train", "Print B": "valid"})
    assert not none_chosen and dealt == assign_splits(families, seed=3)
    assert {"train", "valid", "test"} == set(dealt.values())


def test_a_build_of_a_given_font_list_deals_every_family_and_says_so(tiny_glyphs):
    m = read_manifest(tiny_glyphs)
    assert {info["split_by"] for info in m["families"].values()} == {"dealt"}
    dealt = assign_splits({fam: info["style"] for fam, info in m["families"].items()}, seed=m["seed"])
    assert {fam: info["split"] for fam, info in m["families"].items()} == dealt
