"""One float32 ULP's nudge of a float64 value: what every framework's nudged float64 twin (Keras', Flax's, ONNX's)
moves each layer's or op's output by, so that the float32 rule's envelope holds the rounding between layers
that later layers amplify (docs/parity.md).

One formula, written over an array namespace (``keras.ops``, ``jax.numpy`` or ``numpy``) on the value's bits
(float64 or float32): the value moved by ``ulps`` float32 ULPs of itself (2 to the power of its binary
exponent minus 23, made from the exponent's bits: exact, and a few integer operations where a logarithm and
a table of powers cost an XLA compile twice as long), the sign drawn from its own float32 mantissa (a Weyl
sequence over its 24 leading bits: no random state, so it runs inside a scan, a graph or a jitted function
alike); whole numbers (an index, a 0/1 mask, a ReLU's zeros: float32 holds them exactly), values whose
float32 ULP would be below the smallest normal number and non-finite values stay. A sum of n terms moves by
``sum_ulps(n)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

GOLDEN = 0.6180339887498949  # the Weyl sequence's step: signs of consecutive mantissas spread evenly


def sum_ulps(n: int) -> float:
    """How many ULPs a sum of ``n`` terms is moved by: the C sums in row order, about sqrt(n) roundings."""
    return math.sqrt(max(n, 1))


LAYOUTS = {"float64": ("int64", 52, 0x7FF), "float32": ("int32", 23, 0xFF)}  # bits, mantissa, exponent mask


def nudge_with(
    ops: Any, view: Callable[[Any, str], Any], cast: Callable[[Any, str], Any], x: Any, ulps: Any, dtype: str
) -> Any:
    """``x`` (a tensor of ``dtype``, float64 or float32) moved by ``ulps`` float32 ULPs, computed with ``ops`` (a
    numpy-like namespace), ``view(tensor, dtype)`` (its bits as another type) and ``cast(tensor, dtype)``;
    whole numbers, values whose float32 ULP would be below the smallest normal and non-finite values unchanged."""
    ints, mantissa, top = LAYOUTS[dtype]
    bits = view(x, ints)
    exponent = ops.bitwise_and(ops.right_shift(bits, mantissa), top)  # biased; ``top``: not finite
    ulp = view(ops.left_shift(ops.maximum(exponent - 23, 0), mantissa), dtype)  # 2**(e - 23): float32's ULP
    leading = ops.bitwise_or(ops.bitwise_and(ops.right_shift(bits, mantissa - 23), 0x7FFFFF), 0x800000)
    turn = cast(leading, dtype) * GOLDEN  # the 24 leading bits: floor(|x| / ulp)
    sign = cast(ops.where(turn - ops.floor(turn) < 0.5, 1.0, -1.0), dtype)  # TensorFlow: floatx otherwise
    moved = (exponent > 23) & (exponent < top) & ops.not_equal(x, ops.round(x))
    return ops.where(moved, x + sign * cast(ulp * ulps, dtype), x)


def nudge_array(x: np.ndarray, ulps: float = 1.0) -> np.ndarray:
    """``nudge_with`` in numpy: a float array moved (a narrower float in float32), any other as it is."""
    if not np.issubdtype(x.dtype, np.floating):
        return x
    wide = x if x.dtype.name in LAYOUTS else x.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        moved = nudge_with(
            np, lambda a, d: a.view(d), lambda a, d: np.asarray(a).astype(d), wide, ulps, wide.dtype.name
        )
    return moved.astype(x.dtype)


def nudge_jax(x: Any, ulps: Any = 1.0) -> Any:
    """``nudge_with`` in ``jax.numpy``, traced where it is called."""
    import jax
    import jax.numpy as jnp

    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x
    wide = x if str(x.dtype) in LAYOUTS else x.astype(jnp.float32)
    cast = lambda a, d: jnp.asarray(a).astype(d)  # noqa: E731
    return nudge_with(jnp, jax.lax.bitcast_convert_type, cast, wide, ulps, str(wide.dtype)).astype(x.dtype)


@functools.cache
def jax_nudge() -> Callable[[Any, Any], Any]:
    """``nudge_jax`` compiled by JAX (one XLA program per shape and dtype, not one per operation): for eager
    callers."""
    import jax

    return jax.jit(nudge_jax)
