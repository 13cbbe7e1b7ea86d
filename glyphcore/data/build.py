"""Build glyphs-52: render every font once, jitter in big torch batches, write atomically.

1. Fonts: discover candidates (:mod:`fonts`; by default only fonts of declared Python packages, so
   the same seed gives the same bytes on every machine), render the 52 letters of each clean into
   the glyph frame, cap-normalised and at one em size, and keep those that pass the render check
   (:mod:`render`): some 30,000 renders.
2. Splits: design families (bold/italic/weights of one design) are dealt to train / valid / test,
   stratified by style (sans, serif, slab, mono, script, stroke) so each split gets a mix; "seen"
   re-uses the train fonts with fresh jitter (the font-seen check).
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
import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from glyphcore.data.fonts import (
    DEFAULT_FONT_SOURCES, STYLES, FontInstance, SkippedFont, discover_fonts, font_packages,
)
from glyphcore.data.sources.glyphs52 import (
    GLYPHS52, GLYPHS52_VERSION, MANIFEST_FILE, MANIFEST_FORMAT, SPLITS, glyphs52_dir, split_files,
)
from glyphcore.data.render import INK, SIZE_MODES, ink_rows, render_font_set
from glyphcore.errors import DataError
from glyphcore.frame import CAP_HEIGHT, CLASSES, EM_SIZE, FRAME_SIZE, frame_dict

__all__ = ["build_glyphs52", "assign_splits", "build_threads", "DEFAULT_PER_CLASS", "DEFAULT_SEEN_PER_CLASS",
           "EM_SHARE"]

DEFAULT_PER_CLASS = (800, 300, 300)  # train / valid / test images per class: the course set's 41,600 / 15,600
DEFAULT_SEEN_PER_CLASS = 100  # "seen" split: train fonts, fresh jitter
# Share of each split's images rendered at one em size (EM_SIZE) instead of cap-normalised: a third
# puts capitals of about 46-66 px (a few scripts up to 73) and lowercase at each font's own x-height
# into training, while two thirds keep the frame the Draw page's guide lines show.
EM_SHARE = 1 / 3
BATCH = 512  # images per jitter batch: big enough for torch, small enough to stay in cache
NOISE_POOL = BATCH // 8  # distinct noise images per batch (drawing noise is a large share of CPU time)
_HELD_OUT = ("valid", "test")

Progress = Callable[[int, int, str], None]


def assign_splits(families: dict[str, str], seed: int) -> dict[str, str]:
    """Deal design families to train / valid / test, stratified by style, deterministic from seed.

    Within each style the families are shuffled and dealt train, held-out, train, train,
    held-out, train, ... (one in three held out, the first always trained on); the held-out ones
    alternate valid / test across all styles. So every style is trained on, valid and test each get
    a mix of styles, and train keeps about two thirds of the designs: generalising to a new font
    needs many training designs (measured: with half the families held out, a small CNN confused
    the curly italic v/w of the held-out Computer-Modern-like faces with u).

    Args:
        families: design family -> style (one of STYLES).
        seed: the build seed.

    Returns:
        design family -> "train" | "valid" | "test".

    Raises:
        DataError: fewer than 3 families (valid and test need one each, train at least one).
    """
    if len(families) < 3:
        raise DataError(f"only {len(families)} design families passed the render check "
                        f"({sorted(families)}): glyphs-52 needs at least 3 (train, valid and test are "
                        "disjoint by family); add fonts to a font folder")
    rng = np.random.default_rng([seed, 0x5EED])
    styles = [s for s in STYLES if s in families.values()] + sorted(set(families.values()) - set(STYLES))
    styles = [styles[i] for i in rng.permutation(len(styles))]
    out: dict[str, str] = {}
    held = 0
    by_style: dict[str, list[str]] = {}
    for style in styles:
        fams = sorted(f for f, s in families.items() if s == style)
        fams = [fams[i] for i in rng.permutation(len(fams))]
        by_style[style] = fams
        for k, fam in enumerate(fams):
            if k % 3 == 1:  # positions 1, 4, 7...: held out; the rest train
                out[fam] = _HELD_OUT[held % 2]
                held += 1
            else:
                out[fam] = "train"
    # Few families (small machines, tests): make sure valid and test are not empty.
    for split in _HELD_OUT:
        if split not in out.values():
            style = max(by_style, key=lambda s: sum(out[f] == "train" for f in by_style[s]))
            fam = [f for f in by_style[style] if out[f] == "train"][-1]
            out[fam] = split
    if "train" not in out.values():  # only possible with 3 single-family styles dealt oddly
        out[sorted(out)[0]] = "train"
    return out


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


def _split_plan(fonts: list[FontInstance], split_of_font: list[str], split: str, per_class: int,
                seed: int, em_share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels int64 N, font ids int32 N, size modes uint8 N) of one split, shuffled, per_class images
    of each class; round(em_share * N) of them in size mode "em" (1), the rest "cap" (0)."""
    pool_split = "train" if split == "seen" else split
    idx = np.array([i for i, s in enumerate(split_of_font) if s == pool_split], np.int64)
    rng = np.random.default_rng([seed, SPLITS.index(split), 0xF0])
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), per_class)
    font_ids = rng.choice(idx, size=labels.size, p=_family_weights(fonts, idx)).astype(np.int32)
    order = rng.permutation(labels.size)
    modes = np.zeros(labels.size, np.uint8)
    modes[np.random.default_rng([seed, SPLITS.index(split), 0xE4]).permutation(labels.size)
          [:round(em_share * labels.size)]] = SIZE_MODES.index("em")
    return labels[order], font_ids[order], modes


def _filter3(a: np.ndarray, op) -> np.ndarray:
    """3x3 max (np.maximum) or min (np.minimum) filter over the last two axes, zero outside."""
    p = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(1, 1), (1, 1)])
    m = op(op(p[..., :, :-2], p[..., :, 1:-1]), p[..., :, 2:])
    return op(op(m[..., :-2, :], m[..., 1:-1, :]), m[..., 2:, :])


def _jitter_split(clean: np.ndarray, labels: np.ndarray, font_ids: np.ndarray, modes: np.ndarray, seed: int,
                  split: str, on_batch: Callable[[int], None]) -> np.ndarray:
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
            y = jitter_batch(as_batch(src), JITTER["build"], gen, noise_pool=NOISE_POOL,
                             dilated=as_batch(_filter3(src, np.maximum)),
                             eroded=as_batch(_filter3(src, np.minimum)))
            # round half up to uint8; values are already clamped to [0, 1]
            out[sl] = y.mul_(255.0).add_(0.5).to(torch.uint8).numpy()
            on_batch(y.shape[0])
    return out


def _cap_heights(images: np.ndarray) -> np.ndarray:
    """Ink height in px of the clean 'H' of each font (images F x 52 x H x W)."""
    h = CLASSES.index("H")
    rows = [ink_rows(img[h], INK) for img in images]
    return np.array([0 if r is None else r[1] - r[0] + 1 for r in rows], np.int64)


def _clean_stale(parent: Path, name: str) -> None:
    """Remove temporary folders of builds whose process is gone (killed mid-build)."""
    for p in parent.glob(f".{name}.*-*"):
        try:
            pid = int(p.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        alive = True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            alive = False
        except (PermissionError, OSError):
            pass
        if not alive:
            shutil.rmtree(p, ignore_errors=True)


def _versions() -> dict:
    import PIL
    import torch
    from PIL import features

    return {"numpy": np.__version__, "pillow": PIL.__version__, "torch": torch.__version__,
            "freetype": features.version("freetype2")}


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
            They still go through the render check.
        progress: called as ``progress(done, total, stage)``; ``done`` grows monotonically to
            ``total`` (units: glyph renders, jittered images, and written images / 10).
        font_sources: which font sources to discover (when ``fonts`` is None); the default,
            DEFAULT_FONT_SOURCES, uses only fonts of declared Python packages. Add ``"system"`` for
            the machine's font folders (recorded in the manifest's ``font_options``).
        font_dirs: more font folders to use (an opt-in like ``"system"``, recorded likewise).
        threads: torch threads for the jitter (default: the cores that are free now, see
            :func:`build_threads`); the previous setting is restored afterwards.
        em_share: share of each split's images rendered at one em size (EM_SIZE px) instead of
            cap-normalised, 0 to 1.

    Returns:
        The folder written.

    Raises:
        DataError: bad counts, or too few fonts / families pass the render check.
    """
    t0 = time.perf_counter()
    if len(per_class) != 3 or any(int(n) < 1 for n in per_class) or seen_per_class < 0:
        raise DataError(f"per_class must be 3 positive counts (train, valid, test) and seen_per_class >= 0, "
                        f"got {tuple(per_class)} and {seen_per_class}")
    if not 0.0 <= float(em_share) <= 1.0:
        raise DataError(f"em_share must be between 0 and 1 (the share of images at one em size), got {em_share}")
    counts_per_class = {"train": int(per_class[0]), "valid": int(per_class[1]), "test": int(per_class[2]),
                        "seen": int(seen_per_class)}
    splits = [s for s in SPLITS if counts_per_class[s] > 0]
    out_dir = Path(out_dir) if out_dir is not None else glyphs52_dir()
    check_replaceable(out_dir)  # before the minutes of rendering; again just before the swap
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    skipped: list[SkippedFont] = []
    font_options = {"sources": list(font_sources), "system_fonts": "system" in font_sources,
                    "font_dirs": [str(Path(d).resolve()) for d in font_dirs or []],
                    "fonts_given": fonts is not None}
    if fonts is None:
        fonts, skipped = discover_fonts(font_sources, font_dirs)
    n_images = sum(counts_per_class[s] * len(CLASSES) for s in splits)
    total = len(fonts) * len(CLASSES) + n_images + n_images // 10  # one progress unit per font is 52 renders
    done = 0

    def tick(k: int, stage: str) -> None:
        nonlocal done
        done = min(total, done + k)
        if progress is not None:
            progress(done, total, stage)

    if progress is not None:
        progress(0, total, "rendering fonts")
    rendered = render_font_set(fonts, lambda i, n: tick(len(CLASSES), "rendering fonts"), em=True)
    skipped += rendered.skipped
    accepted = rendered.fonts
    families = {f.family: f.style for f in accepted}
    split_of_family = assign_splits(families, seed)
    split_of_font = [split_of_family[f.family] for f in accepted]

    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)) if threads else build_threads())
    _clean_stale(out_dir.parent, out_dir.name)
    # Unique per build (two builds may run at once, e.g. from two app sessions); the pid comes last
    # so that _clean_stale can tell a dead build's folder from a live one.
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{secrets.token_hex(4)}-{os.getpid()}"
    tmp.mkdir()
    try:
        assert rendered.em_images is not None  # render_font_set(em=True) renders both
        em_caps = _cap_heights(rendered.em_images)
        clean = np.stack([rendered.images, rendered.em_images])  # indexed by SIZE_MODES
        rendered.images = rendered.em_images = None  # type: ignore[assignment]  # one copy of the renders is enough (~300 MB)
        digest = hashlib.sha256()
        counts = {}
        mode_counts = {}
        for split in splits:
            labels, font_ids, modes = _split_plan(accepted, split_of_font, split, counts_per_class[split], seed,
                                                  float(em_share))
            images = _jitter_split(clean, labels, font_ids, modes, seed, split,
                                   lambda k, s=split: tick(k, f"jittering {s}"))  # type: ignore[misc]
            for arr in (images, labels, font_ids, modes):  # the content hash: every array of every split
                digest.update(f"{split}{arr.dtype.str}{arr.shape}".encode())
                digest.update(np.ascontiguousarray(arr).data.cast("B"))
            files = split_files(split)
            np.save(tmp / files["images"], images)
            np.save(tmp / files["labels"], labels)
            np.save(tmp / files["fonts"], font_ids)
            np.save(tmp / files["sizes"], modes)
            counts[split] = int(labels.size)
            mode_counts[split] = {m: int((modes == i).sum()) for i, m in enumerate(SIZE_MODES)}
            tick(labels.size // 10, f"writing {split}")
            del images
        content = digest.hexdigest()
        fam_info = {}
        for fam in sorted(families):
            members = [f for f in accepted if f.family == fam]
            fam_info[fam] = {"style": families[fam], "split": split_of_family[fam], "instances": len(members),
                             "source": members[0].source, "package": members[0].package}
        packages = font_packages()
        for name, info in packages.items():
            info["families"] = sorted({f.family for f in accepted if f.package == name})
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": GLYPHS52_VERSION,
            "name": GLYPHS52,
            "id": f"{GLYPHS52}-{content[:12]}",
            "hash": content,
            "hash_algorithm": "sha256 over split name, dtype, shape and bytes of images, labels, fonts, sizes of "
                              "each split",
            "seed": int(seed),
            "per_class": {s: int(counts_per_class[s]) for s in splits},
            "counts": counts,
            "classes": list(CLASSES),
            "image_shape": [1, FRAME_SIZE, FRAME_SIZE],
            "frame": frame_dict(),
            "jitter": _build_jitter_dict(),
            "size_modes": {
                "names": list(SIZE_MODES),
                "cap_height_px": CAP_HEIGHT,
                "em_size_px": EM_SIZE,
                "em_share": float(em_share),
                "counts": mode_counts,
                "em_cap_height_px": ({"min": int(em_caps.min()), "median": float(np.median(em_caps)),
                                      "max": int(em_caps.max())} if em_caps.size else None),
            },
            "font_options": font_options,
            "font_packages": packages,
            "fonts": [dict(f.to_dict(), id=i, split=split_of_font[i], em_cap_height_px=int(em_caps[i]))
                      for i, f in enumerate(accepted)],
            "families": fam_info,
            "skipped": [s.to_dict() for s in skipped],
            "versions": _versions(),
            "built": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - t0, 2),
            "complete": True,
        }
        # The manifest is written last, and the whole folder is renamed into place only then.
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(previous_threads)
    if progress is not None:
        progress(total, total, "done")
    return out_dir


def check_replaceable(out_dir: Path) -> None:
    """Refuse to build into ``out_dir`` unless it is absent, an empty folder, or a glyphs-52 build
    (its manifest.json names glyphs-52): a build replaces its folder whole, and must never delete
    a folder of the user's own files given by mistake as ``--out``.

    Raises:
        DataError: ``out_dir`` is a file, or a non-empty folder that is not a glyphs-52 build.
    """
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir():
        raise DataError(f"{out_dir} is a file, not a folder: pass another --out (a new or empty folder)")
    if not any(out_dir.iterdir()):
        return
    try:
        manifest = json.loads((out_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("name") != GLYPHS52:
        raise DataError(
            f"{out_dir} is a non-empty folder that is not a glyphs-52 build (no glyphs-52 {MANIFEST_FILE}); "
            f"a build replaces its folder whole, so it refuses to delete these files. Pass a new or empty "
            f"folder as --out, or remove {out_dir} yourself"
        )


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename the finished ``tmp`` folder to ``out_dir``, replacing an older build (two renames:
    a folder cannot be renamed over a non-empty one). If the second rename fails, the old build
    is put back. Only a glyphs-52 build (or an empty folder) is ever replaced: ``check_replaceable``."""
    check_replaceable(out_dir)
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{secrets.token_hex(4)}-{os.getpid()}"
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None and not out_dir.exists():
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _build_jitter_dict() -> dict:
    from glyphcore.data.augment import JITTER

    ranges = JITTER["build"]
    assert ranges is not None  # the build always jitters
    return ranges.to_dict()
