"""Synthetic handwriting ("hands"): Hershey skeletons drawn as many different writers would.

A hand is a seeded set of writing habits applied to the pen strokes of a Hershey skeleton (see
``HERSHEY_FONTS`` in :mod:`glyphcore.data.fonts`). The default build has two sets of hands
(``HAND_SETS``): joined-up script (``cursive``, ``scriptc``: single-storey a and g, looped y) and
print (``timesr``, upright, two-storey a and g; ``timesi``, its italic, single-storey a and g): the
same letters in two constructions, written by hand. The habits:

- pen width (HAND_PEN_PX px at the glyph frame's cap height);
- slant (a shear of x by ``shear`` times the height above the baseline) and aspect (x scaled);
- wobble: a smooth, low-frequency displacement of every stroke point (a few px; a different field
  for each letter, so a hand's letters do not all bend alike);
- strokes that do not quite meet: each stroke moved by up to ``gap_px`` px and its ends trimmed.

Each hand is a font instance of its skeleton's design family (named like "Hershey Script hand 7" or
"Hershey Times hand 40"), so hands go wherever that family goes and splits stay disjoint by design
family. The same seed gives the same strokes, hence the same bytes. The sans skeleton
(``futural``/``rowmans``) is never a hand's: it draws the synthetic test drawings of
:mod:`glyphcore.testing` and stays held out.

This module knows nothing of fonts or images: it maps stroke lists to stroke lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "HAND_FAMILY",
    "HAND_SKELETONS",
    "HAND_COUNT",
    "HAND_SETS",
    "HandSet",
    "HAND_PEN_PX",
    "HAND_SHEAR",
    "HAND_ASPECT",
    "HAND_WOBBLE_PX",
    "HAND_GAP_PX",
    "Hand",
    "hand",
    "hand_set",
    "hand_name",
    "hand_strokes",
    "resample_polyline",
]


@dataclass(frozen=True)
class HandSet:
    """``count`` hands of one design family, numbered on from the sets before it in ``HAND_SETS``;
    hand k writes ``skeletons[k % len(skeletons)]``."""

    family: str
    skeletons: tuple[str, ...]
    count: int


# The hands of the default build: 32 script writers (0-31) and 32 print writers (32-63), 52 letters each.
HAND_SETS: tuple[HandSet, ...] = (
    HandSet("Hershey Script", ("cursive", "scriptc"), 32),
    HandSet("Hershey Times", ("timesr", "timesi"), 32),
)
HAND_FAMILY, HAND_SKELETONS = HAND_SETS[0].family, HAND_SETS[0].skeletons  # the script hands
HAND_COUNT = sum(s.count for s in HAND_SETS)
# Ranges of the habits, each drawn uniformly per hand (px at the frame's 60 px cap height).
HAND_PEN_PX = (2.5, 8.0)
HAND_SHEAR = (-0.1, 0.35)  # x shift per unit of height above the baseline: backhand to strong slant
HAND_ASPECT = (0.8, 1.2)  # width scale
HAND_WOBBLE_PX = (1.0, 3.5)  # largest displacement of a stroke point
HAND_WOBBLE_PERIOD_PX = (45.0, 110.0)  # wavelength of the wobble: smooth over a letter, never a zigzag
HAND_GAP_PX = (0.5, 2.5)  # how far apart strokes that should meet end up
_STEP_PX = 1.5  # strokes are resampled to points this far apart before the wobble bends them
_WAVES = 2  # sine waves summed per axis of the wobble field


@dataclass(frozen=True)
class Hand:
    """The writing habits of one synthetic hand.

    Attributes:
        seed: the hand's number; the same seed gives the same hand.
        skeleton: the Hershey font whose strokes it writes (one of HAND_SKELETONS).
        pen_width: pen width in px at the frame's cap height.
        shear: slant, x shift per unit of height above the baseline (positive leans right).
        aspect: width scale of the letters.
        wobble_px: largest displacement of a stroke point by the wobble, px.
        gap_px: largest shift of a stroke away from where it should meet the others, px.
    """

    seed: int
    skeleton: str
    pen_width: float
    shear: float
    aspect: float
    wobble_px: float
    gap_px: float


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(round(rng.uniform(*bounds), 2))


def hand_set(seed: int) -> HandSet:
    """The set hand ``seed`` belongs to (seeds past the last set write as the last set's hands)."""
    end = 0
    for s in HAND_SETS:
        end += s.count
        if int(seed) < end:
            return s
    return HAND_SETS[-1]


def hand(seed: int) -> Hand:
    """The hand of number ``seed`` (deterministic; any int >= 0)."""
    rng = np.random.default_rng([int(seed), 0x4A4D])
    skeletons = hand_set(seed).skeletons
    return Hand(
        seed=int(seed),
        skeleton=skeletons[int(seed) % len(skeletons)],
        pen_width=_uniform(rng, HAND_PEN_PX),
        shear=_uniform(rng, HAND_SHEAR),
        aspect=_uniform(rng, HAND_ASPECT),
        wobble_px=_uniform(rng, HAND_WOBBLE_PX),
        gap_px=_uniform(rng, HAND_GAP_PX),
    )


def hand_name(seed: int) -> str:
    """The font instance name of a hand: "Hershey Script hand 7"."""
    return f"{hand_set(seed).family} hand {int(seed)}"


def resample_polyline(stroke: np.ndarray, step: float) -> np.ndarray:
    """Points along a polyline (K x 2) no more than ``step`` apart, keeping its corners (a pen's path
    as a mouse or a hand reports it: the synthetic drawings of :mod:`glyphcore.testing` use it too)."""
    out = [stroke[:1]]
    for a, b in zip(stroke[:-1], stroke[1:]):
        n = max(1, int(np.ceil(np.hypot(*(b - a)) / step)))
        t = np.arange(1, n + 1, dtype=np.float64)[:, None] / n
        out.append(a + t * (b - a))
    return np.concatenate(out)


def _wobble(rng: np.random.Generator, amplitude: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A smooth displacement field: per axis, _WAVES sine waves of random direction, wavelength and
    phase, weighted to sum to at most ``amplitude`` px. Returns (directions, wavenumbers, phases, weights)."""
    angles = rng.uniform(0, 2 * np.pi, (2, _WAVES))
    dirs = np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # 2 axes x waves x 2
    k = 2 * np.pi / rng.uniform(*HAND_WOBBLE_PERIOD_PX, (2, _WAVES))  # radians per px
    phases = rng.uniform(0, 2 * np.pi, (2, _WAVES))
    weights = rng.uniform(0.5, 1.0, (2, _WAVES))
    weights *= amplitude / weights.sum(axis=1, keepdims=True)
    return dirs, k, phases, weights


def hand_strokes(
    strokes: list[list[tuple[float, float]]], h: Hand, letter: str, px_per_unit: float, baseline: float
) -> list[list[tuple[float, float]]]:
    """The strokes of one letter as hand ``h`` writes them.

    Args:
        strokes: the skeleton's strokes in font units (y grows downwards), each a list of (x, y).
        h: the hand.
        letter: the letter drawn (seeds its own wobble and gaps, with the hand's seed).
        px_per_unit: the render's scale, px per font unit (the habits are set in px).
        baseline: y of the baseline in font units (the slant pivots there).

    Returns:
        The strokes in font units, resampled, slanted, wobbled and pulled apart.
    """
    rng = np.random.default_rng([h.seed, ord(letter), 0x57])
    dirs, k, phases, weights = _wobble(rng, h.wobble_px)
    step = _STEP_PX / px_per_unit
    out = []
    for stroke in strokes:
        p = np.asarray(stroke, np.float64).reshape(-1, 2)
        if len(p) == 0:
            continue
        p = resample_polyline(p, step) if len(p) > 1 else p
        x = p[:, 0] * h.aspect + h.shear * (baseline - p[:, 1])
        px = np.stack([x, p[:, 1]], axis=1) * px_per_unit  # px from here on
        phase = px @ dirs.reshape(-1, 2).T  # N x (2 * waves)
        waves = np.sin(phase * k.reshape(-1) + phases.reshape(-1)) * weights.reshape(-1)
        px = px + waves.reshape(len(px), 2, _WAVES).sum(axis=2)
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0, h.gap_px)
        px = px + dist * np.array([np.cos(angle), np.sin(angle)])
        trim = int(rng.uniform(0, h.gap_px) / _STEP_PX + 0.5)  # points dropped at each end
        if trim and len(px) > 4 * trim + 2:  # short strokes (dots, ticks) keep their length
            px = px[trim:-trim]
        out.append([(float(a), float(b)) for a, b in px / px_per_unit])
    return out
