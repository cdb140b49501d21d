"""The C of what a library says about itself (``templates/library.c.j2``; the facts: ``check/library_card.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from exporter.backend.literals import c_double
from exporter.backend.templates import environment
from exporter.common.escaping import c_string


def _tolerance(value: float) -> str:
    """A tolerance as a double literal; ``inf`` (any difference passes) as <math.h>'s HUGE_VAL. ``rtol * |v|``
    is taken as 0 where ``v`` is 0 (the template), as the parity check takes it, so inf * 0 is no NaN."""
    return "HUGE_VAL" if value == math.inf else c_double(value)


@dataclass(frozen=True)
class SelfTest:
    """One top-level symbol as ``library.c.j2`` prints it (``s``): its info and its reference rows, flat."""

    symbol: str
    info_json: str  # what SYMBOL_info returns
    real: str  # the C type of its inputs and outputs
    atol: float
    rtol: float
    n_inputs: int
    n_outputs: int
    n_noise: int
    n_rows: int
    inputs: list[float]
    noise: list[float]  # empty: not a generator
    outputs: list[float]

    @property
    def info(self) -> str:
        """The info as a C string literal."""
        return c_string(self.info_json)

    @property
    def atol_c(self) -> str:
        return _tolerance(self.atol)

    @property
    def rtol_c(self) -> str:
        return _tolerance(self.rtol)


@dataclass(frozen=True)
class LibraryContext:
    """What ``library.c.j2`` prints (``m``): the symbols' self-tests, their export macro's prefix, and the
    manifest's library whose ``LIBRARY_symbols`` lists them (None: a single model's file)."""

    prefix: str
    symbols: tuple[SelfTest, ...]
    library: str | None


def render_library(prefix: str, symbols: list[SelfTest], library: str | None) -> tuple[str, str]:
    """The ``.c`` and ``.h`` text appended to a file: ``symbols`` (their info, reference rows, widths and
    tolerance) and, for a manifest's library, ``LIBRARY_symbols``."""
    m = LibraryContext(prefix, tuple(symbols), library)
    module = environment().get_template("library.c.j2").module
    return module.c(m), module.h(m)  # type: ignore[attr-defined]
