"""One declaration per Keras layer class: its mapping, and the variables a stored layer of it holds.

A mapping reads a live, built layer and the IR values of its inputs, adds IR ops
and returns the value of its output. It raises ``Unsupported`` for a configuration
it cannot translate exactly. Identity-at-inference layers return their input.

The declaration (``@handles("Dense", variables=...)``) is all the exporter knows of a layer class:
the walk of a loaded model and the walk of a stored file (``stored.py``) call the same mapping, the
stored walk places a file's variables by the declared names, and ``declared.py`` checks their shapes
against the configuration before Keras allocates them. A layer class declared here is a layer the
exporter supports, in a loaded model and in a file alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.activations import from_keras, keras_activation
from exporter.frontends.registry import Registry
from exporter.ir import Activate, Activation, Affine, Concatenate, Dense, Expand, Formula, Merge, PReLU, Reshape
from exporter.ir.expression import parse

Mapping = Callable[[Any, Builder, list[str]], str]
# A stored variable: its name, or (its name, the boolean configuration key that keeps it: Keras' default true),
# or (its name, a configuration key, the value of it that keeps it: Attention's concat_score_weight).
Variable = str | tuple[str, str] | tuple[str, str, str]
Shape = tuple[int | None, ...]
# The shape of each stored variable (``names``) of a layer so configured on ``width`` features (None: unknown).
Shapes = Callable[[dict[str, Any], int | None, tuple[str, ...]], dict[str, Shape]]

# configurations that hold layers rather than being one (a subclassed "Model" is walkable only once Keras built it)
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})


def _one_per_feature(config: dict[str, Any], width: int | None, names: tuple[str, ...]) -> dict[str, Shape]:
    return dict.fromkeys(names, (width,))


@dataclass(frozen=True)
class KerasLayer:
    """A built-in Keras layer class as declared with ``handles``.

    ``called``: the layer's tensors play roles the input order does not tell (an attention layer's query,
    value, key and mask): its mapping takes a fourth argument, the call's ``(args, kwargs)`` with each tensor
    replaced by the ``Tensor`` of its IR value.
    ``variables``: those a stored layer holds, in the order Keras creates them (``vars/0``, ``vars/1``...),
    under the attribute names the mapping reads; None for a class that stores none, whose shapes are then
    not checked. ``shapes``: their shapes as the configuration declares them (default: one value per
    feature each), checked against the file's before Keras allocates them.
    """

    mapping: Mapping
    variables: tuple[Variable, ...] | None = None
    shapes: Shapes = _one_per_feature
    called: bool = False  # the mapping also takes the call's arguments (``Called``): which tensor is which

    def stored_variables(self, config: dict[str, Any]) -> tuple[str, ...]:
        """The variables a stored layer of this configuration holds, by the names the mapping reads."""
        return tuple(v if isinstance(v, str) else v[0] for v in self.variables or () if _kept(v, config))

    def declared_shapes(self, config: dict[str, Any], width: int | None) -> dict[str, Shape]:
        return self.shapes(config, width, self.stored_variables(config))


def _kept(variable: Variable, config: dict[str, Any]) -> bool:
    if isinstance(variable, str):
        return True
    return config.get(variable[1]) == variable[2] if len(variable) == 3 else bool(config.get(variable[1], True))


LAYERS: Registry[str, KerasLayer] = Registry("Keras layer")
# The user's own layer classes (register_layer), from any module, ahead of the built-in declarations.
CUSTOM_LAYERS: Registry[str, Mapping] = Registry("custom Keras layer")


def handles(
    *class_names: str,
    variables: tuple[Variable, ...] | None = None,
    shapes: Shapes = _one_per_feature,
    called: bool = False,
) -> Callable[[Any], Any]:
    """Declare the decorated mapping as the one of Keras' ``class_names``, with their stored variables."""

    def declare(fn: Any) -> Any:
        for name in class_names:
            LAYERS.add(name, KerasLayer(fn, variables, shapes, called))
        return fn

    return declare


def layer_mapping(cls: str, builtin: bool) -> Mapping | None:
    """The mapping of a layer class: the user's (``register_layer``, whatever module defines the class),
    else the declared one for a ``builtin`` class (Keras' own module); None when it has none."""
    custom = CUSTOM_LAYERS.get(cls)
    if custom is not None:
        return custom
    declared = LAYERS.get(cls) if builtin else None
    return declared.mapping if declared else None


def takes_call(cls: str, builtin: bool) -> bool:
    """Whether the mapping of a layer class takes the call's arguments too (``KerasLayer.called``)."""
    declared = LAYERS.get(cls) if builtin and CUSTOM_LAYERS.get(cls) is None else None
    return bool(declared and declared.called)


def stored_variables(cls: str, config: dict[str, Any]) -> tuple[str, ...]:
    """The variables a stored layer (or operation) of class ``cls`` holds: none unless declared."""
    declared = LAYERS.get(cls)
    return declared.stored_variables(config) if declared else ()


def _numpy(variable: Any) -> np.ndarray:
    """A live layer's variable, or a stored one (already an array: no Keras import)."""
    if isinstance(variable, np.ndarray):
        return variable.astype(np.float64)
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


def _one(b: Builder, inputs: list[str]) -> tuple[str, int]:
    """The one input and its floats (all of a tensor's: what an elementwise op runs over)."""
    if len(inputs) != 1:
        raise Unsupported(f"called on {len(inputs)} tensors, expected 1")
    return inputs[0], b.widths[inputs[0]]


def rows_of(b: Builder, x: str) -> tuple[int, int]:
    """A row op's ``(steps, width)`` on ``x``: the slices along its last axis, and that axis' length."""
    shape = b.shape(x)
    return math.prod(shape[:-1]), shape[-1]


def feature_axis(axis: Any, rank: int = 1) -> None:
    """Refuse any axis but the last of a tensor of ``rank`` axes per row (Keras counts the batch as axis 0)."""
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    if list(axes) not in ([-1], [rank]):
        raise Unsupported(f"axis {axis}; only the last axis (-1) is supported")


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

        CUSTOM_LAYERS.add(class_name, elementwise, replace=True)

    def register(fn: Mapping) -> Mapping:
        CUSTOM_LAYERS.add(class_name, fn, replace=True)
        return fn

    return register


@handles("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Identity", "ActivityRegularization")
@handles("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")  # identities at inference, as Dropout
def identity(layer: Any, b: Builder, inputs: list[str]) -> str:
    return _one(b, inputs)[0]


@handles("Flatten")
def flatten(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    return x if len(b.shape(x)) == 1 else b.add(Reshape, layer.name, [x], width, shape=(width,))


@handles("Reshape")
def reshape(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    target = [int(n) for n in layer.target_shape]
    if target.count(-1) == 1:
        known = math.prod(n for n in target if n != -1)
        target[target.index(-1)] = width // known if known and width % known == 0 else 0
    if math.prod(target) != width or min(target, default=0) < 1:
        raise Unsupported(f"target shape {tuple(layer.target_shape)} does not hold the input's {width} values")
    shape = tuple(target)
    return x if shape == b.shape(x) else b.add(Reshape, layer.name, [x], width, shape=shape)


def _dense_shapes(config: dict[str, Any], width: int | None, names: tuple[str, ...]) -> dict[str, Shape]:
    return {"kernel": (width, config.get("units")), "bias": (config.get("units"),)}


@handles("Dense", variables=("kernel", ("bias", "use_bias")), shapes=_dense_shapes)
def dense(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    if getattr(layer, "quantization_mode", None):
        raise Unsupported(f"quantized ({layer.quantization_mode}) kernels are not supported")
    steps, width = rows_of(b, x)
    kernel = _numpy(layer.kernel)
    if kernel.shape[0] != width:
        raise Unsupported(f"kernel {kernel.shape} does not match {width} inputs")
    bias = _numpy(layer.bias) if layer.use_bias else None
    act = from_keras(layer.activation)
    return b.add(Dense, layer.name, [x], layer.units, kernel=kernel, bias=bias, activation=act, steps=steps)


@handles("Activation")
def activation(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, _ = _one(b, inputs)
    return activate(b, layer.name, x, from_keras(layer.activation))


def activate(b: Builder, name: str, x: str, act: Activation) -> str:
    """``act`` on ``x``: over all its values at once when elementwise, else (softmax) along its last axis."""
    if act.is_linear:
        return x
    steps, width = rows_of(b, x) if act.is_vector else (1, b.widths[x])
    return b.add(Activate, name, [x], width, activation=act, steps=steps)


@handles("Softmax")
def softmax(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, _ = _one(b, inputs)
    feature_axis(layer.axis, len(b.shape(x)))
    return activate(b, layer.name, x, Activation("softmax"))


@handles("ReLU")
def relu(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    act = keras_activation(
        "relu",
        negative_slope=float(layer.negative_slope),
        max_value=None if layer.max_value is None else float(layer.max_value),
        threshold=float(layer.threshold),
    )
    return b.add(Activate, layer.name, [x], width, activation=act)


@handles("LeakyReLU")
def leaky_relu(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    act = keras_activation("leaky_relu", negative_slope=float(layer.negative_slope))
    return b.add(Activate, layer.name, [x], width, activation=act)


@handles("ELU")
def elu(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    return b.add(Activate, layer.name, [x], width, activation=keras_activation("elu", alpha=float(layer.alpha)))


def _prelu_shapes(config: dict[str, Any], width: int | None, names: tuple[str, ...]) -> dict[str, Shape]:
    return dict.fromkeys(names, (None if config.get("shared_axes") else width,))  # shared axes: fewer values


@handles("PReLU", variables=("alpha",), shapes=_prelu_shapes)
def prelu(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    alpha = _numpy(layer.alpha)
    if alpha.size not in (1, width):  # shared axes: one slope for each of their slices
        alpha = np.broadcast_to(alpha.reshape(alpha.shape[-len(b.shape(x)) :]), b.shape(x))
    alpha = per_feature(alpha, width, "alpha")
    return b.add(PReLU, layer.name, [x], width, alpha=alpha)


@handles("Rescaling")
def rescaling(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, _ = _one(b, inputs)
    steps, width = rows_of(b, x)  # one value per feature of the last axis, or one for all
    scale = per_feature(layer.scale, width, "scale")
    offset = per_feature(layer.offset, width, "offset")
    return b.add(Affine, layer.name, [x], width, scale=scale, shift=offset, steps=steps)


def merge_values(b: Builder, name: str, kind: str, inputs: list[str]) -> str:
    """An elementwise merge (merge layers and operation nodes alike). Inputs of different shapes broadcast as
    numpy's do (Keras' merge layers first add leading axes of 1 to the inputs of fewer axes: the same):
    each input not of the result's shape is ``Expand``-ed to it, and the merge runs on equal shapes."""
    shapes = [b.shape(v) for v in inputs]
    try:
        shape = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise Unsupported(f"inputs of shapes {', '.join(map(str, shapes))} do not broadcast together") from None
    width = math.prod(shape)
    expanded = [
        v if s == shape else b.add(Expand, f"{name}/input {i}", [v], width, in_shape=s, shape=shape)
        for i, (v, s) in enumerate(zip(inputs, shapes, strict=True))
    ]
    return b.add(Merge, name, expanded, width, kind=kind)


def _merge(kind: str) -> Mapping:
    return lambda layer, b, inputs: merge_values(b, layer.name, kind, inputs)


for _kind in ("add", "subtract", "multiply", "average", "maximum", "minimum"):
    handles(_kind.capitalize())(_merge(_kind))


@handles("Concatenate")
def concatenate(layer: Any, b: Builder, inputs: list[str]) -> str:
    return concatenate_values(b, layer.name, inputs, layer.axis)


def concatenate_values(b: Builder, name: str, inputs: list[str], axis: int) -> str:
    """Values laid end to end along ``axis`` (Keras': the batch is axis 0): a ``Concatenate`` of the blocks
    that axis and those after it make, in each slice of the axes before it."""
    shape = b.shape(inputs[0])
    rank = len(shape)
    if not -rank <= axis <= rank or axis == 0:
        raise Unsupported(f"axis {axis} of a tensor of {rank} axes per row")
    at = axis - 1 if axis > 0 else rank + axis  # the axis among a row's
    steps = math.prod(shape[:at])
    width = sum(b.widths[v] for v in inputs) // steps
    return b.add(Concatenate, name, inputs, width, axis=at - rank, steps=steps)
