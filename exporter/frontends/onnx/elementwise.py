"""ONNX's elementwise ops -> IR: activations (the IR kind named as the op type, ``RENAMED`` the others, its
attributes made explicit parameters), arithmetic with constants (``Affine``) or between rows (``Merge``),
``PRelu``, ``Clip``, ``Pow``.

Where an ONNX op has parameters that the IR kind of the same function fixes (``Selu``'s alpha and gamma,
``HardSigmoid``'s alpha and beta), the values the kind fixes map to it and any others to the same function
written with an ``Affine`` beside it, so that every attribute value is exported as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.onnx.declare import (
    Const,
    Node,
    Row,
    Value,
    along_last,
    broadcast_dims,
    const_dims,
    exact,
    handles,
    one,
    per_feature,
    scalar,
    to_dims,
    whole_row,
)
from exporter.frontends.onnx.products import spread
from exporter.ir import Activate, Activation, Affine, Formula, Masked, Merge, PReLU
from exporter.ir.expression import Expr, X, call, num
from exporter.ir.ops import affine_parts

# ONNX's defaults for Selu, as float32 attributes: the IR's selu (templates/activations.c.j2) in float
SELU_ALPHA, SELU_GAMMA = np.float32(1.6732632423543772), np.float32(1.0507009873554805)
# HardSigmoid as PyTorch's Hardsigmoid exports it, relu6(x + 3) / 6: the IR's kind (ONNX's default is 0.2, 0.5)
HARD_ALPHA, HARD_BETA = np.float32(1.0 / 6.0), np.float32(0.5)


def activate(b: Builder, node: Node, row: Row, kind: str, **params: float) -> Row:
    try:
        activation = Activation(kind, params)
    except ValueError as err:  # an attribute that is not a finite number
        raise Unsupported(str(err)) from None
    return Row(
        b.add(Activate, node.name, [row.value], row.width, activation=activation), row.dims, row.batch, row.groups
    )


def affine(b: Builder, node: Node, row: Row, scale: Any, shift: Any) -> Row:
    """``x * scale + shift``; per position of the last axis alone (a bias after a ``MatMul`` over tokens), one
    row op of steps, which the IR's passes fuse into the ``Dense`` of the same steps before it."""
    scale, shift = np.broadcast_to(scale, row.width), np.broadcast_to(shift, row.width)
    last = row.dims[-1] if row.dims and row.axes()[-1] == [len(row.dims)] else row.width
    periods = [np.reshape(v, (-1, last)) for v in (scale, shift)]
    uniform = all((v == v.flat[0]).all() for v in (scale, shift))  # one value: the whole row at once
    if last < row.width and not uniform and all((p == p[0]).all() for p in periods):
        out = along_last(b, node.name, row, Affine, last, scale=periods[0][0], shift=periods[1][0])
    else:
        out = b.add(Affine, node.name, [row.value], row.width, scale=scale, shift=shift)
    return Row(out, row.dims, row.batch, row.groups)


def kind_of(op_type: str) -> str:
    """The IR kind of an op type: the op type in snake case (LeakyRelu: leaky_relu), or its other name."""
    return RENAMED.get(op_type) or re.sub(r"(?<!^)(?=[A-Z])", "_", op_type).lower()


# Op types whose IR kind is their own name (in snake case), with their attributes as the kind's parameters
# ({parameter: (attribute, ONNX's default)}) and the schema versions read; RENAMED: the kinds named otherwise.
UNARY: dict[str, tuple[dict[str, tuple[str, float]], tuple[int, ...]]] = {
    "Relu": ({}, (13, 14)),
    "LeakyRelu": ({"negative_slope": ("alpha", 0.01)}, (6, 16)),
    "Elu": ({"alpha": ("alpha", 1.0)}, (6, 22)),
    "Celu": ({"alpha": ("alpha", 1.0)}, (12, 28)),
    "Sigmoid": ({}, (13,)),
    "HardSwish": ({}, (14, 22)),
    "Tanh": ({}, (13,)),
    "Softplus": ({}, (1, 22)),
    "Softsign": ({}, (1, 22)),
    "Mish": ({}, (18, 22)),
    "Exp": ({}, (13,)),
    "Log": ({}, (13,)),
    "Sqrt": ({}, (13,)),
    "Abs": ({}, (13,)),
    "Erf": ({}, (13,)),
}
RENAMED = {"HardSwish": "hard_silu", "Exp": "exponential"}
EXACT = ("Relu", "Abs")  # what float32 computes exactly: the float64 twin does not move it (``declare.Terms``)


def _unary(params: dict[str, tuple[str, float]]) -> Callable[[Node, Builder], list[Value]]:
    def mapping(node: Node, b: Builder) -> list[Value]:
        values = {p: float(node.attr(attribute, default)) for p, (attribute, default) in params.items()}
        return [activate(b, node, node.moved(0, grouped=True), kind_of(node.op_type), **values)]

    return mapping


for _op, (_params, _since) in UNARY.items():
    handles(_op, since=_since, terms=exact if _op in EXACT else one)(_unary(_params))


@handles("Softmax", "LogSoftmax", since=(13,))
def softmax(node: Node, b: Builder) -> list[Value]:
    """Over the last axis, every axis before it a step (the keys of attention's scores, per head and query)."""
    row = node.moved(0, grouped=True)
    if int(node.attr("axis", -1)) not in (-1, row.rank - 1):
        whole_row(node.row(), int(node.attr("axis", -1)), node.op_type)  # the row is one softmax, or refused
        return [activate(b, node, node.row(), kind_of(node.op_type))]
    activation = Activation(kind_of(node.op_type), {})
    return [
        Row(
            along_last(b, node.name, row, Activate, row.dims[-1], activation=activation),
            row.dims,
            row.batch,
            row.groups,
        )
    ]


@handles("Gelu", since=(20,))
def gelu(node: Node, b: Builder) -> list[Value]:
    approximate = node.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise Unsupported(f"approximate={approximate!r}: ONNX defines 'none' and 'tanh'")
    return [activate(b, node, node.row(), "gelu_erf" if approximate == "none" else "gelu_tanh")]


@handles("Selu", since=(6, 22))
def selu(node: Node, b: Builder) -> list[Value]:
    alpha, gamma = np.float32(node.attr("alpha", SELU_ALPHA)), np.float32(node.attr("gamma", SELU_GAMMA))
    if (alpha, gamma) == (SELU_ALPHA, SELU_GAMMA):
        return [activate(b, node, node.row(), kind_of(node.op_type))]
    return [affine(b, node, activate(b, node, node.row(), "elu", alpha=float(alpha)), float(gamma), 0.0)]


@handles("HardSigmoid", since=(6, 22))
def hard_sigmoid(node: Node, b: Builder) -> list[Value]:
    alpha, beta = np.float32(node.attr("alpha", 0.2)), np.float32(node.attr("beta", 0.5))
    if (alpha, beta) == (HARD_ALPHA, HARD_BETA):
        return [activate(b, node, node.row(), kind_of(node.op_type))]
    line = affine(b, node, node.row(), float(alpha), float(beta))  # max(0, min(1, alpha x + beta))
    return [activate(b, node, line, "relu_general", negative_slope=0.0, max_value=1.0, threshold=0.0)]


@handles("Neg", since=(13,), terms=exact)
def negative(node: Node, b: Builder) -> list[Value]:
    return [affine(b, node, node.row(), -1.0, 0.0)]


@handles("PRelu", since=(9, 16))
def prelu(node: Node, b: Builder) -> list[Value]:
    row = node.row()
    slope = per_feature(node.const(1, "the slope"), row, "the slope")
    return [Row(b.add(PReLU, node.name, [row.value], row.width, alpha=slope), row.dims)]


def _bound(node: Node, i: int, what: str, unbounded: float) -> float | None:
    """A bound of ``Clip``, None when omitted or infinite on its side (``unbounded``)."""
    value = node.optional(i, what)
    bound = None if value is None else scalar(value, what)
    return None if bound == unbounded else bound


@handles("Clip", since=(13,), terms=exact)
def clip(node: Node, b: Builder) -> list[Value]:
    row = node.row()
    low, high = _bound(node, 1, "min", -np.inf), _bound(node, 2, "max", np.inf)
    if low == 0.0:  # relu, relu6: the IR's clipped ReLU
        top = float("inf") if high is None else high
        return [activate(b, node, row, "relu_general", negative_slope=0.0, max_value=top, threshold=0.0)]
    expr = X if low is None else call("fmax", X, num(low))
    expr = expr if high is None else call("fmin", expr, num(high))
    return [Row(b.add(Formula, node.name, [row.value], row.width, expr=expr), row.dims)]


@handles("Pow", since=(13, 15))
def power(node: Node, b: Builder) -> list[Value]:
    base, exponent = node.inputs[0], node.inputs[1]
    if isinstance(base, Row) and isinstance(exponent, Const):
        p = scalar(exponent.array, "the exponent")
        const_dims(exponent.array, base.rank)  # a higher rank would move the batch
        if p == 0.5:
            return [activate(b, node, base, "sqrt")]
        if p == int(p) and abs(p) <= 8:
            return [activate(b, node, base, "integer_pow", exponent=p)]
        expr = call("pow", X, num(p))
    elif isinstance(base, Const) and isinstance(exponent, Row):
        const_dims(base.array, exponent.rank)
        expr = call("pow", num(scalar(base.array, "the base")), X)
    else:
        raise Unsupported("a power of a computed tensor to a constant exponent, or of a constant base, is supported")
    row = exponent if isinstance(exponent, Row) else base
    assert isinstance(row, Row)
    return [replace(row, value=b.add(Formula, node.name, [row.value], row.width, expr=expr))]


MERGES = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide"}
VARIADIC = {"Sum": "add", "Max": "maximum", "Min": "minimum", "Mean": "average"}


def merge_rows(node: Node, b: Builder, kind: str, rows: list[Row]) -> Row:
    """Rows of one rank combined elementwise; a row of one value is broadcast over the others' width."""
    if len({row.rank for row in rows}) != 1:
        raise Unsupported(f"tensors of ranks {[row.rank for row in rows]}: the batch would not stay the first axis")
    if len({(row.batch, row.groups) for row in rows}) != 1:
        raise Unsupported("tensors whose batch lies on different axes")
    dims = broadcast_dims(*(row.dims for row in rows))
    values = [spread(b, node.name, row, dims).value for row in rows]
    merged = b.add(Merge, node.name, values, int(np.prod(dims)), kind=kind)
    return Row(merged, dims, rows[0].batch, rows[0].groups)


def _with_constant(node: Node, b: Builder, kind: str, row: Row, c: np.ndarray, row_first: bool) -> Row:
    """A row and a constant: an ``Affine`` (``c / x``, one value c: a formula). A row whose batch is not its
    first axis takes constants of its axes after the batch only."""
    after = row.rank - 1 - next(a for a, held in enumerate(row.axes()) if row.batch in held)
    if (row.batch or row.groups) and np.ndim(c) > after:
        raise Unsupported(f"a constant of shape {list(np.shape(c))} across the batch axis")
    dims = broadcast_dims(row.dims, const_dims(c, row.rank).shape)
    if dims != row.dims and (row.batch or row.groups):
        raise Unsupported(f"a constant of shape {list(np.shape(c))} widens a row whose batch is not its first axis")
    row = to_dims(b, node.name, row, dims)
    if not np.all(np.isfinite(c)) and (kind == "add" or (kind == "subtract" and row_first)):
        mask = per_feature(-c if kind == "subtract" else c, row, "the mask")  # 0 and -inf: an attention mask
        return Row(b.add(Masked, node.name, [row.value], row.width, mask=mask), dims, row.batch, row.groups)
    if kind == "divide" and not row_first:
        quotient = Expr("/", (num(scalar(c, "the dividend")), X))
        return Row(b.add(Formula, node.name, [row.value], row.width, expr=quotient), dims, row.batch, row.groups)
    parts = affine_parts(kind, per_feature(c, row, "the constant"), constant_first=not row_first)
    assert parts is not None  # every kind of MERGES but c / x
    return affine(b, node, row, *parts)


@handles(*MERGES, since=(13, 14))
def arithmetic(node: Node, b: Builder) -> list[Value]:
    first, second = node.inputs[0], node.inputs[1]
    kind = MERGES[node.op_type]
    if isinstance(first, Row) and isinstance(second, Row):
        return [merge_rows(node, b, kind, [first, second])]
    if isinstance(first, Row) and isinstance(second, Const):
        return [_with_constant(node, b, kind, first, second.array, True)]
    if isinstance(first, Const) and isinstance(second, Row):
        return [_with_constant(node, b, kind, second, first.array, False)]
    raise Unsupported(f"{node.op_type} of a computed tensor and a constant or of two computed tensors is supported")


@handles(*VARIADIC, since=(13,), terms=lambda node, sizes: len(node.input) if node.op_type in ("Sum", "Mean") else 0)
def variadic(node: Node, b: Builder) -> list[Value]:
    rows = [node.row(i) for i in range(len(node.inputs))]
    return [rows[0] if len(rows) == 1 else merge_rows(node, b, VARIADIC[node.op_type], rows)]
