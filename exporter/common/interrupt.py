"""Ctrl-C that is not lost.

Python raises ``KeyboardInterrupt`` wherever the signal lands. Landing inside a library that catches
everything (Keras' model loading has bare ``except:`` clauses), it was swallowed, and the export ran
on for minutes. While the console command runs, the signal is also recorded, and every step's end and
every chunk of a long computation raise it again (``check``). While a framework imports it is held
back until the import ends (``deferred``): raised inside jaxlib's start-up it crashed the process
(SIGSEGV) or came out as an ImportError, reported as a missing package.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_received = threading.Event()
_deferring = threading.Event()


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.set()
    if not _deferring.is_set():
        raise KeyboardInterrupt


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C came while ``recorded`` was active, even if it was swallowed."""
    if _received.is_set():
        raise KeyboardInterrupt


@contextmanager
def recorded() -> Iterator[None]:
    """Record SIGINT for ``check`` during the block (from the main thread only, where Python takes signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _received.clear()


@contextmanager
def deferred() -> Iterator[None]:
    """Hold a recorded Ctrl-C back until the block ends (a framework's import), then raise it."""
    if _deferring.is_set():  # nested: the outer block raises it
        yield
        return
    _deferring.set()
    try:
        yield
    finally:
        _deferring.clear()
    check()
