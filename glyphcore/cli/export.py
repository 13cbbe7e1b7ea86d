"""``glyphcore export RUN --format FORMAT``: a run's model in a format other tools read.

The formats and their help come from the table ``glyphcore.models.export.FORMATS``; the run-level
export (``glyphcore.infer.run_export``, which loads torch) is imported inside the handler so that
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import time

from glyphcore.models.export import FORMATS, INSTALL_HINT

__all__ = ["add_export_commands"]


def _cmd_export(args: argparse.Namespace) -> int:
    from glyphcore.infer.run_export import export_run

    t0 = time.perf_counter()
    path = export_run(args.run, args.format, args.out, args.which, overwrite=args.overwrite)
    print(f"{path}  ({path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0


def _labels() -> str:
    labels = [f.label for f in FORMATS.values()]
    return f"{', '.join(labels[:-1])} or {labels[-1]}" if len(labels) > 1 else labels[0]


def add_export_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``export RUN --format FORMAT [--out PATH] [--which best|last] [--overwrite]``."""
    p = sub.add_parser(
        "export",
        help=f"write a run's model as {_labels()}",
        description="Write a run's checkpoint in a format other tools read; the .pt checkpoint stays the "
        "native format. Every file carries the model name, its arguments, the class list and the "
        f"frame as metadata. ONNX and safetensors need the export extra: {INSTALL_HINT}.",
    )
    p.add_argument("run", help="run id, run folder, starter, or a .pt checkpoint")
    p.add_argument(
        "--format",
        required=True,
        choices=list(FORMATS),
        help=", ".join(f"{f.name} ({f.help})" for f in FORMATS.values()),
    )
    p.add_argument("--out", metavar="PATH", help="file to write (default: <run folder>/export/<run>-<which>.<ext>)")
    p.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint to export (default: best)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_cmd_export)
