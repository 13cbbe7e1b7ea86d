"""``glyphcore models list|summary NAME``.

``add_models_commands(sub)`` adds the ``models`` sub-command to the CLI's sub-parsers; torch and the
zoo are imported inside the handlers so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import ast
from typing import Any

from glyphcore.errors import ConfigError

__all__ = ["add_models_commands", "parse_input_shape", "parse_option"]


def parse_input_shape(text: str, default_channels: int) -> tuple[int, int, int]:
    """``"1x100x100"`` -> (1, 100, 100); ``"100x100"`` or ``"100"`` take ``default_channels``.

    Raises:
        ConfigError: not 1 to 3 positive integers joined by ``x``.
    """
    try:
        parts = [int(p) for p in text.lower().replace("*", "x").split("x")]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or min(parts) < 1:
        raise ConfigError(f"--input must look like CxHxW, HxW or a side, e.g. 1x100x100; got {text!r}")
    if len(parts) == 1:
        parts = [default_channels, parts[0], parts[0]]
    elif len(parts) == 2:
        parts = [default_channels, *parts]
    return parts[0], parts[1], parts[2]


def parse_option(text: str) -> tuple[str, Any]:
    """``"depth=16"`` -> ("depth", 16); values are Python literals (``True``, ``[50, 30]``) or strings.

    Raises:
        ConfigError: no ``=``.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--option must be KEY=VALUE, e.g. depth=16 or pool=True; got {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        value = raw.strip()
    return key.strip(), value


def _cmd_list(args: argparse.Namespace) -> int:
    from glyphcore.models import list_models, model_entry

    entries = [model_entry(n) for n in list_models()]
    inputs = ["x".join(map(str, e.default_input)) for e in entries]
    wn = max(len(e.name) for e in entries)
    wi = max(len(i) for i in inputs)
    print(f"{'MODEL'.ljust(wn)}  {'INPUT'.ljust(wi)}  CLASSES  DESCRIPTION")
    for e, inp in zip(entries, inputs):
        print(f"{e.name.ljust(wn)}  {inp.ljust(wi)}  {str(e.default_classes).rjust(7)}  {e.description}")
        if args.verbose and e.options:
            print(" " * (wn + 2) + "options: " + ", ".join(f"{k}={v!r}" for k, v in e.options.items()))
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    import torch

    from glyphcore.models import create_model, model_entry, model_summary

    if args.threads:
        torch.set_num_threads(args.threads)
    entry = model_entry(args.name)
    c, h, w = parse_input_shape(args.input, entry.default_input[0]) if args.input else entry.default_input
    options = dict(parse_option(o) for o in args.option)
    model = create_model(
        args.name,
        num_classes=args.classes or entry.default_classes,
        in_channels=c,
        input_size=(h, w),
        activation=args.activation,
        batchnorm=not args.no_batchnorm,
        dropout=args.dropout,
        **options,
    )
    print(model_summary(model, (c, h, w)).to_text())
    return 0


def add_models_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``models list`` and ``models summary NAME`` to the CLI's sub-parsers."""
    models = sub.add_parser(
        "models",
        help="list the model zoo, summarise a model",
        description="The model zoo: list the models, or summarise one layer by layer.",
    )
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    p = msub.add_parser("list", help="name, default input, class count and description of every model")
    p.add_argument("-v", "--verbose", action="store_true", help="also list each model's options")
    p.set_defaults(func=_cmd_list)

    p = msub.add_parser(
        "summary",
        help="layer table (output shapes, parameters), totals, FLOPs per image",
        description="One row per layer: name, type, output shape, parameters; totals; forward and "
        "training FLOPs per image. Defaults: the model's own input and class count.",
    )
    p.add_argument("name", help="a model name (see `models list`)")
    p.add_argument("--input", metavar="CxHxW", help="input shape, e.g. 1x100x100 (default: the model's)")
    p.add_argument("--classes", type=int, metavar="N", help="number of classes (default: the model's)")
    # the names are not listed here: they live in the activation table, which loads torch (slow --help);
    # an unknown name is answered with the table's names
    p.add_argument("--activation", default="silu", help="activation by name (default silu; a wrong name lists them)")
    p.add_argument("--no-batchnorm", action="store_true", help="leave out the BatchNorm layers")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout before the fc layers (default 0)")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model option, e.g. depth=16 (vgg), pool=True (tiny_conv); repeatable",
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    p.set_defaults(func=_cmd_summary)
