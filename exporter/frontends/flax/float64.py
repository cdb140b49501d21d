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
LOOPS = ("scan", "while", "cond")  # rebound with their bodies nudged


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
    """``closed`` (a ``ClosedJaxpr``) evaluated nudged, as a jaxpr taking the nudge's scale first."""
    import jax

    avals = [jax.ShapeDtypeStruct((), np.float64), *(v.aval for v in closed.jaxpr.invars)]
    return jax.make_jaxpr(lambda scale, *args: evaluate(closed.jaxpr, closed.consts, args, scale))(*avals)


def _loop(name: str, params: dict[str, Any], args: list[Any], scale: Any) -> tuple[dict[str, Any], list[Any]]:
    """A ``scan``'s, ``while``'s or ``cond``'s parameters and operands with its bodies evaluated nudged: each
    body takes the scale as one more operand, a constant of the loop (the first of its constants)."""
    if name == "scan":
        params = {**params, "jaxpr": _rebound(params["jaxpr"]), "num_consts": params["num_consts"] + 1}
        if "linear" in params:  # older JAX: which operands are linear
            params["linear"] = (False, *params["linear"])
        return params, [scale, *args]
    if name == "while":
        k = params["cond_nconsts"]
        params = {**params, "body_jaxpr": _rebound(params["body_jaxpr"]), "body_nconsts": params["body_nconsts"] + 1}
        return params, [*args[:k], scale, *args[k:]]
    return {**params, "branches": tuple(map(_rebound, params["branches"]))}, [args[0], scale, *args[1:]]


def _apply(eqn: Any, args: list[Any], scale: Any) -> list[Any]:
    """``eqn`` on ``args``, its float outputs nudged by ``scale`` times their ULPs (nested jaxprs too)."""
    import jax.numpy as jnp

    name, params = eqn.primitive.name, dict(eqn.params)
    if name in CALLS:
        body = next(params[key] for key in INLINED if key in params)
        return evaluate(*_closed(body), args, scale)
    if name in LOOPS:
        params, args = _loop(name, params, args, scale)
        return list(eqn.primitive.bind(*args, **params))
    outs = eqn.primitive.bind(*args, **params)
    outs = list(outs) if eqn.primitive.multiple_results else [outs]
    if name in EXACT:
        return outs
    ulps = sum_ulps(_terms(eqn)) * scale
    return [jax_nudge()(out, ulps) if jnp.issubdtype(out.dtype, jnp.floating) else out for out in outs]


def evaluate(jaxpr: Any, consts: Sequence[Any], args: Sequence[Any], scale: Any) -> list[Any]:
    """``jaxpr`` evaluated on ``args``, primitive by primitive, every float value it computes moved by ``scale``
    times its float32 ULPs (0: not moved, the plain twin)."""
    from jax.extend.core import Literal

    env: dict[Any, Any] = {}

    def read(v: Any) -> Any:
        return v.val if isinstance(v, Literal) else env[v]

    env.update(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))
    for eqn in jaxpr.eqns:
        outs = _apply(eqn, [read(v) for v in eqn.invars], scale)
        env.update(zip(eqn.outvars, outs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def flax_reference64(
    fn: Callable[[Any, Any], Any], params: Any, n_inputs: int
) -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    """``(plain, nudged)``: ``fn(params, row)`` in float64 over rows of ``n_inputs`` (float64 rows in and out);
    ``nudged``: every primitive's float output moved (the module's docstring). One program, compiled on first
    use, computes both: the nudges' scale is its argument (0 for the plain twin, whose values it leaves)."""
    import jax

    def cast(leaf: Any) -> Any:  # floats only: an nnx state also holds integers and random keys
        dtype = getattr(leaf, "dtype", None)
        floating = dtype is not None and jax.numpy.issubdtype(dtype, np.floating)
        return np.asarray(leaf, np.float64) if floating else leaf  # numpy: JAX compiles a cast per shape

    compiled: list[Any] = []

    def build() -> Any:
        params64 = jax.tree_util.tree_map(cast, params)
        closed = jax.make_jaxpr(lambda x: fn(params64, x))(jax.ShapeDtypeStruct((n_inputs,), np.float64))
        row = lambda x, scale: evaluate(closed.jaxpr, closed.consts, [x], scale)[0]  # noqa: E731
        return jax.jit(jax.vmap(row, in_axes=(0, None)))

    def reference(rows: np.ndarray, nudged: bool = False) -> np.ndarray:
        with jax.enable_x64(True):
            try:
                if not compiled:
                    compiled.append(build())
                scale = np.float64(1.0 if nudged else 0.0)
                out = np.asarray(compiled[0](np.asarray(rows, dtype=np.float64), scale))
            except TypeError as err:  # nn.RNN: a scan whose carry the module starts in float32
                raise Float64Unavailable(f"the model mixes float32 into float64 ({str(err).splitlines()[0]})") from None
        if out.dtype != np.float64:
            raise Float64Unavailable(f"the model computes {out.dtype} with float64 params and rows")
        return out.reshape(len(out), -1)

    return reference, lambda rows: reference(rows, nudged=True)
