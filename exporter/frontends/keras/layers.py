"""One mapping per Keras layer class, declared with the class names it handles.

A mapping reads a live, built layer and the IR values of its inputs, adds IR ops
and returns the value of its output. It raises ``Unsupported`` for a configuration
it cannot translate exactly. Identity-at-inference layers return their input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.activations import from_keras, relu_activation
from exporter.ir import Activate, Activation, Affine, Concatenate, Dense, Formula, Merge, PReLU
from exporter.ir.expression import parse

Mapping = Callable[[Any, Builder, list[str]], str]
LAYERS: dict[str, Mapping] = {}
CUSTOM: set[str] = set()  # class names of the user's own layers with a mapping (register_layer)


def handles(*class_names: str) -> Callable[[Mapping], Mapping]:
    def register(fn: Mapping) -> Mapping:
        for name in class_names:
            LAYERS[name] = fn
        return fn

    return register


def _numpy(variable: Any) -> np.ndarray:
    """A live layer's variable, or a stored one (already an array: no Keras import)."""
    if isinstance(variable, np.ndarray):
        return variable.astype(np.float64)
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


def _one(b: Builder, inputs: list[str]) -> tuple[str, int]:
    if len(inputs) != 1:
        raise Unsupported(f"called on {len(inputs)} tensors, expected 1")
    return inputs[0], b.widths[inputs[0]]


def feature_axis(axis: Any) -> None:
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    if list(axes) not in ([-1], [1]):
        raise Unsupported(f"axis {axis}; only the feature axis (-1) is supported")


def per_feature(values: Any, width: int, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 1:
        return np.full(width, array[0])
    if array.size != width:
        raise Unsupported(f"{what} has {array.size} values for {width} features")
    return array


def register_layer(class_name: str, c_expression: str | None = None) -> Callable[[Mapping], Mapping]:
    """Map the user's custom Keras layer class ``class_name``, whatever module defines it.

    As a decorator, ``mapping(layer, builder, inputs) -> output value`` adds IR ops for a built
    layer, exactly as the built-in mappings do (``builder.add(Dense, layer.name, inputs, width,
    kernel=..., bias=...)``). With ``c_expression`` (a C expression of ``{x}``, the grammar of
    ``exporter.ir.expression``), the layer is elementwise and computed by that expression in
    double; the decorator is then not needed. Either way the layer's own ``call`` is the Python
    reference the parity check compares the C with.
    """
    if c_expression is not None:
        expr = parse(c_expression)  # refused here, at registration, if outside the grammar

        def elementwise(layer: Any, b: Builder, inputs: list[str]) -> str:
            x, width = _one(b, inputs)
            return b.add(Formula, layer.name, [x], width, expr=expr)

        LAYERS[class_name] = elementwise
        CUSTOM.add(class_name)

    def register(fn: Mapping) -> Mapping:
        LAYERS[class_name] = fn
        CUSTOM.add(class_name)
        return fn

    return register


@handles("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Identity", "ActivityRegularization")
def identity(layer: Any, b: Builder, inputs: list[str]) -> str:
    return _one(b, inputs)[0]


@handles("Flatten")
def flatten(layer: Any, b: Builder, inputs: list[str]) -> str:
    return _one(b, inputs)[0]  # rank is checked on every tensor: (batch, n) flattens to itself


@handles("Dense")
def dense(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    if getattr(layer, "quantization_mode", None):
        raise Unsupported(f"quantized ({layer.quantization_mode}) kernels are not supported")
    kernel = _numpy(layer.kernel)
    if kernel.shape[0] != width:
        raise Unsupported(f"kernel {kernel.shape} does not match {width} inputs")
    bias = _numpy(layer.bias) if layer.use_bias else None
    return b.add(Dense, layer.name, [x], layer.units, kernel=kernel, bias=bias, activation=from_keras(layer.activation))


@handles("Activation")
def activation(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    act = from_keras(layer.activation)
    return x if act.is_linear else b.add(Activate, layer.name, [x], width, activation=act)


@handles("Softmax")
def softmax(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    feature_axis(layer.axis)
    return b.add(Activate, layer.name, [x], width, activation=Activation("softmax"))


@handles("ReLU")
def relu(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    act = relu_activation(
        negative_slope=float(layer.negative_slope),
        max_value=None if layer.max_value is None else float(layer.max_value),
        threshold=float(layer.threshold),
    )
    return b.add(Activate, layer.name, [x], width, activation=act)


@handles("LeakyReLU")
def leaky_relu(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    act = Activation("leaky_relu", {"negative_slope": float(layer.negative_slope)})
    return b.add(Activate, layer.name, [x], width, activation=act)


@handles("ELU")
def elu(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    return b.add(Activate, layer.name, [x], width, activation=Activation("elu", {"alpha": float(layer.alpha)}))


@handles("PReLU")
def prelu(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    alpha = per_feature(_numpy(layer.alpha), width, "alpha")
    return b.add(PReLU, layer.name, [x], width, alpha=alpha)


@handles("BatchNormalization")
def batch_normalization(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    feature_axis(layer.axis)
    mean = _numpy(layer.moving_mean)
    variance = _numpy(layer.moving_variance)
    gamma = _numpy(layer.gamma) if layer.scale else np.ones(width)
    beta = _numpy(layer.beta) if layer.center else np.zeros(width)
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return b.add(Affine, layer.name, [x], width, scale=scale, shift=beta - mean * scale)


@handles("Rescaling")
def rescaling(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    scale = per_feature(layer.scale, width, "scale")
    offset = per_feature(layer.offset, width, "offset")
    return b.add(Affine, layer.name, [x], width, scale=scale, shift=offset)


@handles("Normalization")
def normalization(layer: Any, b: Builder, inputs: list[str]) -> str:
    import keras

    x, width = _one(b, inputs)
    if layer.axis not in ((-1,), (1,), -1, 1, None):
        raise Unsupported(f"axis {layer.axis}; only the feature axis (-1) is supported")
    mean = per_feature(_numpy(layer.mean), width, "mean")
    std = np.maximum(np.sqrt(per_feature(_numpy(layer.variance), width, "variance")), keras.backend.epsilon())
    if getattr(layer, "invert", False):
        return b.add(Affine, layer.name, [x], width, scale=std, shift=mean)
    return b.add(Affine, layer.name, [x], width, scale=1.0 / std, shift=-mean / std)


def merge_values(b: Builder, name: str, kind: str, inputs: list[str]) -> str:
    """An elementwise merge of equally wide values (merge layers and operation nodes alike)."""
    widths = {b.widths[v] for v in inputs}
    if len(widths) != 1:
        raise Unsupported(f"inputs of different widths {sorted(widths)} (broadcasting is not supported)")
    return b.add(Merge, name, inputs, widths.pop(), kind=kind)


def _merge(kind: str) -> Mapping:
    return lambda layer, b, inputs: merge_values(b, layer.name, kind, inputs)


for _kind in ("add", "subtract", "multiply", "average", "maximum", "minimum"):
    handles(_kind.capitalize())(_merge(_kind))


@handles("Concatenate")
def concatenate(layer: Any, b: Builder, inputs: list[str]) -> str:
    feature_axis(layer.axis)
    return b.add(Concatenate, layer.name, inputs, sum(b.widths[v] for v in inputs))
