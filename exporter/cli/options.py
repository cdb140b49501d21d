"""What the flags that a single model and a manifest share become: the output path, the export's options, the
report's folder."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from exporter.cli.parser import CLI_WORDS
from exporter.common.errors import ExportError
from exporter.common.options import FIELDS, Options

FLAGS = {"inputs": "input_names", "outputs": "output_names"}  # an option's attribute where it differs from its name


def c_path(output: str | None, stem: str) -> Path:
    """``-o OUT.c``, or ``<stem>.c`` here; the header and the reference rows go beside it."""
    path = Path(output) if output else Path(stem + ".c")
    if path.suffix != ".c":
        raise ExportError(f"-o {path}: the output must be a .c file (the header is written beside it)")
    return path


def options_from_args(args: argparse.Namespace) -> Options:
    """The options the flags give (a flag not given, or that the command lacks, is None: not given), checked and
    worded as flags; ``inspect`` has none of them, so it renders as the defaults do."""
    given = {name: getattr(args, FLAGS.get(name, name), None) for name in FIELDS}
    with CLI_WORDS.wording():
        return Options.of(**given)


def report_dir(args: argparse.Namespace) -> Path | None:
    """``--report DIR``'s folder (None: no report), the flags that go with --report and --trace checked before any
    work is done or file written (a model's and a manifest's alike)."""
    if args.pt_column is not None and not args.report:
        raise ExportError("--pt-column draws a curve in the report: add --report DIR")
    if args.trace and args.no_check:
        raise ExportError("--trace compares the compiled C with Keras: it cannot run with --no-check")
    if not args.report:
        return None
    directory = Path(args.report)
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"--report {directory}: exists and is not a folder")
    if not args.no_check and importlib.util.find_spec("matplotlib") is None:
        raise ExportError("--report draws its plots with matplotlib: pip install 'lamarr-export[report]'")
    return directory
