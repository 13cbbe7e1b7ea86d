"""The charts' colours, chosen to be seen: every one meets WCAG 2.x's 3:1 contrast for graphics against
both of Streamlit's backgrounds, and the eight activation colours are far apart in CIELAB.

The contrast functions follow WCAG 2.x (relative luminance of sRGB, ratio ``(L1 + 0.05) / (L2 + 0.05)``);
tests/viz/test_viz_palette.py checks every colour here with them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = [
    "BACKGROUNDS",
    "MIN_GRAPHIC_CONTRAST",
    "SERIES_COLORS",
    "ACTIVATION_COLORS",
    "BAR_TOP",
    "BAR_OTHER",
    "DIAGONAL_GREY",
    "RIGHT_WRONG_COLORS",
    "CATEGORY_COLORS",
    "text_color",
    "relative_luminance",
    "contrast_ratio",
    "lab_distance",
    "activation_color",
]

#: Streamlit's page backgrounds: theme.base "light" and "dark" (#0e1117 before 1.5x, #171614 in 1.67, as
#: measured in Chromium); every chart colour is checked against each.
BACKGROUNDS: Mapping[str, str] = {"light": "#ffffff", "dark": "#0e1117", "dark-1.67": "#171614"}
#: WCAG 2.x 1.4.11 (non-text contrast): lines, bars and marks against their background.
MIN_GRAPHIC_CONTRAST = 3.0

# Curves. Train and val differ by dash too (the charts draw train dashed, val solid).
SERIES_COLORS: Mapping[str, str] = {
    "train (per step)": "#8a8a8a",  # grey, thin: the noisy per-step loss under the epoch points
    "train": "#1f77b4",
    "val": "#e6550d",
}
#: the eight activations (glyphcore.models.activations.ACTIVATION_NAMES); relu/silu and gelu/mish far apart.
ACTIVATION_COLORS: Mapping[str, str] = {
    "relu": "#1f77b4",  # blue
    "silu": "#e6550d",  # orange
    "elu": "#2ca02c",  # green
    "leaky_relu": "#d62728",  # red
    "sigmoid": "#9467bd",  # purple
    "tanh": "#8c6d31",  # brown
    "gelu": "#d6338f",  # magenta
    "mish": "#00897b",  # teal
}
#: any other categories (runs in an overlay, classes in an embedding map): the same eight, in order.
CATEGORY_COLORS: tuple[str, ...] = tuple(ACTIVATION_COLORS.values())
BAR_TOP = "#1f77b4"  # the top-1 bar of a top-k chart
BAR_OTHER = "#808080"  # the other bars
DIAGONAL_GREY = "#808080"  # the confusion matrix's right answers with "errors only"
RIGHT_WRONG_COLORS: Mapping[str, str] = {"right": "#1f77b4", "wrong": "#e6550d"}
_TEXT = {"light": "#31333f", "dark": "#fafafa"}  # Streamlit's own text colours


def text_color(theme: str | None) -> str:
    """The text colour for chart labels drawn on the page's background (``theme``: "light" | "dark" | None)."""
    return _TEXT["dark" if theme and theme.startswith("dark") else "light"]


def _channels(hex_color: str) -> tuple[float, float, float]:
    h = hex_color.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    if len(h) != 6:
        raise ValueError(f"not a #rrggbb colour: {hex_color!r}")
    r, g, b = (int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
    return r, g, b


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(hex_color: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour, 0 (black) .. 1 (white)."""
    r, g, b = (_linear(c) for c in _channels(hex_color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2.x contrast ratio of two colours, 1 .. 21."""
    hi, lo = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def lab_distance(a: str, b: str) -> float:
    """CIE76 colour difference (Euclidean in CIELAB, D65): about 2 is just noticeable, over 20 is distinct."""

    def lab(color: str) -> tuple[float, float, float]:
        r, g, b = (_linear(c) for c in _channels(color))
        x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
        y = 0.2126 * r + 0.7152 * g + 0.0722 * b
        z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

        def f(t: float) -> float:
            return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

        return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))

    return math.dist(lab(a), lab(b))


def activation_color(name: str, index: int = 0) -> str:
    """An activation's colour; an unknown name takes a category colour by ``index``."""
    return ACTIVATION_COLORS.get(name, CATEGORY_COLORS[index % len(CATEGORY_COLORS)])
