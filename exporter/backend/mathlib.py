"""Which float functions the generated C uses: ``fast`` (our branch-free inline helpers) or ``libm``.

``--math fast`` (the default) evaluates tanh, sigmoid, exp, expm1, log1p, mish and the normal CDF
with the helpers of ``templates/math.c.j2``: plain float arithmetic and integer bit operations
that GCC vectorizes at ``-O2``/``-O3`` without ``-march`` or ``-ffast-math``, so a layer's
activations cost a few cycles per value instead of a libm call each. ``--math libm`` calls
``tanhf``, ``expf``... as before, for users who want libm's own results bit for bit.

Only the helpers a model's code calls are emitted: the backend scans the rendered code for
``<symbol>_<helper>(`` and closes that set over the helpers' own calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType

from exporter.errors import ExportError

MATH_MODES = ("fast", "libm")
DEFAULT_MATH = "fast"

# every helper of templates/math.c.j2, each after the helpers it calls
HELPERS = (
    "bits",
    "float",
    "pick",
    "min",
    "max",
    "round",
    "pow2",
    "sign",
    "expm1_reduced",
    "exp",
    "expm1",
    "log1p",
    "tanh",
    "sigmoid",
    "softplus_tail",
    "mish",
    "ncdf",
)

# Largest error of each --math fast activation over all floats, in ULPs of the exact result
# (libm in double) where that is at least FLT_MIN, else in units of FLT_MIN. Checked by
# tests/test_fast_math.py; docs/speed.md's table quotes it.
ACCURACY: Mapping[str, float] = MappingProxyType(
    {
        "exponential": 1,
        "tanh": 3,
        "sigmoid": 3,
        "silu": 4,
        "elu": 1,
        "selu": 3,
        "celu": 1,
        "softplus": 2,
        "log_sigmoid": 2,
        "mish": 4,
        "gelu_erf": 8,
        # x < -5 only: the float rounding of its argument 0.798 (x + 0.0447 x^3) is amplified by exp;
        # libm's tanhf in 0.5 x (1 + tanh(u)) cancels there and is off by up to 2^24 ULP
        "gelu_tanh": 150,
        "softmax": 3,
        "log_softmax": 3,
    }
)


REALS = ("float", "double")


def check_real(real: str, math: str) -> str:
    """``double`` evaluates activations with libm's double functions: fast math is float only."""
    if real not in REALS:
        raise ValueError(f"dtype {real!r}: expected one of {', '.join(REALS)}")
    if real == "double" and math != "libm":
        raise ExportError("--dtype double needs --math libm: the inline approximations are float only")
    return real


def resolve_math(math: str | None, real: str) -> str:
    """The math mode to use: as asked, else fast for float and libm for double."""
    return math if math is not None else ("libm" if real == "double" else DEFAULT_MATH)


def check_math(mode: str) -> str:
    if mode not in MATH_MODES:
        raise ValueError(f"math mode {mode!r}: expected one of {', '.join(MATH_MODES)}")
    return mode


def helpers_used(code: str, prefix: str, definition: Callable[[str], str]) -> list[str]:
    """The helpers ``code`` calls, directly or through other helpers, in definition order."""
    calls = re.compile(rf"\b{re.escape(prefix)}_({'|'.join(HELPERS)})\(")
    needed: set[str] = set()
    pending = set(calls.findall(code))
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.update(calls.findall(definition(name)))
    return [name for name in HELPERS if name in needed]
