"""``python -m glyphcore``: data, train, runs, models, evaluate, predict, headless.

Each area adds its sub-commands in its own ``_add_<area>`` function below; handlers import the
heavy modules (torch) lazily so that ``--help`` stays fast. A ``GlyphError`` becomes
``error: <message>`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from glyphcore.errors import GlyphError

__all__ = ["main", "build_parser"]


def _add_data(sub: argparse._SubParsersAction) -> None:
    """``data build|info|export|show``."""
    from glyphcore.data.commands import add_data_commands

    add_data_commands(sub)


def _add_train(sub: argparse._SubParsersAction) -> None:
    """``train`` (every TrainConfig field as a flag)."""
    try:
        from glyphcore.train_commands import add_train_commands
    except ImportError:  # the training engine is not built yet
        return
    add_train_commands(sub)


def _add_runs_models(sub: argparse._SubParsersAction) -> None:
    """``runs list|show|cancel|resume|delete`` and ``models list|summary``."""
    try:
        from glyphcore.train_commands import add_runs_commands, add_models_commands
    except ImportError:
        return
    add_runs_commands(sub)
    add_models_commands(sub)


def _add_evaluate_predict(sub: argparse._SubParsersAction) -> None:
    """``evaluate RUN`` and ``predict --run RUN IMAGE...``."""
    try:
        from glyphcore.eval_commands import add_eval_commands
    except ImportError:
        return
    add_eval_commands(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m glyphcore",
        description="Glyph Explorer, headless: build data, train, watch runs, evaluate, predict.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data(sub)
    _add_train(sub)
    _add_runs_models(sub)
    _add_evaluate_predict(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GlyphError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
