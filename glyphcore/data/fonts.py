"""Font discovery for glyphs-52: which fonts exist, what design family and style each belongs to.

Four sources, all offline:

- ``streamlit``: the fonts inside the Streamlit wheel (``static/static/media/*.woff2``): KaTeX faces and
  the Source Sans / Serif / Code variable fonts, of which a few named weights become separate instances;
- ``pillow``: Pillow's own default font (Aileron, a real FreeType font in Pillow >= 10.1);
- ``system``: the machine's font folders (Linux, macOS, Windows);
- ``hershey``: the single-stroke Hershey fonts (PyPI ``Hershey-Fonts``), drawn as pen strokes of
  several widths, the closest thing to a mouse drawing.

This module only lists candidates (:class:`FontInstance`) and opens them. Whether a candidate is used
is decided by the 52-letter render check in :mod:`glyphcore.data.render`. Symbol, math, icon and
blackletter faces never become candidates (the deny-list); they are reported as skipped with a reason.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from glyphcore.errors import DataError

__all__ = [
    "FontInstance",
    "SkippedFont",
    "STYLES",
    "FONT_SOURCES",
    "HERSHEY_FONTS",
    "system_font_dirs",
    "streamlit_font_dir",
    "discover_fonts",
    "sample_fonts",
    "denied_reason",
    "design_family",
    "style_of",
    "open_truetype",
    "load_hershey",
]

# Style categories: splits are stratified by these, so every split gets a mix.
STYLES: tuple[str, ...] = ("sans", "serif", "mono", "script", "stroke")
FONT_SOURCES: tuple[str, ...] = ("streamlit", "pillow", "system", "hershey")

FONT_EXTENSIONS = (".ttf", ".otf", ".ttc", ".otc", ".woff", ".woff2")
MAX_FACES_PER_COLLECTION = 16  # a .ttc rarely holds more designs than this worth rendering

# Named instances taken from each variable font: six weight stops span hairline to black strokes
# (the build weights families by the square root of their size, so they do not crowd out the rest).
VARIABLE_WEIGHTS: tuple[str, ...] = ("ExtraLight", "Light", "Regular", "Semibold", "Bold", "Black")

# Hershey fonts with a full Latin alphabet, and the design each draws. Several built-in names are
# the same strokes under another name (rowmans == futural, rowmand == futuram, rowmant == timesrb,
# scripts == cursive, music == timesi, meteorology == futural, astrology mixes timesrb/timesib):
# only one copy of each design is kept, so no design leaks across splits.
# name -> (design family, style, pen widths in px at the glyph frame's cap height)
HERSHEY_FONTS: dict[str, tuple[str, str, tuple[float, ...]]] = {
    "futural": ("Hershey Sans", "stroke", (3.0, 5.5, 8.0)),  # simplex: one line per stroke
    "futuram": ("Hershey Sans", "stroke", (2.5, 4.5)),  # duplex: two parallel lines
    "timesr": ("Hershey Times", "stroke", (2.0, 4.0)),
    "timesrb": ("Hershey Times", "stroke", (2.0, 4.0)),
    "timesi": ("Hershey Times", "stroke", (2.0, 4.0)),
    "timesib": ("Hershey Times", "stroke", (2.0, 4.0)),
    "cursive": ("Hershey Script", "script", (3.0, 5.5, 8.0)),
    "scriptc": ("Hershey Script", "script", (2.5, 4.5)),
}
HERSHEY_DENIED_REASON = "Hershey non-Latin, symbol, blackletter or duplicate design"

# Symbol, math, icon, emoji and blackletter faces: their letters are not the letters the classes mean.
_DENY = re.compile(
    r"KaTeX_?(AMS|Math|Size\d|Fraktur)|Material ?(Symbols|Icons)|MaterialSymbols|Math|Symbol|Emoji|"
    r"Dingbat|Wingding|Webdings|Marlett|Fraktur|Blackletter|Old ?English|Textura|Braille|Ornament|"
    r"Awesome|Icons?\b|Gothic ?(English|German|Italian)",
    re.IGNORECASE,
)

# Words in a face's family name that name a member of a design family, not a design of its own.
_STYLE_WORDS = re.compile(
    r"\b(Narrow|Condensed|SemiCondensed|Semi ?Condensed|Extra ?Condensed|Ultra ?Condensed|Compressed|"
    r"Expanded|Extended|Wide|Thin|Hairline|Extra ?Light|Ultra ?Light|Light|Book|Regular|Normal|Medium|"
    r"Semi ?Bold|Demi ?Bold|Demi|Bold|Extra ?Bold|Ultra ?Bold|Black|Heavy|Italic|Oblique|VF|Variable)\b",
    re.IGNORECASE,
)

# Families of the Streamlit wheel whose internal names are not readable design names.
_KNOWN_FAMILIES = {
    "SourceSans3VF": "Source Sans 3",
    "SourceCodeVF": "Source Code Pro",
    "Source Serif 4 Variable": "Source Serif 4",
    "Aileron": "Aileron",
}


@dataclass(frozen=True)
class FontInstance:
    """One concrete face that renders the 52 letters: a file (+ face index / named variation) or a
    Hershey font at one pen width.

    Attributes:
        name: unique human name, e.g. "DejaVu Sans Bold Oblique", "Hershey futural 5.5px".
        family: design family; bold/italic/weights/condensed of one design share it, and splits
            are disjoint by it.
        style: one of STYLES.
        source: one of FONT_SOURCES.
        file: font file path, ``"pillow:default"`` or ``"hershey:<name>"``.
        index: face index inside a collection (.ttc), else 0.
        variation: named instance of a variable font (e.g. "Semibold Italic"), else None.
        pen_width: Hershey pen width in px at the frame's cap height, else None.
    """

    name: str
    family: str
    style: str
    source: str
    file: str
    index: int = 0
    variation: str | None = None
    pen_width: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SkippedFont:
    """A font file or instance left out of the build, and why (shown by ``data info`` and the build)."""

    name: str
    file: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def system_font_dirs() -> list[Path]:
    """The usual font folders of Linux, macOS and Windows that exist on this machine."""
    home = Path.home()
    dirs = [
        Path("/usr/share/fonts"),
        Path("/usr/local/share/fonts"),
        home / ".fonts",
        home / ".local" / "share" / "fonts",
        Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "fonts",
        Path("/Library/Fonts"),
        Path("/System/Library/Fonts"),
        home / "Library" / "Fonts",
    ]
    if sys.platform.startswith("win") or os.environ.get("WINDIR"):
        dirs.append(Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts")
        if os.environ.get("LOCALAPPDATA"):
            dirs.append(Path(os.environ["LOCALAPPDATA"]) / "Microsoft" / "Windows" / "Fonts")
    seen: set[Path] = set()
    out = []
    for d in dirs:
        r = d.resolve() if d.exists() else None
        if r is not None and r.is_dir() and r not in seen:
            seen.add(r)
            out.append(d)
    return out


def streamlit_font_dir() -> Path | None:
    """``streamlit/static/static/media`` of the installed Streamlit wheel, or None without it.

    Found through the package's spec, so importing streamlit (slow, and forbidden in glyphcore) is
    not needed.
    """
    import importlib.util

    spec = importlib.util.find_spec("streamlit")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        media = Path(loc) / "static" / "static" / "media"
        if media.is_dir():
            return media
    return None


def denied_reason(name: str) -> str | None:
    """Why a face is on the deny-list (symbol, math, icon, emoji, blackletter), or None if allowed."""
    m = _DENY.search(name)
    return f"deny-list: symbol, math, icon or blackletter face ({m.group(0)!r})" if m else None


def design_family(family_name: str) -> str:
    """Design family of a face from its family name: "DejaVu Sans Condensed" -> "DejaVu Sans",
    "Liberation Sans Narrow" -> "Liberation Sans", "KaTeX_Main" -> "KaTeX Main"."""
    if family_name in _KNOWN_FAMILIES:
        return _KNOWN_FAMILIES[family_name]
    name = family_name.replace("_", " ")
    stripped = re.sub(r"\s+", " ", _STYLE_WORDS.sub(" ", name)).strip()
    return stripped or name.strip()


def style_of(family: str) -> str:
    """Style category (one of STYLES) of a design family, from its name."""
    f = family.lower()
    if re.search(r"mono|code|typewriter|courier|consol|console|terminal|fixed", f):
        return "mono"
    if re.search(r"script|caligraph|calligraph|cursive|hand|brush|chancery|comic", f):
        return "script"
    if "sans" in f:
        return "sans"
    if re.search(r"serif|times|roman|georgia|garamond|baskerville|bodoni|book|katex main|cambria|"
                 r"palatino|century|schoolbook|charter|caslon|minion|didot", f):
        return "serif"
    return "sans"


def open_truetype(inst: FontInstance, size: float):
    """Open a FreeType font instance at ``size`` px (em size), with its named variation set.

    Raises:
        DataError: the file cannot be loaded as a font (the message names the file).
    """
    from PIL import ImageFont

    try:
        if inst.file == "pillow:default":
            font = ImageFont.load_default(size=size)
            if not isinstance(font, ImageFont.FreeTypeFont):
                raise OSError("Pillow was built without FreeType: its default font is a bitmap")
        else:
            font = ImageFont.truetype(inst.file, size=size, index=inst.index,
                                      layout_engine=ImageFont.Layout.BASIC)
        if inst.variation is not None:
            font.set_variation_by_name(inst.variation)
    except Exception as e:  # FreeType raises OSError/ValueError for broken or foreign files
        raise DataError(f"font {inst.file!r} ({inst.name}) failed to load: {e}; expected a TrueType/"
                        "OpenType/WOFF font file") from e
    return font


_HERSHEY_SOURCES: dict[str, list[str]] = {}


def load_hershey(name: str):
    """A ``HersheyFonts`` object with the built-in Hershey font ``name`` loaded.

    The package unpacks its whole compressed archive for every font it loads; the archive is read
    once here and each font's text is kept, so the build loads eight fonts for the price of one.
    """
    try:
        from HersheyFonts import HersheyFonts
    except ImportError as e:  # declared in requirements.txt, but keep the build usable without it
        raise DataError("the Hershey-Fonts package is missing: pip install Hershey-Fonts") from e
    font = HersheyFonts()
    if not _HERSHEY_SOURCES:
        try:
            import io
            import tarfile

            raw = font._HersheyFonts__get_compressed_font_bytes()  # private: guarded below
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r") as tar:
                for member in tar.getmembers():
                    f = tar.extractfile(member)
                    if f is not None:
                        _HERSHEY_SOURCES[member.name] = f.read().decode("utf-8").splitlines(True)
        except Exception:  # another package version: fall back to its public loader
            _HERSHEY_SOURCES.clear()
    if name in _HERSHEY_SOURCES:
        font.read_from_string_lines(_HERSHEY_SOURCES[name])
    else:
        font.load_default_font(name)
    return font


def _variation_names(font) -> list[str]:
    try:
        names = font.get_variation_names()
    except Exception:  # not a variable font
        return []
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _faces_of_file(path: Path, source: str, skipped: list[SkippedFont]) -> list[FontInstance]:
    """Candidate instances of one font file: each face of a collection, each chosen named weight
    of a variable font. A file that fails to load is recorded in ``skipped``, never raised."""
    from PIL import ImageFont

    out: list[FontInstance] = []
    n_faces = MAX_FACES_PER_COLLECTION if path.suffix.lower() in (".ttc", ".otc") else 1
    for index in range(n_faces):
        try:
            font = ImageFont.truetype(str(path), size=32, index=index,
                                      layout_engine=ImageFont.Layout.BASIC)
        except Exception as e:
            if index == 0:
                skipped.append(SkippedFont(path.name, str(path), f"failed to load: {e}"))
            break  # past the last face of a collection
        fam_name, sub = font.getname()
        fam_name, sub = fam_name or path.stem, sub or "Regular"
        label = f"{fam_name} {sub}"
        reason = denied_reason(fam_name) or denied_reason(path.name)
        if reason:
            skipped.append(SkippedFont(label, str(path), reason))
            continue
        family = design_family(fam_name)
        style = style_of(family)
        variations = _variation_names(font)
        if variations:
            chosen = _pick_variations(variations)
            for v in chosen:
                out.append(FontInstance(f"{family} {v}", family, style, source, str(path), index, v))
        else:
            out.append(FontInstance(f"{fam_name.replace('_', ' ')} {sub}", family, style, source,
                                    str(path), index))
    return out


def _pick_variations(names: list[str]) -> list[str]:
    """The named instances of a variable font to use: VARIABLE_WEIGHTS (with " Italic" in an italic
    file), at the default optical size; all names when none of those exist."""
    italic = any("italic" in n.lower() for n in names)
    wanted = []
    for w in VARIABLE_WEIGHTS:
        if italic:
            wanted.append("Italic" if w == "Regular" else f"{w} Italic")
        else:
            wanted.append(w)
    chosen = [n for n in wanted if n in names]
    return chosen or names


def _hershey_candidates(skipped: list[SkippedFont]) -> list[FontInstance]:
    try:
        from HersheyFonts import HersheyFonts
    except ImportError:
        skipped.append(SkippedFont("Hershey fonts", "hershey:*", "the Hershey-Fonts package is not installed"))
        return []
    out = []
    for name in HersheyFonts().default_font_names:
        if name not in HERSHEY_FONTS:
            skipped.append(SkippedFont(f"Hershey {name}", f"hershey:{name}", HERSHEY_DENIED_REASON))
            continue
        family, style, widths = HERSHEY_FONTS[name]
        for w in widths:
            out.append(FontInstance(f"Hershey {name} {w:g}px", family, style, "hershey",
                                    f"hershey:{name}", 0, None, w))
    return out


def discover_fonts(
    sources: tuple[str, ...] | list[str] = FONT_SOURCES,
    font_dirs: list[str | Path] | None = None,
) -> tuple[list[FontInstance], list[SkippedFont]]:
    """List the candidate font instances of this machine, in a deterministic order.

    Args:
        sources: which of FONT_SOURCES to look in.
        font_dirs: folders searched for the ``system`` source (recursively); default: the machine's
            usual font folders (:func:`system_font_dirs`).

    Returns:
        (candidates, skipped): candidates still have to pass the render check
        (:func:`glyphcore.data.render.render_font_set`); skipped lists denied or unloadable files.
    """
    unknown = set(sources) - set(FONT_SOURCES)
    if unknown:
        raise DataError(f"unknown font source(s) {sorted(unknown)}: expected some of {list(FONT_SOURCES)}")
    skipped: list[SkippedFont] = []
    out: list[FontInstance] = []
    if "streamlit" in sources:
        media = streamlit_font_dir()
        if media is None:
            skipped.append(SkippedFont("Streamlit fonts", "streamlit", "streamlit is not installed"))
        else:
            for p in sorted(media.iterdir()):
                if p.suffix.lower() in FONT_EXTENSIONS:
                    out += _faces_of_file(p, "streamlit", skipped)
    if "pillow" in sources:
        out.append(FontInstance("Aileron Regular (Pillow default)", "Aileron", "sans", "pillow",
                                "pillow:default"))
    if "system" in sources:
        dirs = system_font_dirs() if font_dirs is None else [Path(d) for d in font_dirs]
        files: list[Path] = []
        seen: set[Path] = set()
        for d in dirs:
            if not Path(d).is_dir():
                raise DataError(f"font folder {str(d)!r} does not exist: expected a folder of "
                                ".ttf/.otf/.ttc/.woff2 files")
            for p in sorted(Path(d).rglob("*")):
                if p.suffix.lower() in FONT_EXTENSIONS and p.is_file():
                    r = p.resolve()
                    if r not in seen:
                        seen.add(r)
                        files.append(p)
        for p in files:
            out += _faces_of_file(p, "system", skipped)
    if "hershey" in sources:
        out += _hershey_candidates(skipped)
    # The same design installed twice (e.g. DejaVu in two folders) must not appear in two splits.
    unique: dict[str, FontInstance] = {}
    for inst in out:
        if inst.name in unique:
            skipped.append(SkippedFont(inst.name, inst.file, f"duplicate of {unique[inst.name].file}"))
        else:
            unique[inst.name] = inst
    return list(unique.values()), skipped


# A small, fixed font set found on every install (no system fonts): tests and quick previews.
SAMPLE_FONT_NAMES: tuple[str, ...] = (
    "Aileron Regular (Pillow default)",
    "KaTeX Main Regular",
    "KaTeX Main Bold",
    "KaTeX SansSerif Regular",
    "KaTeX SansSerif Italic",
    "KaTeX Typewriter Regular",
    "Source Code Pro Regular",
    "Hershey futural 3px",
    "Hershey futural 5.5px",
    "Hershey timesr 2px",
    "Hershey cursive 3px",
)


def sample_fonts() -> list[FontInstance]:
    """SAMPLE_FONT_NAMES as candidates: 11 instances of 7 design families of every style, from the
    Streamlit wheel, Pillow and Hershey-Fonts only (so the same on every machine)."""
    found, _ = discover_fonts(("streamlit", "pillow", "hershey"))
    by_name = {f.name: f for f in found}
    missing = [n for n in SAMPLE_FONT_NAMES if n not in by_name]
    if missing:
        raise DataError(f"sample fonts {missing} not found: expected streamlit, Pillow >= 10.1 and "
                        "Hershey-Fonts to be installed")
    return [by_name[n] for n in SAMPLE_FONT_NAMES]
