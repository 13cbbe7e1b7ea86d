"""The glyph frame, the 52-letter render check, the deny-list and font discovery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glyphcore.data.fonts import (
    FontInstance,
    design_family,
    discover_fonts,
    sample_fonts,
    streamlit_font_dir,
    style_of,
)
from glyphcore.data.render import FontCheckError, ink_cols, ink_rows, render_font_set, render_glyph, render_letters
from glyphcore.errors import DataError
from glyphcore.frame import BASELINE_ROW, CAP_ROW, CLASSES, FRAME_SIZE, X_HEIGHT_ROW


def _streamlit_font(prefix: str) -> str:
    media = streamlit_font_dir()
    assert media is not None, "the streamlit wheel's fonts are needed (streamlit is a runtime dependency)"
    return str(next(p for p in sorted(media.iterdir()) if p.name.startswith(prefix)))


def _by_name(name: str) -> FontInstance:
    return next(f for f in sample_fonts() if f.name == name)


# One TrueType face from the Streamlit wheel, Pillow's own font, and a Hershey stroke font.
FRAME_FONTS = ["KaTeX Main Regular", "Aileron Regular (Pillow default)", "Hershey futural 5.5px"]


@pytest.mark.parametrize("name", FRAME_FONTS)
def test_capitals_fill_the_cap_box_and_sit_on_the_baseline(name):
    h = render_glyph(_by_name(name), "H")
    assert h.shape == (FRAME_SIZE, FRAME_SIZE) and h.dtype == np.uint8
    top, bottom = ink_rows(h)
    assert abs(top - CAP_ROW) <= 2
    assert abs((bottom + 1) - BASELINE_ROW) <= 2  # the ink ends on the row above the baseline
    left, right = ink_cols(h)
    assert abs((left + right + 1) / 2 - FRAME_SIZE / 2) <= 1  # centred on its ink
    assert h[0].max() == 0 and h[:, 0].max() == 0  # white on black


@pytest.mark.parametrize("name", FRAME_FONTS)
def test_lowercase_keeps_its_size_and_sits_on_the_baseline(name):
    x = render_glyph(_by_name(name), "x")
    top, bottom = ink_rows(x)
    assert abs((bottom + 1) - BASELINE_ROW) <= 2
    assert top > CAP_ROW + 10  # x-height letters stay small: never scaled to the ink box
    assert abs(top - X_HEIGHT_ROW) <= 12  # near the x-height guide (faces differ a little)
    o, big_o = render_glyph(_by_name(name), "o"), render_glyph(_by_name(name), "O")
    assert ink_rows(o)[1] - ink_rows(o)[0] < 0.85 * (ink_rows(big_o)[1] - ink_rows(big_o)[0])
    g = render_glyph(_by_name(name), "g")
    assert ink_rows(g)[1] > BASELINE_ROW + 5  # the descender goes below the baseline


def test_a_font_that_lacks_latin_letters_fails_the_check():
    size1 = FontInstance("KaTeX Size1 Regular", "KaTeX Size1", "serif", "streamlit", _streamlit_font("KaTeX_Size1"))
    with pytest.raises(FontCheckError, match="letter"):
        render_letters(size1)


def test_caps_only_face_fails_the_check():
    # KaTeX Caligraphic has capitals only: its lowercase code points give the .notdef box.
    cal = FontInstance(
        "KaTeX Caligraphic Regular",
        "KaTeX Caligraphic",
        "script",
        "streamlit",
        _streamlit_font("KaTeX_Caligraphic-Regular"),
    )
    with pytest.raises(FontCheckError, match="'a'"):
        render_letters(cal)


def test_render_font_set_keeps_good_fonts_and_reports_bad_ones(tmp_path):
    broken = tmp_path / "Broken-Regular.ttf"
    broken.write_bytes(b"this is not a font" * 10)
    good = _by_name("KaTeX Main Regular")
    lacking = FontInstance("KaTeX Size1 Regular", "KaTeX Size1", "serif", "streamlit", _streamlit_font("KaTeX_Size1"))
    unloadable = FontInstance("Broken Regular", "Broken", "sans", "system", str(broken))
    result = render_font_set([good, lacking, unloadable])
    assert result.fonts == [good]
    assert result.images.shape == (1, len(CLASSES), FRAME_SIZE, FRAME_SIZE)
    reasons = {s.name: s.reason for s in result.skipped}
    assert "lacks" in reasons["KaTeX Size1 Regular"] or "missing-glyph" in reasons["KaTeX Size1 Regular"]
    assert "failed to load" in reasons["Broken Regular"] and str(broken) in reasons["Broken Regular"]


def test_discovery_skips_unloadable_files_and_denied_faces_with_a_reason(tmp_path):
    (tmp_path / "Garbage.ttf").write_bytes(b"\x00\x01garbage")
    fonts, skipped = discover_fonts(("streamlit", "hershey"), font_dirs=[tmp_path])
    reasons = {Path(s.file).name if "/" in s.file else s.file: s.reason for s in skipped}
    assert "failed to load" in reasons["Garbage.ttf"]
    denied = " ".join(s.name for s in skipped if "deny-list" in s.reason)
    for face in ("KaTeX_AMS", "KaTeX_Math", "KaTeX_Size1", "KaTeX_Fraktur", "Material Symbols"):
        assert face in denied
    hershey_skipped = {s.file for s in skipped if s.file.startswith("hershey:")}
    assert {"hershey:gothiceng", "hershey:greek", "hershey:japanese", "hershey:markers"} <= hershey_skipped
    names = {f.family for f in fonts}
    assert not any("Fraktur" in n or "Math" in n for n in names)


def test_missing_font_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        discover_fonts(("system",), font_dirs=[tmp_path / "nope"])


def test_design_families_group_weights_and_widths():
    assert design_family("DejaVu Sans") == "DejaVu Sans"
    assert design_family("Liberation Sans Narrow") == "Liberation Sans"
    assert design_family("Noto Serif Condensed Light") == "Noto Serif"
    assert design_family("KaTeX_Main") == "KaTeX Main"
    assert design_family("SourceSans3VF") == "Source Sans 3"
    assert style_of("DejaVu Sans Mono") == "mono"
    assert style_of("KaTeX SansSerif") == "sans"
    assert style_of("Source Serif 4") == "serif"
    assert style_of("KaTeX Main") == "serif"
