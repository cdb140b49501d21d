"""One float32 ULP's nudge of a float64 value: what every framework's nudged float64 twin (Keras', Flax's, ONNX's)
moves each layer's or op's output by, so that the float32 rule's envelope holds the rounding between layers
that later layers amplify (docs/parity.md).

One formula, written over an array namespace (``keras.ops``, ``jax.numpy`` or ``numpy``): the value moved by
``ulps`` float32 ULPs of itself, the sign drawn from its own float32 mantissa (a Weyl sequence: no random state,
so it runs inside a scan, a graph or a jitted function alike); whole numbers (an index, a 0/1 mask, a ReLU's
zeros: float32 holds them exactly) and non-finite values stay. A sum of n terms moves by ``sum_ulps(n)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

GOLDEN = 0.6180339887498949  # the Weyl sequence's step: signs of consecutive mantissas spread evenly
# 2**k for every exponent a float64's ULP-in-float32 can have, looked up: TensorFlow's pow runs a scalar
# std::pow per element, 10x the rest of the nudge; the table's powers are exact (0 below 2**-1074, as pow's).
LOWEST, HIGHEST = -1100, 1001
POWERS = np.ldexp(1.0, np.arange(LOWEST, HIGHEST + 1))


def sum_ulps(n: int) -> float:
    """How many ULPs a sum of ``n`` terms is moved by: the C sums in row order, about sqrt(n) roundings."""
    return math.sqrt(max(n, 1))


def nudge_with(ops: Any, cast: Callable[[Any, Any], Any], x: Any, ulps: Any) -> Any:
    """``x`` (a float tensor) moved by ``ulps`` float32 ULPs, computed with ``ops`` (a numpy-like namespace) and
    ``cast(tensor, dtype)``; whole numbers and non-finite values unchanged."""
    magnitude = ops.abs(x)
    exponent = ops.floor(ops.log2(magnitude)) - 23.0  # -inf at 0, non-finite beside non-finite values
    exponent = ops.where(ops.isfinite(exponent), ops.clip(exponent, LOWEST, HIGHEST), LOWEST)
    ulp = ops.take(cast(POWERS, x.dtype), cast(exponent, "int32") - LOWEST)  # 0 where not finite
    moved = (ulp > 0) & ops.not_equal(x, ops.round(x))
    ulp = ops.where(moved, ulp, 1.0)
    turn = ops.floor(magnitude / ulp) * GOLDEN
    sign = cast(ops.where(turn - ops.floor(turn) < 0.5, 1.0, -1.0), x.dtype)
    return ops.where(moved, x + sign * (ulp * ulps), x)


def nudge_array(x: np.ndarray, ulps: float = 1.0) -> np.ndarray:
    """``nudge_with`` in numpy: a float array moved, any other array as it is."""
    if not np.issubdtype(x.dtype, np.floating):
        return x
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return nudge_with(np, lambda a, dtype: np.asarray(a).astype(dtype), x, ulps)


def nudge_jax(x: Any, ulps: Any = 1.0) -> Any:
    """``nudge_with`` in ``jax.numpy``, traced where it is called (inside a jitted function)."""
    import jax.numpy as jnp

    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x
    return nudge_with(jnp, lambda a, dtype: jnp.asarray(a).astype(dtype), x, ulps)


@functools.cache
def jax_nudge() -> Callable[[Any, Any], Any]:
    """``nudge_jax`` compiled by JAX (one XLA program per shape and dtype, not one per operation): for eager
    callers."""
    import jax

    return jax.jit(nudge_jax)
