"""ONNX's ops that move features around -> IR: ``Concat``, ``Slice``, ``Split``, ``Gather``, ``Transpose``
(``Slice`` and ``Concatenate`` ops, or nothing when the features stay in order), and the ops that only
re-shape a row, cast it to float or pass it on (no op at all).

A row's features are its tensor's values after the batch axis, row-major. An op moving them is computed on
the grid of their indices (``feature_grid``) with numpy, whose indexing is ONNX's, and the features it
picks become slices of runs of consecutive ones (``select``). A re-shape keeps each row whole exactly when
the output's dimensions after the first multiply to the row's width: the first is then the batch.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.onnx.declare import (
    BATCH,
    SENTINELS,
    Const,
    Meta,
    Node,
    Row,
    Shape,
    Value,
    axis_of,
    concrete,
    entry,
    exact,
    feature_grid,
    flat,
    handles,
    select,
    tensor,
    transposed,
)
from exporter.ir import Concatenate, Select

SHAPED = (13, 14, 16, 19, 21, 23, 24, 25)  # versions that only add element types (float8, int4...)
FLOAT, BOOL = 1, 9  # onnx.TensorProto's element types


def _shape_text(dims: Shape) -> str:
    return "[" + ", ".join("batch" if d == BATCH else "?" if d is None else str(d) for d in dims) + "]"


def _target(node: Node, row: Row, values: tuple[int | str | None, ...]) -> Row | None:
    """The row under a ``Reshape`` to ``values`` (ONNX's 0 and -1 resolved; None when an entry is unknown).

    The file's flat order is kept, so each row keeps its own floats in order exactly when the target has an
    axis holding the batch (of size ``k1 * batch * k2``) whose leading axes times ``k1`` hold what comes
    before the batch now: [seq, batch, 16] to [seq, batch * 2, 8] splits the heads off, the batch and the
    heads then one axis (``Row.groups``), as PyTorch's attention writes it."""
    batch = 1 if node.batch_one else SENTINELS[0]
    full = row.onnx_dims(batch)
    copy = not node.attr("allowzero", 0)
    out = [full[k] if copy and v == 0 and k < len(full) else concrete(v, batch) for k, v in enumerate(values)]
    if any(v is None for v in out) or out.count(-1) > 1:
        return None
    total = batch * row.width
    rest = math.prod(v for v in out if v != -1)  # type: ignore[misc]
    if -1 in out:
        if rest <= 0 or total % rest:
            raise Unsupported(f"a reshape of [batch, {row.width}] to {list(values)}")
        out[out.index(-1)] = total // rest
    if node.batch_one:
        if out[0] != batch or math.prod(out[1:]) != row.width or row.batch or row.groups:  # type: ignore[arg-type]
            raise Unsupported(f"a reshape to {list(values)} does not keep the rows of [batch, {row.width}] apart")
        return Row(row.value, tuple(out[1:]))  # type: ignore[arg-type]
    before = math.prod(row.dims[: row.batch])
    holding = [a for a, d in enumerate(out) if d % batch == 0]  # type: ignore[operator]
    a = holding[0] if len(holding) == 1 else -1
    k = out[a] // batch if a >= 0 else 0  # type: ignore[operator]
    lead, tail = math.prod(out[:a]), math.prod(out[a + 1 :])  # type: ignore[arg-type]
    k1 = before // lead if a >= 0 and lead and before % lead == 0 else 0
    if not k1 or k % k1 or (k // k1) * tail * before != row.width or math.prod(out) != total:  # type: ignore[arg-type]
        raise Unsupported(f"a reshape to {list(values)} does not keep the rows of [batch, {row.width}] apart")
    holds = [*([k1] if k1 > 1 else []), None, *([k // k1] if k > k1 else [])]
    split = [*out[:a], *holds, *out[a + 1 :]]
    groups = (1,) * a + (len(holds),) + (1,) * (len(out) - a - 1) if len(holds) > 1 else ()
    return Row(row.value, tuple(d for d in split if d is not None), split.index(None), groups)  # type: ignore[misc]


@handles("Flatten", since=SHAPED, terms=exact)
def flatten(node: Node, b: Builder) -> list[Value]:
    row = node.row(0)
    axis = int(node.attr("axis", 1))
    axis = axis + row.rank if axis < 0 else axis
    if (axis == 0 and not node.batch_one) or math.prod(row.dims[: max(axis - 1, 0)]) != 1:
        raise Unsupported(f"flattening [batch, {_shape_text(row.dims)[1:-1]}] at axis {axis} mixes the rows")
    return [Row(row.value, (row.width,))]


@handles("Squeeze", "Unsqueeze", since=SHAPED, terms=exact)
def squeezed(node: Node, b: Builder) -> list[Value]:
    """Axes of size 1 taken out or put in, never the batch (which may move: ``Row.batch``)."""
    row = node.moved(0)
    full: list[int | None] = [*row.dims[: row.batch], None, *row.dims[row.batch :]]  # None: the batch
    given = node.optional(1, "axes")
    if node.op_type == "Squeeze" and given is None:
        if node.batch_one:
            raise Unsupported("squeezing every axis of size 1 drops the batch axis (of size 1)")
        kept = [d for d in full if d != 1]
    elif given is None:
        raise Unsupported("Unsqueeze without axes")
    else:
        rank = len(full) + (given.size if node.op_type == "Unsqueeze" else 0)
        axes = {int(a) % rank for a in given.reshape(-1) if -rank <= int(a) < rank}
        if len(axes) != given.size:
            raise Unsupported(f"axes {given.reshape(-1).tolist()} of a tensor of rank {rank}")
        if node.op_type == "Squeeze":
            if any(full[a] != 1 for a in axes):
                raise Unsupported(f"axes {sorted(axes)} are not all of size 1 (the batch is axis {row.batch})")
            kept = [d for k, d in enumerate(full) if k not in axes]
        else:
            rest = iter(full)
            kept = [1 if k in axes else next(rest) for k in range(rank)]
    return [Row(row.value, tuple(d for d in kept if d is not None), kept.index(None))]


@handles("Reshape", since=SHAPED, terms=exact)
def reshape(node: Node, b: Builder) -> list[Value]:
    """The row under its new shape, when that shape keeps each row whole: the target as the walk knows it
    (a constant, or a shape computed from the batch size), else the output shape ONNX infers."""
    row = node.moved(0, grouped=True)
    target = node.inputs[1]
    values = tuple(target.array.reshape(-1).tolist()) if isinstance(target, Const) else None
    values = target.values if isinstance(target, Meta) else values
    reshaped = _target(node, row, values) if values is not None else None
    if reshaped is not None:
        return [reshaped]
    row = node.row(0)
    shape = node.shapes[0]
    if not shape:
        raise Unsupported("ONNX's shape inference cannot tell its output shape")
    unknown = [k for k, d in enumerate(shape[1:]) if not isinstance(d, int)]
    known = math.prod(d for d in shape[1:] if isinstance(d, int))
    dims = [d if isinstance(d, int) else 0 for d in shape[1:]]
    if shape[0] == BATCH and len(unknown) == 1 and known and row.width % known == 0:
        dims[unknown[0]] = row.width // known  # the batch first, so the one dimension left is what remains of a row
    elif unknown:
        raise Unsupported(f"ONNX's shape inference cannot tell its output shape ({_shape_text(shape)})")
    if (isinstance(shape[0], int) and shape[0] != 1) or math.prod(dims) != row.width:
        raise Unsupported(f"its output {_shape_text(shape)} does not keep the rows of [batch, {row.width}] apart")
    return [Row(row.value, tuple(dims))]


@handles("Identity", since=SHAPED, terms=exact)
def identity(node: Node, b: Builder) -> list[Value]:
    return [node.row(0)]


@handles("Dropout", since=(13, 22), terms=exact)
def dropout(node: Node, b: Builder) -> list[Value]:
    """Identity at inference (``training_mode`` false or omitted); its mask is not computed."""
    training = node.optional(2, "training_mode")
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        raise Unsupported("training_mode is true: it drops features at random")
    node.only_first_output(" (the mask)")
    return [node.row(0)]


@handles("Cast", since=(13, 19, 21, 23, 24, 25, 28))
def cast(node: Node, b: Builder) -> list[Value]:
    """A cast to float of rows that are float already: the rows themselves; to bool (rows read as 0/1 floats,
    as bool inputs are): 1 where nonzero."""
    row = node.moved(0, grouped=True)
    if node.attr("to") == BOOL:
        return [Row(b.add(Select, node.name, [row.value], row.width), row.dims, row.batch, row.groups)]
    if node.attr("to") != FLOAT:
        why = "only float (1) and bool (9) are supported"
        raise Unsupported(f"a cast of computed values to element type {node.attr('to')}: {why}")
    return [row]


@handles("Shape", since=(13, 15, 19, 21, 23, 24, 25), terms=exact)
def shape(node: Node, b: Builder) -> list[Value]:
    """The dimensions after the batch are constants; a shape that includes the batch is known to inference only."""
    row = node.moved(0, grouped=True)
    dims = row.onnx_dims(1 if node.batch_one else None)
    split, held = row.split, row.axes()
    dims = [
        d if d is not None else entry(*(math.prod(split[k] or n for k in held[a]) for n in SENTINELS))
        for a, d in enumerate(dims)
    ]
    picked = dims[slice(node.attr("start", 0), node.attr("end", None))]
    if all(isinstance(d, int) for d in picked):
        return [Const(np.asarray(picked, dtype=np.int64))]
    return [Meta(tuple(picked))]


def _row_indices(node: Node, row: Row, grid: np.ndarray, out_dims: tuple[int, ...], b: Builder) -> Row:
    return select(b, node.name, row, grid.reshape(-1), out_dims)


@handles("Transpose", since=SHAPED, terms=exact)
def transpose(node: Node, b: Builder) -> list[Value]:
    """The IR's ``Transpose`` of each row's axes; a ``perm`` that moves the batch axis moves ``Row.batch``
    (a recurrence's ``[steps, batch, features]``): each row's own floats stay where they are."""
    row = node.moved(0, grouped=True)
    perm = [int(p) for p in node.attr("perm", list(range(row.rank))[::-1])]
    if sorted(perm) != list(range(row.rank)):
        raise Unsupported(f"perm {perm} of a tensor of rank {row.rank}")
    held = row.axes()
    order = [k for p in perm for k in held[p]]  # the axes of ``split``, the batch's among them, in their new order
    groups = tuple(len(held[p]) for p in perm) if row.groups else ()
    axes = tuple(k - (k > row.batch) for k in order if k != row.batch)
    batch = order.index(row.batch)
    if axes == tuple(range(len(axes))):
        return [Row(row.value, row.dims, batch, groups)]
    out = transposed(b, node.name, tensor(b, node.name, row, row.dims), axes)
    return [Row(flat(b, node.name, out, b.shape(out)).value, b.shape(out), batch, groups)]


@handles("Slice", since=(13,), terms=exact)
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


@handles("Gather", since=(13,), terms=exact)
def gather(node: Node, b: Builder) -> list[Value]:
    """Constant indices along an axis of the row (which may come before a moved batch: ``Row.batch``)."""
    row = node.moved(0)
    indices = node.const(1, "the indices").astype(np.int64)
    axis = axis_of(row, int(node.attr("axis", 0)))
    try:
        grid = np.take(feature_grid(row), indices, axis=axis - 1)
    except IndexError as err:
        raise Unsupported(f"indices out of range: {err}") from None
    out = _row_indices(node, Row(row.value, row.dims), grid, tuple(grid.shape), b)
    batch = row.batch + indices.ndim - 1 if axis - 1 < row.batch else row.batch
    return [Row(out.value, out.dims, batch)]


@handles("Split", since=(13, 18), terms=exact)
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
    parts = [np.take(grid, np.arange(lo, hi), axis=axis - 1) for lo, hi in itertools.pairwise(bounds)]
    return [
        _row_indices(node, row, part, tuple(part.shape), b) if used else Meta()
        for part, used in zip(parts, node.used, strict=True)
    ]


@handles("Concat", since=(13,), terms=exact)
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
