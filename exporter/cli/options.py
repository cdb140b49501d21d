"""What the flags that a single model and a manifest share become: the output path and the export's options."""

from __future__ import annotations

import argparse
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
