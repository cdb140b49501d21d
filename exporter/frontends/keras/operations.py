"""Keras 3 operation nodes (``x + x_``, ``keras.ops.tanh(x)``, ``x[:, 2:5]``) -> the IR ops their layer twins give.

Keras 3 records arithmetic on symbolic tensors as operation nodes (``keras.src.ops.numpy.Add``...), not
layers. Each accepted class maps to what the equivalent layer maps to: ``x + x_`` to the ``Merge`` of
``layers.Add``, ``keras.ops.tanh`` to the ``Activate`` of ``layers.Activation("tanh")``, ``x * 2 + 1`` to
the ``Affine`` of ``layers.Rescaling``; so a model gives the same C however it was written. Keras 2's
``TFOpLambda`` nodes are translated to these same operation nodes (see ``keras2``).

A mapping receives the node's call arguments with every tensor replaced by its ``Tensor`` (IR value);
everything else in them is a constant from the stored configuration.

An operation's declaration also says how a Keras 2 file calls it (``Keras2``: the TensorFlow
functions a ``TFOpLambda`` names), so that ``TF_FUNCTIONS``, which ``keras2`` translates by, is
derived from the operations the exporter maps and cannot name one it does not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.activations import NOT_ELEMENTWISE, keras_activation
from exporter.frontends.keras.axes import affine
from exporter.frontends.keras.layers import (
    activate,
    concatenate_values,
    feature_axis,
    merge_values,
    rows_of,
)
from exporter.frontends.registry import Registry
from exporter.ir import Activate, Activation, Slice
from exporter.ir.ops import affine_parts


@dataclass(frozen=True)
class Tensor:
    """An argument of the node that is a tensor: the IR value carrying it."""

    name: str


# How a TFOpLambda's stored call becomes the operation's arguments (see ``keras2``).
UNARY, BINARY, CONCAT, SLICE = "unary", "binary", "concat", "slice"


@dataclass(frozen=True)
class Keras2:
    """How Keras 2 calls an operation: the TensorFlow ``functions`` a TFOpLambda stores (without the
    leading "tf."), the call's ``form``, the Keras 3 ``module`` defining the operation class
    (``keras.src.ops.<module>``), and the keyword arguments read: (TensorFlow's name, the operation's
    attribute, TensorFlow's default)."""

    functions: tuple[str, ...]
    module: str = "numpy"
    form: str = UNARY
    keywords: tuple[tuple[str, str, Any], ...] = ()


@dataclass(frozen=True)
class TFFunction:
    """A TensorFlow function as the Keras 3 operation class ``cls`` that computes it."""

    cls: str
    keras2: Keras2


OperationMapping = Callable[[Any, Builder, tuple[Any, ...], dict[str, Any]], str]
OPERATIONS: Registry[str, OperationMapping] = Registry("Keras operation")
TF_FUNCTIONS: Registry[str, TFFunction] = Registry("TensorFlow function")


def _nn(*functions: str, keywords: tuple[tuple[str, str, Any], ...] = ()) -> Keras2:
    return Keras2(functions, "nn", UNARY, keywords)


# Operation class -> the op attributes its Keras activation function takes, and how Keras 2 calls it. The
# function is the class name in snake case (LogSigmoid: log_sigmoid), or the one RENAMED names.
ACTIVATION_OPS: dict[str, tuple[tuple[str, ...], Keras2 | None]] = {
    "Relu": ((), _nn("nn.relu")),
    "Relu6": ((), _nn("nn.relu6")),
    "Sigmoid": ((), _nn("math.sigmoid", "nn.sigmoid")),
    "Tanh": ((), Keras2(("math.tanh", "nn.tanh"))),
    "Exp": ((), Keras2(("math.exp",))),
    "Softplus": ((), _nn("math.softplus", "nn.softplus")),
    "Softsign": ((), _nn("math.softsign", "nn.softsign")),
    "Silu": ((), _nn("nn.silu", "nn.swish")),
    "LogSigmoid": ((), None),
    "LeakyRelu": (("negative_slope",), _nn("nn.leaky_relu", keywords=(("alpha", "negative_slope", 0.2),))),
    "HardSigmoid": ((), None),
    "HardSilu": ((), None),
    "HardTanh": ((), None),
    "Elu": (("alpha",), _nn("nn.elu", keywords=(("alpha", "alpha", 1.0),))),
    "Selu": ((), _nn("nn.selu")),
    "Celu": (("alpha",), None),
    "Gelu": (("approximate",), None),
    "Softmax": (("axis",), _nn("nn.softmax", "math.softmax", keywords=(("axis", "axis", -1),))),
    "LogSoftmax": (("axis",), _nn("nn.log_softmax", "math.log_softmax", keywords=(("axis", "axis", -1),))),
    "HardShrink": (("threshold",), None),
    "SoftShrink": (("threshold",), None),
    "TanhShrink": ((), None),
    "Threshold": (("threshold", "default_value"), None),
    "Squareplus": (("b",), None),
    "SparsePlus": ((), None),
    "SparseSigmoid": ((), None),
}
RENAMED = {"Exp": "exponential"}
# Elementwise functions with no Keras activation of their own: the IR's kind of the same name.
FUNCTION_OPS: dict[str, tuple[str, Keras2 | None]] = {
    "Log": ("log", Keras2(("math.log",))),
    "Log1p": ("log1p", Keras2(("math.log1p",))),
    "Expm1": ("expm1", Keras2(("math.expm1",))),
    "Abs": ("abs", None),
    "Absolute": ("abs", Keras2(("math.abs",))),
    "Sqrt": ("sqrt", Keras2(("math.sqrt",))),
    "Fabs": ("abs", None),
    "Rsqrt": ("rsqrt", None),
    "Erf": ("erf", None),
    "Erfc": ("erfc", None),
    "Arcsin": ("asin", None),
    "Arccos": ("acos", None),
    "Arctan": ("atan", None),
    "Arcsinh": ("asinh", None),
    "Arccosh": ("acosh", None),
    "Arctanh": ("atanh", None),
    "Reciprocal": ("reciprocal", None),
    **{
        name: (name.lower(), None)
        for name in "Sin Cos Tan Sinh Cosh Exp2 Log2 Log10 Cbrt Floor Ceil Trunc Sign Sinc".split()
    },
}
BINARY_OPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Add": ("add", ("__operators__.add", "math.add")),
    "Subtract": ("subtract", ("math.subtract",)),
    "Multiply": ("multiply", ("math.multiply",)),
    "Divide": ("divide", ("math.divide",)),
    "TrueDivide": ("divide", ("math.truediv",)),
    "Maximum": ("maximum", ("math.maximum",)),
    "Minimum": ("minimum", ("math.minimum",)),
}


def handles(*class_names: str, keras2: Keras2 | None = None) -> Callable[[OperationMapping], OperationMapping]:
    """Declare the decorated mapping as the one of the operation ``class_names``, and of the TensorFlow
    functions ``keras2`` names (which become the first class)."""

    def declare(fn: OperationMapping) -> OperationMapping:
        for name in class_names:
            OPERATIONS.add(name, fn)
        if keras2 is not None:
            for function in keras2.functions:
                TF_FUNCTIONS.add(function, TFFunction(class_names[0], keras2))
        return fn

    return declare


def _tensor(b: Builder, arg: Any) -> tuple[str, int]:
    if not isinstance(arg, Tensor):
        raise Unsupported(f"expected a tensor, got the constant {arg!r}")
    return arg.name, b.widths[arg.name]


def _unary(b: Builder, args: tuple[Any, ...]) -> tuple[str, int]:
    tensors = [a for a in args if isinstance(a, Tensor)]
    if len(tensors) != 1 or len(args) != 1:
        raise Unsupported(f"called on {len(args)} arguments, expected one tensor")
    return _tensor(b, args[0])


def _affine(op: Any, b: Builder, x: str, scale: Any, shift: Any) -> str:
    """``x * scale + shift`` with constants that broadcast to x's shape (numpy's rule: one number, one per entry
    of the last axis, or of any axes); a constant that would widen x is refused."""
    return affine(b, op.name, x, np.asarray(scale, np.float64), np.asarray(shift, np.float64))


def _array(value: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Unsupported(f"constant {value!r} is not a number or an array of numbers") from None


def _constant(value: Any) -> np.ndarray:
    array = _array(value)
    if array.ndim > 1 and math.prod(array.shape[:-1]) != 1:
        raise Unsupported(
            f"constant of shape {array.shape}: only a number or one value per entry of the last axis is supported"
        )
    return array


def _binary(kind: str) -> OperationMapping:
    """Two tensors: the ``Merge`` of the matching merge layer. A tensor and a constant: an ``Affine``."""

    def mapping(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if len(args) != 2 or kwargs:
            raise Unsupported(f"called on {len(args)} arguments, expected 2")
        first, second = args
        if isinstance(first, Tensor) and isinstance(second, Tensor):
            return merge_values(b, op.name, kind, [first.name, second.name])
        if not isinstance(first, Tensor) and not isinstance(second, Tensor):
            raise Unsupported("no tensor among its arguments")
        tensor_first = isinstance(first, Tensor)
        x, c = (first.name, _array(second)) if tensor_first else (second.name, _array(first))
        parts = affine_parts(kind, c, constant_first=not tensor_first)
        if parts is not None and np.all(np.isfinite(parts[0])):
            return _affine(op, b, x, *parts)
        raise Unsupported(f"{kind} of {'a tensor and a constant' if tensor_first else 'a constant and a tensor'}")

    return mapping


def _activation(kind: str, attributes: tuple[str, ...]) -> OperationMapping:
    def mapping(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        x, _ = _unary(b, args)
        act = keras_activation(kind, **{a: getattr(op, a) for a in attributes})
        if act.is_vector:
            feature_axis(getattr(op, "axis", -1), len(b.shape(x)))
        return activate(b, op.name, x, act)

    return mapping


def _activate(op: Any, b: Builder, x: str, width: int, kind: str, **params: float) -> str:
    """The ``Activate`` of the IR kind with these parameters (one that is not a finite number: refused)."""
    try:
        activation = Activation(kind, params)
    except ValueError as err:
        raise Unsupported(str(err)) from None
    return b.add(Activate, op.name, [x], width, activation=activation)


def _function(kind: str) -> OperationMapping:
    def mapping(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        x, width = _unary(b, args)
        return _activate(op, b, x, width, kind)

    return mapping


for _name, (_attributes, _keras2) in ACTIVATION_OPS.items():
    _kind = RENAMED.get(_name) or re.sub(r"(?<!^)(?=[A-Z])", "_", _name).lower()
    handles(_name, keras2=_keras2)(_activation(_kind, _attributes))
for _name, (_kind, _keras2) in FUNCTION_OPS.items():
    handles(_name, keras2=_keras2)(_function(_kind))
for _name, (_kind, _functions) in BINARY_OPS.items():
    handles(_name, keras2=Keras2(_functions, form=BINARY))(_binary(_kind))


@handles("Negative", keras2=Keras2(("math.negative",)))
def negative(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    x, _ = _unary(b, args)
    return _affine(op, b, x, -1.0, 0.0)


@handles("Square", keras2=Keras2(("math.square",)))
def square(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    x, width = _unary(b, args)
    return _activate(op, b, x, width, "integer_pow", exponent=2.0)


@handles("Round")
def round_(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    x, width = _unary(b, args)
    if op.decimals != 0:
        raise Unsupported(f"round to {op.decimals} decimals: only decimals=0 is supported")
    return _activate(op, b, x, width, "round")


@handles("Clip")
def clip(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    x, width = _unary(b, args)
    low, high = (float(_constant(v)) if np.ndim(v) == 0 else np.nan for v in (op.x_min, op.x_max))
    if not low <= high:
        raise Unsupported(f"clip to [{op.x_min!r}, {op.x_max!r}]: only two numbers, the first not above the second")
    return _activate(op, b, x, width, "clip", low=low, high=high)


@handles("Power")
def power(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    if len(args) != 2 or not isinstance(args[0], Tensor) or isinstance(args[1], Tensor):
        raise Unsupported("only a tensor to a constant power is supported")
    x, width = _tensor(b, args[0])
    exponent = _constant(args[1])
    if exponent.ndim != 0:
        raise Unsupported(f"power {args[1]!r}: only one exponent for every feature is supported")
    whole = float(exponent).is_integer()
    return _activate(op, b, x, width, "integer_pow" if whole else "power", exponent=float(exponent))


@handles("NanToNum")
def nan_to_num(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    x, width = _unary(b, args)
    top = float(np.finfo(np.float32).max)  # Keras' default: the dtype's largest value
    posinf, neginf = (top if op.posinf is None else op.posinf), (-top if op.neginf is None else op.neginf)
    return _activate(op, b, x, width, "nan_to_num", nan=op.nan, posinf=posinf, neginf=neginf)


@handles("Copy", "Real", "Conj", "Conjugate")
def identity(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The identity on real tensors."""
    return _unary(b, args)[0]


@handles("Deg2rad", "Rad2deg")
def degrees(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    x, _ = _unary(b, args)
    return _affine(op, b, x, np.pi / 180 if type(op).__name__ == "Deg2rad" else 180 / np.pi, 0.0)


@handles("Concatenate", keras2=Keras2(("concat",), form=CONCAT, keywords=(("axis", "axis", None),)))
def concatenate(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
    values = [_tensor(b, part)[0] for part in parts]
    axis = getattr(op, "axis", -1)
    return concatenate_values(b, op.name, values, -1 if axis is None else int(axis))


def _feature_slice(key: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    """``(start, stop)`` of ``x[key]`` when the key keeps every row, every entry of the axes before the last,
    and a contiguous run of the last axis' (``x[:, a:b]``, ``x[..., a:b]``, ``x[:, :, a:b]``)."""
    parts = tuple(key) if isinstance(key, (tuple, list)) else (key,)
    whole = (Ellipsis, slice(None))
    keeps = len(parts) >= 2 and parts[0] in whole and all(p == slice(None) for p in parts[1:-1])
    if keeps and isinstance(parts[-1], slice) and (Ellipsis in parts[:2] or len(parts) == len(shape) + 1):
        start, stop, step = parts[-1].indices(shape[-1])
        if step == 1 and stop > start:
            return start, stop
        raise Unsupported(f"slice {parts[-1]}: only a non-empty run of the last axis with step 1 is supported")
    raise Unsupported(f"index {key!r}: only slices of the last axis (x[:, a:b], x[..., a:b]) are supported")


@handles("GetItem", keras2=Keras2(("__operators__.getitem",), form=SLICE))
def get_item(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    if len(args) != 2:
        raise Unsupported(f"called on {len(args)} arguments, expected a tensor and an index")
    x, _ = _tensor(b, args[0])
    steps, width = rows_of(b, x)
    start, stop = _feature_slice(args[1], b.shape(x))
    if (start, stop) == (0, width):
        return x
    return b.add(Slice, op.name, [x], stop - start, start=start, steps=steps)


def is_operation(operation: Any) -> bool:
    """A Keras 3 operation node (not a layer): its class comes from ``keras.src.ops``."""
    return type(operation).__module__.startswith("keras.src.ops.")


def operation_reason(cls: str) -> str | None:
    """Why an operation class is refused before any argument is seen, or None when it has a mapping."""
    if cls in OPERATIONS:
        return None
    function = re.sub(r"(?<!^)(?=[A-Z])", "_", cls).lower()
    if function in NOT_ELEMENTWISE:
        return f"operation {cls} is not elementwise (it {NOT_ELEMENTWISE[function]}): no C translation"
    return f"operation {cls} has no C translation (see docs/keras-models.md)"


def map_operation(op: Any, b: Builder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The IR value of one operation node; raises ``Unsupported`` naming what stands in the way."""
    cls = type(op).__name__
    reason = operation_reason(cls)
    if reason:
        raise Unsupported(reason)
    return OPERATIONS[cls](op, b, args, kwargs)
