"""Where the command line writes to the terminal: every line through ``exporter.common.escaping.terminal``.

Why one place: messages quote names from files (layers, steps, paths) that may hold ESC, CR or bidi
overrides, which would erase or rewrite what the terminal shows. Escaping what is printed, here,
covers every message however it was composed; the tool's own newlines are kept (its messages and
tables span lines), and a name put into a multi-line message is escaped with its newlines where it
enters (``Problem``, the step tables), so it cannot forge a line either.
"""

from __future__ import annotations

import sys
from typing import TextIO

from exporter.common.escaping import terminal


def emit(text: str, stream: TextIO | None = None) -> None:
    """Write ``text`` (its line ends included) to ``stream`` (default: stdout, looked up late), escaped."""
    print(terminal(text), end="", file=stream or sys.stdout, flush=True)
