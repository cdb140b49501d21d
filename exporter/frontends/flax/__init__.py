"""Flax / JAX frontend: flax.linen and flax.nnx modules with their parameters, or any ``f(params, x)``.

The function is traced for one input row (``jax.make_jaxpr``) and its primitives mapped to IR
(``jaxpr.py``); its reference is the same function, jitted and vmapped over rows, in float32 (in float64, and
nudged, for the float32 rule: ``float64.py``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from exporter.common import interrupt
from exporter.common.errors import ExportError, InputError
from exporter.frontends.flax.float64 import flax_reference64
from exporter.frontends.flax.jaxpr import jaxpr_to_ir
from exporter.frontends.flax.modules import marking
from exporter.frontends.loaded import LoadedModel


def _import_jax() -> Any:
    try:
        with interrupt.deferred():
            import jax
    except ImportError as err:
        raise ExportError(
            f"reading Flax/JAX models needs jax and flax: pip install 'lamarr-export[flax]' ({err})"
        ) from None
    return jax


def as_function(model: Any, params: Any) -> tuple[Callable[[Any, Any], Any], Any]:
    """``(f, params)`` with ``f(params, x)``: a linen module's ``apply``, an nnx module split in two, or ``model``."""
    from flax import linen, nnx

    if isinstance(model, linen.Module):
        return model.apply, params
    if isinstance(model, nnx.Module):
        graphdef, state = nnx.split(model)
        return (lambda s, x: nnx.merge(graphdef, s)(x)), state
    if callable(model):
        return model, params
    raise ExportError(f"{type(model).__name__}: expected a flax.linen or flax.nnx module, or a function f(params, x)")


def load_flax(model: Any, params: Any, n_inputs: int, source: str) -> LoadedModel:
    """Trace ``model`` (with ``params``) for rows of ``n_inputs`` floats into IR plus its reference."""
    jax = _import_jax()
    import flax

    if not isinstance(n_inputs, int) or n_inputs < 1:
        raise InputError("n_inputs", f"{n_inputs!r}: a positive number of input features is needed")
    fn, params = as_function(model, params)
    try:
        probe = jax.eval_shape(lambda x: fn(params, x), jax.ShapeDtypeStruct((n_inputs,), np.float32))
    except Exception as err:  # shape errors, missing params...: all say the inputs or params do not fit
        raise ExportError(
            f"{source}: cannot apply the model to a row of {n_inputs} inputs ({type(err).__name__}: "
            f"{str(err).splitlines()[0]})"
        ) from None
    if not hasattr(probe, "shape") or len(probe.shape) > 1:
        raise ExportError(
            f"{source}: the output for one row has shape {getattr(probe, 'shape', '?')}; "
            "one row must give a vector (or a scalar)"
        )
    traced, marks = marking(fn)  # linen normalizations and embeddings, mapped whole
    pre, graph = jaxpr_to_ir(traced, params, n_inputs, source, marks)
    batched = jax.jit(jax.vmap(lambda x: fn(params, x)))

    def reference(rows: np.ndarray) -> np.ndarray:
        out = np.asarray(batched(np.asarray(rows, dtype=np.float32)), dtype=np.float32)
        return out.reshape(len(out), -1)

    version = f"{flax.__version__}, JAX {jax.__version__}"
    reference64, nudged = flax_reference64(fn, params, n_inputs)
    return LoadedModel(graph, reference, "Flax", version, pre=pre, reference64=reference64, reference64_nudged=nudged)


def load_linen(
    path: str, kwargs: dict[str, Any], params_file: str | os.PathLike[str], n_inputs: int
) -> tuple[Any, Any]:
    """The flax.linen module ``package.module:Class`` built with ``kwargs``, and its params read from msgpack.

    The module is imported as Python finds it (the model spec offers the user's folder for that module's
    name only, ``exporter.frontends.user_modules``); errors name the input at fault (``flax``,
    ``params``...) as an :class:`InputError` for the caller to word.
    """
    jax = _import_jax()
    from flax import linen, serialization

    if ":" not in path:
        raise InputError("flax", f"{path!r}: expected package.module:Class")
    module_name, _, attr = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise InputError("flax", f"{path}: cannot import it ({err})") from None
    if not (isinstance(cls, type) and issubclass(cls, linen.Module)):
        raise InputError("flax", f"{path}: only flax.linen modules are read by name (use the Python API for nnx)")
    try:
        module = cls(**kwargs)
        # the params' structure and shapes only: an eager init compiles every op of the model (seconds)
        template = jax.eval_shape(module.init, jax.random.PRNGKey(0), np.zeros(n_inputs, np.float32))
    except Exception as err:
        raise InputError("flax", f"{path}: cannot build it with {kwargs} for {n_inputs} inputs ({err})") from None
    file = Path(params_file)
    if not file.is_file():
        raise InputError("params", f"{file}: no such file")
    try:
        params = serialization.from_bytes(template, file.read_bytes())
    except Exception as err:
        raise InputError("params", f"{file}: does not match {attr}({kwargs}) on {n_inputs} inputs ({err})") from None
    shapes = jax.tree_util.tree_map(np.shape, template)
    if jax.tree_util.tree_map(np.shape, params) != shapes:
        raise InputError("params", f"{file}: parameter shapes do not match {attr}({kwargs}) on {n_inputs} inputs")
    return module, params
