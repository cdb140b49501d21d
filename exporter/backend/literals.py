"""C literals for weights: exact round-trip, deterministic, valid in C99 and in C++98 and later.

``%.9g`` always round-trips a float32 (9 significant digits suffice) and, unlike hex
floats, is also accepted by pre-C++17 compilers. For ``--dtype double`` the same float32
values are printed as double literals that hold them exactly (Python's shortest repr of
the double, at most 17 digits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

PER_LINE = 8


def c_float(value: float, real: str = "float") -> str:
    """One literal of the float32 ``value``: ``0.5f``, ``1.f``, ``-2.5e-08f``; or ``0.5``, ``1.`` as double."""
    return _literal(float(np.float32(value)), real)


def _literal(value: float, real: str = "float") -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value} has no C float literal without <math.h> macros")
    text = f"{value:.9g}" if real == "float" else repr(value)
    if "." not in text and "e" not in text:
        text += "."
    return text + ("f" if real == "float" else "")


def c_array(values: np.ndarray, real: str = "float") -> str:
    """The body of an array initializer of float32 weights (printed as ``real``), PER_LINE literals per line."""
    return _c_array(np.asarray(values, dtype=np.float32).reshape(-1).tobytes(), real)


@lru_cache(maxsize=64)
def _c_array(data: bytes, real: str) -> str:
    """Cached by value: an export renders its file twice (the second time with the parity verdict in the banner)."""
    return _lines([_literal(v, real) for v in np.frombuffer(data, dtype=np.float32).tolist()])


def c_bound(value: float) -> str:
    """One float literal of a float32 value that may be infinite (<math.h>'s ``INFINITY``)."""
    return _literal(value) if math.isfinite(value) else ("-" if value < 0 else "") + "INFINITY"


def c_bounds(values: np.ndarray) -> str:
    """The body of a float array initializer of float32 values that may be infinite (<math.h>'s ``INFINITY``)."""
    return _lines([c_bound(v) for v in np.asarray(values, dtype=np.float32).reshape(-1).tolist()])


def c_words(values: np.ndarray) -> str:
    """The body of an initializer of unsigned words (uint32 or uint64), in hex with their suffix (no
    signed literal too large for its type)."""
    values = np.asarray(values).reshape(-1)
    suffix = "ull" if values.dtype.itemsize > 4 else "u"
    return _lines([f"{v:#x}{suffix}" for v in values.tolist()])


def c_ints(values: np.ndarray) -> str:
    """The body of an integer array initializer."""
    return _lines([str(int(v)) for v in np.asarray(values).reshape(-1).tolist()])


def c_double(value: float) -> str:
    """One double literal of a float64 value (not rounded to float32): the shortest string that round-trips."""
    return _literal(float(value), "double")


def c_doubles(values: np.ndarray) -> str:
    """The body of a double array initializer of float64 values."""
    return _lines([c_double(v) for v in np.asarray(values, dtype=np.float64).reshape(-1).tolist()])


def _lines(literals: list[str]) -> str:
    return ",\n".join("    " + ", ".join(literals[i : i + PER_LINE]) for i in range(0, len(literals), PER_LINE))


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
