"""The C of what a library says about itself (``templates/library.c.j2``; the facts: ``exporter/library.py``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from exporter.backend.literals import PER_LINE, _literal, c_double
from exporter.escaping import c_string


def c_values(values: Sequence[float], real: str = "float") -> str:
    """An initializer's body of float32 values printed as ``real``, infinities and NaN as <math.h>'s macros
    (cast to double for a double array: ``-Wdouble-promotion``)."""

    def one(v: float) -> str:
        if math.isfinite(v):
            return _literal(v, real)
        word = "NAN" if math.isnan(v) else ("-" if v < 0 else "") + "INFINITY"
        return word if real == "float" else f"(double)({word})"

    items = [one(float(v)) for v in values]
    return "\n".join("    " + ", ".join(items[i : i + PER_LINE]) + "," for i in range(0, len(items), PER_LINE))


def _tolerance(value: float) -> str:
    """A tolerance as a double literal; ``inf`` (any difference passes) as <math.h>'s HUGE_VAL. ``rtol * |v|``
    is taken as 0 where ``v`` is 0 (the template), as the parity check takes it, so inf * 0 is no NaN."""
    return "HUGE_VAL" if value == math.inf else c_double(value)


def render_library(prefix: str, symbols: list[dict[str, Any]], library: str | None) -> tuple[str, str]:
    """The ``.c`` and ``.h`` text appended to a file: ``symbols`` (one dict per top-level symbol: its info JSON,
    its reference rows, widths and tolerance) and, for a manifest's library, ``LIBRARY_symbols``."""
    from exporter.backend.templates import environment

    entries = [
        {**s, "info": c_string(s["info"]), "atol_c": _tolerance(s["atol"]), "rtol_c": _tolerance(s["rtol"])}
        for s in symbols
    ]
    m = {"prefix": prefix, "symbols": entries, "library": library}
    module = environment().get_template("library.c.j2").module
    return module.c(m), module.h(m)  # type: ignore[attr-defined]
