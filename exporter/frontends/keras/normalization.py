"""Keras normalization and embedding layers: LayerNormalization (and its ``rms_scaling`` form), RMSNormalization,
GroupNormalization, UnitNormalization, Embedding -> ``LayerNorm``, ``Normalize``, ``Embedding`` ops.

Each normalizes over the trailing axes of a row's tensor (``axis=-1``, or ``[-2, -1]``...), run over the
axes before them with ``steps``; other axes (``axis=1``, ``[1, 3]``) are moved last by a ``Transpose`` around
the same op, and back; GroupNormalization takes its groups of channels along the last axis over
the whole tensor. Registered in ``layers.LAYERS`` when imported (``walk.py`` imports this module).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.layers import LAYERS, KerasLayer, Shape, _numpy, _one, handles
from exporter.ir import LayerNorm, Reshape, Transpose
from exporter.ir.normalization import Embedding, Encode, Normalize
from exporter.ir.ops import Shape as RowShape


def over_axes(b: Builder, name: str, x: str, axis: Any, norm: Callable[[str, int, RowShape], str]) -> str:
    """A normalization over Keras' ``axis`` (an int or a list; the batch is axis 0) of ``x``: ``norm(value, steps,
    normalized shape)`` adds it over the last axes of ``value``. Axes that are not the last of a row are first
    moved there (a ``Transpose``: the others in order, then the normalized ones in increasing order, the order
    of Keras' parameters), and the result moved back."""
    shape = b.shape(x)
    rank = len(shape)
    given = axis if isinstance(axis, (list, tuple)) else [axis]
    if any(not -rank - 1 <= int(a) <= rank for a in given):
        raise Unsupported(f"axis {axis} of a tensor of {rank} axes per row")
    axes = sorted({int(a) % (rank + 1) - 1 for a in given})
    if -1 in axes:
        raise Unsupported(f"axis {axis}: the batch axis (0) cannot be normalized over")
    perm = (*(a for a in range(rank) if a not in axes), *axes)
    normalized = tuple(shape[a] for a in axes)
    steps = math.prod(shape) // math.prod(normalized)
    if perm == tuple(range(rank)):
        return norm(x, steps, normalized)
    width = b.widths[x]
    moved = b.add(Transpose, f"{name}/axes last", [x], width, in_shape=shape, perm=perm)
    y = norm(moved, steps, normalized)
    back = tuple(perm.index(a) for a in range(rank))
    return b.add(Transpose, f"{name}/axes back", [y], width, in_shape=b.shape(y), perm=back)


def _over(values: Any, trailing: RowShape, kept: bool, default: float) -> np.ndarray:
    """A layer's per-value parameter over the normalized axes (``default`` when the layer holds none)."""
    return np.broadcast_to(_numpy(values), trailing) if kept else np.full(trailing, default)


def _normalized_shapes(config: dict[str, Any], width: int | None, names: tuple[str, ...]) -> dict[str, Shape]:
    last = config.get("axis") in (-1, [-1])  # other axes: a tensor's, not checked here (stored rows only)
    return dict.fromkeys(names, (width if last else None,))


@dataclass(frozen=True)
class _LayerNormalizationClass(KerasLayer):
    """LayerNormalization stores ``gamma`` always and no ``beta`` under ``rms_scaling`` (whatever ``center``)."""

    def stored_variables(self, config: dict[str, Any]) -> tuple[str, ...]:
        return ("gamma",) if config.get("rms_scaling") else super().stored_variables(config)


def layer_normalization(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, _ = _one(b, inputs)

    def norm(v: str, steps: int, trailing: RowShape) -> str:
        width = math.prod(trailing)
        if getattr(layer, "rms_scaling", False):  # Keras divides by the root of the variance, and adds no beta
            return b.add(
                Normalize,
                layer.name,
                [v],
                width,
                kind="variance",
                channels=width,
                scale=_over(layer.gamma, trailing, True, 1.0),
                epsilon=float(layer.epsilon),
                steps=steps,
            )
        scale = _over(layer.gamma, trailing, bool(layer.scale), 1.0)
        bias = _over(layer.beta, trailing, bool(layer.center), 0.0)
        epsilon = float(layer.epsilon)
        return b.add(LayerNorm, layer.name, [v], width, scale=scale, bias=bias, epsilon=epsilon, steps=steps)

    return over_axes(b, layer.name, x, layer.axis, norm)


LAYERS.add(
    "LayerNormalization",
    _LayerNormalizationClass(layer_normalization, (("gamma", "scale"), ("beta", "center")), _normalized_shapes),
)


@handles("RMSNormalization", variables=("scale",), shapes=_normalized_shapes)
def rms_normalization(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, _ = _one(b, inputs)

    def norm(v: str, steps: int, trailing: RowShape) -> str:
        width = math.prod(trailing)
        scale = _over(layer.scale, trailing, True, 1.0)
        fields = {"kind": "rms", "channels": width, "scale": scale, "epsilon": float(layer.epsilon)}
        return b.add(Normalize, layer.name, [v], width, steps=steps, **fields)

    return over_axes(b, layer.name, x, layer.axis, norm)


@handles("UnitNormalization", variables=())
def unit_normalization(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, _ = _one(b, inputs)

    def norm(v: str, steps: int, trailing: RowShape) -> str:
        width = math.prod(trailing)
        return b.add(Normalize, layer.name, [v], width, kind="unit", channels=width, epsilon=1e-12, steps=steps)

    return over_axes(b, layer.name, x, layer.axis, norm)


@handles("GroupNormalization", variables=(("gamma", "scale"), ("beta", "center")))
def group_normalization(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    shape = b.shape(x)
    if layer.axis not in (-1, len(shape)):
        raise Unsupported(f"axis {layer.axis}: only the channels' axis last (-1) is supported")
    channels = shape[-1]
    groups = channels if layer.groups == -1 else int(layer.groups)
    if groups < 1 or channels % groups:
        raise Unsupported(f"{layer.groups} groups do not divide {channels} channels")
    scale = _numpy(layer.gamma) if layer.scale else None
    bias = _numpy(layer.beta) if layer.center else None
    return b.add(
        Normalize,
        layer.name,
        [x],
        width,
        kind="standardize",
        channels=channels,
        groups=groups,
        scale=scale,
        bias=bias,
        epsilon=float(layer.epsilon),
    )


def _embedding_shapes(config: dict[str, Any], width: int | None, names: tuple[str, ...]) -> dict[str, Shape]:
    return {"embeddings": (config.get("input_dim"), config.get("output_dim"))}


@handles("Embedding", variables=("embeddings",), shapes=_embedding_shapes)
def embedding(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    if getattr(layer, "mask_zero", False):
        raise Unsupported("mask_zero=True: the mask it gives the layers after it is not supported")
    if getattr(layer, "quantization_mode", None):
        raise Unsupported(f"quantized ({layer.quantization_mode}) embeddings are not supported")
    table = _numpy(layer.embeddings)
    return b.add(Embedding, layer.name, [x], width * table.shape[1], table=table)


@handles("CategoryEncoding")
def category_encoding(layer: Any, b: Builder, inputs: list[str]) -> str:
    """one_hot: each value of a row ``(F,)`` its own ``num_tokens`` outputs, ``(F, num_tokens)`` (``(num_tokens,)``
    for one value); multi_hot and count: the row's values together, ``(num_tokens,)``. Indices: ``Encode``'s rule."""
    x, width = _one(b, inputs)
    mode = str(layer.output_mode)
    if mode not in ("one_hot", "multi_hot", "count"):
        raise Unsupported(f"output_mode {mode!r}: only one_hot, multi_hot and count are supported")
    if getattr(layer, "sparse", False):
        raise Unsupported("sparse=True: a sparse output is not supported")
    if len(b.shape(x)) != 1:
        raise Unsupported(f"input of shape {b.shape(x)}: only a row of indices (F,) is supported")
    depth = int(layer.num_tokens)
    if mode == "one_hot" and width > 1:
        x = b.add(Reshape, f"{layer.name}/one per step", [x], width, shape=(width, 1))
        return b.add(Encode, layer.name, [x], depth, depth=depth, steps=width)
    return b.add(Encode, layer.name, [x], depth, depth=depth, count=mode == "count")
