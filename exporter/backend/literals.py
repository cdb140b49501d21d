"""C literals for weights: exact round-trip, deterministic, valid in C99 and in C++98 and later.

``%.9g`` always round-trips a float32 (9 significant digits suffice) and, unlike hex
floats, is also accepted by pre-C++17 compilers.
"""

from __future__ import annotations

import math

import numpy as np

PER_LINE = 8


def c_float(value: float) -> str:
    """One float32 literal, e.g. ``0.5f``, ``1.f``, ``-2.5e-08f``."""
    return _literal(float(np.float32(value)))


def _literal(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value} has no C float literal without <math.h> macros")
    text = f"{value:.9g}"
    return text + ("f" if ("." in text or "e" in text) else ".f")


def c_array(values: np.ndarray) -> str:
    """The body of a float array initializer, PER_LINE literals per line."""
    return _lines([_literal(v) for v in np.asarray(values, dtype=np.float32).reshape(-1).tolist()])


def c_double(value: float) -> str:
    """One double literal: Python's repr is the shortest string that round-trips."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{value} has no C double literal without <math.h> macros")
    text = repr(value)
    return text if ("." in text or "e" in text) else text + ".0"


def c_doubles(values: np.ndarray) -> str:
    """The body of a double array initializer."""
    return _lines([c_double(v) for v in np.asarray(values, dtype=np.float64).reshape(-1).tolist()])


def _lines(literals: list[str]) -> str:
    return ",\n".join("    " + ", ".join(literals[i : i + PER_LINE]) for i in range(0, len(literals), PER_LINE))


def c_comment(text: object) -> str:
    """Text safe inside a /* */ comment on one line."""
    return str(text).replace("*/", "* /").replace("/*", "/ *").replace("\n", " ")
