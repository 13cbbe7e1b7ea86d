"""``glyphcore data build|info|export|show|fetch``: the data sets, headless.

Handlers import the heavy modules lazily so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from glyphcore.cli.progress import ProgressBar
from glyphcore.data import GLYPHS52, SOURCES, TORCHVISION_SETS
from glyphcore.data.fonts import DEFAULT_FONT_SOURCES

MAX_SHEET_SCALE = 16.0  # a 16 x 16 grid of 100 px images at 16x is already 25600 px a side

__all__ = ["add_data_commands", "sample_grid"]


def sample_grid(images, labels, classes, *, cols: int = 16, scale: float = 1.0, gap: int = 2, caption: bool = True):
    """A PIL image tiling ``images`` (uint8 N x C x H x W) in rows of ``cols``, each captioned with
    its class name."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    n, c, h, w = images.shape
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    cap = 16 if caption else 0
    mode = "RGB" if c == 3 else "L"
    sheet = Image.new(mode, (cols * (w + gap) + gap, rows * (h + gap + cap) + gap), 64 if c == 1 else (64, 64, 64))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13) if caption else None
    for i in range(n):
        r, k = divmod(i, cols)
        x0, y0 = gap + k * (w + gap), gap + r * (h + gap + cap)
        a = np.asarray(images[i])
        tile = Image.fromarray(a[0] if c == 1 else a.transpose(1, 2, 0), mode)
        sheet.paste(tile, (x0, y0))
        if caption:
            draw.text(
                (x0 + 2, y0 + h + 1), str(classes[int(labels[i])]), fill=255 if c == 1 else (255, 255, 255), font=font
            )
    if scale != 1.0:
        sheet = sheet.resize((int(sheet.width * scale), int(sheet.height * scale)), Image.Resampling.NEAREST)
    return sheet


def _cmd_build(args: argparse.Namespace) -> int:
    from glyphcore.data import glyphs52_dir, glyphs52_ready, read_manifest
    from glyphcore.data.build import DEFAULT_PER_CLASS, EM_SHARE, build_glyphs52
    from glyphcore.data.fonts import DEFAULT_FONT_SOURCES
    from glyphcore.errors import DataError

    out = Path(args.out) if args.out else glyphs52_dir()
    if args.if_missing and glyphs52_ready(out):
        m = read_manifest(out)
        print(f"glyphs-52 is ready in {out} ({sum(m['counts'].values()):,} images, id {m['id']}); nothing to do")
        return 0
    per_class = tuple(args.per_class) if args.per_class else DEFAULT_PER_CLASS
    if len(per_class) == 1:
        per_class = per_class * 3
    if len(per_class) != 3:
        raise DataError(f"--per-class takes 1 or 3 numbers (train valid test), got {list(per_class)}")
    sources = tuple(s for s in DEFAULT_FONT_SOURCES if s not in (args.no_source or []))
    if args.system_fonts:
        sources += ("system",)
    t0 = time.perf_counter()
    path = build_glyphs52(
        out,
        per_class=per_class,
        seen_per_class=args.seen_per_class,
        seed=args.seed,
        progress=None if args.quiet else ProgressBar(),
        font_sources=sources,
        font_dirs=args.font_dir or None,
        threads=args.threads,
        em_share=EM_SHARE if args.em_share is None else args.em_share,
    )
    secs = time.perf_counter() - t0
    m = read_manifest(path)
    n = sum(m["counts"].values())
    print(f"built glyphs-52 in {path} in {secs:.1f} s ({n / secs:,.0f} images/s)")
    print("  " + ", ".join(f"{k} {v:,}" for k, v in m["counts"].items()))
    print(
        f"  {len(m['fonts'])} font instances in {len(m['families'])} design families; "
        f"{len(m['skipped'])} skipped (see `data info --fonts`)"
    )
    sm = m["size_modes"]
    print(
        f"  {sm['em_share']:.0%} of the images at one em size ({sm['em_size_px']} px: capitals "
        f"{sm['em_cap_height_px']['min']}-{sm['em_cap_height_px']['max']} px), the rest cap-normalised "
        f"({sm['cap_height_px']} px)"
        if sm.get("em_cap_height_px")
        else "  all images cap-normalised"
    )
    opts = m["font_options"]
    if opts["system_fonts"] or opts["font_dirs"]:
        print("  machine fonts used (--system-fonts / --font-dir): this data set differs between machines")
    off = {k: v for k, v in m["font_packages"].items() if v["installed"] != v["pinned"]}
    if off and "packages" in opts["sources"]:
        print(
            "  font packages not at their pinned version (the hash differs from other machines'): "
            + ", ".join(f"{k} {v['installed'] or 'missing'} (pinned {v['pinned']})" for k, v in off.items())
        )
    print(f"  {m['version']}  id {m['id']}  sha256 {m['hash']}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from glyphcore.data import dataset_info

    info = dataset_info(args.source)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"{info['source']}: id {info['id']}")
    print(f"  hash     {info['hash']}")
    print("  splits   " + ", ".join(f"{k} {v:,}" for k, v in info["counts"].items()))
    print(
        f"  images   {' x '.join(map(str, info['image_shape']))} uint8, {len(info['classes'])} classes: "
        f"{''.join(info['classes']) if all(len(c) == 1 for c in info['classes']) else info['classes']}"
    )
    if "fonts" in info:
        print(
            f"  seed     {info['seed']}, per class {info['per_class']}, built {info['built']} "
            f"in {info['build_seconds']} s"
        )
        print(f"  version  {info.get('version')}")
        sm = info.get("size_modes") or {}
        if sm:
            print(
                f"  sizes    {sm['em_share']:.0%} at em {sm['em_size_px']} px, the rest at cap height "
                f"{sm['cap_height_px']} px: "
                + ", ".join(f"{k} " + "/".join(f"{v[m]:,} {m}" for m in sm["names"]) for k, v in sm["counts"].items())
            )
        opts = info.get("font_options") or {}
        if opts:
            dirs = f"; folders {opts['font_dirs']}" if opts["font_dirs"] else ""
            print(f"  sources  {', '.join(opts['sources'])}{dirs}")
        print(
            f"  fonts    {len(info['fonts'])} instances in {len(info['families'])} design families, "
            f"{len(info['skipped'])} skipped"
        )
        for fam, f in info["families"].items():
            where = f.get("package") or f["source"]
            print(f"    {fam:<22s} {f['style']:<7s} {f['split']:<6s} {f['instances']:3d} instance(s)  [{where}]")
        if args.fonts:
            print("  font instances:")
            for f in info["fonts"]:
                print(f"    {f['id']:3d} {f['name']:<42s} {f['family']:<20s} {f['split']:<6s} {f['file']}")
            print("  skipped:")
            for s in info["skipped"]:
                print(f"    {s['name']:<42s} {s['reason']}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from glyphcore.data import export_course_layout

    t0 = time.perf_counter()
    out = export_course_layout(args.out, args.source, args.splits, progress=ProgressBar())
    print(f"exported {args.source} in the course layout to {out} in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    import math

    import numpy as np

    from glyphcore.data import load_dataset
    from glyphcore.errors import DataError, os_reason

    if args.n < 1 or args.cols < 1:
        raise DataError(f"--n and --cols must be at least 1, got --n {args.n} --cols {args.cols}")
    if not math.isfinite(args.scale) or not 0 < args.scale <= MAX_SHEET_SCALE:
        raise DataError(f"--scale must be a number in (0, {MAX_SHEET_SCALE:g}], got {args.scale}")
    out = Path(args.out)
    if args.out.endswith(("/", os.sep)) or out.is_dir():
        raise DataError(f"--out {args.out} is a folder: name the PNG file to write, e.g. {out / 'glyphs.png'}")
    s = load_dataset(args.source, args.split)
    idx = np.arange(len(s))
    if args.classes:
        wanted = [s.classes.index(c) for c in args.classes if c in s.classes]
        if not wanted:
            raise DataError(
                f"none of the classes {args.classes!r} exist in {args.source}: "
                f"expected some of {''.join(s.classes)[:80]}"
            )
        idx = idx[np.isin(np.asarray(s.labels), wanted)]
    if idx.size == 0:
        raise DataError(f"{args.source} split {args.split!r} is empty: nothing to show")
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(idx, size=min(args.n, idx.size), replace=False))
    sheet = sample_grid(
        np.asarray(s.images[pick]), np.asarray(s.labels[pick]), s.classes, cols=args.cols, scale=args.scale
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out)
    except OSError as e:
        raise DataError(f"could not write {out}: {os_reason(e)}") from None
    except ValueError as e:  # no or an unknown file extension
        raise DataError(f"could not write {out} ({e}): name a .png file, e.g. glyphs.png") from None
    print(f"wrote {out} ({pick.size} {args.split} images of {args.source}, {sheet.width}x{sheet.height} px)")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from glyphcore.data import load_dataset, torchvision_dir

    for split in ("train", "test"):
        s = load_dataset(f"torchvision:{args.name}", split, download=True)
        print(f"torchvision:{args.name} {split}: {len(s):,} images {tuple(s.images.shape[1:])}")
    print(f"stored in {torchvision_dir()}")
    return 0


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``data build|info|export|show|fetch`` to the top-level sub-parsers."""
    data = sub.add_parser(
        "data",
        help="build, inspect, export and preview data sets",
        description=f"Build, inspect, export and preview data sets ({', '.join(s.label for s in SOURCES.values())}).",
    )
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    for add in (_add_build, _add_info, _add_export, _add_show, _add_fetch):
        add(dsub)


def _source_help() -> str:
    """The --source help, from the registry of data sources."""
    return f"data source: {', '.join(s.spec for s in SOURCES.values())} (default: {GLYPHS52})"


def _add_build(dsub: argparse._SubParsersAction) -> None:
    """``data build``: render glyphs-52."""
    p = dsub.add_parser(
        "build",
        help="render the built-in glyphs-52 data set from the fonts of its Python packages",
        description="Render glyphs-52: every usable font of the declared Python packages "
        "(Streamlit wheel, Pillow default, the open-licence font packages, "
        "Hershey stroke fonts; the same on every machine) x 52 letters, "
        "cap-normalised and a share at one em size, jittered per sample, split "
        "by design family. The machine's own fonts only with --system-fonts or "
        "--font-dir. Written atomically to <data_dir>/glyphs-52 (GLYPH_DATA_DIR).",
    )
    p.add_argument("--if-missing", action="store_true", help="do nothing when a complete glyphs-52 exists")
    p.add_argument("--seed", type=int, default=0, help="seed of the split deal, font choice and jitter (default 0)")
    p.add_argument(
        "--per-class",
        type=int,
        nargs="+",
        metavar="N",
        help="images per class: TRAIN VALID TEST, or one number for all three (default 800 300 300)",
    )
    p.add_argument(
        "--seen-per-class",
        type=int,
        default=100,
        help="images per class of the 'seen' split (train fonts, fresh jitter; default 100)",
    )
    p.add_argument("--out", help="data set folder to write (default <data_dir>/glyphs-52)")
    p.add_argument(
        "--system-fonts",
        action="store_true",
        help="also use the machine's font folders (the data set then differs between machines)",
    )
    p.add_argument(
        "--font-dir",
        action="append",
        metavar="DIR",
        help="also use the fonts in this folder (repeatable; recorded in the manifest)",
    )
    p.add_argument(
        "--no-source",
        action="append",
        choices=list(DEFAULT_FONT_SOURCES),
        help="leave out a default font source (repeatable)",
    )
    p.add_argument(
        "--em-share",
        type=float,
        default=None,
        metavar="F",
        help="share of the images rendered at one em size instead of cap-normalised (default 1/3)",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads for the jitter (default: the cores free now)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_build)


def _add_info(dsub: argparse._SubParsersAction) -> None:
    """``data info``: counts, classes, fonts and hash of a source."""
    p = dsub.add_parser(
        "info",
        help="counts, classes, fonts, families and hash of a data source",
        description="Print counts per split, classes, image shape, id and hash; for "
        "glyphs-52 also seed, design families and their splits.",
    )
    p.add_argument("--source", default="glyphs-52", help=_source_help())
    p.add_argument("--fonts", action="store_true", help="also list every font instance and skipped font")
    p.add_argument("--json", action="store_true", help="print the whole summary as JSON")
    p.set_defaults(func=_cmd_info)


def _add_export(dsub: argparse._SubParsersAction) -> None:
    """``data export``: a source in the course layout."""
    p = dsub.add_parser(
        "export",
        help="write a data set in the course layout <out>/<split>/<hex>/<i>_<hex>.npy",
        description="Write a data source (default glyphs-52) in the course layout: one "
        "2-D uint8 .npy per image in <out>/<split>/<hex>/<i>_<hex>.npy.",
    )
    p.add_argument("out", help="folder to create (must not exist, or be empty)")
    p.add_argument("--source", default="glyphs-52", help=_source_help())
    p.add_argument("--splits", nargs="+", metavar="SPLIT", help="splits to export (default: all)")
    p.set_defaults(func=_cmd_export)


def _add_show(dsub: argparse._SubParsersAction) -> None:
    """``data show``: a PNG grid of samples."""
    p = dsub.add_parser(
        "show",
        help="write a PNG grid of sample images",
        description="Write a PNG grid of random samples of one split, captioned with their class.",
    )
    p.add_argument("--source", default="glyphs-52", help=_source_help())
    p.add_argument("--split", default="train", help="split to show (default train)")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--cols", type=int, default=16, help="images per row (default 16)")
    p.add_argument("--classes", default="", help="only these classes, e.g. 'Il1' (default all)")
    p.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    p.add_argument("--scale", type=float, default=1.0, help="resize the grid by this factor (default 1)")
    p.add_argument("--out", default="glyphs.png", help="PNG file to write (default glyphs.png)")
    p.set_defaults(func=_cmd_show)


def _add_fetch(dsub: argparse._SubParsersAction) -> None:
    """``data fetch``: download a torchvision set."""
    p = dsub.add_parser(
        "fetch",
        help="download a torchvision data set into <data_dir>/torchvision",
        description="Download a torchvision data set (needs the network) into "
        "<data_dir>/torchvision, where load_dataset('torchvision:NAME') finds it.",
    )
    p.add_argument("name", choices=list(TORCHVISION_SETS), help="data set name")
    p.set_defaults(func=_cmd_fetch)
