"""Keras' Attention (Luong, dot or concat scores) and AdditiveAttention (Bahdanau) as IR, from existing ops only.

Both layers take ``[query, value]`` or ``[query, value, key]``, (Tq, d), (Tv, dv), (Tv, d) per row, and give
``softmax(scores) @ value``, (Tq, dv). Keras 3's scores (keras/src/layers/attention/):

- ``Attention``, ``score_mode="dot"``: ``q @ k^T``, times the learned scalar ``scale`` with ``use_scale``: the
  IR's ``Attention`` op of one head (scaled dot product, softmax along the keys, weighted sum) computes it all;
- ``Attention``, ``score_mode="concat"``: ``w * sum_d tanh(scale * (q_i + k_j))`` (``scale`` 1 without
  ``use_scale``; ``w`` the learned ``concat_score_weight``);
- ``AdditiveAttention``: ``sum_d scale_d * tanh(q_i + k_j)`` (``scale`` a learned vector, ones without
  ``use_scale``).

The last two have no dot product to fuse: every pair's ``q_i + k_j`` is a (Tq, Tv, d) tensor (an ``Expand`` of
each side and a ``Merge``), ``tanh`` runs over it (after an ``Affine`` of the scalar scale), and a ``Dense`` of
one output along d is the weighted sum, one score per pair; a ``softmax`` over the keys (``Activate`` with
``steps``) and a ``MatMul`` by the values finish. ``use_causal_mask`` there is Keras' own ``scores - 1e9`` above
the diagonal (a ``Masked`` constant added), which the dot path's ``causal`` matches (weight 0, and no query
has every key masked). Dropout applies in training only. Masks (``mask=[query_mask, value_mask]``) and
``return_attention_scores`` are refused by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.attention import _items
from exporter.frontends.keras.axes import affine
from exporter.frontends.keras.layers import _numpy, activate, handles
from exporter.ir import Activation, Attention, Dense, Expand, Masked, MatMul, Merge, Reshape


def _masked_score(layer: Any) -> float:
    """What Keras adds to a masked score: -1e9, or float16's largest -65504 in a layer computing in float16."""
    return -65504.0 if str(getattr(layer, "compute_dtype", "float32")) == "float16" else -1.0e9


def _arguments(b: Builder, call: tuple[Any, Any]) -> tuple[str, str, str, bool]:
    """The query, value and key of the call (the key defaults to the value) and ``use_causal_mask``; what the
    C does not compute is refused by name."""
    args, kwargs = call
    arguments = {**dict(zip(("inputs", "mask", "training", "return_attention_scores"), args, strict=False)), **kwargs}
    if arguments.get("return_attention_scores"):
        raise Unsupported("return_attention_scores=True: two outputs; one is supported")
    mask = arguments.get("mask")
    if any(m is not None for m in (mask if isinstance(mask, (list, tuple)) else [mask])):
        raise Unsupported("masks (mask=[query_mask, value_mask]) are not supported")
    tensors = arguments.get("inputs")
    if not isinstance(tensors, (list, tuple)) or len(tensors) not in (2, 3):
        raise Unsupported("called on something other than a list [query, value] or [query, value, key]")
    q, v = _items(b, "query", tensors[0]), _items(b, "value", tensors[1])
    k = _items(b, "key", tensors[2]) if len(tensors) == 3 else v
    (_, q_dim), (n_values, _), (n_keys, k_dim) = b.shape(q), b.shape(v), b.shape(k)
    if n_keys != n_values or k_dim != q_dim:
        raise Unsupported(f"query {b.shape(q)}, value {b.shape(v)}, key {b.shape(k)}: the key must be (Tv, d)")
    return q, v, k, bool(arguments.get("use_causal_mask"))


def _scalar(variable: Any) -> float:
    return float(_numpy(variable).reshape(-1)[0])


def _pair_scores(b: Builder, name: str, q: str, k: str, inner: float, weights: np.ndarray) -> str:
    """``sum_d weights_d * tanh(inner * (q_i + k_j))`` for every query i and key j: (Tq, Tv)."""
    (n_queries, dim), (n_keys, _) = b.shape(q), b.shape(k)
    pairs = (n_queries, n_keys, dim)
    width = n_queries * n_keys * dim
    column = b.add(Reshape, f"{name}/query column", [q], n_queries * dim, shape=(n_queries, 1, dim))
    sides = [
        b.add(Expand, f"{name}/query pairs", [column], width, in_shape=(n_queries, 1, dim), shape=pairs),
        b.add(Expand, f"{name}/key pairs", [k], width, in_shape=(n_keys, dim), shape=pairs),
    ]
    x = b.add(Merge, f"{name}/query + key", sides, width, kind="add")
    if inner != 1.0:
        x = affine(b, f"{name}/scale", x, np.float64(inner), np.float64(0.0))
    x = activate(b, f"{name}/tanh", x, Activation("tanh"))
    kernel = np.asarray(weights, dtype=np.float64).reshape(dim, 1)
    scores = b.add(Dense, f"{name}/scores", [x], 1, kernel=kernel, bias=None, steps=n_queries * n_keys)
    return b.add(Reshape, f"{name}/score matrix", [scores], n_queries * n_keys, shape=(n_queries, n_keys))


def _attend(b: Builder, layer: Any, scores: str, v: str, causal: bool) -> str:
    """``softmax(scores) @ v``, keys j > i first given Keras' ``score - 1e9`` under ``causal``."""
    name = layer.name
    (n_queries, n_keys), (_, v_dim) = b.shape(scores), b.shape(v)
    if causal:
        above = np.triu(np.ones((n_queries, n_keys)), k=1)
        mask = np.where(above > 0, _masked_score(layer), 0.0)
        scores = b.add(Masked, f"{name}/causal", [scores], n_queries * n_keys, mask=mask)
    weights = activate(b, f"{name}/softmax", scores, Activation("softmax"))
    return b.add(MatMul, name, [weights, v], n_queries * v_dim, rows=n_queries, inner=n_keys)


def _scalar_shapes(config: dict[str, Any], width: int | None, names: tuple[str, ...]) -> dict[str, Any]:
    return dict.fromkeys(names, ())


@handles(
    "Attention",
    variables=(("scale", "use_scale"), ("concat_score_weight", "score_mode", "concat")),
    shapes=_scalar_shapes,
    called=True,
)
def attention(layer: Any, b: Builder, inputs: list[str], call: tuple[Any, Any]) -> str:
    q, v, k, causal = _arguments(b, call)
    scale = _scalar(layer.scale) if layer.use_scale else 1.0
    (n_queries, dim), (n_keys, v_dim) = b.shape(q), b.shape(v)
    if layer.score_mode == "concat":
        weights = np.full(dim, _scalar(layer.concat_score_weight))
        return _attend(b, layer, _pair_scores(b, layer.name, q, k, scale, weights), v, causal)
    if layer.score_mode != "dot":
        raise Unsupported(f"score_mode {layer.score_mode!r}: 'dot' and 'concat' are supported")
    fields = {"heads": 1, "key_dim": dim, "value_dim": v_dim, "keys": n_keys, "scale": scale, "causal": causal}
    return b.add(Attention, layer.name, [q, k, v], n_queries * v_dim, **fields)


def _additive_shapes(config: dict[str, Any], width: int | None, names: tuple[str, ...]) -> dict[str, Any]:
    return dict.fromkeys(names, (None,))  # one per feature of the query, whose width the configuration does not hold


@handles("AdditiveAttention", variables=(("scale", "use_scale"),), shapes=_additive_shapes, called=True)
def additive_attention(layer: Any, b: Builder, inputs: list[str], call: tuple[Any, Any]) -> str:
    q, v, k, causal = _arguments(b, call)
    dim = b.shape(q)[1]
    weights = _numpy(layer.scale).reshape(-1) if layer.use_scale else np.ones(dim)
    if weights.shape != (dim,):
        raise Unsupported(f"scale of {weights.size} values for queries of {dim} features")
    return _attend(b, layer, _pair_scores(b, layer.name, q, k, 1.0, weights), v, causal)
