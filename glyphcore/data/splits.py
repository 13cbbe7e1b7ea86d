"""Which split each design family goes to: the chosen table of the default build, and the seeded deal.

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

import numpy as np

from glyphcore.data.fonts import STYLES
from glyphcore.errors import DataError

__all__ = ["DEFAULT_SPLITS", "HELD_OUT_HANDWRITING", "assign_splits", "choose_splits"]

_HELD_OUT = ("valid", "test")

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
        raise DataError(
            f"only {len(families)} design families passed the render check "
            f"({sorted(families)}): glyphs-52 needs at least 3 (train, valid and test are "
            "disjoint by family); add fonts to a font folder"
        )
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


def choose_splits(
    families: dict[str, str], seed: int, chosen: dict[str, str] = DEFAULT_SPLITS
) -> tuple[dict[str, str], frozenset[str]]:
    """Splits of the design families: the chosen ones from the table, the others dealt among themselves.

    The table fixes the default build's families, so adding a family never moves another. When the
    table's families present do not fill all of train, valid and test (a small or foreign font set),
    it is not used and every family is dealt (:func:`assign_splits`). Families outside the table are
    dealt among themselves when there are at least 3 of them; one or two go to train.

    Args:
        families: design family -> style (one of STYLES).
        seed: the build seed (for the dealt families).
        chosen: design family -> split, the table (default DEFAULT_SPLITS).

    Returns:
        (design family -> "train" | "valid" | "test", the families whose split came from the table).

    Raises:
        DataError: the table is not used and fewer than 3 families are given (see assign_splits).
    """
    known = {f: chosen[f] for f in families if f in chosen}
    if set(known.values()) != {"train", *_HELD_OUT}:
        return assign_splits(families, seed), frozenset()
    rest = {f: s for f, s in families.items() if f not in chosen}
    dealt = assign_splits(rest, seed) if len(rest) >= 3 else dict.fromkeys(rest, "train")
    return {**known, **dealt}, frozenset(known)
