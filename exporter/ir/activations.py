"""Activation functions as the IR states them: a kind plus its numeric parameters, and the one table of kinds.

Frameworks disagree on names and defaults (Keras' ``leaky_relu`` defaults to a slope
of 0.2, its ``LeakyReLU`` layer to 0.3; Keras' ``gelu`` is exact, JAX's is the tanh
form). Frontends resolve those differences; the IR only ever holds explicit values,
so that the backend never has to guess a default.

``KINDS`` is everything the exporter knows of a kind in one place: its parameters, the helpers
of ``templates/math.c.j2`` its C calls (``--math fast``, and ``--math libm``: the selects ``min``,
``max``, ``pick`` are helpers in both modes), and the largest error of its ``--math fast`` C in
ULP (checked by ``tests/test_fast_math.py``). Its C expression is one branch of
``templates/activations.c.j2``. A frontend maps a framework's function to the kind of the same
name without listing it; only renamed functions and framework defaults are written there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Kind:
    """One activation kind: parameters (floats), helpers its C calls, stated accuracy (None: exact or libm's)."""

    params: tuple[str, ...] = ()
    fast: tuple[str, ...] = ()  # helpers under --math fast
    libm: tuple[str, ...] = ()  # helpers under --math libm (and for double)
    accuracy: float | None = None  # largest --math fast error in ULP over all floats
    vector: bool = False  # couples the features of a row (normalised over the last axis)


def _select(*helpers: str) -> Kind:
    """A kind written with selects only: the same helpers in both modes."""
    return Kind(fast=helpers, libm=helpers)


KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        "linear": Kind(),
        "relu": _select("max"),
        # Keras' general ReLU: (x > threshold ? x : 0), clipped at max_value,
        # minus negative_slope * max(threshold - x, 0); its helpers depend on which parts act.
        "relu_general": Kind(params=("negative_slope", "max_value", "threshold")),
        "leaky_relu": Kind(params=("negative_slope",), fast=("pick",), libm=("pick",)),
        "elu": Kind(params=("alpha",), fast=("pick", "expm1"), libm=("pick",), accuracy=1),
        "selu": Kind(fast=("pick", "expm1"), libm=("pick",), accuracy=3),
        "celu": Kind(params=("alpha",), fast=("pick", "expm1"), libm=("pick",), accuracy=1),
        "gelu_erf": Kind(fast=("ncdf",), accuracy=8),
        # x < -5 only: the float rounding of its argument 0.798 (x + 0.0447 x^3) is amplified by exp;
        # libm's tanhf in 0.5 x (1 + tanh(u)) cancels there and is off by up to 2^24 ULP
        "gelu_tanh": Kind(fast=("sigmoid",), accuracy=150),
        "silu": Kind(fast=("sigmoid",), accuracy=4),
        "sigmoid": Kind(fast=("sigmoid",), accuracy=3),
        "hard_sigmoid": _select("min", "max"),
        "hard_silu": _select("min", "max"),
        "log_sigmoid": Kind(fast=("min", "softplus_tail"), libm=("min",), accuracy=2),
        "tanh": Kind(fast=("tanh",), accuracy=3),
        "hard_tanh": _select("min", "max"),
        "softplus": Kind(fast=("max", "softplus_tail"), libm=("max",), accuracy=2),
        "softsign": Kind(),
        "mish": Kind(fast=("mish",), libm=("max",), accuracy=4),
        "exponential": Kind(fast=("exp",), accuracy=1),
        # the shrinks and thresholds as Keras and JAX write them: selects, NaN goes where their `where` sends it
        "hard_shrink": Kind(params=("threshold",), fast=("pick",), libm=("pick",)),
        "soft_shrink": Kind(params=("threshold",), fast=("pick",), libm=("pick",)),
        "threshold": Kind(params=("threshold", "default_value"), fast=("pick",), libm=("pick",)),
        "clip": Kind(params=("low", "high"), fast=("min", "max"), libm=("min", "max")),
        "sparse_plus": _select("pick"),
        "sparse_sigmoid": _select("pick"),
        # x - tanh(x) cancels near 0: evaluated in double, then rounded (libm's tanh in both modes)
        "tanh_shrink": Kind(),
        # (x + sqrt(x^2 + b)) / 2 without the cancellation of Keras' and JAX's formula for x << -sqrt(b)
        "squareplus": Kind(params=("b",), fast=("pick",), libm=("pick",)),
        # elementwise functions that traced JAX code applies on its own (gelu, preprocessing...)
        "log": Kind(),
        "log1p": Kind(fast=("log1p",)),
        "expm1": Kind(fast=("expm1",)),
        "abs": Kind(),
        "sqrt": Kind(),
        "rsqrt": Kind(),
        "erf": Kind(),
        "erfc": Kind(),
        "integer_pow": Kind(params=("exponent",)),
        # keras.ops' and JAX's elementwise functions: libm's in both modes (round: to nearest even)
        **{
            name: Kind()
            for name in ("sin cos tan asin acos atan sinh cosh asinh acosh atanh exp2 log2 log10 cbrt").split()
        },
        **{name: Kind() for name in ("floor ceil trunc round reciprocal").split()},
        "sign": _select("pick"),  # NaN stays NaN
        "sinc": _select("pick"),  # sin(pi x) / (pi x), 1 at 0
        "power": Kind(params=("exponent",)),  # pow(x, exponent); integer_pow for whole exponents
        # NaN, +inf, -inf replaced by these (beyond float's largest value counts as infinite in double too)
        "nan_to_num": Kind(params=("nan", "posinf", "neginf"), fast=("pick",), libm=("pick",)),
        "softmax": Kind(fast=("exp",), accuracy=3, vector=True),
        "log_softmax": Kind(fast=("exp", "log1p"), accuracy=3, vector=True),
    }
)

# kind -> stated --math fast accuracy (the docs' table and tests/test_fast_math.py read it)
ACCURACY: Mapping[str, float] = MappingProxyType({k: v.accuracy for k, v in KINDS.items() if v.accuracy is not None})


@dataclass(frozen=True)
class Activation:
    """One activation, fully specified: ``kind`` plus every parameter it needs."""

    kind: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown activation kind {self.kind!r}")
        required = KINDS[self.kind].params
        if set(self.params) != set(required):
            raise ValueError(f"activation {self.kind!r} needs parameters {sorted(required)}, got {sorted(self.params)}")
        params = {k: float(v) for k, v in self.params.items()}
        # a missing cap is the one infinity a parameter may hold; the C has no literal for the others
        odd = sorted(k for k, v in params.items() if not math.isfinite(v) and (k, v) != ("max_value", math.inf))
        if odd:
            raise ValueError(f"activation {self.kind!r}: parameter {odd[0]} = {params[odd[0]]} is not a finite number")
        object.__setattr__(self, "params", MappingProxyType(params))

    @property
    def is_linear(self) -> bool:
        return self.kind == "linear"

    @property
    def is_vector(self) -> bool:
        return KINDS[self.kind].vector

    def helpers(self, math: str) -> tuple[str, ...]:
        """The helpers of ``templates/math.c.j2`` its C calls directly, under ``math`` ("fast" or "libm")."""
        if self.kind == "relu_general":  # the clip and the slope are written only when they act
            kept = "pick" if self.params["threshold"] != 0 else "max"  # as templates/activations.c.j2 writes it
            clip = ("min", "max") if self.params["max_value"] != float("inf") else ()
            return (kept, *clip, *(("max",) if self.params["negative_slope"] != 0 else ()))
        kind = KINDS[self.kind]
        return kind.fast if math == "fast" else kind.libm

    def flops(self, width: int) -> int:
        """Estimated FLOPs on a row of ``width``: 1 per element, a vector kind 4 (max, exp, sum, divide)."""
        if self.is_linear:
            return 0
        return (4 if self.is_vector else 1) * width

    def describe(self) -> str:
        if not self.params:
            return self.kind
        args = ", ".join(f"{k}={v:g}" for k, v in sorted(self.params.items()))
        return f"{self.kind}({args})"


LINEAR = Activation("linear")
