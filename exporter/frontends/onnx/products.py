"""ONNX's ops of attention written out -> IR: ``MatMul`` of two computed tensors (the IR's batched
``MatMul``), ``Where`` (``Select``), ``Expand`` and the broadcasting of one computed tensor against another
(a selection of its features), as PyTorch's exporters write a Transformer's attention.

They are read op by op rather than matched as one exporter's sequence onto the IR's ``Attention``: the
scores ``q k^T`` are a tensor, the scale an ``Affine``, a padding or causal mask an ``Add`` of ``-inf`` or a
``Where``, the softmax a row op over the keys, ``weights v`` a product again. Any attention written with
these ops is read, whatever its order of nodes, heads or masks (docs/onnx.md#attention).
"""

from __future__ import annotations

import math

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.onnx.declare import (
    BATCH,
    Const,
    Meta,
    Node,
    Row,
    Value,
    broadcast_dims,
    exact,
    feature_grid,
    flat,
    handles,
    per_feature,
    scalar,
    select,
    tensor,
    transposed,
)
from exporter.ir import Masked, MatMul, Select

BOOL = 9  # onnx.TensorProto.BOOL


def spread(b: Builder, name: str, row: Row, dims: tuple[int, ...]) -> Row:
    """``row`` broadcast to ``dims`` (numpy's rules, after the batch): its features repeated by a selection."""
    if row.dims == dims:
        return row
    if broadcast_dims(row.dims, dims) != dims:
        raise Unsupported(f"[batch, {', '.join(map(str, row.dims))}] does not broadcast to {list(dims)}")
    grid = feature_grid(row).reshape((1,) * (len(dims) - len(row.dims)) + row.dims)
    return select(b, name, row, np.broadcast_to(grid, dims), dims)


def product(node: Node, b: Builder) -> Row:
    """``a @ b`` of two computed tensors of one rank (at least 3: the batch and a matrix per row), their axes
    between the batch and the matrices equal or broadcast."""
    first, second = node.row(0), node.row(1)
    if first.rank != second.rank or first.rank < 3:
        raise Unsupported(f"a product of tensors of ranks {first.rank} and {second.rank}; equal ranks of 3 or more")
    (m, k), (k2, n) = first.dims[-2:], second.dims[-2:]
    if k != k2:
        raise Unsupported(f"a product of [.., {m}, {k}] by [.., {k2}, {n}]")
    lead = broadcast_dims(first.dims[:-2], second.dims[:-2])
    a = spread(b, node.name, first, (*lead, m, k))
    c = spread(b, node.name, second, (*lead, k, n))
    values = [tensor(b, node.name, a, (*lead, m, k)), tensor(b, node.name, c, (*lead, k, n))]
    out = b.add(MatMul, node.name, values, math.prod(lead) * m * n, lead=lead, rows=m, inner=k)
    return flat(b, node.name, out, (*lead, m, n))


def _side(b: Builder, node: Node, value: Value | None, what: str) -> float | Row | None:
    """One side of a ``Where``: a computed tensor, or one constant value (a zero tensor of a computed shape)."""
    if isinstance(value, Row):
        return value
    if isinstance(value, Meta) and value.zero:
        return 0.0
    if isinstance(value, Const) and value.array.dtype.kind == "f":
        return scalar(value.array, what)
    raise Unsupported(f"{what} is {'not float' if isinstance(value, Const) else 'computed from the batch size'}")


@handles("Where", since=(9, 16), terms=exact)
def where(node: Node, b: Builder) -> list[Value]:
    """A computed condition (a bool input, a comparison...) picking one constant value (a mask's ``-inf``) or
    a computed tensor on each side; one side at most computed. A constant condition (a causal mask) picks
    between a computed tensor and a constant (``Masked``)."""
    if isinstance(node.inputs[0], Const):
        return [_constant_condition(node, b, node.inputs[0].array)]
    cond = node.row(0)
    sides = [_side(b, node, node.inputs[i], what) for i, what in ((1, "X"), (2, "Y"))]
    rows = [s for s in sides if isinstance(s, Row)]
    if len(rows) > 1:
        raise Unsupported("both X and Y are computed tensors; one of them must be a constant value")
    if any(r.rank != cond.rank for r in rows):
        raise Unsupported(f"a condition of rank {cond.rank} and a tensor of rank {rows[0].rank}")
    dims = broadcast_dims(cond.dims, *(r.dims for r in rows))
    values = [spread(b, node.name, r, dims).value for r in [cond, *rows]]
    on = [None if isinstance(s, Row) else s for s in sides]
    return [Row(b.add(Select, node.name, values, math.prod(dims), on_true=on[0], on_false=on[1]), dims)]


def _constant_condition(node: Node, b: Builder, cond: np.ndarray) -> Row:
    """``Where`` of a constant condition: the computed side kept, the constant side filled in."""
    inputs = node.inputs[1:3]
    rows = [i for i, v in enumerate(inputs) if isinstance(v, Row)]
    if len(rows) != 1 or not isinstance(inputs[1 - rows[0]], Const):
        raise Unsupported("a constant condition picks between a computed tensor and a constant here")
    row, other = node.row(1 + rows[0]), inputs[1 - rows[0]]
    assert isinstance(other, Const)
    fill = cond.astype(bool) if rows[0] == 1 else ~cond.astype(bool)  # where the constant is taken
    shape = broadcast_dims(fill.shape, other.array.shape)
    fill = per_feature(np.broadcast_to(fill, shape).astype(np.float64), row, "the condition")
    mask = per_feature(np.broadcast_to(other.array, shape), row, "the constant")
    return Row(b.add(Masked, node.name, [row.value], row.width, mask=mask, fill=fill), row.dims)


@handles("Expand", since=(13,), terms=exact)
def expand(node: Node, b: Builder) -> list[Value]:
    """The row repeated to a constant shape (or one computed from the batch size, its batch entry the batch)."""
    row = node.row(0)
    target = node.inputs[1]
    if isinstance(target, Const):
        values: list[int | str | None] = [int(v) for v in target.array.reshape(-1)]
    elif isinstance(target, Meta) and target.values is not None:
        values = list(target.values)
    else:
        raise Unsupported("its shape is not known when the file is read")
    values = [1] * (row.rank - len(values)) + values
    if len(values) > row.rank or values[0] not in (1, BATCH) or not all(isinstance(v, int) for v in values[1:]):
        raise Unsupported(f"a shape {values} that puts more than the batch before each row's axes")
    return [spread(b, node.name, row, broadcast_dims(row.dims, values[1:]))]  # type: ignore[arg-type]


def _arranged(b: Builder, name: str, row: Row, letters: str, order: str, shape: tuple[int, ...]) -> str:
    """``row`` (its axes after the batch named by ``letters``) transposed to ``order``, as a tensor of ``shape``."""
    perm = tuple(letters.index(letter) for letter in order)
    value = tensor(b, name, row, row.dims)
    if perm != tuple(range(len(perm))):
        value = transposed(b, name, value, perm)
    return tensor(b, name, flat(b, name, value, b.shape(value)), shape)


@handles("Einsum", since=(12,))
def einsum(node: Node, b: Builder) -> list[Value]:
    """A product of two computed tensors written as an equation (``bhqd,bhkd->bhqk``): the batch the first
    letter of both and of the output; letters of both operands and the output batch the product, those of
    both only are summed, those of one are its free axes. Transposes and the IR's batched ``MatMul``."""
    equation = str(node.attr("equation", "")).replace(" ", "")
    terms, _, out = equation.partition("->")
    operands = terms.split(",")
    if not out or "." in equation or len(operands) != 2 or len(node.inputs) != 2:
        raise Unsupported(f"equation {equation!r}: two operands and an explicit output (->), no ellipsis")
    rows = [node.row(0), node.row(1)]
    (a, c), first = operands, out[:1]
    if any(len(t) != r.rank or len(set(t)) != len(t) for t, r in zip(operands, rows, strict=True)):
        raise Unsupported(f"equation {equation!r}: a letter per axis, each once per operand")
    if a[0] != first or c[0] != first or len(set(out)) != len(out):
        raise Unsupported(f"equation {equation!r}: the batch must be the first axis of both operands and the output")
    sizes: dict[str, int] = {}
    for term, row in zip((a[1:], c[1:]), rows, strict=True):
        for letter, n in zip(term, row.dims, strict=True):
            if sizes.setdefault(letter, n) != n:
                raise Unsupported(f"equation {equation!r}: axis {letter} of sizes {sizes[letter]} and {n}")
    lead = "".join(x for x in a[1:] if x in c and x in out)
    summed = "".join(x for x in a[1:] if x in c and x not in out)
    free_a, free_c = "".join(x for x in a[1:] if x not in c), "".join(x for x in c[1:] if x not in a)
    if set(out[1:]) != set(lead + free_a + free_c):
        raise Unsupported(f"equation {equation!r}: it sums an axis of one operand only, or names another")
    m, k, n = (math.prod(sizes[x] for x in part) for part in (free_a, summed, free_c))
    dims = tuple(sizes[x] for x in lead)
    values = [
        _arranged(b, node.name, rows[0], a[1:], lead + free_a + summed, (*dims, m, k)),
        _arranged(b, node.name, rows[1], c[1:], lead + summed + free_c, (*dims, k, n)),
    ]
    product = b.add(MatMul, node.name, values, math.prod(dims) * m * n, lead=dims, rows=m, inner=k)
    done = lead + free_a + free_c
    result = Row(flat(b, node.name, product, (math.prod(dims) * m * n,)).value, tuple(sizes[x] for x in done))
    value = _arranged(b, node.name, result, done, out[1:], tuple(sizes[x] for x in out[1:]))
    return [flat(b, node.name, value, tuple(sizes[x] for x in out[1:]))]
