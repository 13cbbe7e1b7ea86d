"""Font discovery for glyphs-52: which fonts exist, what design family and style each belongs to.

Five sources, all offline. The first four come with declared, pinned Python packages, so the same
seed gives the same data set on every machine; they are the default (DEFAULT_FONT_SOURCES):

- ``streamlit``: the fonts inside the Streamlit wheel (``static/static/media/*.woff2``): KaTeX faces and
  the Source Sans / Serif / Code variable fonts, of which a few named weights become separate instances;
- ``pillow``: Pillow's own default font (Aileron, a real FreeType font in Pillow >= 10.1);
- ``packages``: the open-licence font packages of FONT_PACKAGES (one design family each, from the
  Google Fonts collection, packaged by fontpkg), found through their installed files
  (``importlib.metadata``), never through a hard-coded path;
- ``hershey``: the single-stroke Hershey fonts (PyPI ``Hershey-Fonts``), drawn as pen strokes of
  several widths, the closest thing to a mouse drawing;

and one opt-in, recorded in the manifest because it differs between machines:

- ``system``: the machine's font folders (Linux, macOS, Windows), and any folder given as ``font_dirs``.

The design family and the weight/slant of a face come from the font itself: FreeType's family and
style names (the name table's typographic family, ID 16, before the legacy family, ID 1), and a
variable font's named instances. The style category (STYLES) comes from the package's own category
when it has one, from measured advance widths for monospaced faces, and from the family name last.

This module only lists candidates (:class:`FontInstance`) and opens them. Whether a candidate is used
is decided by the 52-letter render check in :mod:`glyphcore.data.render`. Symbol, math, icon and
blackletter faces never become candidates (the deny-list); they are reported as skipped with a reason.

Why one module of about 700 lines: a third of it is the tables (the font packages, the deny-list, the
style words), and the rest applies them; every source's discovery is a dozen lines that go through the
same naming rules (design family, style, weight, deny-list). Split by source, each part would import
all of the rules back, and a reader checking why a face was named or skipped would read every file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from glyphcore.data.hands import HAND_COUNT, hand, hand_name, hand_set
from glyphcore.errors import DataError

__all__ = [
    "FontInstance",
    "SkippedFont",
    "STYLES",
    "FONT_SOURCES",
    "DEFAULT_FONT_SOURCES",
    "FONT_PACKAGES",
    "HERSHEY_FONTS",
    "system_font_dirs",
    "streamlit_font_dir",
    "font_packages",
    "discover_fonts",
    "sample_fonts",
    "denied_reason",
    "design_family",
    "style_of",
    "open_truetype",
    "load_hershey",
    "hand_fonts",
]

# Style categories: splits are stratified by these, so every split gets a mix.
STYLES: tuple[str, ...] = ("sans", "serif", "slab", "mono", "script", "stroke")
FONT_SOURCES: tuple[str, ...] = ("streamlit", "pillow", "packages", "hershey", "system")
# The default build: only fonts that come with declared, pinned Python packages (same on every
# machine); "system" is an opt-in (``data build --system-fonts`` / ``--font-dir DIR``).
DEFAULT_FONT_SOURCES: tuple[str, ...] = ("streamlit", "pillow", "packages", "hershey")

# Open-licence font packages of the default build: distribution name -> pinned version (the same
# pins are in pyproject.toml; docs/fonts.md lists each one's licence and design family). Each is
# a pure data wheel with one Google Fonts family (fontpkg layout: <module>/files/*.ttf plus a
# metadata.json with the family's category and licence), chosen for a spread of Latin text designs:
# old-style, transitional and didone serifs, slabs, humanist/geometric/grotesque sans, monospaced
# and typewriter faces, handwriting and script, with their italics.
FONT_PACKAGES: dict[str, str] = {
    # serif
    "fontpkg-eb-garamond": "1.3",
    "fontpkg-libre-baskerville": "2.5",
    "fontpkg-lora": "3.8",
    "fontpkg-playfair-display": "1.203",
    "fontpkg-crimson-pro": "1.003",
    "fontpkg-pt-serif": "1.0",
    "fontpkg-ibm-plex-serif": "2.006",
    # slab serif
    "fontpkg-roboto-slab": "2.2",
    "fontpkg-zilla-slab": "1.002",
    "fontpkg-arvo": "1.006",
    "fontpkg-bitter": "3.21",
    # sans
    "fontpkg-open-sans": "3.3",
    "fontpkg-roboto": "3.15",
    "fontpkg-montserrat": "9.0",
    "fontpkg-atkinson-hyperlegible": "1.006",
    "fontpkg-jost": "3.710",
    "fontpkg-nunito": "3.602",
    "fontpkg-raleway": "4.26",
    "fontpkg-ibm-plex-sans": "3.201",
    "fontpkg-oswald": "4.103",
    # monospaced / typewriter
    "fontpkg-fira-code": "5.2.post1",
    "fontpkg-ibm-plex-mono": "2.3",
    "fontpkg-jetbrains-mono": "2.211",
    "fontpkg-roboto-mono": "3.1",
    "fontpkg-space-mono": "1.003",
    "fontpkg-inconsolata": "3.1",
    # handwriting / script
    "fontpkg-caveat": "2.0",
    "fontpkg-dancing-script": "2.1",
    "fontpkg-kalam": "2.001",
    "fontpkg-indie-flower": "2.000",
    "fontpkg-shadows-into-light": "1.000",
    "fontpkg-pacifico": "3.001",
    "fontpkg-satisfy": "1.001",
    "fontpkg-delius": "1.001",
    "fontpkg-great-vibes": "1.103",
    "fontpkg-yellowtail": "1.002",
    "fontpkg-zeyada": "1.002",
    # connected display scripts (the packages file them under DISPLAY: see _SCRIPT_NAMES)
    "fontpkg-lobster": "2.100",
    "fontpkg-lobster-two": "1.6",
    "fontpkg-oleo-script": "1.002",
}

FONT_EXTENSIONS = (".ttf", ".otf", ".ttc", ".otc", ".woff", ".woff2")
MAX_FACES_PER_COLLECTION = 16  # a .ttc rarely holds more designs than this worth rendering

# Weights taken from each family, from a variable font's named instances or a family's static files:
# six stops span hairline to black strokes (the build weights families by the square root of their
# size, so they do not crowd out the rest). Thin, Medium and ExtraBold add little between them.
VARIABLE_WEIGHTS: tuple[str, ...] = ("ExtraLight", "Light", "Regular", "Semibold", "Bold", "Black")
_WEIGHT_KEY = {w.lower(): w for w in VARIABLE_WEIGHTS}
_REGULAR_WORDS = {"", "regular", "normal", "book", "roman", "plain", "upright"}
_SLANT_WORDS = re.compile(r"\b(Italic|Oblique|Slanted|Kursiv)\b", re.IGNORECASE)
_WIDTH_WORDS = re.compile(
    r"\b((Ultra|Extra|Semi)?\s?(Condensed|Expanded)|Narrow|Compressed|Wide|Extended)\b", re.IGNORECASE
)

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

# A package's own category (fontpkg's metadata.json, Google Fonts' categories) -> style.
_PACKAGE_CATEGORY_STYLE = {"MONOSPACE": "mono", "HANDWRITING": "script", "SERIF": "serif", "SANS_SERIF": "sans"}
# Slab serifs: square, unbracketed serifs; named so in the family, or known designs of that class.
_SLAB_NAMES = re.compile(r"slab|arvo|bitter|rockwell|clarendon|memphis|egyptienne", re.IGNORECASE)
# Script faces: named so, or known connected-script designs that packages file under DISPLAY.
_SCRIPT_NAMES = re.compile(r"script|caligraph|calligraph|cursive|hand|brush|chancery|comic|lobster", re.IGNORECASE)


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
        package: the Python distribution the file came with (``"fontpkg-lora"``), for the
            ``packages`` source, else None.
        hand: the seed of a synthetic hand (:mod:`glyphcore.data.hands`) drawing a Hershey script
            skeleton, else None.
    """

    name: str
    family: str
    style: str
    source: str
    file: str
    index: int = 0
    variation: str | None = None
    pen_width: float | None = None
    package: str | None = None
    hand: int | None = None

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


def design_family(family_name: str, declared: str | None = None) -> str:
    """Design family of a face from its family name: "DejaVu Sans Condensed" -> "DejaVu Sans",
    "Liberation Sans Narrow" -> "Liberation Sans", "KaTeX_Main" -> "KaTeX Main".

    Args:
        family_name: the face's family name (from its name table).
        declared: the family its package declares (e.g. "Shadows Into Light"): words of that name are
            part of the design's name, never stripped as weight or width words.
    """
    if family_name in _KNOWN_FAMILIES:
        return _KNOWN_FAMILIES[family_name]
    name = family_name.replace("_", " ")
    if declared and name.lower().startswith(declared.lower()):
        rest = re.sub(r"\s+", " ", _STYLE_WORDS.sub(" ", name[len(declared) :])).strip()
        return f"{name[: len(declared)]} {rest}".strip()
    stripped = re.sub(r"\s+", " ", _STYLE_WORDS.sub(" ", name)).strip()
    return stripped or name.strip()


def style_of(family: str, category: str | None = None, monospaced: bool = False) -> str:
    """Style category (one of STYLES) of a design family.

    Args:
        family: the design family name.
        category: the font package's own category (e.g. "SERIF", "HANDWRITING"), when it has one.
        monospaced: the face's letters all have one advance width (measured from the font).

    Returns:
        The package's category when known (a serif named as a slab becomes "slab"), else "mono" for a
        monospaced face, else a guess from the family name.
    """
    f = family.lower()
    if category and category.upper() in _PACKAGE_CATEGORY_STYLE:
        style = _PACKAGE_CATEGORY_STYLE[category.upper()]
        return "slab" if style == "serif" and _SLAB_NAMES.search(f) else style
    if monospaced or re.search(r"mono|code|typewriter|courier|consol|console|terminal|fixed", f):
        return "mono"
    if _SCRIPT_NAMES.search(f):
        return "script"
    if _SLAB_NAMES.search(f):
        return "slab"
    if "sans" in f:
        return "sans"
    if re.search(
        r"serif|times|roman|georgia|garamond|baskerville|bodoni|book|katex main|cambria|"
        r"palatino|century|schoolbook|charter|caslon|minion|didot",
        f,
    ):
        return "serif"
    return "sans"


def _is_monospaced(font) -> bool:
    """True when the narrowest and widest letters advance alike (a monospaced face)."""
    widths = {round(font.getlength(c), 1) for c in "ilmMW"}
    return len(widths) == 1


def weight_of(style_name: str) -> tuple[str | None, bool]:
    """(weight stop, italic) of a face's style name: "SemiBold Italic" -> ("Semibold", True),
    "Condensed Light" -> ("Light", False), "Medium" -> (None, False): None when the weight is not one
    of VARIABLE_WEIGHTS."""
    italic = bool(_SLANT_WORDS.search(style_name))
    rest = _WIDTH_WORDS.sub(" ", _SLANT_WORDS.sub(" ", style_name))
    key = re.sub(r"[\s_-]+", "", rest).lower()
    if key in _REGULAR_WORDS:
        return "Regular", italic
    key = {"demibold": "semibold", "ultralight": "extralight", "heavy": "black"}.get(key, key)
    return _WEIGHT_KEY.get(key), italic


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
            font = ImageFont.truetype(inst.file, size=size, index=inst.index, layout_engine=ImageFont.Layout.BASIC)
        if inst.variation is not None:
            font.set_variation_by_name(inst.variation)
    except Exception as e:  # FreeType raises OSError/ValueError for broken or foreign files
        raise DataError(
            f"font {inst.file!r} ({inst.name}) failed to load: {e}; expected a TrueType/OpenType/WOFF font file"
        ) from e
    return font


_HERSHEY_SOURCES: dict[str, list[str]] = {}


def load_hershey(name: str):
    """A ``HersheyFonts`` object with the built-in Hershey font ``name`` loaded.

    The package unpacks its whole compressed archive for every font it loads; the archive is read
    once here and each font's text is kept, so the build loads eight fonts for the price of one.
    """
    try:
        from HersheyFonts import HersheyFonts
    except ImportError as e:  # a declared dependency: its absence is a broken install, said plainly
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


def _faces_of_file(
    path: Path,
    source: str,
    skipped: list[SkippedFont],
    package: str | None = None,
    category: str | None = None,
    declared: str | None = None,
) -> list[FontInstance]:
    """Candidate instances of one font file: each face of a collection, each chosen named weight
    of a variable font; a static face only when its weight is one of VARIABLE_WEIGHTS. A file that
    fails to load is recorded in ``skipped``, never raised.

    Args:
        path: the font file.
        source: one of FONT_SOURCES.
        skipped: where left-out faces are recorded, with their reason.
        package: the distribution the file came with (``packages`` source).
        category: that package's own style category (see :func:`style_of`).
        declared: that package's own family name (see :func:`design_family`).
    """
    from PIL import ImageFont

    out: list[FontInstance] = []
    n_faces = MAX_FACES_PER_COLLECTION if path.suffix.lower() in (".ttc", ".otc") else 1
    for index in range(n_faces):
        try:
            font = ImageFont.truetype(str(path), size=32, index=index, layout_engine=ImageFont.Layout.BASIC)
        except Exception as e:
            if index == 0:
                skipped.append(SkippedFont(path.name, str(path), f"failed to load: {e}"))
            break  # past the last face of a collection
        # FreeType's names come from the name table: the typographic family (ID 16) when the font
        # has one, else the family (ID 1); the style likewise (ID 17, else ID 2).
        fam_name, sub = font.getname()
        fam_name, sub = fam_name or path.stem, sub or "Regular"
        label = f"{fam_name} {sub}"
        reason = denied_reason(fam_name) or denied_reason(path.name)
        if reason:
            skipped.append(SkippedFont(label, str(path), reason))
            continue
        family = design_family(fam_name, declared)
        style = style_of(family, category, _is_monospaced(font))
        variations = _variation_names(font)
        if variations:
            chosen = _pick_variations(variations)
            for v in chosen:
                out.append(FontInstance(f"{family} {v}", family, style, source, str(path), index, v, package=package))
        elif weight_of(sub)[0] is None:
            skipped.append(
                SkippedFont(
                    label, str(path), f"weight {sub!r} is not one of the weights taken ({', '.join(VARIABLE_WEIGHTS)})"
                )
            )
        else:
            out.append(
                FontInstance(
                    f"{fam_name.replace('_', ' ')} {sub}", family, style, source, str(path), index, package=package
                )
            )
    return out


def _pick_variations(names: list[str]) -> list[str]:
    """The named instances of a variable font to use: those of VARIABLE_WEIGHTS (upright or italic,
    matched regardless of case: "SemiBold" is "Semibold") at the normal width and the default optical
    size, in VARIABLE_WEIGHTS order; all names when none of those exist."""
    picked: dict[tuple[int, bool], str] = {}
    for n in names:
        if _WIDTH_WORDS.search(n):
            continue
        weight, italic = weight_of(n)
        if weight is not None:
            picked.setdefault((VARIABLE_WEIGHTS.index(weight), italic), n)
    return [picked[k] for k in sorted(picked)] or names


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
            out.append(FontInstance(f"Hershey {name} {w:g}px", family, style, "hershey", f"hershey:{name}", 0, None, w))
    return out + hand_fonts()


def hand_fonts(count: int = HAND_COUNT) -> list[FontInstance]:
    """The synthetic hands 0..count-1 (:mod:`glyphcore.data.hands`) as font instances of their skeleton's
    design family, each writing its skeleton with its own pen width."""
    out = []
    for seed in range(count):
        h = hand(seed)
        family, style, _ = HERSHEY_FONTS[h.skeleton]
        assert family == hand_set(seed).family  # hands must go where their skeleton's family goes
        out.append(
            FontInstance(
                hand_name(seed), family, style, "hershey", f"hershey:{h.skeleton}", 0, None, h.pen_width, hand=seed
            )
        )
    return out


def _package_fonts(dist_name: str) -> tuple[str, list[Path], str | None, str | None]:
    """(installed version, font files, the package's style category, the package's family name) of one
    font distribution.

    The files are those the installed distribution records (``importlib.metadata``), so the fonts
    are found wherever pip put the package. The category comes from a fontpkg ``metadata.json``
    (Google Fonts' categories; MONOSPACE wins over SANS_SERIF, as Inconsolata lists both).

    Raises:
        importlib.metadata.PackageNotFoundError: the distribution is not installed.
    """
    import importlib.metadata as md

    dist = md.distribution(dist_name)
    records = sorted(dist.files or [], key=str)
    fonts = [Path(str(dist.locate_file(f))) for f in records if f.suffix.lower() in FONT_EXTENSIONS]
    category = declared = None
    for f in records:
        if f.name == "metadata.json":
            try:
                meta = json.loads(Path(str(dist.locate_file(f))).read_text(encoding="utf-8"))
                cats, declared = meta.get("category") or [], meta.get("family")
            except (OSError, ValueError, AttributeError):  # not a fontpkg metadata file
                continue
            category = next(
                (c for c in ("MONOSPACE", "HANDWRITING", "SERIF", "SANS_SERIF", "DISPLAY") if c in cats), None
            )
    return dist.version, fonts, category, declared


def font_packages() -> dict[str, dict]:
    """What the installed font packages of FONT_PACKAGES are: the manifest's ``font_packages``.

    Returns:
        distribution name -> {"pinned": version in FONT_PACKAGES, "installed": installed version or
        None, "licence": the package's declared licence or None}.
    """
    import importlib.metadata as md

    out = {}
    for name, pinned in FONT_PACKAGES.items():
        try:
            meta = md.metadata(name)
            installed = md.version(name)
            fields = meta.json  # the metadata as a dict: a missing field is simply absent
            licence = fields.get("license_expression") or fields.get("license")
        except md.PackageNotFoundError:
            installed, licence = None, None
        out[name] = {"pinned": pinned, "installed": installed, "licence": licence}
    return out


def _package_candidates(skipped: list[SkippedFont]) -> list[FontInstance]:
    import importlib.metadata as md

    out: list[FontInstance] = []
    for name, pinned in FONT_PACKAGES.items():
        try:
            version, files, category, declared = _package_fonts(name)
        except md.PackageNotFoundError:
            skipped.append(
                SkippedFont(
                    name,
                    f"package:{name}",
                    f"the font package {name} is not installed: "
                    f"pip install {name}=={pinned} (or reinstall glyph-explorer: pip install -e .)",
                )
            )
            continue
        if not files:
            skipped.append(SkippedFont(name, f"package:{name}", f"the package {name} {version} holds no font file"))
        for path in files:
            out += _faces_of_file(path, "packages", skipped, package=name, category=category, declared=declared)
    return out


def _folder_files(dirs: list[Path], check: bool) -> list[Path]:
    files: list[Path] = []
    seen: set[Path] = set()
    for d in dirs:
        if check and not Path(d).is_dir():
            raise DataError(f"font folder {str(d)!r} does not exist: expected a folder of .ttf/.otf/.ttc/.woff2 files")
        for p in sorted(Path(d).rglob("*")):
            if p.suffix.lower() in FONT_EXTENSIONS and p.is_file():
                r = p.resolve()
                if r not in seen:
                    seen.add(r)
                    files.append(p)
    return files


def discover_fonts(
    sources: tuple[str, ...] | list[str] = DEFAULT_FONT_SOURCES,
    font_dirs: list[str | Path] | None = None,
) -> tuple[list[FontInstance], list[SkippedFont]]:
    """List the candidate font instances, in a deterministic order.

    Args:
        sources: which of FONT_SOURCES to look in. The default, DEFAULT_FONT_SOURCES, uses only fonts
            of declared Python packages (the same on every machine); ``"system"`` adds the machine's
            usual font folders (:func:`system_font_dirs`).
        font_dirs: more folders to search (recursively), as source ``system``; an opt-in like it.

    Returns:
        (candidates, skipped): candidates still have to pass the render check
        (:func:`glyphcore.data.render.render_font_set`); skipped lists denied, unloadable or missing
        fonts with their reason.

    Raises:
        DataError: an unknown source, or a folder of ``font_dirs`` that does not exist.
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
        out.append(FontInstance("Aileron Regular (Pillow default)", "Aileron", "sans", "pillow", "pillow:default"))
    if "packages" in sources:
        out += _package_candidates(skipped)
    if "hershey" in sources:
        out += _hershey_candidates(skipped)
    files = _folder_files(system_font_dirs(), check=False) if "system" in sources else []
    files += [
        p
        for p in _folder_files([Path(d) for d in font_dirs or []], check=True)
        if p.resolve() not in {f.resolve() for f in files}
    ]
    for p in files:
        out += _faces_of_file(p, "system", skipped)
    # The same design installed twice (e.g. DejaVu in two folders, or a package font also in a
    # font folder) must not appear in two splits: the first one found is kept.
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
        raise DataError(
            f"sample fonts {missing} not found: expected streamlit, Pillow >= 10.1 and Hershey-Fonts to be installed"
        )
    return [by_name[n] for n in SAMPLE_FONT_NAMES]
