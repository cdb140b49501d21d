"""Progress lines for the slow steps (loading TensorFlow, compiling, the parity loop), and their timings.

A line goes to stderr when a step starts, so a user waiting on TensorFlow knows why; stdout stays
for results (and is pure JSON under ``--json``). Disabled, it only measures.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from exporter.common import interrupt
from exporter.common.escaping import terminal_line

# The steps in the order they run; the compile runs beside the parity's reference, so their ends
# (when a step's time is recorded) come in either order.
STEPS = ("load", "load+export", "compile", "parity", "trace", "reference rows", "report")


def in_order(timings: dict[str, float]) -> dict[str, float]:
    """``timings`` in the steps' order, the same in every run."""
    return dict(sorted(timings.items(), key=lambda kv: STEPS.index(kv[0])))


class Progress:
    """Announces each step on ``stream`` (when enabled) and records how long it took."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = stream
        self.timings: dict[str, float] = {}

    def say(self, message: str) -> None:
        if self.enabled:
            stream = self.stream or sys.stderr  # looked up late: tests and callers may swap sys.stderr
            print(terminal_line(f"lamarr-export: {message}"), file=stream, flush=True)  # one line, names escaped

    def warn(self, message: str) -> None:
        """A warning goes to stderr even when progress lines do not (``--quiet``, ``--json``): it is a result."""
        stream = self.stream or sys.stderr
        print(terminal_line(f"lamarr-export: warning: {message}"), file=stream, flush=True)  # names escaped

    @contextmanager
    def step(self, key: str, message: str) -> Iterator[None]:
        """Announce ``message``, run the block, add its duration to ``timings[key]``."""
        self.say(f"{message} ...")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start
        interrupt.check()  # a Ctrl-C that a library swallowed during the step
