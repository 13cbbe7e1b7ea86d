"""glyphs-52/3's handwriting: the script font packages and the synthetic hands of the Hershey Script skeletons."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from glyphcore.data.fonts import FONT_PACKAGES, HERSHEY_FONTS, discover_fonts, hand_fonts
from glyphcore.data.hands import (
    HAND_ASPECT,
    HAND_COUNT,
    HAND_FAMILY,
    HAND_GAP_PX,
    HAND_PEN_PX,
    HAND_SHEAR,
    HAND_SKELETONS,
    HAND_WOBBLE_PX,
    hand,
)
from glyphcore.data.render import INK, ink_rows, render_font_set, render_letters
from glyphcore.frame import BASELINE_ROW, CAP_HEIGHT, CLASSES

SCRIPT_PACKAGES = {
    "fontpkg-great-vibes": "Great Vibes",
    "fontpkg-yellowtail": "Yellowtail",
    "fontpkg-zeyada": "Zeyada",
    "fontpkg-lobster": "Lobster",
    "fontpkg-lobster-two": "Lobster Two",
    "fontpkg-oleo-script": "Oleo Script",
}


def test_the_script_packages_render_all_52_letters_and_are_script():
    assert set(SCRIPT_PACKAGES) <= set(FONT_PACKAGES)
    found, _ = discover_fonts(("packages",))
    candidates = [f for f in found if f.package in SCRIPT_PACKAGES]
    rendered = render_font_set(candidates)
    assert rendered.skipped == [] and len(rendered.fonts) == len(candidates)
    assert {f.package: f.family for f in rendered.fonts} == SCRIPT_PACKAGES
    assert {f.style for f in rendered.fonts} == {"script"}  # also those the packages file as "display"
    assert rendered.images.shape[1] == len(CLASSES) and (rendered.images >= INK).sum(axis=(2, 3)).min() > 20


def test_hands_are_hershey_script_instances_drawn_from_the_script_skeletons_only():
    hands = hand_fonts()
    assert len(hands) == HAND_COUNT >= 24
    assert [h.name for h in hands[:2]] == ["Hershey Script hand 0", "Hershey Script hand 1"]
    assert {h.family for h in hands} == {HAND_FAMILY} == {HERSHEY_FONTS[s][0] for s in HAND_SKELETONS}
    assert {h.style for h in hands} == {"script"} and {h.source for h in hands} == {"hershey"}
    # Hershey Sans (futural) draws the held-out synthetic test drawings: never a hand's skeleton.
    assert {h.file for h in hands} == {f"hershey:{s}" for s in HAND_SKELETONS}
    default, _ = discover_fonts(("hershey",))
    assert [f for f in default if f.hand is not None] == hands


def test_each_hand_has_its_own_habits_within_the_stated_ranges():
    habits = [hand(seed) for seed in range(HAND_COUNT)]
    for h in habits:
        assert HAND_PEN_PX[0] <= h.pen_width <= HAND_PEN_PX[1]
        assert HAND_SHEAR[0] <= h.shear <= HAND_SHEAR[1] and HAND_ASPECT[0] <= h.aspect <= HAND_ASPECT[1]
        assert HAND_WOBBLE_PX[0] <= h.wobble_px <= HAND_WOBBLE_PX[1] and HAND_GAP_PX[0] <= h.gap_px <= HAND_GAP_PX[1]
    assert len({(h.pen_width, h.shear, h.aspect) for h in habits}) == HAND_COUNT
    shears = [h.shear for h in habits]
    assert min(shears) < 0.05 and max(shears) > 0.25  # upright-to-backhand and strongly slanted both occur


@pytest.fixture(scope="module")
def hand_renders():
    return [render_letters(f) for f in hand_fonts(4)]


def test_a_hand_renders_the_same_bytes_every_time(hand_renders):
    again = render_letters(hand_fonts(2)[1])
    assert again.tobytes() == hand_renders[1].tobytes()


def test_hands_differ_from_each_other_and_from_the_plain_skeleton(hand_renders):
    for i in range(len(hand_renders)):
        for j in range(i + 1, len(hand_renders)):
            diff = np.abs(hand_renders[i].astype(int) - hand_renders[j].astype(int)).mean(axis=(1, 2))
            assert (diff > 1.0).all(), (i, j, int(np.argmin(diff)))
    # The same skeleton with the same pen, without the hand's slant, wobble and gaps.
    plain = render_letters(dataclasses.replace(hand_fonts(1)[0], hand=None))
    assert (np.abs(plain.astype(int) - hand_renders[0].astype(int)).mean(axis=(1, 2)) > 1.0).all()


def test_hand_letters_stay_in_the_glyph_frame(hand_renders):
    # Capitals stand on the baseline and are about cap height tall, whatever the slant and wobble.
    for letters in hand_renders:
        for c in "HEMT":
            top, bottom = ink_rows(letters[CLASSES.index(c)])
            assert abs(bottom - BASELINE_ROW) <= 6 and abs(bottom - top + 1 - CAP_HEIGHT) <= 10, (c, top, bottom)
        for c in "acemnorsuvwx":  # x-height letters (a script z descends): on the baseline, well below the cap line
            top, bottom = ink_rows(letters[CLASSES.index(c)])
            assert abs(bottom - BASELINE_ROW) <= 6 and BASELINE_ROW - top < 0.8 * CAP_HEIGHT, (c, top, bottom)
