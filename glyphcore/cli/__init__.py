"""The ``glyphcore`` command (also ``python -m glyphcore``): data, train, recipes, runs, sweep, compare, models,
evaluate, predict, export.

One module per command (``data``, ``train``, ``recipes``, ``runs``, ``sweep``, ``compare``, ``models``, ``evaluate``,
``export``), each with an ``add_<command>_commands(sub)`` that adds its sub-parsers; ``progress`` holds
the one progress bar.
Handlers import the heavy modules (torch) lazily so that ``--help`` stays fast. A ``GlyphError``
becomes ``error: <message>`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from glyphcore.cli.compare import add_compare_commands
from glyphcore.cli.data import add_data_commands
from glyphcore.cli.evaluate import add_eval_commands
from glyphcore.cli.export import add_export_commands
from glyphcore.cli.models import add_models_commands
from glyphcore.cli.recipes import add_recipes_commands
from glyphcore.cli.runs import add_runs_commands
from glyphcore.cli.sweep import add_sweep_commands
from glyphcore.cli.text import terminal_text
from glyphcore.cli.train import add_train_commands
from glyphcore.errors import GlyphError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="glyphcore",
        description="Glyph Explorer, headless: build data, train, watch runs, evaluate, predict, export models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(sub)
    add_train_commands(sub)
    add_recipes_commands(sub)
    add_runs_commands(sub)
    add_sweep_commands(sub)
    add_compare_commands(sub)
    add_models_commands(sub)
    add_eval_commands(sub)
    add_export_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GlyphError as e:
        print(f"error: {terminal_text(e)}", file=sys.stderr)  # messages quote names from files
        return 2
    except OSError as e:  # the machine's side (a full or read-only disk...): its reason, not a traceback
        from glyphcore.errors import os_reason

        print(f"error: {terminal_text(os_reason(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
