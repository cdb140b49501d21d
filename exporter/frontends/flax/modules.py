"""flax.linen modules mapped whole, not primitive by primitive: nn.LayerNorm, nn.RMSNorm, nn.GroupNorm, nn.Embed.

Their traced primitives (statistics over reshaped groups, a gather by a data-dependent index) have no C
translation one by one, so the trace marks each call of these modules: under ``nn.intercept_methods`` the
call runs inside a ``jax.jit`` named ``lamarr_flax_<n>`` that takes the input and the module's parameters as
its last arguments (JAX puts what the call closes over first), and ``MARKS`` keeps what to do with it.
``JaxprWalker.call`` finds the name and adds the IR op instead of walking into the call. The reference is
the untouched model, so the parity check compares with Flax's own arithmetic.

The trace is of one row (no batch axis): a module sees a vector of features, and GroupNorm's statistics
are those of each group of that row's features.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from exporter.frontends.builder import Unsupported
from exporter.frontends.flax.jaxpr import Const, Data
from exporter.ir import LayerNorm, Reshape
from exporter.ir.normalization import Embedding, Normalize

# a marked call: (walker, its input value, its parameters by name) -> the value of its output
Marked = Callable[[Any, Any, dict[str, np.ndarray]], Any]
PREFIX = "lamarr_flax_"


def _last_axis_only(module: Any, *fields: str) -> None:
    for name in fields:
        axes = getattr(module, name)
        if axes not in (-1, (-1,), [-1]):
            raise Unsupported(f"{type(module).__name__} {name}={axes}: only the features' axis (-1) is supported")
    if getattr(module, "axis_name", None) is not None:
        raise Unsupported(f"{type(module).__name__} axis_name={module.axis_name!r}: statistics across devices")


def _layer_norm(module: Any) -> Marked:
    _last_axis_only(module, "reduction_axes", "feature_axes")

    def add(walker: Any, x: Any, params: dict[str, np.ndarray]) -> Any:
        width = walker.width(x)
        scale, bias = params.get("scale", np.ones(width)), params.get("bias", np.zeros(width))
        return walker.b.add(LayerNorm, walker.label, [x.name], width, scale=scale, bias=bias, epsilon=module.epsilon)

    return add


def _normalize(kind: str, groups: Callable[[int], int], module: Any) -> Marked:
    def add(walker: Any, x: Any, params: dict[str, np.ndarray]) -> Any:
        width = walker.width(x)
        n = groups(width)
        if n < 1 or width % n:
            raise Unsupported(f"{type(module).__name__}: {n} groups do not divide {width} features")
        fields = {"scale": params.get("scale"), "bias": params.get("bias"), "epsilon": module.epsilon}
        return walker.b.add(Normalize, walker.label, [x.name], width, kind=kind, channels=width, groups=n, **fields)

    return add


def _rms_norm(module: Any) -> Marked:
    _last_axis_only(module, "reduction_axes", "feature_axes")
    return _normalize("rms", lambda width: 1, module)


def _group_norm(module: Any) -> Marked:
    if module.reduction_axes is not None:
        _last_axis_only(module, "reduction_axes")
    _last_axis_only(module)
    size = module.group_size
    return _normalize("standardize", lambda width: width // size if size else int(module.num_groups), module)


def _embed(module: Any) -> Marked:
    if module.num_embeddings == 1:  # Flax then broadcasts its one row whatever the index
        raise Unsupported("Embed with num_embeddings=1 (every index gives its one row) is not supported")

    def add(walker: Any, x: Any, params: dict[str, np.ndarray]) -> Any:
        table = params["embedding"]
        width = walker.width(x) * table.shape[1]
        looked_up = walker.b.add(Embedding, walker.label, [x.name], width, table=table)
        return walker.b.add(Reshape, walker.label, [looked_up], width, shape=(width,))  # the walk's values are rows

    return add


MODULES: dict[str, Callable[[Any], Marked]] = {
    "LayerNorm": _layer_norm,
    "RMSNorm": _rms_norm,
    "GroupNorm": _group_norm,
    "Embed": _embed,
}


def marking(fn: Callable[[Any, Any], Any]) -> tuple[Callable[[Any, Any], Any], dict[str, Callable[..., Any]]]:
    """``fn`` with each call of a module of ``MODULES`` marked for the trace, and the marks it makes (filled
    while it is traced): by call name, how ``JaxprWalker`` maps the call's values to IR."""
    import jax
    from flax import linen

    marks: dict[str, Callable[..., Any]] = {}

    def interceptor(next_fun: Any, args: Any, kwargs: Any, context: Any) -> Any:
        module = context.module
        build = MODULES.get(type(module).__name__) if type(module).__module__.startswith("flax.") else None
        if build is None or context.method_name != "__call__" or len(args) != 1:
            return next_fun(*args, **kwargs)
        names = sorted(module.variables.get("params", {}))
        leaves = [module.variables["params"][k] for k in names]

        def marked(x: Any, *params: Any) -> Any:
            return next_fun(x, **kwargs)

        marked.__name__ = f"{PREFIX}{len(marks)}"
        marks[marked.__name__] = _mapping(module, names, kwargs, build)
        return jax.jit(marked)(args[0], *leaves)

    def traced(params: Any, x: Any) -> Any:
        with linen.intercept_methods(interceptor):
            return fn(params, x)

    return traced, marks


def _mapping(module: Any, names: list[str], kwargs: dict[str, Any], build: Callable[[Any], Marked]) -> Any:
    """How the walker maps a marked call (``ins``: its values, the input and parameters last)."""
    problem = f"{type(module).__name__} with {sorted(kwargs)}" if kwargs else None  # a mask, say
    try:
        add = build(module)
    except Unsupported as err:
        problem = str(err)

    def mapping(walker: Any, ins: list[Any]) -> Any:
        if problem:
            raise Unsupported(problem)
        x, *params = ins[len(ins) - 1 - len(names) :]
        if not all(isinstance(p, Const) for p in params):
            raise Unsupported(f"{type(module).__name__}: parameters computed from the input")
        values = {k: np.asarray(p.value, np.float64) for k, p in zip(names, params, strict=True)}
        return Data(add(walker, walker.to_data(x), values))

    return mapping
