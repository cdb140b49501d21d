"""ONNX's ops that combine the features of a row -> IR: ``Gemm`` and ``MatMul`` with a constant weight
(``Dense``; an ``Add`` after a ``MatMul`` is fused into it by the IR's passes), inference
``BatchNormalization`` (``Affine``), ``LayerNormalization`` (``LayerNorm``), ``InstanceNormalization``
(``Normalize``: a group normalization of one channel per group) and the reductions over the row (``Reduce``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.onnx.convolution import channels_first, channels_last
from exporter.frontends.onnx.declare import (
    Node,
    Row,
    Sizes,
    Value,
    along_last,
    attribute,
    axis_of,
    flat,
    handles,
    per_feature,
    tensor,
    transposed,
)
from exporter.frontends.onnx.elementwise import affine
from exporter.frontends.onnx.products import product
from exporter.ir import Dense, LayerNorm, Reduce
from exporter.ir.normalization import Normalize


def _matrix(node: Node, i: int) -> np.ndarray:
    weight = node.const(i, "the weight")
    if weight.ndim != 2:
        raise Unsupported(f"a weight of shape {list(weight.shape)}: only a matrix is supported")
    return weight.astype(np.float64)


def _dense(node: Node, b: Builder, row: Row, kernel: np.ndarray, bias: np.ndarray | None) -> Row:
    """``Dense`` over the last axis of ``row`` (its leading axes, the batch's in any place, as steps)."""
    if row.dims[-1:] != (kernel.shape[0],):
        raise Unsupported(f"a weight of {kernel.shape[0]} rows for {row.dims[-1] if row.dims else 1} features")
    dims = (*row.dims[:-1], kernel.shape[1])
    value = along_last(b, node.name, row, Dense, kernel.shape[1], kernel=kernel, bias=bias)
    return Row(value, dims, row.batch, row.groups)


def _gemm_terms(node: Any, sizes: Sizes) -> int:
    """A's columns (rows, transposed), and the bias: the C's sum starts from it."""
    a = sizes.of(node, 0)
    return (a[0] if attribute(node, "transA", 0) else a[-1]) + (len(node.input) > 2) if len(a) == 2 else 1


@handles("Gemm", since=(13,), terms=_gemm_terms)
def gemm(node: Node, b: Builder) -> list[Value]:
    """``alpha * A' B' + beta * C``: A the rows (not transposed: a transposed A would mix them), B constant."""
    row = node.moved(0, grouped=True)
    if node.attr("transA", 0):
        raise Unsupported("transA=1 transposes the batch into the features")
    if row.rank != 2:
        raise Unsupported(f"an input of rank {row.rank}; Gemm takes matrices")
    weight = _matrix(node, 1)
    kernel = float(node.attr("alpha", 1.0)) * (weight.T if node.attr("transB", 0) else weight)
    c = node.optional(2, "C")
    bias = None
    if c is not None:
        bias = float(node.attr("beta", 1.0)) * per_feature(c, Row(row.value, (kernel.shape[1],)), "C")
    return [_dense(node, b, row, kernel, bias)]


@handles("MatMul", since=(13,), terms=lambda node, sizes: (sizes.of(node, 0) or (1,))[-1])
def matmul(node: Node, b: Builder) -> list[Value]:
    """Rows times a constant matrix (or vector) over the last axis, any axes before it (the batch's among
    them: each a step); or a product of two computed tensors (``products``)."""
    if isinstance(node.inputs[1], Row):
        return [product(node, b)]
    row = node.moved(0, grouped=True)
    if row.rank < 2:
        raise Unsupported("a product of a rank-1 tensor runs over the batch")
    weight = node.const(1, "the weight").astype(np.float64)
    if weight.ndim == 1:
        out = _dense(node, b, row, weight.reshape(-1, 1), None)
        return [Row(out.value, out.dims[:-1], out.batch, out.groups[:-1])]
    if weight.ndim != 2:
        raise Unsupported(f"a weight of shape {list(weight.shape)}: a batched product needs computed tensors")
    return [_dense(node, b, row, weight, None)]


@handles("BatchNormalization", since=(9, 14, 15))
def batch_normalization(node: Node, b: Builder) -> list[Value]:
    """Inference: ``(x - mean) / sqrt(var + epsilon) * scale + B`` per channel (axis 1)."""
    row = node.row(0)
    if node.attr("training_mode", 0):
        raise Unsupported("training_mode=1 normalizes with the batch's own statistics")
    node.only_first_output(" (a running statistic)")
    if not row.dims:
        raise Unsupported("an input of rank 1 has no channel axis")

    def per_channel(i: int, what: str) -> np.ndarray:
        """One value per channel (axis 1), spread over the other axes of the row."""
        v = node.const(i, what).astype(np.float64).reshape(-1)
        if v.size != row.dims[0]:
            raise Unsupported(f"{what} has {v.size} values for {row.dims[0]} channels")
        return np.broadcast_to(v.reshape(-1, *[1] * (len(row.dims) - 1)), row.dims).reshape(-1)

    scale, shift, mean, var = (per_channel(i, w) for i, w in enumerate(("scale", "B", "the mean", "the variance"), 1))
    factor = scale / np.sqrt(var + float(node.attr("epsilon", 1e-5)))
    return [affine(b, node, row, factor, shift - mean * factor)]


@handles("LayerNormalization", since=(17,))
def layer_normalization(node: Node, b: Builder) -> list[Value]:
    """Normalized over the axes from ``axis`` to the last: the whole row, when every axis before is of size 1."""
    row = node.row(0)
    node.only_first_output(" (the mean or the inverse deviation)")
    axis = axis_of(row, int(node.attr("axis", -1)))
    normalized = Row(row.value, row.dims[axis - 1 :])  # each step: the axes from ``axis`` on, one row op
    scale = per_feature(node.const(1, "the scale"), normalized, "the scale")
    bias = node.optional(2, "the bias")
    shift = np.zeros(normalized.width) if bias is None else per_feature(bias, normalized, "the bias")
    epsilon = float(node.attr("epsilon", 1e-5))
    steps = Row(row.value, (*row.dims[: axis - 1], normalized.width))
    fields = {"scale": scale, "bias": shift, "epsilon": epsilon}
    return [Row(along_last(b, node.name, steps, LayerNorm, normalized.width, **fields), row.dims)]


@handles("InstanceNormalization", since=(6, 22))
def instance_normalization(node: Node, b: Builder) -> list[Value]:
    """``(x - mean) / sqrt(var + epsilon) * scale[c] + B[c]``, mean and variance over each channel's positions:
    the channels moved last, a ``Normalize`` of one group per channel, and moved back first."""
    row = node.row(0)
    if len(row.dims) < 2:
        raise Unsupported(f"an input of shape [batch, {', '.join(map(str, row.dims))}]: no positions to normalize over")
    channels = row.dims[0]
    scale, shift = (node.const(i, what).astype(np.float64).reshape(-1) for i, what in ((1, "the scale"), (2, "B")))
    if scale.size != channels or shift.size != channels:
        raise Unsupported(f"a scale of {scale.size} and B of {shift.size} values for {channels} channels")
    x = channels_last(b, node.name, row)
    fields = {"channels": channels, "groups": channels, "scale": scale, "bias": shift}
    y = b.add(Normalize, node.name, [x], row.width, epsilon=float(node.attr("epsilon", 1e-5)), **fields)
    return [channels_first(b, node.name, y)]


def _reduced(node: Any, sizes: Sizes) -> int:
    """The values each output of a sum or mean adds (every one where the axes are not known); a maximum: 0."""
    if node.op_type == "ReduceMax":
        return 0
    dims = sizes.of(node, 0)
    given = sizes.constants.get(node.input[1]) if len(node.input) > 1 else None
    axes = attribute(node, "axes", []) if given is None else [int(a) for a in given.reshape(-1)]
    return math.prod(dims[a] for a in axes) if axes else math.prod(dims)


@handles("ReduceMean", "ReduceSum", "ReduceMax", since=(13, 18, 20), terms=_reduced)
def reduce(node: Node, b: Builder) -> list[Value]:
    """A reduction over every feature of the row (axes may name the axes of size 1 too, not the batch)."""
    row = node.row(0)
    given = node.optional(1, "axes")
    axes = [int(a) for a in (node.attr("axes") if given is None else given.reshape(-1)) or ()]
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return [row]
        raise Unsupported("no axes: the reduction would run over the batch too")
    reduced = {axis_of(row, a) - 1 for a in axes}
    keep = node.attr("keepdims", 1)
    dims = tuple(1 if k in reduced else d for k, d in enumerate(row.dims) if keep or k not in reduced)
    kept = [k for k in range(len(row.dims)) if k not in reduced]
    order = (*kept, *sorted(reduced))  # the reduced axes last: each step reduces one run of them
    count = math.prod(row.dims[k] for k in reduced)
    moved = row
    if [k for k in order if row.dims[k] > 1] != sorted(k for k in order if row.dims[k] > 1):  # axes of 1 move nothing
        out = transposed(b, node.name, tensor(b, node.name, row, row.dims), order)
        moved = flat(b, node.name, out, b.shape(out))
    kind = "max" if node.op_type == "ReduceMax" else "sum"
    out = Row(along_last(b, node.name, Row(moved.value, (row.width // count, count)), Reduce, 1, kind=kind), dims)
    return [affine(b, node, out, 1.0 / count, 0.0) if node.op_type == "ReduceMean" else out]
