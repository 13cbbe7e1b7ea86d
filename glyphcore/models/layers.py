"""Shape arithmetic and layer pieces the zoo's builders share.

Every builder computes its classifier's input from ``input_size`` with these helpers, and refuses
an input too small for its stack with a message that names the smallest size it can take.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from glyphcore.models.registry import require_min_size

__all__ = ["Act", "conv_out", "check_sides", "fc_with_dropout"]

Act = type[nn.Module]


def conv_out(n: int, k: int, s: int = 1, p: int = 0) -> int:
    """Output side of a convolution / pooling with kernel k, stride s, padding p (floor mode)."""
    return (n + 2 * p - k) // s + 1


def _min_side(side_out: Callable[[int], int], limit: int = 4096) -> int:
    """The smallest input side whose output side (``side_out``) is at least 1 pixel."""
    for n in range(1, limit + 1):
        if side_out(n) >= 1:
            return n
    raise ValueError(f"no input side up to {limit} survives")  # a bug in a shape function


def check_sides(name: str, input_size: tuple[int, int], side_out: Callable[[int], int], why: str) -> tuple[int, int]:
    """Output (H, W) of a stack whose per-side shape function is ``side_out``; ConfigError if < 1."""
    m = _min_side(side_out)
    require_min_size(name, input_size, (m, m), why)
    return side_out(input_size[0]), side_out(input_size[1])


def fc_with_dropout(p: float) -> Callable[[int, int, int], list[tuple[str, nn.Module]]]:
    """``fc(i, fin, fout)`` -> [("drop{i}", Dropout)] (only when p > 0) + [("fc{i}", Linear)]."""

    def fc(i: int, fin: int, fout: int) -> list[tuple[str, nn.Module]]:
        drop: list[tuple[str, nn.Module]] = [(f"drop{i}", nn.Dropout(p))] if p > 0 else []
        return drop + [(f"fc{i}", nn.Linear(fin, fout))]

    return fc
