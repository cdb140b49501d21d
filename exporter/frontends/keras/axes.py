"""Keras layers whose parameters or inputs line up with any axis of a row's tensor: BatchNormalization and
Normalization on any axis (``Affine`` with its vector spread over the axes it varies along), RepeatVector
(``Expand``) and Dot (``Transpose`` to the contracted axis, ``Normalize`` when normalized, ``Contract``).

Keras counts the batch as axis 0; a row's axes are Keras' 1 and up. Registered in ``layers.LAYERS`` when
imported (``walk.py`` imports this module).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.layers import _numpy, _one, handles
from exporter.ir import Affine, Expand, Transpose
from exporter.ir.contract import Contract
from exporter.ir.normalization import Normalize
from exporter.ir.ops import Shape, size


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


def _last(b: Builder, name: str, x: str, axis: int) -> tuple[str, Shape]:
    """``x`` with its axis ``axis`` (of a row's) moved to the end, the others in order; and their shape."""
    shape = b.shape(x)
    perm = (*(a for a in range(len(shape)) if a != axis), axis)
    rest = tuple(shape[a] for a in perm[:-1])
    if axis == len(shape) - 1:
        return x, rest
    return b.add(Transpose, name, [x], b.widths[x], in_shape=shape, perm=perm), rest


@handles("Dot")
def dot(layer: Any, b: Builder, inputs: list[str]) -> str:
    """Keras' ``batch_dot``: the sum over one axis of each input, for every pair of their other entries;
    the output's axes are the first input's others, then the second's (``(1,)`` when there are none).
    ``normalize``: each input divided by its L2 norm along the axis first (Keras' ``x * min(1 / norm,
    1 / epsilon)``, Keras' epsilon, 1e-7 by default)."""
    if len(inputs) != 2:
        raise Unsupported(f"called on {len(inputs)} tensors, expected 2")
    axes = layer.axes if isinstance(layer.axes, (list, tuple)) else (layer.axes, layer.axes)
    operands, rests = [], []
    for i, (x, axis) in enumerate(zip(inputs, axes, strict=True)):
        shape = b.shape(x)
        at = int(axis) - 1 if int(axis) > 0 else len(shape) + int(axis)
        if int(axis) == 0 or not 0 <= at < len(shape):
            raise Unsupported(f"axes {layer.axes}: axis {axis} of a tensor of {len(shape)} axes per row")
        moved, rest = _last(b, f"{layer.name}/operand {i}", x, at)
        if layer.normalize:
            import keras

            depth = shape[at]
            moved = b.add(
                Normalize,
                f"{layer.name}/normalized {i}",
                [moved],
                depth,
                kind="unit",
                channels=depth,
                epsilon=keras.backend.epsilon(),
                steps=size(rest),
            )
        operands.append(moved)
        rests.append(rest)
    depths = {b.shape(v)[-1] for v in operands}
    if len(depths) != 1:
        raise Unsupported(f"axes {layer.axes}: the contracted axes differ in length ({sorted(depths)})")
    out_shape = (*rests[0], *rests[1]) or (1,)
    return b.add(Contract, layer.name, operands, size(out_shape), depth=depths.pop(), shape=out_shape)
