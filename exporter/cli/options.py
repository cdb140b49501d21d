"""What the flags that a single model and a manifest share become: the output path and the parity rule."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from exporter.check.verdicts import DEFAULT_ATOL, DEFAULT_CRITERION, DEFAULT_RTOL, chosen
from exporter.common.errors import ExportError


def c_path(output: str | None, stem: str) -> Path:
    """``-o OUT.c``, or ``<stem>.c`` here; the header and the reference rows go beside it."""
    path = Path(output) if output else Path(stem + ".c")
    if path.suffix != ".c":
        raise ExportError(f"-o {path}: the output must be a .c file (the header is written beside it)")
    return path


def parity_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--criterion``, ``--atol``, ``--rtol`` as ``Checks`` takes them: a tolerance given chooses the fixed rule."""
    try:
        criterion = chosen(args.criterion, args.atol, args.rtol)
    except ValueError as err:
        raise ExportError(f"--criterion float32 with --atol or --rtol: {err}") from None
    return {
        "criterion": criterion or DEFAULT_CRITERION,
        "atol": DEFAULT_ATOL if args.atol is None else args.atol,
        "rtol": DEFAULT_RTOL if args.rtol is None else args.rtol,
    }
