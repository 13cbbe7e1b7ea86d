"""glyphs-52 and the other data sources glyphcore reads, in one in-memory form.

- :func:`build_glyphs52` renders the built-in data set from the fonts this machine has;
- ``imageset``: :class:`ImageSet`, the one in-memory form of a split;
- ``sources``: the registry of data sources, one module per kind (``glyphs-52``, ``course:<root>``,
  ``folder:<root>``, ``torchvision:<NAME>``); :func:`load_dataset` gives one split of any of them;
- ``build``, ``fonts``, ``render``: glyphs-52 rendered from fonts; ``export``: the course layout written;
- ``drawings``: the personal drawings set a user kept (storage; keeping and scoring: ``glyphcore.infer.drawings``);
- :func:`augment_batch` is the batched per-sample augmentation used for training (torch is imported
  only when it is first used, so ``python -m glyphcore --help`` stays fast).
"""

from __future__ import annotations

from glyphcore.data.build import DEFAULT_PER_CLASS, DEFAULT_SEEN_PER_CLASS, build_glyphs52
from glyphcore.data.export import export_course_layout
from glyphcore.data.fonts import FontInstance, SkippedFont, discover_fonts
from glyphcore.data.imageset import ImageSet, content_hash
from glyphcore.data.render import FontCheckError, render_font_set, render_glyph, render_letters
from glyphcore.data.sources import SOURCES, Source, dataset_info, list_splits, load_dataset, parse_source, source_stamp
from glyphcore.data.sources.glyphs52 import GLYPHS52, SPLITS, glyphs52_dir, glyphs52_ready, read_manifest
from glyphcore.data.sources.torchvision_sets import TORCHVISION_SETS, torchvision_dir
from glyphcore.data.splits import assign_splits, choose_splits

__all__ = [
    "ImageSet",
    "SOURCES",
    "Source",
    "content_hash",
    "torchvision_dir",
    "GLYPHS52",
    "SPLITS",
    "TORCHVISION_SETS",
    "DEFAULT_PER_CLASS",
    "DEFAULT_SEEN_PER_CLASS",
    "load_dataset",
    "list_splits",
    "dataset_info",
    "glyphs52_ready",
    "glyphs52_dir",
    "read_manifest",
    "parse_source",
    "source_stamp",
    "build_glyphs52",
    "assign_splits",
    "choose_splits",
    "export_course_layout",
    "FontInstance",
    "SkippedFont",
    "discover_fonts",
    "FontCheckError",
    "render_glyph",
    "render_letters",
    "render_font_set",
    "augment_batch",
    "jitter_batch",
    "JITTER",
    "STRENGTHS",
]

_LAZY = {"augment_batch", "jitter_batch", "JITTER", "STRENGTHS", "JitterRanges"}


def __getattr__(name: str):
    # torch takes ~1 s to import: only code that augments pays for it.
    if name in _LAZY:
        from glyphcore.data import augment

        return getattr(augment, name)
    raise AttributeError(f"module 'glyphcore.data' has no attribute {name!r}")
