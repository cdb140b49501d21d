"""Activation functions as the IR states them: a kind plus its numeric parameters.

Frameworks disagree on names and defaults (Keras' ``leaky_relu`` defaults to a slope
of 0.2, its ``LeakyReLU`` layer to 0.3; Keras' ``gelu`` is exact, JAX's is the tanh
form). Frontends resolve those differences; the IR only ever holds explicit values,
so that the backend never has to guess a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# kind -> names of the parameters it requires (all floats)
ELEMENTWISE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "linear": (),
        "relu": (),
        # Keras' general ReLU: (x > threshold ? x : 0), clipped at max_value,
        # minus negative_slope * max(threshold - x, 0).
        "relu_general": ("negative_slope", "max_value", "threshold"),
        "leaky_relu": ("negative_slope",),
        "elu": ("alpha",),
        "selu": (),
        "celu": ("alpha",),
        "gelu_erf": (),
        "gelu_tanh": (),
        "silu": (),
        "sigmoid": (),
        "hard_sigmoid": (),
        "hard_silu": (),
        "log_sigmoid": (),
        "tanh": (),
        "hard_tanh": (),
        "softplus": (),
        "softsign": (),
        "mish": (),
        "exponential": (),
        # elementwise functions that traced JAX code applies on its own (gelu, preprocessing...)
        "log": (),
        "log1p": (),
        "expm1": (),
        "abs": (),
        "sqrt": (),
        "rsqrt": (),
        "erf": (),
        "erfc": (),
        "integer_pow": ("exponent",),
    }
)

# kinds that couple the features of one row (normalised over the last axis)
VECTOR: Mapping[str, tuple[str, ...]] = MappingProxyType({"softmax": (), "log_softmax": ()})


@dataclass(frozen=True)
class Activation:
    """One activation, fully specified: ``kind`` plus every parameter it needs."""

    kind: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        required = ELEMENTWISE.get(self.kind, VECTOR.get(self.kind))
        if required is None:
            raise ValueError(f"unknown activation kind {self.kind!r}")
        if set(self.params) != set(required):
            raise ValueError(f"activation {self.kind!r} needs parameters {sorted(required)}, got {sorted(self.params)}")
        object.__setattr__(self, "params", MappingProxyType({k: float(v) for k, v in self.params.items()}))

    @property
    def is_linear(self) -> bool:
        return self.kind == "linear"

    @property
    def is_vector(self) -> bool:
        return self.kind in VECTOR

    def describe(self) -> str:
        if not self.params:
            return self.kind
        args = ", ".join(f"{k}={v:g}" for k, v in sorted(self.params.items()))
        return f"{self.kind}({args})"


LINEAR = Activation("linear")
