"""glyphs-52's handwriting: the script font packages and the synthetic hands (script and print skeletons)."""

from __future__ import annotations

import collections
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
    HAND_SETS,
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


def test_hands_are_instances_of_their_skeletons_family_and_never_of_the_sans_skeleton():
    hands = hand_fonts()
    assert len(hands) == HAND_COUNT == sum(s.count for s in HAND_SETS) >= 48
    assert [h.name for h in hands[:2]] == ["Hershey Script hand 0", "Hershey Script hand 1"]
    assert hands[32].name == "Hershey Times hand 32"
    first = 0
    for s in HAND_SETS:
        mine, first = hands[first : first + s.count], first + s.count
        assert {h.family for h in mine} == {s.family} == {HERSHEY_FONTS[k][0] for k in s.skeletons}
        assert {h.file for h in mine} == {f"hershey:{k}" for k in s.skeletons}
    assert (HAND_FAMILY, HAND_SKELETONS) == ("Hershey Script", ("cursive", "scriptc"))
    assert {h.style for h in hands} == {"script", "stroke"} and {h.source for h in hands} == {"hershey"}
    # Hershey Sans (futural, rowmans) draws the held-out synthetic test drawings: never a hand's skeleton.
    assert "Hershey Sans" not in {h.family for h in hands}
    default, _ = discover_fonts(("hershey",))
    assert [f for f in default if f.hand is not None] == hands


def _counters(img: np.ndarray, min_px: int = 6) -> int:
    """Enclosed white regions of a glyph (its counters: 2 for a B), ignoring specks under ``min_px``."""
    bg = np.pad(img < INK, 1, constant_values=True)
    seen, (h, w), count = np.zeros_like(bg), bg.shape, 0
    for sy, sx in np.argwhere(bg):
        if seen[sy, sx]:
            continue
        queue, seen[sy, sx], n, border = collections.deque([(sy, sx)]), True, 0, False
        while queue:
            y, x = queue.popleft()
            n, border = n + 1, border or y in (0, h - 1) or x in (0, w - 1)
            for v, u in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= v < h and 0 <= u < w and bg[v, u] and not seen[v, u]:
                    seen[v, u] = True
                    queue.append((v, u))
        count += not border and n >= min_px
    return count


@pytest.mark.slow
def test_the_print_hands_write_g_in_both_constructions():
    """Upright Times hands write a two-storey g (a closed lower loop: two counters), italic ones a
    single-storey g (one counter, an open tail), so handwritten print has both forms in training."""
    counters: dict[str, list[int]] = {"hershey:timesr": [], "hershey:timesi": []}
    for f in hand_fonts()[32:48]:
        counters[f.file].append(_counters(render_letters(f)[CLASSES.index("g")]))
    upright, italic = counters["hershey:timesr"], counters["hershey:timesi"]
    assert len(upright) == len(italic) == 8
    assert sum(n >= 2 for n in upright) >= 7 and sum(n == 1 for n in italic) >= 6, (upright, italic)


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
    """Two script hands and two print hands."""
    return [render_letters(f) for f in hand_fonts()[30:34]]


def test_a_hand_renders_the_same_bytes_every_time(hand_renders):
    again = render_letters(hand_fonts()[31])
    assert again.tobytes() == hand_renders[1].tobytes()


def test_hands_differ_from_each_other_and_from_the_plain_skeleton(hand_renders):
    for i in range(len(hand_renders)):
        for j in range(i + 1, len(hand_renders)):
            diff = np.abs(hand_renders[i].astype(int) - hand_renders[j].astype(int)).mean(axis=(1, 2))
            assert (diff > 1.0).all(), (i, j, int(np.argmin(diff)))
    # The same skeleton with the same pen, without the hand's slant, wobble and gaps.
    for i in (0, 2):
        plain = render_letters(dataclasses.replace(hand_fonts()[30 + i], hand=None))
        assert (np.abs(plain.astype(int) - hand_renders[i].astype(int)).mean(axis=(1, 2)) > 1.0).all()


def test_hand_letters_stay_in_the_glyph_frame(hand_renders):
    # Capitals stand on the baseline and are about cap height tall, whatever the slant and wobble.
    for letters in hand_renders:
        for c in "HEMT":
            top, bottom = ink_rows(letters[CLASSES.index(c)])
            assert abs(bottom - BASELINE_ROW) <= 6 and abs(bottom - top + 1 - CAP_HEIGHT) <= 10, (c, top, bottom)
        for c in "acemnorsuvwx":  # x-height letters (a script z descends): on the baseline, well below the cap line
            top, bottom = ink_rows(letters[CLASSES.index(c)])
            assert abs(bottom - BASELINE_ROW) <= 6 and BASELINE_ROW - top < 0.8 * CAP_HEIGHT, (c, top, bottom)
