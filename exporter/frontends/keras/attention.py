"""Keras' MultiHeadAttention as IR: three Dense projections over the items, ``Attention``, a Dense output projection.

Self and cross attention (``query``, ``value``, ``key``), an ``attention_mask`` tensor (per query and key, or
one per key for every query) and ``use_causal_mask``. Keras takes one of two paths inside the layer, and they
differ where every key of a query is masked: without dropout its fused ``dot_product_attention`` weighs all
keys alike (the mean of the values), with dropout its explicit softmax writes zeros. The op states which
(``Attention.empty``), so the C gives Keras' numbers for every count of kept keys, none included.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.layers import _numpy, handles
from exporter.frontends.keras.operations import Tensor
from exporter.ir import Attention, Dense, Reshape

# MultiHeadAttention.call's parameters, in order: how positional arguments are named
CALL = (
    "query",
    "value",
    "key",
    "query_mask",
    "value_mask",
    "key_mask",
    "attention_mask",
    "return_attention_scores",
    "training",
    "use_causal_mask",
)


def _projection(b: Builder, name: str, x: str, dense: Any, use_bias: bool) -> str:
    """An EinsumDense over the items of ``x`` (T, F), its kernel (F, heads, dim) flattened to (F, heads * dim)."""
    if getattr(dense, "quantization_mode", None):
        raise Unsupported(f"{name}: quantized ({dense.quantization_mode}) kernels are not supported")
    steps, width = b.shape(x)
    kernel = _numpy(dense.kernel)
    if kernel.shape[0] != width:
        raise Unsupported(f"{name}: kernel {kernel.shape} does not match {width} features")
    kernel = kernel.reshape(width, -1)
    bias = _numpy(dense.bias).reshape(-1) if use_bias else None
    return b.add(Dense, name, [x], kernel.shape[1], kernel=kernel, bias=bias, steps=steps)


def _items(b: Builder, role: str, value: Any) -> str:
    """The IR value of a (T, F) tensor argument; anything else refused by name."""
    if not isinstance(value, Tensor):
        raise Unsupported(f"{role} is not a tensor of the model")
    if len(b.shape(value.name)) != 2:
        raise Unsupported(
            f"{role} of shape {b.shape(value.name)} per row: only (items, features) tensors are supported "
            "(attention over several axes, attention_axes, is not)"
        )
    return value.name


def _arguments(call: tuple[Any, Any]) -> dict[str, Any]:
    args, kwargs = call
    if len(args) > len(CALL):
        raise Unsupported(f"called with {len(args)} positional arguments")
    return {**dict(zip(CALL, args, strict=False)), **kwargs}


def _options(layer: Any, arguments: dict[str, Any]) -> None:
    """Refuse by name what the C does not compute."""
    for name in ("query_mask", "value_mask", "key_mask"):
        if arguments.get(name) is not None:
            raise Unsupported(f"{name}: pass the mask as attention_mask instead")
    if arguments.get("return_attention_scores"):
        raise Unsupported("return_attention_scores=True: two outputs; one is supported")
    if getattr(layer, "_use_gate", False):
        raise Unsupported("use_gate=True is not supported")
    if getattr(layer, "_sliding_window", None) is not None:
        raise Unsupported("sliding_window is not supported")
    if tuple(layer._attention_axes or (1,)) not in ((1,), (-2,)):
        raise Unsupported(f"attention_axes {layer._attention_axes}: only the default (the items axis) is supported")
    if getattr(layer, "_output_dense", None) is None or getattr(layer, "_query_dense", None) is None:
        raise Unsupported("the layer is not built")


@handles("MultiHeadAttention", called=True)
def multi_head_attention(layer: Any, b: Builder, inputs: list[str], call: tuple[Any, Any]) -> str:
    arguments = _arguments(call)
    _options(layer, arguments)
    q = _items(b, "query", arguments.get("query"))
    v = _items(b, "value", arguments.get("value"))
    k = v if arguments.get("key") is None else _items(b, "key", arguments["key"])
    (n_queries, _), (n_keys, _) = b.shape(q), b.shape(v)
    if b.shape(k)[0] != n_keys:
        raise Unsupported(f"key of {b.shape(k)[0]} items for a value of {n_keys}")
    heads, key_dim, value_dim = int(layer._num_heads), int(layer._key_dim), int(layer._value_dim)
    name, use_bias = layer.name, bool(layer._use_bias)
    parts = [
        _projection(b, f"{name}/query", q, layer._query_dense, use_bias),
        _projection(b, f"{name}/key", k, layer._key_dense, use_bias),
        _projection(b, f"{name}/value", v, layer._value_dense, use_bias),
    ]
    mask = arguments.get("attention_mask")
    if mask is not None:
        if not isinstance(mask, Tensor):
            raise Unsupported("attention_mask is not a tensor of the model")
        shape = b.shape(mask.name)
        if shape not in ((n_queries, n_keys), (1, n_keys), (n_keys,)):
            raise Unsupported(f"attention_mask of shape {shape}: ({n_queries}, {n_keys}) or (1, {n_keys}) expected")
        parts.append(mask.name)
    attended = b.add(
        Attention,
        name,
        parts,
        n_queries * heads * value_dim,
        heads=heads,
        key_dim=key_dim,
        value_dim=value_dim,
        keys=n_keys,
        scale=1.0 / math.sqrt(float(key_dim)),
        causal=bool(arguments.get("use_causal_mask")),
        empty="zero" if float(layer._dropout) > 0 else "uniform",
    )
    dense = layer._output_dense
    kernel = _numpy(dense.kernel)
    out_shape = kernel.shape[2:]
    kernel = kernel.reshape(heads * value_dim, -1)
    bias = _numpy(dense.bias).reshape(-1) if use_bias else None
    out = b.add(Dense, f"{name}/output", [attended], kernel.shape[1], kernel=kernel, bias=bias, steps=n_queries)
    if len(out_shape) > 1:
        width = int(np.prod(out_shape))
        return b.add(Reshape, f"{name}/output shape", [out], n_queries * width, shape=(n_queries, *out_shape))
    return out
