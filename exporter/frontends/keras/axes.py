"""Keras layers whose parameters or inputs line up with any axis of a row's tensor: BatchNormalization and
Normalization on any axis (``Affine`` with its vector spread over the axes it varies along), RepeatVector
(``Expand``) and Dot (``Transpose`` of the summed axes into place, ``Normalize`` when normalized, ``MatMul``).

Keras counts the batch as axis 0; a row's axes are Keras' 1 and up. Registered in ``layers.LAYERS`` when
imported (``walk.py`` imports this module).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.layers import _numpy, _one, handles
from exporter.ir import Affine, Expand, Reshape, Transpose
from exporter.ir.normalization import Normalize
from exporter.ir.ops import Shape, size
from exporter.ir.products import MatMul


def spread(shape: Shape, *arrays: np.ndarray) -> tuple[dict[str, int], list[np.ndarray]]:
    """``Affine``'s layout of per-element parameters: ``arrays`` broadcast (numpy's rule; a leading batch axis
    of 1 allowed) to a row of ``shape``, each kept only over the span of axes any of them varies along
    (the last axis when none does). Returns the op's ``steps``, ``width`` and ``inner``, and the vectors."""
    rank = len(shape)
    padded = []
    for array in arrays:
        array = np.asarray(array, dtype=np.float64)
        while array.ndim > rank and array.shape[0] == 1:
            array = array[0]
        if array.ndim > rank or np.broadcast_shapes(array.shape, shape) != shape:
            raise Unsupported(f"parameters of shape {array.shape} do not broadcast to the input {shape}")
        padded.append(array.reshape((1,) * (rank - array.ndim) + array.shape))
    varying = [a for a in range(rank) if any(p.shape[a] > 1 for p in padded)] or [rank - 1]
    first, last = varying[0], varying[-1]
    at = tuple(slice(None) if first <= a <= last else slice(0, 1) for a in range(rank))
    vectors = [np.broadcast_to(p, shape)[at].reshape(-1) for p in padded]
    layout = {"steps": size(shape[:first]), "width": size(shape[first:]), "inner": size(shape[last + 1 :])}
    return layout, vectors


def _along(shape: Shape, axis: int, values: np.ndarray) -> np.ndarray:
    """A vector of one value per entry of Keras' ``axis`` as an array that broadcasts along it."""
    at = axis - 1 if axis > 0 else len(shape) + axis
    return values.reshape([-1 if a == at else 1 for a in range(len(shape))])


def affine(b: Builder, name: str, x: str, scale: np.ndarray, shift: np.ndarray) -> str:
    """``x * scale + shift``, the constants broadcast to x's shape (``spread``)."""
    layout, (scale, shift) = spread(b.shape(x), scale, shift)
    steps, width, inner = layout["steps"], layout["width"], layout["inner"]
    return b.add(Affine, name, [x], width, scale=scale, shift=shift, steps=steps, inner=inner)


def _batch_normalization_shapes(config: dict[str, Any], width: int | None, names: tuple[str, ...]) -> dict[str, Any]:
    feature = config.get("axis") in (-1, 1, [-1], [1])  # another axis: a tensor's, shapes not checked here
    return dict.fromkeys(names, (width if feature else None,))


@handles(
    "BatchNormalization",
    variables=(("gamma", "scale"), ("beta", "center"), "moving_mean", "moving_variance"),
    shapes=_batch_normalization_shapes,
)
def batch_normalization(layer: Any, b: Builder, inputs: list[str]) -> str:
    """Inference BatchNormalization along Keras' ``axis`` (any of a row's axes): ``x * scale + shift`` with
    ``scale = gamma / sqrt(variance + epsilon)``, TensorFlow's form, one pair per entry of the axis."""
    x, _ = _one(b, inputs)
    shape = b.shape(x)
    axis = int(layer.axis[0] if isinstance(layer.axis, (list, tuple)) and len(layer.axis) == 1 else layer.axis)
    if axis == 0 or not -len(shape) <= axis <= len(shape):
        raise Unsupported(f"axis {layer.axis} of a tensor of {len(shape)} axes per row")
    mean = _numpy(layer.moving_mean)
    variance = _numpy(layer.moving_variance)
    gamma = _numpy(layer.gamma) if layer.scale else np.ones_like(mean)
    beta = _numpy(layer.beta) if layer.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return affine(b, layer.name, x, _along(shape, axis, scale), _along(shape, axis, beta - mean * scale))


@handles("Normalization")
def normalization(layer: Any, b: Builder, inputs: list[str]) -> str:
    """``(x - mean) / max(sqrt(variance), epsilon)`` with Keras' statistics over the kept axes (``axis``: any,
    several, or None for one mean of all), broadcast over the others; ``invert`` maps back."""
    x, _ = _one(b, inputs)
    if not hasattr(layer.mean, "shape"):  # a stored configuration's mean as given: not yet broadcast by Keras
        raise Unsupported("its statistics are read from the built layer")
    import keras

    mean = _numpy(layer.mean)
    std = np.maximum(np.sqrt(_numpy(layer.variance)), keras.backend.epsilon())
    if getattr(layer, "invert", False):
        return affine(b, layer.name, x, std, mean)
    return affine(b, layer.name, x, 1.0 / std, -mean / std)


@handles("RepeatVector")
def repeat_vector(layer: Any, b: Builder, inputs: list[str]) -> str:
    """A row of features ``(F,)`` repeated ``n`` times: ``(n, F)``."""
    x, width = _one(b, inputs)
    shape = b.shape(x)
    if len(shape) != 1:
        raise Unsupported(f"input of shape {shape}: RepeatVector takes a row of features")
    n = int(layer.n)
    return b.add(Expand, layer.name, [x], n * width, in_shape=shape, shape=(n, width))


def _moved(b: Builder, name: str, x: str, perm: tuple[int, ...]) -> str:
    """``x`` with its axes in the order ``perm`` (a ``Transpose``, none when it is the order they have)."""
    shape = b.shape(x)
    return (
        x if perm == tuple(range(len(shape))) else b.add(Transpose, name, [x], b.widths[x], in_shape=shape, perm=perm)
    )


def _as(b: Builder, name: str, x: str, shape: Shape) -> str:
    """``x`` seen as a tensor of ``shape`` (the same floats in order)."""
    return x if b.shape(x) == shape else b.add(Reshape, name, [x], b.widths[x], shape=shape)


def _matrix(b: Builder, name: str, x: str, at: int, first: bool, normalize: bool) -> tuple[str, Shape]:
    """One operand of a Dot as the matrix ``MatMul`` takes, and the shape of its other axes: its axis ``at`` last
    (``(M, K)``: the first operand) or first (``(K, N)``: the second), the others joined in order. ``normalize``:
    divided by its L2 norm along the axis first (a ``Normalize`` of that axis put last)."""
    shape = b.shape(x)
    others = tuple(a for a in range(len(shape)) if a != at)
    rest, depth = tuple(shape[a] for a in others), shape[at]
    if not normalize:
        moved = _moved(b, name, x, (*others, at) if first else (at, *others))
        return _as(b, name, moved, (size(rest), depth) if first else (depth, size(rest))), rest
    import keras

    unit = {"kind": "unit", "channels": depth, "epsilon": keras.backend.epsilon()}
    x = b.add(Normalize, f"{name}/normalized", [_moved(b, name, x, (*others, at))], depth, steps=size(rest), **unit)
    x = _as(b, name, x, (size(rest), depth))
    return (x if first else _moved(b, f"{name}/axis first", x, (1, 0))), rest


@handles("Dot")
def dot(layer: Any, b: Builder, inputs: list[str]) -> str:
    """Keras' ``batch_dot``: the sum over one axis of each input, for every pair of their other entries (a
    ``MatMul``, in double); the output's axes are the first input's others, then the second's (``(1,)`` when
    none are left). ``normalize``: each input divided by its L2 norm along the axis first (Keras'
    ``x * min(1 / norm, 1 / epsilon)``, Keras' epsilon, 1e-7 by default)."""
    if len(inputs) != 2:
        raise Unsupported(f"called on {len(inputs)} tensors, expected 2")
    axes = layer.axes if isinstance(layer.axes, (list, tuple)) else (layer.axes, layer.axes)
    matrices, rests = [], []
    for i, (x, axis) in enumerate(zip(inputs, axes, strict=True)):
        rank = len(b.shape(x))
        at = int(axis) - 1 if int(axis) > 0 else rank + int(axis)
        if int(axis) == 0 or not 0 <= at < rank:
            raise Unsupported(f"axes {layer.axes}: axis {axis} of a tensor of {rank} axes per row")
        matrix, rest = _matrix(b, f"{layer.name}/operand {i}", x, at, i == 0, bool(layer.normalize))
        matrices.append(matrix)
        rests.append(rest)
    (m, k), (k2, n) = (b.shape(v) for v in matrices)
    if k != k2:
        raise Unsupported(f"axes {layer.axes}: the summed axes differ in length ({k} and {k2})")
    product = b.add(MatMul, layer.name, matrices, m * n, rows=m, inner=k)
    out_shape = (*rests[0], *rests[1]) or (1,)
    return product if out_shape == (m, n) else b.add(Reshape, layer.name, [product], m * n, shape=out_shape)
