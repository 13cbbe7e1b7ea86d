"""The activation table: one row per activation name, the single source of truth for them.

Models take an ``act_layer`` (an ``nn.Module`` class) looked up here by name, as timm's
``get_act_layer`` does. Each row also carries f(x) and f'(x) as LaTeX for the app's Activations page.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from glyphcore.errors import ConfigError

__all__ = ["Activation", "ACTIVATIONS", "ACTIVATION_NAMES", "get_act_layer"]


@dataclass(frozen=True)
class Activation:
    """One activation function.

    Attributes:
        name: the name users type (``--activation silu``).
        layer: the ``nn.Module`` class; ``layer()`` builds it with the defaults below.
        formula: f(x) in LaTeX.
        derivative: f'(x) in LaTeX.
        description: one line for menus and help.
    """

    name: str
    layer: type[nn.Module]
    formula: str
    derivative: str
    description: str


# sigma(x) = 1 / (1 + e^{-x}) is written out once in the sigmoid row and reused by name in the others.
# LeakyReLU keeps torch's default slope 0.01 and ELU its alpha = 1; the formulas say so.
_ROWS = (
    Activation(
        "relu",
        nn.ReLU,
        r"f(x) = \max(0, x)",
        r"f'(x) = \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}",
        "Rectified linear unit: zero for negatives, identity for positives.",
    ),
    Activation(
        "silu",
        nn.SiLU,
        r"f(x) = x\,\sigma(x) = \frac{x}{1 + e^{-x}}",
        r"f'(x) = \sigma(x)\,\bigl(1 + x\,(1 - \sigma(x))\bigr)",
        "Sigmoid linear unit (swish): smooth, slightly negative below zero; the report's choice.",
    ),
    Activation(
        "elu",
        nn.ELU,
        r"f(x) = \begin{cases} x & x > 0 \\ e^{x} - 1 & x \le 0 \end{cases}",
        r"f'(x) = \begin{cases} 1 & x > 0 \\ e^{x} & x \le 0 \end{cases}",
        "Exponential linear unit (alpha = 1): smooth saturation to -1 for negatives.",
    ),
    Activation(
        "leaky_relu",
        nn.LeakyReLU,
        r"f(x) = \begin{cases} x & x > 0 \\ 0.01\,x & x \le 0 \end{cases}",
        r"f'(x) = \begin{cases} 1 & x > 0 \\ 0.01 & x \le 0 \end{cases}",
        "Leaky ReLU (slope 0.01): a small gradient for negatives, so no unit dies.",
    ),
    Activation(
        "sigmoid",
        nn.Sigmoid,
        r"f(x) = \sigma(x) = \frac{1}{1 + e^{-x}}",
        r"f'(x) = \sigma(x)\,(1 - \sigma(x))",
        "Logistic sigmoid: squashes to (0, 1); its gradient vanishes away from zero.",
    ),
    Activation(
        "tanh",
        nn.Tanh,
        r"f(x) = \tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}",
        r"f'(x) = 1 - \tanh^2(x)",
        "Hyperbolic tangent: squashes to (-1, 1), zero-centred.",
    ),
    Activation(
        "gelu",
        nn.GELU,
        r"f(x) = x\,\Phi(x) = \frac{x}{2}\left(1 + \operatorname{erf}\frac{x}{\sqrt{2}}\right)",
        r"f'(x) = \Phi(x) + x\,\varphi(x) = \Phi(x) + \frac{x}{\sqrt{2\pi}}\,e^{-x^2/2}",
        "Gaussian error linear unit (exact erf form): smooth, like SiLU.",
    ),
    Activation(
        "mish",
        nn.Mish,
        r"f(x) = x\,\tanh\bigl(\operatorname{softplus}(x)\bigr) = x \tanh\bigl(\ln(1 + e^{x})\bigr)",
        r"f'(x) = \tanh(\operatorname{sp}(x)) + x\,\sigma(x)\,\bigl(1 - \tanh^2(\operatorname{sp}(x))\bigr),"
        r"\quad \operatorname{sp}(x) = \ln(1 + e^{x})",
        "Mish: smooth and non-monotonic, close to SiLU.",
    ),
)

#: name -> Activation, in menu order.
ACTIVATIONS: dict[str, Activation] = {row.name: row for row in _ROWS}
#: the valid names, in menu order.
ACTIVATION_NAMES: tuple[str, ...] = tuple(ACTIVATIONS)


def get_act_layer(name: str) -> type[nn.Module]:
    """The ``nn.Module`` class of the activation called ``name``.

    Args:
        name: one of ``ACTIVATION_NAMES`` (case and ``-`` vs ``_`` are forgiven).

    Raises:
        ConfigError: unknown name; the message lists the valid ones.
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATION_NAMES)}")
    return ACTIVATIONS[key].layer
