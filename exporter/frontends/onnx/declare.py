"""What an ONNX op's declaration sees and uses: the tensors of the walk, the node, the registry of op types.

The walk gives every ONNX tensor one of three values. A ``Row`` holds one row of features per batch entry:
an IR value, and the tensor's dimensions after the batch one (the row is their row-major flattening, so
``[batch, 1, 8]`` and ``[batch, 8]`` are the same 8 features). A ``Const`` is known when the file is read
(initializers, ``Constant`` nodes, anything computed from them). A ``Meta`` is computed from the batch
size (``Shape`` of a row): a vector of sizes in which the batch's stays symbolic, or unknown.

An op type is one declaration, ``@handles("MatMul", since=(13,))``: the mapping that grows IR through the
``Builder``, and the versions of the op's schema it was written for. A node whose schema version is not
among them (a newer opset that changed the op) is refused, never read by a mapping written for another.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.registry import Registry
from exporter.ir import Broadcast, Concatenate, Reshape, Slice, Transpose
from exporter.ir.ops import Shape as IRShape


@dataclass(frozen=True)
class Row:
    """A tensor of one row per batch entry: the IR value holding its features, its dimensions after the batch."""

    value: str
    dims: tuple[int, ...]
    batch: int = 0  # the batch's axis in the ONNX tensor: 1 in a recurrence's [steps, batch, features]
    # How many axes of ``split`` each ONNX axis holds, when the batch shares one with others (``()``: one
    # each): PyTorch's attention reshapes [seq, batch, heads * d] to [seq, batch * heads, d], the batch
    # then the heads in one axis; ``batch`` is then the batch's place in ``split``, not an ONNX axis.
    groups: tuple[int, ...] = ()

    @property
    def width(self) -> int:
        return math.prod(self.dims)

    @property
    def rank(self) -> int:
        return len(self.groups) if self.groups else 1 + len(self.dims)

    @property
    def split(self) -> list[int | None]:
        """The ONNX tensor's axes with the batch (None) an axis of its own: each row is the others, row-major."""
        return [*self.dims[: self.batch], None, *self.dims[self.batch :]]

    def axes(self) -> list[list[int]]:
        """For each ONNX axis, the indices of ``split`` it holds."""
        counts = self.groups or (1,) * (1 + len(self.dims))
        starts = np.cumsum([0, *counts])
        return [list(range(a, e)) for a, e in itertools.pairwise(starts)]

    def onnx_dims(self, batch: int | None = None) -> list[int | None]:
        """The ONNX tensor's shape for a batch of ``batch`` (None: the axis holding the batch is None)."""
        split = self.split
        sizes = [[batch if split[k] is None else split[k] for k in axis] for axis in self.axes()]
        return [None if None in axis else math.prod(axis) for axis in sizes]  # type: ignore[misc]


@dataclass(frozen=True)
class Const:
    """A tensor known when the file is read."""

    array: np.ndarray


@dataclass(frozen=True)
class Meta:
    """A tensor computed from the batch size: a shape, which only reshapes may read. ``values``: its entries
    (``BATCH`` for the batch size, None for one computed from it otherwise), of ``shape``; None: unknown."""

    values: tuple[int | str | None, ...] | None = None
    shape: tuple[int, ...] = (-1,)
    zero: bool = False  # every entry 0 (``ConstantOfShape`` of 0: a recurrence's initial state, as PyTorch writes it)


Value = Row | Const | Meta
Shape = tuple[int | str | None, ...]  # an inferred ONNX shape: a size, a symbol (BATCH: the batch), None: unknown
BATCH = "N"  # the symbolic batch dimension every input is given, so that inference relates them
SENTINELS = (1_000_003, 1_000_033)  # batch sizes a shape is computed with, twice: entries that follow them are it


def entry(first: int, second: int) -> int | str | None:
    """A shape's entry from its values for the two sentinel batch sizes: a constant, the batch (``BATCH``), a
    multiple of it (``"N*2"``: the batch and the heads in one axis), or None (computed from it otherwise)."""
    if first == second:
        return first
    k, rest = divmod(first, SENTINELS[0])
    if k > 0 and rest == 0 and second == k * SENTINELS[1]:
        return BATCH if k == 1 else f"{BATCH}*{k}"
    return None


def concrete(value: int | str | None, batch: int) -> int | None:
    """An entry of a shape (``entry``) for a batch of ``batch``: None when unknown."""
    if value == BATCH:
        return batch
    if isinstance(value, str) and value.startswith(f"{BATCH}*"):
        return batch * int(value[len(BATCH) + 1 :])
    return value if isinstance(value, int) else None


@dataclass
class Node:
    """One node as a mapping reads it: attributes as Python values, inputs as the walk's values (None: an
    omitted optional input), the shapes ONNX infers for its outputs (None: unknown) and which are used."""

    name: str
    op_type: str
    opset: int
    attrs: dict[str, Any]
    inputs: list[Value | None]
    shapes: list[Shape | None]
    used: list[bool]
    batch_one: bool = False  # the model's batch dimension is 1, not dynamic

    def attr(self, name: str, default: Any = None) -> Any:
        value = self.attrs.get(name, default)
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value

    def row(self, i: int = 0) -> Row:
        """Input ``i``, rows whose batch is the first axis (as every mapping but the few that move it reads them)."""
        value = self.moved(i)
        if value.batch:
            raise Unsupported(f"input {i} has the batch as axis {value.batch}: only axis 0 is read here")
        return value

    def moved(self, i: int, grouped: bool = False) -> Row:
        """Input ``i``, rows whose batch may be any axis (``Row.batch``), or share one (``grouped``)."""
        value = self.inputs[i] if i < len(self.inputs) else None
        if not isinstance(value, Row):
            raise Unsupported(f"input {i} is {_kind(value)}; a tensor computed from the model's input was expected")
        if value.groups and not grouped:
            shape = ", ".join("batch*" + str(d) if d is None else str(d) for d in value.onnx_dims())
            raise Unsupported(f"input {i} [{shape}] holds the batch and other axes in one: only reshapes read it")
        return value

    def const(self, i: int, what: str) -> np.ndarray:
        value = self.inputs[i] if i < len(self.inputs) else None
        if not isinstance(value, Const):
            raise Unsupported(f"{what} (input {i}) is {_kind(value)}; it must be a constant")
        return value.array

    def optional(self, i: int, what: str) -> np.ndarray | None:
        """A constant input that may be omitted."""
        return None if i >= len(self.inputs) or self.inputs[i] is None else self.const(i, what)

    def only_first_output(self, what: str = "") -> None:
        """Refuse a node whose other outputs (a training statistic, a dropout mask) are read."""
        extra = [i for i, used in enumerate(self.used) if used and i > 0]
        if extra:
            raise Unsupported(f"its output {extra[0]}{what} is used; only the first output is supported at inference")


def _kind(value: Value | None) -> str:
    if value is None:
        return "omitted"
    if isinstance(value, Meta):
        return "computed from the batch size"
    return "a constant" if isinstance(value, Const) else "a computed tensor"


Mapping = Callable[[Node, Builder], list[Value]]


@dataclass(frozen=True)
class Sizes:
    """What an op's ``terms`` reads of the file's model (a node there, not the walk's ``Node``): each tensor's
    dimensions as ONNX infers them (0 where unknown), and the initializers."""

    shapes: dict[str, tuple[int, ...]]
    constants: dict[str, np.ndarray]

    def of(self, node: Any, i: int) -> tuple[int, ...]:
        """The dimensions of ``node``'s input ``i`` (``()``: absent, or not inferred)."""
        return self.shapes.get(node.input[i], ()) if i < len(node.input) else ()


# How many terms each value an op writes sums, for the float64 twin's nudge (sqrt of that many float32 ULPs:
# exporter/frontends/onnx/nudged.py); 0: float32 computes it exactly (moving, selecting, comparing), not moved.
Terms = Callable[[Any, Sizes], int]


def one(node: Any, sizes: Sizes) -> int:
    """An op that rounds each value it writes once (an activation, an arithmetic op, a normalization)."""
    return 1


def exact(node: Any, sizes: Sizes) -> int:
    """An op float32 computes exactly: what it writes is not moved."""
    return 0


def attribute(node: Any, name: str, default: Any = None) -> Any:
    """An attribute of a node of the file's model (``terms`` functions read those)."""
    import onnx

    found = [a for a in node.attribute if a.name == name]
    return onnx.helper.get_attribute_value(found[0]) if found else default


@dataclass(frozen=True)
class OnnxOp:
    """An op type's mapping, the versions of its schema (``since_version``) it reads, and how float32 rounds
    what it writes (``terms``)."""

    mapping: Mapping
    since: frozenset[int]
    terms: Terms = one


OPS: Registry[str, OnnxOp] = Registry("ONNX op")


def handles(*op_types: str, since: Sequence[int], terms: Terms = one) -> Callable[[Mapping], Mapping]:
    """Declare the decorated mapping as the one of ``op_types`` (standard domain), for those schema versions;
    ``terms``: how many terms each value it writes sums (``exact``: none rounded)."""

    def declare(fn: Mapping) -> Mapping:
        for op_type in op_types:
            OPS.add(op_type, OnnxOp(fn, frozenset(since), terms))
        return fn

    return declare


def axis_of(row: Row, axis: int) -> int:
    """``axis`` of a tensor of rank ``row.rank`` as a non-negative index; the batch axis is refused. For rows
    whose batch is not axis 0, the index counts the batch as axis 0 all the same (``row.dims[index - 1]``)."""
    if not -row.rank <= axis < row.rank:
        raise Unsupported(f"axis {axis} of a tensor of rank {row.rank}")
    axis %= row.rank
    if axis == row.batch:
        raise Unsupported(f"axis {axis} is the batch: only the features of each row can be combined")
    return axis + 1 if axis < row.batch else axis


def whole_row(row: Row, axis: int, what: str) -> int:
    """``axis``, checked to run over the whole row: every other dimension after the batch is 1."""
    axis = axis_of(row, axis)
    if any(d != 1 for k, d in enumerate(row.dims) if k != axis - 1):
        raise Unsupported(f"{what} over axis {axis} of shape [batch, {_dims(row.dims)}] is not over the whole row")
    return axis


def _dims(dims: Sequence[int]) -> str:
    return ", ".join(map(str, dims))


def const_dims(array: np.ndarray, rank: int) -> np.ndarray:
    """A constant as it broadcasts against a row of ``rank``: its batch-aligned dimension (which must be 1) dropped."""
    array = np.asarray(array)
    if array.ndim > rank:
        raise Unsupported(f"a constant of shape {list(array.shape)} would put the batch inside the result")
    if array.ndim == rank:
        if array.shape[0] != 1:
            raise Unsupported(f"a constant of shape {list(array.shape)} holds a value per batch entry")
        array = array.reshape(array.shape[1:])
    return array


def broadcast_dims(*shapes: Sequence[int]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*(tuple(s) for s in shapes)))
    except ValueError:
        raise Unsupported(f"shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast") from None


def to_dims(b: Builder, name: str, row: Row, dims: tuple[int, ...]) -> Row:
    """``row`` broadcast to ``dims``: itself when it has them, one value repeated when it has width 1."""
    if row.dims == dims:
        return row
    if row.width != 1:
        raise Unsupported(f"broadcasting [batch, {_dims(row.dims)}] to [batch, {_dims(dims)}] repeats parts of a row")
    return Row(b.add(Broadcast, name, [row.value], math.prod(dims)), dims)


def per_feature(array: Any, row: Row, what: str) -> np.ndarray:
    """A constant broadcast to one value per feature of ``row`` (float64), refused if it would widen the row."""
    array = const_dims(np.asarray(array, dtype=np.float64), row.rank)
    if broadcast_dims(row.dims, array.shape) != row.dims:
        raise Unsupported(f"{what} of shape {list(array.shape)} widens the row [batch, {_dims(row.dims)}]")
    return np.broadcast_to(array, row.dims).reshape(-1)


def scalar(array: np.ndarray, what: str) -> float:
    """The one value of a constant (all its values, when they are equal)."""
    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    if flat.size == 0 or not np.all(flat == flat[0]):
        raise Unsupported(f"{what} must be one value, got shape {list(np.shape(array))}")
    return float(flat[0])


MAX_RUNS = 256  # runs of consecutive features one selection may write out, each a Slice op of its own


def select(b: Builder, name: str, row: Row, indices: np.ndarray, dims: tuple[int, ...]) -> Row:
    """The features ``indices`` (flat, in order) of ``row`` as a row of ``dims``: runs of consecutive
    features are ``Slice`` ops, several runs a ``Concatenate`` of them."""
    flat = np.asarray(indices, dtype=np.int64).reshape(-1)
    if flat.size == 0:
        raise Unsupported("it selects no feature")
    if flat.size == row.width and np.array_equal(flat, np.arange(row.width)):
        return Row(row.value, dims)
    breaks = np.flatnonzero(np.diff(flat) != 1) + 1
    if len(breaks) >= MAX_RUNS:
        raise Unsupported(
            f"it picks {flat.size} features in {len(breaks) + 1} runs (at most {MAX_RUNS} are written out)"
        )
    runs = np.split(flat, breaks)
    parts = [b.add(Slice, name, [row.value], len(run), start=int(run[0])) for run in runs]
    if len(parts) == 1:
        return Row(parts[0], dims)
    return Row(b.add(Concatenate, name, parts, int(flat.size)), dims)


def feature_grid(row: Row) -> np.ndarray:
    """The flat index of every feature, shaped as the row's dimensions: numpy's indexing of it is ONNX's."""
    return np.arange(row.width).reshape(row.dims)


def tensor(b: Builder, name: str, row: Row, shape: IRShape) -> str:
    """The row's IR value seen as a tensor of ``shape`` (a ``Reshape``, which copies nothing, when needed; the
    value a ``Reshape`` made it from, when that has the shape: a row op's output read by the next row op)."""
    if b.shape(row.value) == tuple(shape):
        return row.value
    made = next((op for op in reversed(b.ops) if op.output == row.value), None)
    if isinstance(made, Reshape) and b.shape(made.inputs[0]) == tuple(shape):
        return made.inputs[0]
    return b.add(Reshape, name, [row.value], row.width, shape=shape)


def flat(b: Builder, name: str, value: str, dims: tuple[int, ...]) -> Row:
    """An IR tensor back as a row of the walk (flat, as every other mapping reads it) of ONNX ``dims``."""
    width = math.prod(dims)
    if b.shape(value) != (width,):
        value = b.add(Reshape, name, [value], width, shape=(width,))
    return Row(value, dims)


def transposed(b: Builder, name: str, value: str, perm: tuple[int, ...]) -> str:
    shape = b.shape(value)
    return b.add(Transpose, name, [value], math.prod(shape), in_shape=shape, perm=perm)


def along_last(b: Builder, name: str, row: Row, cls: type, last: int, **fields: Any) -> str:
    """A row op (``Dense``, ``LayerNorm``, softmax...) on the last ONNX axis of ``row``, whatever comes before
    it (the batch too, in any place, but not on the last axis): ``steps`` of it over a (steps, last) tensor,
    its output flat again, ``last`` wide per step. The output keeps ``row``'s layout but for the last axis."""
    held = row.axes()[-1]
    if held != [len(row.dims)] or row.batch == len(row.dims):
        raise Unsupported("the batch is on the last axis")
    size = row.dims[-1]
    steps = row.width // size
    if steps == 1:
        return b.add(cls, name, [row.value], last, **fields)
    out = b.add(cls, name, [tensor(b, name, row, (steps, size))], last, steps=steps, **fields)
    return flat(b, name, out, (steps * last,)).value
