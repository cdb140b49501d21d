"""Flax multi-head attention as IR: ``nn.MultiHeadDotProductAttention`` (linen, and its alias
``nn.MultiHeadAttention``) and ``nnx.MultiHeadAttention`` -> three Dense projections over the items,
``Attention``, a Dense output projection, the ops Keras' MultiHeadAttention maps to (keras/attention.py).

``modules.py`` marks each call; here its arrays and parameters become ops. The row is one example, so the
inputs are unbatched ``(items, features)`` tensors: self attention (``inputs_q`` only) and cross attention
(``inputs_k``/``inputs_v`` or linen's ``inputs_kv``). A ``mask`` (Flax's shape ``(heads, queries, keys)`` or
anything broadcast to it; attended where nonzero) computed from the row must be the same for every head: one
per key (``(keys,)``, ``(1, 1, keys)``) or per query and key (``(queries, keys)``, ``(1, queries, keys)``). A
constant mask is none (all true) or the causal one (``nn.make_causal_mask``, nnx's ``is_causal``). Flax writes a
masked score as the type's most negative number, so a query whose every key is masked weighs them all alike:
``Attention.empty`` "uniform".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from exporter.frontends.builder import Unsupported
from exporter.frontends.flax.jaxpr import Const
from exporter.frontends.flax.marks import Call, Marked, as_shape
from exporter.ir import Attention, Dense

# the call's arrays by key, as linen and nnx name them; positions 0, 1, 2 are inputs_q, inputs_k, inputs_v
ROLES = {0: "inputs_q", 1: "inputs_k", 2: "inputs_v", "inputs_k": "inputs_k", "inputs_v": "inputs_v"}
ROLES |= {"inputs_q": "inputs_q", "inputs_kv": "inputs_kv", "mask": "mask"}


def _refusal(module: Any, call: Call) -> str | None:
    """Why this call has no ops of ours (None: it has them)."""
    static = {k: v for k, v in call.static.items() if v is not None and k not in ("sow_weights", "is_causal")}
    odd = sorted(str(k) for k in call.keys if k not in ROLES)
    deterministic = static.pop("deterministic", getattr(module, "deterministic", None))
    if odd or set(static) - {"dropout_rng", "rngs"}:
        return f"arguments {odd or sorted(static)} are not supported"
    if getattr(module, "decode", False) or call.static.get("decode"):
        return "decode=True (an autoregressive cache) is not supported"
    if module.normalize_qk:
        return "normalize_qk=True is not supported"
    if module.dropout_rate > 0 and not deterministic:
        return f"dropout_rate={module.dropout_rate} while not deterministic: random numbers"
    if getattr(module.attention_fn, "__name__", "") != "dot_product_attention":
        return f"attention_fn {getattr(module.attention_fn, '__name__', '?')}: only Flax's dot_product_attention"
    if getattr(module, "num_kv_heads", module.num_heads) != module.num_heads:
        return f"num_kv_heads={module.num_kv_heads} (grouped queries) is not supported"
    if any(getattr(module, f, None) for f in ("qk_attn_weights_einsum_cls", "attn_weights_value_einsum_cls")):
        return "a custom attention einsum is not supported"
    shapes = {ROLES[k]: s for k, s in call.shapes.items()}
    items = {role: s for role, s in shapes.items() if role != "mask"}
    if any(len(s) != 2 for s in items.values()):
        return f"inputs of shapes {items}: one (items, features) tensor each per row (batch axes are not supported)"
    return None


def _mask(value: Any, shape: tuple[int, ...], heads: int, queries: int, keys: int) -> tuple[Any, bool]:
    """The mask as the op takes it: ``(value or None, causal)``; ``value`` of shape (keys,) or (queries, keys)."""
    full = (heads, queries, keys)
    try:
        np.broadcast_shapes(shape, full)
    except ValueError:
        raise Unsupported(f"mask of shape {shape} for {heads} heads, {queries} queries and {keys} keys") from None
    if isinstance(value, Const):
        kept = np.broadcast_to(np.asarray(value.value) != 0, full)
        if kept.all():
            return None, False
        if (kept == np.tril(np.ones((queries, keys), bool))).all():
            return None, True
        raise Unsupported("a constant mask other than the causal one is not supported")
    padded = (1,) * (3 - len(shape)) + tuple(shape)
    if len(shape) > 3 or (padded[0] != 1 and heads != 1) or padded[2] != keys:
        raise Unsupported(f"mask of shape {shape}: one for every head, over all {keys} keys, is supported")
    return value, False


def attention(module: Any, call: Call) -> Marked:
    """The mapping of one call of multi-head attention, or Unsupported naming what is refused."""
    problem = _refusal(module, call)
    if problem:
        raise Unsupported(f"{type(module).__name__}: {problem}")
    shapes = {ROLES[k]: s for k, s in call.shapes.items()}
    keys = {ROLES[k]: k for k in call.keys}
    q_shape = shapes["inputs_q"]
    kv = shapes.get("inputs_kv")
    k_shape = kv or shapes.get("inputs_k", q_shape)
    v_shape = kv or shapes.get("inputs_v", k_shape)
    if k_shape[0] != v_shape[0]:
        raise Unsupported(f"keys of {k_shape[0]} items for values of {v_shape[0]}")
    heads, causal = int(module.num_heads), bool(call.static.get("is_causal"))
    name = type(module).__name__

    def add(walker: Any, tensors: dict[Any, Any], params: dict[str, np.ndarray]) -> str:
        b, label = walker.b, walker.label

        def tensor(role: str, shape: tuple[int, ...]) -> str:
            return as_shape(b, label, walker.to_data(tensors[keys[role]]).name, shape)

        q = tensor("inputs_q", q_shape)
        k = tensor("inputs_kv", k_shape) if kv else tensor("inputs_k", k_shape) if "inputs_k" in keys else q
        v = tensor("inputs_kv", v_shape) if kv else tensor("inputs_v", v_shape) if "inputs_v" in keys else k
        kernel = params["query/kernel"]
        dim = kernel.shape[-1]
        parts = []
        for part, x, shape in (("query", q, q_shape), ("key", k, k_shape), ("value", v, v_shape)):
            w = params[f"{part}/kernel"]
            if w.shape != (shape[1], heads, dim):
                raise Unsupported(f"{name} {part} kernel of shape {w.shape} for {shape[1]} features")
            bias = params[f"{part}/bias"].reshape(-1) if f"{part}/bias" in params else None
            parts.append(b.add(Dense, f"{label}/{part}", [x], heads * dim, kernel=w.reshape(shape[1], -1), bias=bias,
                               steps=shape[0]))  # fmt: skip
        queries, n_keys = q_shape[0], k_shape[0]
        if "mask" in keys:
            mask, causal_mask = _mask(tensors[keys["mask"]], shapes["mask"], heads, queries, n_keys)
            if mask is not None:
                per_query = ((1,) * 3 + shapes["mask"])[-2] != 1
                parts.append(
                    as_shape(b, label, walker.to_data(mask).name, (queries, n_keys) if per_query else (n_keys,))
                )
        else:
            causal_mask = False
        fields = {"heads": heads, "key_dim": dim, "value_dim": dim, "keys": n_keys, "scale": 1.0 / math.sqrt(dim)}
        attended = b.add(Attention, label, parts, queries * heads * dim, causal=causal or causal_mask, empty="uniform",
                         **fields)  # fmt: skip
        w = params["out/kernel"]
        out = b.add(Dense, f"{label}/out", [attended], w.shape[-1], kernel=w.reshape(heads * dim, -1),
                    bias=params.get("out/bias"), steps=queries)  # fmt: skip
        return as_shape(b, label, out, (queries * w.shape[-1],))

    return add
