"""The C of what a library says about itself (``templates/library.c.j2``; the facts: ``check/library_card.py``)."""

from __future__ import annotations

import math
from typing import Any

from exporter.backend.literals import c_double
from exporter.backend.templates import environment
from exporter.common.escaping import c_string


def _tolerance(value: float) -> str:
    """A tolerance as a double literal; ``inf`` (any difference passes) as <math.h>'s HUGE_VAL. ``rtol * |v|``
    is taken as 0 where ``v`` is 0 (the template), as the parity check takes it, so inf * 0 is no NaN."""
    return "HUGE_VAL" if value == math.inf else c_double(value)


def render_library(prefix: str, symbols: list[dict[str, Any]], library: str | None) -> tuple[str, str]:
    """The ``.c`` and ``.h`` text appended to a file: ``symbols`` (one dict per top-level symbol: its info JSON,
    its reference rows, widths and tolerance) and, for a manifest's library, ``LIBRARY_symbols``."""
    entries = [
        {**s, "info": c_string(s["info"]), "atol_c": _tolerance(s["atol"]), "rtol_c": _tolerance(s["rtol"])}
        for s in symbols
    ]
    m = {"prefix": prefix, "symbols": entries, "library": library}
    module = environment().get_template("library.c.j2").module
    return module.c(m), module.h(m)  # type: ignore[attr-defined]
