"""Dataset: pick a source; counts and class distribution; sample grids; one sample; mean glyphs;
the augmentation preview; the font list.

Fast on 70k+ images: a loaded ImageSet (a read-only memmap for glyphs-52) is cached once per server
with st.cache_resource and only the rows on screen are ever read; tables and means are cached.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app_pages import shared
from glyphcore import paths, viz
from glyphcore.data import GLYPHS52, SOURCES, source_stamp
from glyphcore.errors import GlyphError


# ----------------------------------------------------------------------------------------------
# cached loaders: keyed by the source spec and a stamp of its files, so a rebuild is picked up
# ----------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def class_counts(spec: str, splits: tuple[str, ...], stamp: str) -> dict[str, list[int]]:
    counts = {}
    for split in splits:
        ds = shared.load_set(spec, split, stamp)
        counts[split] = np.bincount(ds.labels, minlength=len(ds.classes)).tolist()
    return counts


@st.cache_data(show_spinner="Averaging each class ...")
def mean_glyphs(spec: str, split: str, stamp: str) -> np.ndarray:
    ds = shared.load_set(spec, split, stamp)
    return viz.class_means(ds.images, ds.labels, len(ds.classes))


@st.cache_data(show_spinner=False, max_entries=64)
def augmented(spec: str, split: str, stamp: str, index: int, strength: str, draws: int, seed: int) -> np.ndarray:
    """``draws`` independent passes of one image through the training jitter (uint8 N x C x H x W)."""
    import torch

    from glyphcore.data import augment_batch

    ds = shared.load_set(spec, split, stamp)
    x = torch.from_numpy(np.array(ds.images[index : index + 1])).float().div(255.0).repeat(draws, 1, 1, 1)
    gen = torch.Generator().manual_seed(seed)
    y = augment_batch(x, strength, generator=gen)
    return (y.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


@st.cache_data(show_spinner=False, max_entries=32)
def per_class_strips(spec: str, split: str, stamp: str, k: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """k random images of every class, one strip per class (uint8 images for st.image)."""
    ds = shared.load_set(spec, split, stamp)
    rng = np.random.default_rng(1000 + seed)
    strips, names = [], []
    for label, name in enumerate(ds.classes):
        members = np.flatnonzero(ds.labels == label)
        if members.size:
            pick = np.sort(rng.choice(members, min(k, members.size), replace=False))
            strips.append(viz.image_grid(np.asarray(ds.images[pick]), ncols=k))
            names.append(name)
    return strips, names


def tile(img: np.ndarray) -> np.ndarray:
    """C x H x W uint8 -> what st.image shows (H x W grey or H x W x 3)."""
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)


def font_of(ds, i: int) -> dict:
    """The font record of sample i (glyphs-52), or {}."""
    fonts = ds.meta.get("fonts") or []
    if ds.font_ids is None or not fonts:
        return {}
    fid = int(ds.font_ids[i])
    rec = fonts[fid] if 0 <= fid < len(fonts) else {}
    return rec if isinstance(rec, dict) else {"name": str(rec)}


# ----------------------------------------------------------------------------------------------
# sections: each a function; the script at the bottom composes them
# ----------------------------------------------------------------------------------------------
def show_font_sources(meta: dict) -> None:
    """Where glyphs-52's fonts come from (pinned packages and their licences; machine fonts only when
    the build was asked for them) and how big its letters are drawn."""
    options = meta.get("font_options") or {}
    if options.get("system_fonts") or options.get("font_dirs"):
        st.warning(
            "This build also used fonts of this machine ("
            + ", ".join(
                (["the system font folders"] if options.get("system_fonts") else [])
                + list(options.get("font_dirs") or [])
            )
            + "): another machine builds a different data set from the same seed."
        )
    packages = {name: p for name, p in (meta.get("font_packages") or {}).items() if p.get("families")}
    if packages:
        st.markdown("**Font packages** (pinned in pyproject.toml; docs/fonts.md has every licence)")
        st.dataframe(
            [
                {
                    "package": name,
                    "pinned": p.get("pinned"),
                    "installed": p.get("installed"),
                    "licence": p.get("licence"),
                    "families": ", ".join(p.get("families") or []),
                }
                for name, p in packages.items()
            ],
            hide_index=True,
        )
    sizes = meta.get("size_modes") or {}
    if sizes:
        heights = sizes.get("em_cap_height_px") or {}
        st.caption(
            f"Sizes: {sizes.get('em_share', 0):.0%} of each split drawn at one em size ({sizes.get('em_size_px')} px; "
            f"capitals {heights.get('min')}-{heights.get('max')} px, median {heights.get('median')}), the rest with "
            f"capitals normalised to {sizes.get('cap_height_px')} px"
        )


def pick_source() -> str | None:
    """The sidebar's source picker (the kinds, labels and layout hints come from the registry of data
    sources); returns a source spec or None until the user has given one."""
    kinds = {row.label: row for row in SOURCES.values()}
    with st.sidebar:
        st.header("Source")
        row = kinds[st.radio("Data source", list(kinds), key="ds_kind")]
        if row.widget == "none":
            return row.kind
        if row.widget == "folder":
            root = st.text_input(
                "Folder", key=f"ds_{row.kind}_root", placeholder=row.layout, help=f"Layout: {row.layout}"
            )
            return f"{row.kind}:{root.strip()}" if root.strip() else None
        name = st.selectbox("Data set", list(row.choices), key="ds_tv_name")
        spec = f"{row.kind}:{name}"
        if row.downloadable and st.button(
            "Download", key="ds_download", help="Fetch it into the data folder (needs the network)"
        ):
            download(spec, name)
        return spec


def download(spec: str, name: str) -> None:
    """Fetch every split of a downloadable source, saying how it went."""
    from glyphcore.data import list_splits, load_dataset

    try:
        with st.spinner(f"Downloading {name} ..."):
            for split in list_splits(spec):
                load_dataset(spec, split, download=True)
        st.success(f"{name} is downloaded")
    except GlyphError as e:
        st.error(shared.plain(str(e)))


def require_built(spec: str) -> None:
    """Stop with a pointer to the home page when glyphs-52 is asked for but not built."""
    from glyphcore.data import glyphs52_ready

    if spec == GLYPHS52 and not glyphs52_ready():
        st.warning(f"glyphs-52 is not built yet (expected in `{paths.data_dir() / 'glyphs-52'}`).")
        st.page_link("app_pages/home.py", label="Build it on the home page", icon=":material/home:")
        st.stop()


def load_overview(spec: str, stamp: str) -> tuple[dict, tuple[str, ...], dict[str, list[int]]]:
    """(summary, split names, class counts per split); stops with the error's text when the source is bad."""
    try:
        info = shared.dataset_info(spec, stamp)
        splits = tuple(info.get("counts", {}).keys())
        if not splits:
            from glyphcore.data import list_splits

            splits = tuple(list_splits(spec))
        return info, splits, class_counts(spec, splits, stamp)
    except GlyphError as e:
        st.error(shared.plain(str(e)))  # the error's text as written (e.g. `<root>/<class>/*.png`)
        st.stop()
        raise  # st.stop() raises; this line tells type checkers so


def overview(spec: str, info: dict, splits: tuple[str, ...], counts: dict[str, list[int]]) -> list[int]:
    """Caption, counts per split and the class distribution chart; returns the classes present."""
    classes = list(info.get("classes") or [])
    # The source's own classes: a folder of letters A, B, C is labelled in the 52-letter space (so a
    # letters model can read it), but the page shows the classes it has, not 49 empty ones.
    present = [k for k in range(len(classes)) if any(counts[s][k] for s in splits)] or list(range(len(classes)))
    shown_classes = [classes[k] for k in present]
    shape = info.get("image_shape")
    st.caption(
        f"`{spec}` · {len(shown_classes)} classes"
        + (f" (labels in a space of {len(classes)})" if len(shown_classes) < len(classes) else "")
        + (f" · images {'x'.join(str(s) for s in shape)}" if shape else "")
        + (f" · hash {str(info['hash'])[:12]}" if info.get("hash") else "")
    )
    metric_row = st.container(horizontal=True, gap="large")  # wraps on a narrow screen
    for split in splits:
        metric_row.metric(split, f"{sum(counts[split]):,}", width="content")
    metric_row.metric("total", f"{sum(sum(c) for c in counts.values()):,}", width="content")
    shown_counts = {split: [counts[split][k] for k in present] for split in splits}
    st.altair_chart(viz.class_distribution_chart(shown_counts, shown_classes), width="stretch")
    return present


def sample_grid(ds, split: str, classes: list[str], shown_classes: list[str]) -> None:
    """The Samples tab: a random grid, filtered by class, reshuffled on demand."""
    # exact letters, one pill each: a search box would match "g" to both G and g
    chosen = st.pills(
        "Classes", shown_classes, selection_mode="multi", key="ds_grid_classes", help="none ticked = all classes"
    )
    c2, c3 = st.columns([3, 1], vertical_alignment="bottom")
    n_show = c2.slider("Images", 8, 120, 40, step=8, key="ds_grid_n")
    if c3.button("Reshuffle", icon=":material/shuffle:", key="ds_reshuffle"):
        st.session_state["ds_grid_seed"] = st.session_state.get("ds_grid_seed", 0) + 1
    seed = st.session_state.get("ds_grid_seed", 0)
    wanted = [classes.index(c) for c in chosen]
    pool = np.flatnonzero(np.isin(ds.labels, wanted)) if wanted else np.arange(len(ds))
    if pool.size == 0:
        st.info("No images of those classes in this split.")
        return
    idx = np.sort(np.random.default_rng(seed).choice(pool, min(n_show, pool.size), replace=False))
    imgs = np.asarray(ds.images[idx])  # reads only these rows of the memmap
    st.image(
        [tile(im) for im in imgs],
        caption=[f"{classes[ds.labels[i]]} · #{i}" for i in idx],
        width=72,
        output_format="PNG",  # JPEG would smear the glyph edges
    )
    st.caption(f"{idx.size} of {pool.size:,} images in {split}")


def one_sample(ds, split: str, classes: list[str]) -> None:
    """The One sample tab: one image by index (or at random) and its record."""
    n_images = len(ds)
    c1, c2 = st.columns([1, 2])
    if c1.button("Random sample", icon=":material/casino:", key="ds_one_random"):
        st.session_state["ds_one_index"] = int(np.random.default_rng().integers(n_images))
    if st.session_state.get("ds_one_index", 0) >= n_images:
        st.session_state["ds_one_index"] = 0
    i = int(c1.number_input(f"Index in {split} (0-{n_images - 1})", 0, n_images - 1, key="ds_one_index"))
    c1.image(tile(np.asarray(ds.images[i])), width=200, output_format="PNG")
    font = font_of(ds, i)
    record = {
        "label": int(ds.labels[i]),
        "class": classes[int(ds.labels[i])],
        "font": font.get("name", "") if font else "",
        "family": font.get("family", "") if font else "",
        "split": split,
        "index": i,
        "source": ds.source,
    }
    c2.dataframe([{"field": k_, "value": str(v)} for k_, v in record.items()], hide_index=True)


def augmentation(spec: str, split: str, stamp: str, ds, classes: list[str], shown_classes: list[str]) -> None:
    """The Augmentation tab: one glyph through the training jitter, several independent draws."""
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1])
    aug_class = c1.selectbox("Class", shown_classes, key="ds_aug_class")
    strength = c2.radio("Strength", ["light", "strong"], key="ds_aug_strength", horizontal=True)
    draws = c3.slider("Draws", 4, 24, 11, key="ds_aug_draws")
    c4.write("")
    if c4.button("Another glyph / new draws", icon=":material/shuffle:", key="ds_aug_again"):
        st.session_state["ds_aug_seed"] = st.session_state.get("ds_aug_seed", 0) + 1
    aug_seed = st.session_state.get("ds_aug_seed", 0)
    members = np.flatnonzero(ds.labels == classes.index(aug_class))
    if members.size == 0:
        st.info(f"No {aug_class} in this split.")
        return
    index = int(members[np.random.default_rng(aug_seed).integers(members.size)])
    if ds.images.shape[1] not in (1, 3):
        st.info("The preview needs 1- or 3-channel images.")
        return
    out = augmented(spec, split, stamp, index, strength, draws, aug_seed)
    st.image(
        [tile(np.asarray(ds.images[index]))] + [tile(o) for o in out],
        caption=["original"] + [f"draw {d + 1}" for d in range(draws)],
        width=88,
        output_format="PNG",
    )
    st.caption(f"Image #{index} of {split} through the training jitter ({strength}), one independent draw each.")


FONT_COLUMNS = ("name", "family", "split", "style", "source", "package", "variation", "pen_width",
                "em_cap_height_px", "file")  # fmt: skip


def font_list(ds) -> None:
    """The Fonts tab: every font instance of glyphs-52, filterable by split, and where they come from."""
    fonts = ds.meta.get("fonts") or []
    if not fonts:
        st.info("This source has no font list (only glyphs-52 is rendered from fonts).")
        return
    rows = [f if isinstance(f, dict) else {"name": str(f)} for f in fonts]
    by_split = sorted({str(r["split"]) for r in rows if r.get("split")})
    only = st.multiselect("Split", by_split, key="ds_font_splits", placeholder="all splits")
    rows = [r for r in rows if not only or r.get("split") in only]
    order = [c for c in FONT_COLUMNS if any(c in r for r in rows)]
    st.dataframe(rows, hide_index=True, column_order=order)
    fam = {r.get("family") for r in rows if r.get("family")}
    st.caption(
        f"{len(rows)} font instances in {len(fam)} design families"
        + (f" · data set version {ds.meta['version']}" if ds.meta.get("version") else "")
    )
    show_font_sources(ds.meta)


def browse(spec: str, stamp: str, splits: tuple[str, ...], classes: list[str], present: list[int]) -> None:
    """The split picker and the tabs over one split (lazy: only the open tab's content runs)."""
    with st.sidebar:
        split = st.selectbox("Split", splits, index=splits.index("train") if "train" in splits else 0, key="ds_split")
    ds = shared.load_set(spec, split, stamp)
    if len(ds) == 0:
        st.warning(f"The {split} split is empty.")
        st.stop()
    shown_classes = [classes[k] for k in present]
    tabs = st.tabs(
        ["Samples", "Per class", "One sample", "Mean glyphs", "Augmentation", "Fonts"], key="ds_tab", on_change="rerun"
    )
    tab_grid, tab_class, tab_one, tab_mean, tab_aug, tab_fonts = tabs
    with tab_grid:
        if tab_grid.open:
            sample_grid(ds, split, classes, shown_classes)
    with tab_class:
        if tab_class.open:
            k = st.slider("Samples per class", 1, 10, 5, key="ds_per_class_k")
            strips, names = per_class_strips(spec, split, stamp, k, st.session_state.get("ds_grid_seed", 0))
            st.image(strips, caption=names, width=min(60 * k + 8, 520), output_format="PNG")
    with tab_one:
        if tab_one.open:
            one_sample(ds, split, classes)
    with tab_mean:
        if tab_mean.open:
            means = mean_glyphs(spec, split, stamp)
            st.image([tile(means[k]) for k in present], caption=shown_classes, width=72, output_format="PNG")
            st.caption("Mean of up to 200 random images per class: where the ink usually is.")
    with tab_aug:
        if tab_aug.open:
            augmentation(spec, split, stamp, ds, classes, shown_classes)
    with tab_fonts:
        if tab_fonts.open:
            font_list(ds)


st.title("Dataset")
source = pick_source()
if source is None:
    st.info("Type the folder of the data set in the sidebar.")
    st.stop()
assert source is not None  # st.stop() ended the run otherwise
require_built(source)
source_files = source_stamp(source)
summary, split_names, class_counts_ = load_overview(source, source_files)
present_classes = overview(source, summary, split_names, class_counts_)
browse(source, source_files, split_names, list(summary.get("classes") or []), present_classes)
