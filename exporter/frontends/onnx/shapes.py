"""ONNX's ops that move features around -> IR: ``Concat``, ``Slice``, ``Split``, ``Gather``, ``Transpose``
(``Slice`` and ``Concatenate`` ops, or nothing when the features stay in order), and the ops that only
re-shape a row, cast it to float or pass it on (no op at all).

A row's features are its tensor's values after the batch axis, row-major. An op moving them is computed on
the grid of their indices (``feature_grid``) with numpy, whose indexing is ONNX's, and the features it
picks become slices of runs of consecutive ones (``select``). A re-shape keeps each row whole exactly when
the output's dimensions after the first multiply to the row's width: the first is then the batch.
"""

from __future__ import annotations

import math

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.onnx.declare import Const, Meta, Node, Row, Value, axis_of, feature_grid, handles, select
from exporter.ir import Concatenate

SHAPED = (13, 14, 16, 19, 21, 23, 24, 25)  # versions that only add element types (float8, int4...)
FLOAT = 1  # onnx.TensorProto.FLOAT


def _shape_text(dims: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


@handles("Reshape", "Flatten", "Squeeze", "Unsqueeze", since=SHAPED)
def reshaped(node: Node, b: Builder) -> list[Value]:
    """The row under the output shape ONNX infers, when that shape keeps each row whole."""
    row = node.row(0)
    shape = node.shapes[0]
    if shape is None or not shape or any(d is None for d in shape[1:]):
        raise Unsupported("ONNX's shape inference cannot tell its output shape")
    dims = tuple(int(d) for d in shape[1:])  # type: ignore[arg-type]
    if shape[0] not in (None, 1) or math.prod(dims) != row.width:
        raise Unsupported(f"its output {_shape_text(shape)} does not keep the rows of [batch, {row.width}] apart")
    return [Row(row.value, dims)]


@handles("Identity", since=SHAPED)
def identity(node: Node, b: Builder) -> list[Value]:
    return [node.row(0)]


@handles("Dropout", since=(13, 22))
def dropout(node: Node, b: Builder) -> list[Value]:
    """Identity at inference (``training_mode`` false or omitted); its mask is not computed."""
    training = node.optional(2, "training_mode")
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        raise Unsupported("training_mode is true: it drops features at random")
    node.only_first_output(" (the mask)")
    return [node.row(0)]


@handles("Cast", since=(13, 19, 21, 23, 24, 25, 28))
def cast(node: Node, b: Builder) -> list[Value]:
    """A cast to float of rows that are float already: the rows themselves."""
    if node.attr("to") != FLOAT:
        raise Unsupported(f"a cast of computed values to element type {node.attr('to')}: only float (1) is supported")
    return [node.row(0)]


@handles("Shape", since=(13, 15, 19, 21, 23, 24, 25))
def shape(node: Node, b: Builder) -> list[Value]:
    """The dimensions after the batch are constants; a shape that includes the batch is known to inference only."""
    row = node.row(0)
    axes = range(row.rank)[slice(node.attr("start", 0), node.attr("end", None))]
    if 0 in axes:
        return [Meta()]
    return [Const(np.asarray([row.dims[a - 1] for a in axes], dtype=np.int64))]


def _row_indices(node: Node, row: Row, grid: np.ndarray, out_dims: tuple[int, ...], b: Builder) -> Row:
    return select(b, node.name, row, grid.reshape(-1), out_dims)


@handles("Transpose", since=SHAPED)
def transpose(node: Node, b: Builder) -> list[Value]:
    row = node.row(0)
    perm = [int(p) for p in node.attr("perm", list(range(row.rank))[::-1])]
    if sorted(perm) != list(range(row.rank)) or perm[0] != 0:
        raise Unsupported(f"perm {perm} moves the batch axis")
    grid = feature_grid(row).transpose([p - 1 for p in perm[1:]])
    return [_row_indices(node, row, grid, tuple(grid.shape), b)]


@handles("Slice", since=(13,))
def slice_(node: Node, b: Builder) -> list[Value]:
    row = node.row(0)
    starts, ends = node.const(1, "starts").reshape(-1), node.const(2, "ends").reshape(-1)
    given_axes, given_steps = node.optional(3, "axes"), node.optional(4, "steps")
    axes = range(len(starts)) if given_axes is None else given_axes.reshape(-1)
    steps = np.ones(len(starts), dtype=np.int64) if given_steps is None else given_steps.reshape(-1)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise Unsupported("starts, ends, axes and steps of different lengths")
    index: list[slice] = [slice(None)] * len(row.dims)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if int(axis) % row.rank == 0 and -row.rank <= int(axis) < row.rank:
            if int(start) != 0 or int(end) < 2**31 - 1 or int(step) != 1:  # the whole batch, as exporters write it
                raise Unsupported(f"it slices the batch axis ({int(start)}:{int(end)}:{int(step)})")
            continue
        if int(step) == 0:
            raise Unsupported("a step of 0")
        index[axis_of(row, int(axis)) - 1] = slice(int(start), int(end), int(step))  # numpy clamps as ONNX does
    grid = feature_grid(row)[tuple(index)]
    return [_row_indices(node, row, grid, tuple(grid.shape), b)]


@handles("Gather", since=(13,))
def gather(node: Node, b: Builder) -> list[Value]:
    row = node.row(0)
    indices = node.const(1, "the indices").astype(np.int64)
    axis = axis_of(row, int(node.attr("axis", 0)))
    try:
        grid = np.take(feature_grid(row), indices, axis=axis - 1)
    except IndexError as err:
        raise Unsupported(f"indices out of range: {err}") from None
    return [_row_indices(node, row, grid, tuple(grid.shape), b)]


@handles("Split", since=(13, 18))
def split(node: Node, b: Builder) -> list[Value]:
    row = node.row(0)
    axis = axis_of(row, int(node.attr("axis", 0)))
    size = row.dims[axis - 1]
    given = node.optional(1, "split")
    if given is not None:
        sizes = [int(s) for s in given.reshape(-1)]
    else:
        n = int(node.attr("num_outputs", len(node.used)))
        part = -(-size // n)  # ONNX: equal parts, the last one smaller
        sizes = [min(part, size - k * part) for k in range(n)]
    if sum(sizes) != size or min(sizes) < 0 or len(sizes) != len(node.used):
        raise Unsupported(f"parts {sizes} for {len(node.used)} outputs of an axis of {size}")
    bounds = np.cumsum([0, *sizes])
    grid = feature_grid(row)
    parts = [np.take(grid, np.arange(lo, hi), axis=axis - 1) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    return [
        _row_indices(node, row, part, tuple(part.shape), b) if used else Meta()
        for part, used in zip(parts, node.used, strict=True)
    ]


@handles("Concat", since=(13,))
def concat(node: Node, b: Builder) -> list[Value]:
    """Rows laid end to end; along another axis than the last, their features interleaved by a selection."""
    rows = [node.row(i) for i in range(len(node.inputs))]
    if len({row.rank for row in rows}) != 1:
        raise Unsupported(f"inputs of ranks {[row.rank for row in rows]}")
    axis = axis_of(rows[0], int(node.attr("axis")))
    offsets = np.cumsum([0, *(row.width for row in rows)])
    try:
        grid = np.concatenate([feature_grid(row) + o for row, o in zip(rows, offsets, strict=False)], axis=axis - 1)
    except ValueError as err:
        raise Unsupported(f"inputs that do not fit together: {err}") from None
    width = int(offsets[-1])
    joined = rows[0] if len(rows) == 1 else Row(b.add(Concatenate, node.name, [r.value for r in rows], width), (width,))
    return [_row_indices(node, joined, grid, tuple(grid.shape), b)]
