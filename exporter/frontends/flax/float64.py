"""The same Flax/JAX function computed in float64: the float32 rule's reference, and its nudged twin.

The plain twin is the user's function with JAX's x64 on, the parameters cast (floats only) and float64 rows.
A module that fixes float32 in its own code (``dtype=jnp.float32``) computes float32 anyway: the output's
dtype is checked, and ``Float64Unavailable`` says so (the fixed rule then decides).

The nudged twin (the float32 rule's envelope, as Keras' in ``exporter/frontends/keras/float64.py``): float32
rounds what every primitive writes, and the primitives after it amplify that rounding (a chain of tanh layers
whose gain is above 1, a LayerNorm after a sum that cancels). So the float64 function is traced once into a
jaxpr and evaluated primitive by primitive, each float output moved by one float32 ULP
(``exporter/frontends/nudge.py``), a sum of n terms (``dot_general``'s contraction, a convolution's fan-in,
``reduce_sum``) by sqrt(n); primitives float32 computes exactly (moving, selecting, comparing values, ``max``:
a ReLU) leave their output as it is, so no value is moved twice for one rounding. The evaluation descends
into nested jaxprs: calls and custom derivatives inlined, the bodies of ``scan``, ``while`` and the branches
of ``cond`` replaced by their nudged evaluation (a recurrence moves every step's state).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from exporter.common.errors import Float64Unavailable
from exporter.frontends.nudge import jax_nudge, sum_ulps

# primitives whose float32 result is exact (no rounding to move): data movement, selection, comparison, sign
EXACT = frozenset(
    "reshape broadcast_in_dim transpose squeeze expand_dims slice dynamic_slice dynamic_update_slice gather "
    "scatter concatenate pad rev select_n max min reduce_max reduce_min argmax argmin neg abs sign floor ceil "
    "round convert_element_type copy copy_p stop_gradient clamp iota sort reduce_precision split eq ne lt le "
    "gt ge and or not xor is_finite reduce_and reduce_or reduce_window_max reduce_window_min cummax cummin "
    "sharding_constraint optimization_barrier".split()
)
INLINED = ("jaxpr", "call_jaxpr", "fun_jaxpr")  # the parameter holding a call's or a custom rule's body
CALLS = frozenset("pjit jit closed_call core_call custom_jvp_call custom_vjp_call custom_vjp_call_jaxpr".split())
BODIES = {"scan": ("jaxpr",), "while": ("body_jaxpr",), "cond": ("branches",)}  # rebound, nudged inside


def _terms(eqn: Any) -> int:
    """How many terms each output value of ``eqn`` sums (1 for a primitive that is no sum)."""
    name, params = eqn.primitive.name, eqn.params
    shapes = [getattr(v.aval, "shape", ()) for v in eqn.invars]
    if name == "dot_general":
        (contracting, _), _ = params["dimension_numbers"]
        return math.prod(shapes[0][d] for d in contracting)
    if name == "conv_general_dilated":  # the kernel's size over its output features: in features x window
        kernel, out_axis = shapes[1], params["dimension_numbers"].rhs_spec[0]
        return math.prod(kernel) // max(kernel[out_axis], 1)
    if name == "reduce_sum":
        return math.prod(shapes[0][d] for d in params["axes"])
    if name in ("cumsum", "cumlogsumexp"):
        return shapes[0][params["axis"]]
    if name == "reduce_window_sum":
        return math.prod(params["window_dimensions"])
    return 1


def _closed(jaxpr: Any) -> tuple[Any, Sequence[Any]]:
    """A nested jaxpr's equations and its constants (a ``ClosedJaxpr`` or an open ``Jaxpr``)."""
    return (jaxpr.jaxpr, jaxpr.consts) if hasattr(jaxpr, "consts") else (jaxpr, ())


def _rebound(closed: Any) -> Any:
    """``closed`` (a ``ClosedJaxpr``) with every primitive of it nudged: a jaxpr of the nudged evaluation."""
    import jax

    avals = [v.aval for v in closed.jaxpr.invars]
    return jax.make_jaxpr(lambda *args: evaluate(closed.jaxpr, closed.consts, args))(*avals)


def _apply(eqn: Any, args: list[Any]) -> list[Any]:
    """``eqn`` on ``args``, its float outputs nudged (nested jaxprs evaluated nudged)."""
    import jax.numpy as jnp

    name, params = eqn.primitive.name, dict(eqn.params)
    if name in CALLS:
        body = next(params[key] for key in INLINED if key in params)
        return evaluate(*_closed(body), args)
    if name in BODIES:
        for key in BODIES[name]:
            body = params[key]
            params[key] = tuple(map(_rebound, body)) if isinstance(body, tuple) else _rebound(body)
        outs = eqn.primitive.bind(*args, **params)
        return list(outs)
    outs = eqn.primitive.bind(*args, **params)
    outs = list(outs) if eqn.primitive.multiple_results else [outs]
    if name in EXACT:
        return outs
    ulps = sum_ulps(_terms(eqn))
    return [jax_nudge()(out, ulps) if jnp.issubdtype(out.dtype, jnp.floating) else out for out in outs]


def evaluate(jaxpr: Any, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    """``jaxpr`` evaluated on ``args``, primitive by primitive, every float value it computes nudged."""
    from jax.extend.core import Literal

    env: dict[Any, Any] = {}

    def read(v: Any) -> Any:
        return v.val if isinstance(v, Literal) else env[v]

    env.update(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))
    for eqn in jaxpr.eqns:
        outs = _apply(eqn, [read(v) for v in eqn.invars])
        env.update(zip(eqn.outvars, outs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def flax_reference64(
    fn: Callable[[Any, Any], Any], params: Any, n_inputs: int
) -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    """``(plain, nudged)``: ``fn(params, row)`` in float64 over rows of ``n_inputs`` (float64 rows in and out),
    each compiled once on first use; ``nudged``: every primitive's float output moved (the module's docstring)."""
    import jax

    def cast(leaf: Any) -> Any:  # floats only: an nnx state also holds integers and random keys
        dtype = getattr(leaf, "dtype", None)
        floating = dtype is not None and jax.numpy.issubdtype(dtype, np.floating)
        return jax.numpy.asarray(leaf, np.float64) if floating else leaf

    compiled: dict[bool, Any] = {}

    def build(nudged: bool) -> Any:
        params64 = jax.tree_util.tree_map(cast, params)
        row = lambda x: fn(params64, x)  # noqa: E731
        if nudged:
            closed = jax.make_jaxpr(row)(jax.ShapeDtypeStruct((n_inputs,), np.float64))
            row = lambda x: evaluate(closed.jaxpr, closed.consts, [x])[0]  # noqa: E731
        return jax.jit(jax.vmap(row))

    def reference(rows: np.ndarray, nudged: bool = False) -> np.ndarray:
        with jax.enable_x64(True):
            try:
                if nudged not in compiled:
                    compiled[nudged] = build(nudged)
                out = np.asarray(compiled[nudged](np.asarray(rows, dtype=np.float64)))
            except TypeError as err:  # nn.RNN: a scan whose carry the module starts in float32
                raise Float64Unavailable(f"the model mixes float32 into float64 ({str(err).splitlines()[0]})") from None
        if out.dtype != np.float64:
            raise Float64Unavailable(f"the model computes {out.dtype} with float64 params and rows")
        return out.reshape(len(out), -1)

    return reference, lambda rows: reference(rows, nudged=True)
