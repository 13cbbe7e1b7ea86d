"""Build glyphs-52: render every font once, jitter in big torch batches, write atomically.

1. Fonts: discover candidates (:mod:`fonts`; by default only fonts of declared Python packages, so
   the same seed gives the same bytes on every machine), render the 52 letters of each clean into
   the glyph frame, cap-normalised and at one em size, and keep those that pass the render check
   (:mod:`render`): some 30,000 renders.
2. Splits: design families (bold/italic/weights of one design) go to train / valid / test: those of
   the default build as the table DEFAULT_SPLITS (:mod:`splits`) says, any other family dealt
   among the others, stratified by style (sans, serif, slab, mono, script, stroke) so each split gets
   a mix; "seen" re-uses the train fonts with fresh jitter (the font-seen check).
3. Samples: per split and class, a font instance per sample (families weighted by the square root of
   their instance count, so one variable font with many weights does not dominate) and a size mode
   (EM_SHARE of them at one em size, the rest cap-normalised); then the clean glyph goes through the
   per-sample jitter (:func:`augment.jitter_batch`, "build" ranges) in batches, with a
   torch.Generator seeded from (seed, split): same fonts + seed -> same bytes.
4. Storage: ``{split}_images.npy`` (N x 1 x 100 x 100 uint8), ``{split}_labels.npy`` (int64),
   ``{split}_fonts.npy`` (int32, index into manifest["fonts"]), ``{split}_sizes.npy`` (uint8, index
   into manifest["size_modes"]["names"]) and ``manifest.json`` are written into
   a temporary folder next to the target and renamed into place: an interrupted build never leaves
   something that loads.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glyphcore.data.build_folder import check_replaceable, clean_stale, swap_into_place
from glyphcore.data.fonts import (
    DEFAULT_FONT_SOURCES,
    FontInstance,
    SkippedFont,
    discover_fonts,
    font_packages,
)
from glyphcore.data.render import INK, SIZE_MODES, ink_rows, render_font_set
from glyphcore.data.sources.glyphs52 import (
    GLYPHS52,
    GLYPHS52_VERSION,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    SPLITS,
    glyphs52_dir,
    split_files,
)
from glyphcore.data.splits import DEFAULT_SPLITS, assign_splits, choose_splits
from glyphcore.errors import DataError
from glyphcore.frame import CAP_HEIGHT, CLASSES, EM_SIZE, FRAME_SIZE, frame_dict

__all__ = [
    "build_glyphs52",
    "assign_splits",
    "choose_splits",
    "build_threads",
    "DEFAULT_PER_CLASS",
    "DEFAULT_SEEN_PER_CLASS",
    "EM_SHARE",
]

DEFAULT_PER_CLASS = (800, 300, 300)  # train / valid / test images per class: the course set's 41,600 / 15,600
DEFAULT_SEEN_PER_CLASS = 100  # "seen" split: train fonts, fresh jitter
# Share of each split's images rendered at one em size (EM_SIZE) instead of cap-normalised: a third
# puts capitals of about 46-66 px (a few scripts up to 73) and lowercase at each font's own x-height
# into training, while two thirds keep the frame the Draw page's guide lines show.
EM_SHARE = 1 / 3
BATCH = 512  # images per jitter batch: big enough for torch, small enough to stay in cache
NOISE_POOL = BATCH // 8  # distinct noise images per batch (drawing noise is a large share of CPU time)

Progress = Callable[[int, int, str], None]


def build_threads() -> int:
    """torch threads for the jitter: torch's default, but no more than the cores free right now.

    More threads than free cores is slower, not faster (OpenMP workers spin waiting for each
    other): measured on a busy 2-core machine, 1 thread jittered 2,250 images/s and 2 threads 840.
    """
    import torch

    n = torch.get_num_threads()
    try:
        busy = int(os.getloadavg()[0] + 0.5)
    except (AttributeError, OSError):  # Windows has no load average
        return n
    return max(1, min(n, (os.cpu_count() or 1) - busy))


def _family_weights(fonts: list[FontInstance], idx: np.ndarray) -> np.ndarray:
    """Sampling probability of each font in idx: family share ~ sqrt(instances), equal within."""
    fams = [fonts[i].family for i in idx]
    count = {f: fams.count(f) for f in set(fams)}
    w = np.array([1.0 / np.sqrt(count[f]) for f in fams])
    return w / w.sum()


def _split_plan(
    fonts: list[FontInstance], split_of_font: list[str], split: str, per_class: int, seed: int, em_share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels int64 N, font ids int32 N, size modes uint8 N) of one split, shuffled, per_class images
    of each class; round(em_share * N) of them in size mode "em" (1), the rest "cap" (0)."""
    pool_split = "train" if split == "seen" else split
    idx = np.array([i for i, s in enumerate(split_of_font) if s == pool_split], np.int64)
    rng = np.random.default_rng([seed, SPLITS.index(split), 0xF0])
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), per_class)
    font_ids = rng.choice(idx, size=labels.size, p=_family_weights(fonts, idx)).astype(np.int32)
    order = rng.permutation(labels.size)
    modes = np.zeros(labels.size, np.uint8)
    modes[
        np.random.default_rng([seed, SPLITS.index(split), 0xE4]).permutation(labels.size)[
            : round(em_share * labels.size)
        ]
    ] = SIZE_MODES.index("em")
    return labels[order], font_ids[order], modes


def _filter3(a: np.ndarray, op) -> np.ndarray:
    """3x3 max (np.maximum) or min (np.minimum) filter over the last two axes, zero outside."""
    p = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(1, 1), (1, 1)])
    m = op(op(p[..., :, :-2], p[..., :, 1:-1]), p[..., :, 2:])
    return op(op(m[..., :-2, :], m[..., 1:-1, :]), m[..., 2:, :])


def _jitter_split(
    clean: np.ndarray,
    labels: np.ndarray,
    font_ids: np.ndarray,
    modes: np.ndarray,
    seed: int,
    split: str,
    on_batch: Callable[[int], None],
) -> np.ndarray:
    """Jittered images (N x 1 x H x W uint8) of one split, from the clean renders M x F x 52 x H x W
    (one per size mode); the stroke-weight targets are their 3x3 dilation / erosion, taken per batch
    (holding them for every font, letter and mode would take twice the renders' memory again)."""
    import torch

    from glyphcore.data.augment import JITTER, jitter_batch

    state = np.random.SeedSequence([seed, SPLITS.index(split), 0x717]).generate_state(2, np.uint32)
    gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    out = np.empty((labels.size, 1, FRAME_SIZE, FRAME_SIZE), np.uint8)

    def as_batch(a: np.ndarray):
        return torch.from_numpy(a).unsqueeze(1).float().div_(255.0)

    with torch.inference_mode():
        for start in range(0, labels.size, BATCH):
            sl = slice(start, start + BATCH)
            src = clean[modes[sl], font_ids[sl], labels[sl]]
            y = jitter_batch(
                as_batch(src),
                JITTER["build"],
                gen,
                noise_pool=NOISE_POOL,
                dilated=as_batch(_filter3(src, np.maximum)),
                eroded=as_batch(_filter3(src, np.minimum)),
            )
            # round half up to uint8; values are already clamped to [0, 1]
            out[sl] = y.mul_(255.0).add_(0.5).to(torch.uint8).numpy()
            on_batch(y.shape[0])
    return out


def _cap_heights(images: np.ndarray) -> np.ndarray:
    """Ink height in px of the clean 'H' of each font (images F x 52 x H x W)."""
    h = CLASSES.index("H")
    rows = [ink_rows(img[h], INK) for img in images]
    return np.array([0 if r is None else r[1] - r[0] + 1 for r in rows], np.int64)


def _versions() -> dict:
    import PIL
    import torch
    from PIL import features

    return {
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "torch": torch.__version__,
        "freetype": features.version("freetype2"),
    }


def build_glyphs52(
    out_dir: str | Path | None = None,
    *,
    per_class: tuple[int, int, int] = DEFAULT_PER_CLASS,
    seen_per_class: int = DEFAULT_SEEN_PER_CLASS,
    seed: int = 0,
    fonts: list[FontInstance] | None = None,
    progress: Progress | None = None,
    font_sources: tuple[str, ...] | list[str] = DEFAULT_FONT_SOURCES,
    font_dirs: list[str | Path] | None = None,
    threads: int | None = None,
    em_share: float = EM_SHARE,
) -> Path:
    """Build the glyphs-52 data set.

    Args:
        out_dir: the data set folder to create or replace (default ``<data_dir>/glyphs-52``).
        per_class: images per class in train, valid and test.
        seen_per_class: images per class in the "seen" split (train fonts, fresh jitter); 0 for none.
        seed: seeds the family -> split deal, the font choice and the jitter.
        fonts: candidate font instances (default: :func:`discover_fonts` with font_sources/font_dirs).
            They still go through the render check. Discovered fonts take the chosen splits of
            DEFAULT_SPLITS (:func:`choose_splits`); a given font list is dealt whole (:func:`assign_splits`).
        progress: called as ``progress(done, total, stage)``; ``done`` grows monotonically to
            ``total`` (units: glyph renders, jittered images, and written images / 10).
        font_sources: which font sources to discover (when ``fonts`` is None); the default,
            DEFAULT_FONT_SOURCES, uses only fonts of declared Python packages. Add ``"system"`` for
            the machine's font folders (recorded in the manifest's ``font_options``).
        font_dirs: more font folders to use (an opt-in like ``"system"``, recorded likewise).
        threads: torch threads for the jitter, 1 to the machine's cores (default: the cores that are
            free now, see :func:`build_threads`); the previous setting is restored afterwards.
        em_share: share of each split's images rendered at one em size (EM_SIZE px) instead of
            cap-normalised, 0 to 1.

    Returns:
        The folder written.

    Raises:
        DataError: bad counts or thread count, or too few fonts / families pass the render check.
    """
    t0 = time.perf_counter()
    counts = _counts_per_class(per_class, seen_per_class, em_share)
    n_threads = _check_threads(threads)
    out_dir = Path(out_dir) if out_dir is not None else glyphs52_dir()
    check_replaceable(out_dir)  # before the minutes of rendering; again just before the swap
    plan, rendered, tick = _render_and_plan(fonts, font_sources, font_dirs, counts, seed, em_share, progress)
    _write_build(out_dir, rendered, plan, tick, n_threads, t0)
    tick.finish()
    return out_dir


def _render_and_plan(
    fonts: list[FontInstance] | None,
    font_sources: tuple[str, ...] | list[str],
    font_dirs: list[str | Path] | None,
    counts_per_class: dict[str, int],
    seed: int,
    em_share: float,
    progress: Progress | None,
) -> tuple[_BuildPlan, Any, _Ticker]:
    """Find and render the fonts, deal their families to splits: the plan, the renders and the progress."""
    options = {
        "sources": list(font_sources),
        "system_fonts": "system" in font_sources,
        "font_dirs": [str(Path(d).resolve()) for d in font_dirs or []],
        "fonts_given": fonts is not None,
    }
    skipped: list[SkippedFont] = []
    # The table is for the default build's fonts; a font list of one's own (a small test set) is dealt whole.
    table = DEFAULT_SPLITS if fonts is None else {}
    if fonts is None:
        fonts, skipped = discover_fonts(font_sources, font_dirs)
    splits = [s for s in SPLITS if counts_per_class[s] > 0]
    n_images = sum(counts_per_class[s] * len(CLASSES) for s in splits)
    # one progress unit per glyph render, per jittered image, and per 10 written images
    tick = _Ticker(len(fonts) * len(CLASSES) + n_images + n_images // 10, progress)
    tick(0, "rendering fonts")
    rendered = render_font_set(fonts, lambda i, n: tick(len(CLASSES), "rendering fonts"), em=True)
    accepted = rendered.fonts
    split_of_family, chosen = choose_splits({f.family: f.style for f in accepted}, seed, table)
    plan = _BuildPlan(
        accepted,
        [split_of_family[f.family] for f in accepted],
        split_of_family,
        chosen,
        counts_per_class,
        splits,
        int(seed),
        float(em_share),
        options,
        skipped + rendered.skipped,
    )
    return plan, rendered, tick


def _jitter_tick(tick: _Ticker, split: str, done: int) -> None:
    """The progress line of jittering ``split``: ``done`` images so far."""
    tick(done, f"jittering {split}")


def _write_build(out_dir: Path, rendered: Any, plan: _BuildPlan, tick: _Ticker, n_threads: int, t0: float) -> None:
    """Jitter and write every split and the manifest into a fresh folder beside ``out_dir``, then swap it in."""
    import torch

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    clean_stale(out_dir.parent, out_dir.name)
    # Unique per build (two builds may run at once, e.g. from two app sessions); the pid comes last
    # so that _clean_stale can tell a dead build's folder from a live one.
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{secrets.token_hex(4)}-{os.getpid()}"
    tmp.mkdir()
    try:
        assert rendered.em_images is not None  # render_font_set(em=True) renders both
        em_caps = _cap_heights(rendered.em_images)
        clean = np.stack([rendered.images, rendered.em_images])  # indexed by SIZE_MODES
        rendered.images = rendered.em_images = None  # one copy of the renders is enough (~300 MB)
        content, counts, mode_counts = _write_splits(tmp, clean, plan, tick)
        manifest = _manifest(plan, content, counts, mode_counts, em_caps)
        manifest["build_seconds"] = round(time.perf_counter() - t0, 2)
        # The manifest is written last, and the whole folder is renamed into place only then.
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(previous_threads)


MAX_THREADS_PER_CORE = 1  # --threads above the machine's cores: slower (see build_threads), and huge counts crash torch


def _check_threads(threads: int | None) -> int:
    """The jitter's torch threads: ``threads`` checked against this machine's cores, or build_threads().

    Raises:
        DataError: fewer than 1, or more than the machine has cores.
    """
    if threads is None:
        return build_threads()
    limit = MAX_THREADS_PER_CORE * (os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= limit:
        raise DataError(
            f"threads must be a whole number from 1 to {limit} (the cores of this machine), got "
            f"{threads!r}: more threads than cores makes the build slower, not faster"
        )
    return threads


def _counts_per_class(per_class: tuple[int, int, int], seen_per_class: int, em_share: float) -> dict[str, int]:
    """Images per class of each split, checked; DataError for bad counts or an em share outside 0..1."""
    if len(per_class) != 3 or any(int(n) < 1 for n in per_class) or seen_per_class < 0:
        raise DataError(
            f"per_class must be 3 positive counts (train, valid, test) and seen_per_class >= 0, "
            f"got {tuple(per_class)} and {seen_per_class}"
        )
    if not 0.0 <= float(em_share) <= 1.0:
        raise DataError(f"em_share must be between 0 and 1 (the share of images at one em size), got {em_share}")
    return {
        "train": int(per_class[0]),
        "valid": int(per_class[1]),
        "test": int(per_class[2]),
        "seen": int(seen_per_class),
    }


class _Ticker:
    """The build's progress: ``done`` grows monotonically to ``total``, reported with the stage."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def __call__(self, k: int, stage: str) -> None:
        self.done = min(self.total, self.done + k)
        if self.progress is not None:
            self.progress(self.done, self.total, stage)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.total, self.total, "done")


@dataclass(frozen=True)
class _BuildPlan:
    """What a build decided before jittering: the fonts kept, their splits, and the counts."""

    fonts: list[FontInstance]
    split_of_font: list[str]
    split_of_family: dict[str, str]
    chosen: frozenset[str]  # families whose split came from the table (DEFAULT_SPLITS), not the deal
    counts_per_class: dict[str, int]
    splits: list[str]
    seed: int
    em_share: float
    font_options: dict
    skipped: list[SkippedFont]


def _write_splits(
    tmp: Path, clean: np.ndarray, plan: _BuildPlan, tick: _Ticker
) -> tuple[str, dict[str, int], dict[str, dict[str, int]]]:
    """Jitter and write every split's arrays into ``tmp``; (content hash, counts, size-mode counts)."""
    digest = hashlib.sha256()
    counts, mode_counts = {}, {}
    for split in plan.splits:
        labels, font_ids, modes = _split_plan(
            plan.fonts, plan.split_of_font, split, plan.counts_per_class[split], plan.seed, plan.em_share
        )
        progress = functools.partial(_jitter_tick, tick, split)
        images = _jitter_split(clean, labels, font_ids, modes, plan.seed, split, progress)
        for arr in (images, labels, font_ids, modes):  # the content hash: every array of every split
            digest.update(f"{split}{arr.dtype.str}{arr.shape}".encode())
            digest.update(np.ascontiguousarray(arr).data.cast("B"))
        files = split_files(split)
        for kind, arr in (("images", images), ("labels", labels), ("fonts", font_ids), ("sizes", modes)):
            np.save(tmp / files[kind], arr)
        counts[split] = int(labels.size)
        mode_counts[split] = {m: int((modes == i).sum()) for i, m in enumerate(SIZE_MODES)}
        tick(labels.size // 10, f"writing {split}")
        del images
    return digest.hexdigest(), counts, mode_counts


def _families_record(plan: _BuildPlan) -> dict[str, dict]:
    """Per design family: style, split, whether that split was chosen (the table) or dealt, instance
    count, and where its fonts came from."""
    fam_info = {}
    for fam in sorted(plan.split_of_family):
        members = [f for f in plan.fonts if f.family == fam]
        fam_info[fam] = {
            "style": members[0].style,
            "split": plan.split_of_family[fam],
            "split_by": "chosen" if fam in plan.chosen else "dealt",
            "instances": len(members),
            "source": members[0].source,
            "package": members[0].package,
        }
    return fam_info


def _manifest(
    plan: _BuildPlan, content: str, counts: dict[str, int], mode_counts: dict[str, dict[str, int]], em_caps: np.ndarray
) -> dict:
    """The manifest.json of a build (read back by ``glyphcore.data.sources.glyphs52``)."""
    packages = font_packages()
    for name, info in packages.items():
        info["families"] = sorted({f.family for f in plan.fonts if f.package == name})
    return {
        "format": MANIFEST_FORMAT,
        "version": GLYPHS52_VERSION,
        "name": GLYPHS52,
        "id": f"{GLYPHS52}-{content[:12]}",
        "hash": content,
        "hash_algorithm": "sha256 over split name, dtype, shape and bytes of images, labels, fonts, sizes of "
        "each split",
        "seed": plan.seed,
        "per_class": {s: int(plan.counts_per_class[s]) for s in plan.splits},
        "counts": counts,
        "classes": list(CLASSES),
        "image_shape": [1, FRAME_SIZE, FRAME_SIZE],
        "frame": frame_dict(),
        "jitter": _build_jitter_dict(),
        "size_modes": {
            "names": list(SIZE_MODES),
            "cap_height_px": CAP_HEIGHT,
            "em_size_px": EM_SIZE,
            "em_share": plan.em_share,
            "counts": mode_counts,
            "em_cap_height_px": (
                {"min": int(em_caps.min()), "median": float(np.median(em_caps)), "max": int(em_caps.max())}
                if em_caps.size
                else None
            ),
        },
        "font_options": plan.font_options,
        "font_packages": packages,
        "fonts": [
            dict(f.to_dict(), id=i, split=plan.split_of_font[i], em_cap_height_px=int(em_caps[i]))
            for i, f in enumerate(plan.fonts)
        ],
        "families": _families_record(plan),
        "skipped": [s.to_dict() for s in plan.skipped],
        "versions": _versions(),
        "built": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "complete": True,
    }


def _build_jitter_dict() -> dict:
    from glyphcore.data.augment import JITTER

    ranges = JITTER["build"]
    assert ranges is not None  # the build always jitters
    return ranges.to_dict()
