"""The chosen split of every design family of the default glyphs-52 build.

Dealing families by a seeded shuffle (``assign_splits``) reshuffles every family whenever one is added,
so a data set version that adds fonts could not be compared with the one before it. The default
build's families therefore have a fixed split, written down here:

- the print families (every style but script) keep exactly their glyphs-52/2 split;
- handwriting and script families: four held out for measurement in test (Dancing Script, Kalam,
  Yellowtail, Zeyada), two in valid (Great Vibes, Lobster Two), the rest trained on. Hershey Script
  is trained on: its skeletons are drawn by the synthetic hands (:mod:`glyphcore.data.hands`).

Families not in this table (machine fonts, ``--font-dir`` fonts, fonts another machine has) are
dealt among themselves by the seeded shuffle, as before; a build given its own font list deals every
family. The manifest says which were chosen.
"""

from __future__ import annotations

__all__ = ["DEFAULT_SPLITS", "HELD_OUT_HANDWRITING"]

# Handwriting and script families held out of training for measurement (test split).
HELD_OUT_HANDWRITING: tuple[str, ...] = ("Dancing Script", "Kalam", "Yellowtail", "Zeyada")

_TRAIN = (
    # print: the glyphs-52/2 train families
    "Aileron",
    "Arvo",
    "Atkinson Hyperlegible",
    "Bitter",
    "Crimson Pro",
    "EB Garamond",
    "Fira Code",
    "Hershey Times",
    "IBM Plex Mono",
    "Inconsolata",
    "Jost",
    "KaTeX Typewriter",
    "Libre Baskerville",
    "Lora",
    "Nunito",
    "Oswald",
    "PT Serif",
    "Raleway",
    "Roboto",
    "Roboto Mono",
    "Roboto Slab",
    "Source Sans 3",
    "Source Serif 4",
    # handwriting and script
    "Caveat",
    "Delius",
    "Hershey Script",
    "Indie Flower",
    "Lobster",
    "Oleo Script",
    "Pacifico",
    "Satisfy",
    "Shadows Into Light",
)
_VALID = (
    # print: the glyphs-52/2 valid families (Hershey Sans: the skeleton of the synthetic test drawings)
    "Hershey Sans",
    "IBM Plex Sans",
    "IBM Plex Serif",
    "JetBrains Mono",
    "Open Sans",
    "Source Code Pro",
    "Zilla Slab",
    # handwriting and script
    "Great Vibes",
    "Lobster Two",
)
_TEST = (
    # print: the glyphs-52/2 test families
    "KaTeX Main",
    "KaTeX SansSerif",
    "Montserrat",
    "Playfair Display",
    "Space Mono",
    *HELD_OUT_HANDWRITING,
)

# design family -> "train" | "valid" | "test"
DEFAULT_SPLITS: dict[str, str] = {
    **{f: "train" for f in _TRAIN},
    **{f: "valid" for f in _VALID},
    **{f: "test" for f in _TEST},
}
