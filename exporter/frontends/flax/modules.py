"""Flax modules mapped whole, not primitive by primitive: LayerNorm, RMSNorm, GroupNorm, Embed (linen and nnx)
and multi-head attention (``attention.py``).

Their traced primitives (statistics over reshaped groups, a gather by a data-dependent index, a masked softmax
written with ``jnp.where``) have no C translation one by one, so the trace marks each call of these modules: the
call runs inside a ``jax.jit`` named ``lamarr_flax_<n>`` that takes the call's arrays and the module's parameters
as its last arguments (JAX puts what the call closes over first), and the marks keep what to do with it.
``JaxprWalker.call`` finds the name and adds the IR ops instead of walking into the call. linen calls are found
with ``nn.intercept_methods``; nnx has no such hook, so the ``__call__`` of nnx's classes of these names is
patched for the duration of the IR trace only. The reference is the untouched model, so the parity check
compares with Flax's own arithmetic.

The trace is of one row (no batch axis): a module sees the row's tensor as the model shaped it (the shape each
call's arrays had, recorded when it was marked): LayerNorm and RMSNorm normalize along their ``reduction_axes`` (the
last by default; others moved last by a ``Transpose`` and back), GroupNorm
(whose default statistics skip the first axis, Flax's batch axis) each group of the axes after the first, Embed
looks up every index. The walk's values are flat rows, so each result is relabelled flat again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from exporter.frontends.builder import Unsupported
from exporter.frontends.flax.attention import attention
from exporter.frontends.flax.jaxpr import Const, Data
from exporter.frontends.flax.marks import Call, Marked, as_shape
from exporter.ir import LayerNorm, Transpose
from exporter.ir.normalization import Embedding, Normalize

PREFIX = "lamarr_flax_"


def _one_input(module: Any, call: Call) -> tuple[int, ...]:
    """The shape of the module's one array argument; anything else (a mask, say) refused by name."""
    given = sorted(str(k) for k in [*call.keys[1:], *(k for k, v in call.static.items() if v is not None)])
    if call.keys[:1] != [0] or given:
        raise Unsupported(f"{type(module).__name__} with {given or 'no array'}: only its input is supported")
    return call.shapes[0]


def _axes(module: Any, *fields: str) -> None:
    for name in fields:
        axes = getattr(module, name)
        if axes not in (-1, (-1,), [-1]):
            raise Unsupported(f"{type(module).__name__} {name}={axes}: only the features' axis (-1) is supported")
    if getattr(module, "axis_name", None) is not None:
        raise Unsupported(f"{type(module).__name__} axis_name={module.axis_name!r}: statistics across devices")


# (channels, {"scale": ..., "bias": ...} as the module holds them or None) -> the op's fields
Fields = Callable[[int, dict[str, Any]], dict[str, Any]]


def _statistics(module: Any, call: Call, op: type, lead: int, fields: Fields) -> Marked:
    """A normalization over the input's axes after the first ``lead``, in steps."""
    shape = _one_input(module, call)
    cut = min(lead, len(shape) - 1)
    steps, width = math.prod(shape[:cut]), math.prod(shape[cut:])

    def add(walker: Any, tensors: dict[Any, Any], params: dict[str, np.ndarray]) -> str:
        b, label = walker.b, walker.label
        x = as_shape(b, label, walker.to_data(tensors[0]).name, shape)
        extra = {k: params.get(k) for k in ("scale", "bias")}
        y = b.add(op, label, [x], width, steps=steps, epsilon=module.epsilon, **fields(shape[-1], extra))
        return as_shape(b, label, y, (steps * width,))

    return add


def _over_axes(module: Any, call: Call, op: type, fields: Fields) -> Marked:
    """A normalization over ``reduction_axes`` (any: those not last are moved last by a ``Transpose`` and back),
    its ``scale``/``bias`` over ``feature_axes`` (which must be among them) broadcast over the others."""
    _axes(module)
    shape = _one_input(module, call)
    rank = len(shape)
    reduced, features = (sorted({int(a) % rank for a in np.atleast_1d(getattr(module, k))}) for k in AXES)
    if not set(features) <= set(reduced):
        raise Unsupported(f"{type(module).__name__} feature_axes={module.feature_axes} outside its reduction_axes")
    perm = (*(a for a in range(rank) if a not in reduced), *reduced)
    normalized = tuple(shape[a] for a in reduced)
    width = math.prod(normalized)
    steps = math.prod(shape) // width

    def add(walker: Any, tensors: dict[Any, Any], params: dict[str, np.ndarray]) -> str:
        b, label = walker.b, walker.label
        x = as_shape(b, label, walker.to_data(tensors[0]).name, shape)
        lined = [shape[a] if a in features else 1 for a in reduced]  # the parameters along the normalized axes
        extra = {
            k: None if params.get(k) is None else np.broadcast_to(params[k].reshape(lined), normalized)
            for k in ("scale", "bias")
        }
        if perm != tuple(range(rank)):
            x = b.add(Transpose, f"{label}/axes last", [x], b.widths[x], in_shape=shape, perm=perm)
        y = b.add(op, label, [x], width, steps=steps, epsilon=module.epsilon, **fields(width, extra))
        if perm != tuple(range(rank)):
            back = tuple(perm.index(a) for a in range(rank))
            y = b.add(Transpose, f"{label}/axes back", [y], b.widths[y], in_shape=b.shape(y), perm=back)
        return as_shape(b, label, y, (steps * width,))

    return add


AXES = ("reduction_axes", "feature_axes")


def _layer_norm(module: Any, call: Call) -> Marked:
    def fields(channels: int, params: dict[str, Any]) -> dict[str, Any]:
        ones, zeros = np.ones(channels), np.zeros(channels)
        return {
            "scale": ones if params["scale"] is None else params["scale"],
            "bias": zeros if params["bias"] is None else params["bias"],
        }

    return _over_axes(module, call, LayerNorm, fields)


def _rms_norm(module: Any, call: Call) -> Marked:
    def fields(channels: int, params: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "rms", "channels": channels, "scale": params["scale"]}

    return _over_axes(module, call, Normalize, fields)


def _group_norm(module: Any, call: Call) -> Marked:
    if module.reduction_axes is not None:
        _axes(module, "reduction_axes")
    _axes(module)
    size = module.group_size

    def fields(channels: int, params: dict[str, Any]) -> dict[str, Any]:
        groups = channels // size if size else int(module.num_groups)
        if groups < 1 or channels % groups:
            raise Unsupported(f"{type(module).__name__}: {groups} groups do not divide {channels} features")
        return {"kind": "standardize", "channels": channels, "groups": groups, **params}

    return _statistics(module, call, Normalize, 1, fields)


def _embed(module: Any, call: Call) -> Marked:
    if module.num_embeddings == 1:  # Flax then broadcasts its one row whatever the index
        raise Unsupported("Embed with num_embeddings=1 (every index gives its one row) is not supported")
    shape = _one_input(module, call)

    def add(walker: Any, tensors: dict[Any, Any], params: dict[str, np.ndarray]) -> str:
        b, label = walker.b, walker.label
        table = params["embedding"]
        x = as_shape(b, label, walker.to_data(tensors[0]).name, shape)
        width = b.widths[x] * table.shape[1]
        return as_shape(b, label, b.add(Embedding, label, [x], width, table=table), (width,))

    return add


MODULES: dict[str, Callable[[Any, Call], Marked]] = {
    "LayerNorm": _layer_norm,
    "RMSNorm": _rms_norm,
    "GroupNorm": _group_norm,
    "Embed": _embed,
    "MultiHeadDotProductAttention": attention,
    "MultiHeadAttention": attention,
}


def marking(fn: Callable[[Any, Any], Any]) -> tuple[Callable[[Any, Any], Any], dict[str, Callable[..., Any]]]:
    """``fn`` with each call of a module of ``MODULES`` (linen or nnx) marked for the trace, and the marks it
    makes (filled while it is traced): by call name, how ``JaxprWalker`` maps the call's values to IR."""
    import jax
    from flax import linen, nnx

    marks: dict[str, Callable[..., Any]] = {}

    def mark(module: Any, params: Any, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``call(*args, **kwargs)`` as a jitted call of its own whose last arguments are its array arguments
        (by position or keyword) then its parameters (``params``, a pytree)."""
        keyed = [*enumerate(args), *kwargs.items()]
        keys = [k for k, v in keyed if isinstance(v, (jax.Array, np.ndarray))]
        paths, leaves = zip(*jax.tree_util.tree_flatten_with_path(params)[0], strict=True) if params else ((), ())
        names = ["/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path) for path in paths]

        def marked(*tensors: Any) -> Any:
            given = dict(keyed) | dict(zip(keys, tensors, strict=False))
            return call(*(given[i] for i in range(len(args))), **{k: given[k] for k in kwargs})

        marked.__name__ = f"{PREFIX}{len(marks)}"
        shapes = {k: tuple(np.shape(dict(keyed)[k])) for k in keys}
        static = {k: v for k, v in kwargs.items() if k not in keys}
        marks[marked.__name__] = _mapping(module, keys, shapes, static, [n.removesuffix("/value") for n in names])
        return jax.jit(marked)(*(dict(keyed)[k] for k in keys), *leaves)

    def interceptor(next_fun: Any, args: Any, kwargs: Any, context: Any) -> Any:
        module = context.module
        if _builder(module) is None or context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        return mark(module, module.variables.get("params", {}), next_fun, args, kwargs)

    def patched(cls: type) -> Callable[..., Any]:
        original = cls.__call__

        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            state = nnx.state(self, nnx.Param)
            return mark(self, state, lambda *a, **k: original(self, *a, **k), args, kwargs)

        return call

    def traced(params: Any, x: Any) -> Any:
        classes = [c for c in vars(nnx).values() if isinstance(c, type) and _builder(c) is not None]
        saved = {c: c.__dict__["__call__"] for c in classes if "__call__" in c.__dict__}
        try:  # nnx has no intercept_methods: its classes' __call__ are patched for the trace only
            for c in saved:
                c.__call__ = patched(c)  # type: ignore[method-assign]
            with linen.intercept_methods(interceptor):
                return fn(params, x)
        finally:
            for c, original in saved.items():
                c.__call__ = original  # type: ignore[method-assign]

    return traced, marks


def _builder(module: Any) -> Callable[..., Marked] | None:
    cls = module if isinstance(module, type) else type(module)
    return MODULES.get(cls.__name__) if cls.__module__.startswith("flax.") else None


def _mapping(
    module: Any, keys: list[Any], shapes: dict[Any, tuple[int, ...]], static: dict[str, Any], names: list[str]
) -> Any:
    """How the walker maps a marked call (``ins``: its values, its array arguments and parameters last)."""
    problem = None
    try:
        add = _builder(module)(module, Call(keys, shapes, static))  # type: ignore[misc]
    except Unsupported as err:
        problem = str(err)

    def mapping(walker: Any, ins: list[Any]) -> Any:
        if problem:
            raise Unsupported(problem)
        tail = ins[len(ins) - len(keys) - len(names) :]
        tensors, params = dict(zip(keys, tail, strict=False)), tail[len(keys) :]
        if not all(isinstance(p, Const) for p in params):
            raise Unsupported(f"{type(module).__name__}: parameters computed from the input")
        values = {k: np.asarray(p.value, np.float64) for k, p in zip(names, params, strict=True)}
        return Data(add(walker, tensors, values))

    return mapping
