"""ONNX's ops that combine the features of a row -> IR: ``Gemm`` and ``MatMul`` with a constant weight
(``Dense``; an ``Add`` after a ``MatMul`` is fused into it by the IR's passes), inference
``BatchNormalization`` (``Affine``), ``LayerNormalization`` (``LayerNorm``), ``InstanceNormalization``
(``Normalize``: a group normalization of one channel per group) and the reductions over the row (``Reduce``)."""

from __future__ import annotations

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.onnx.convolution import channels_first, channels_last
from exporter.frontends.onnx.declare import Node, Row, Value, axis_of, handles, per_feature
from exporter.frontends.onnx.elementwise import affine
from exporter.ir import Dense, LayerNorm, Reduce
from exporter.ir.normalization import Normalize


def _matrix(node: Node, i: int) -> np.ndarray:
    weight = node.const(i, "the weight")
    if weight.ndim != 2:
        raise Unsupported(f"a weight of shape {list(weight.shape)}: only a matrix is supported")
    return weight.astype(np.float64)


def _dense(node: Node, b: Builder, row: Row, kernel: np.ndarray, bias: np.ndarray | None, dims: tuple[int, ...]) -> Row:
    if row.width != kernel.shape[0]:
        raise Unsupported(f"a weight of {kernel.shape[0]} rows for {row.width} features")
    return Row(b.add(Dense, node.name, [row.value], kernel.shape[1], kernel=kernel, bias=bias), dims)


@handles("Gemm", since=(13,))
def gemm(node: Node, b: Builder) -> list[Value]:
    """``alpha * A' B' + beta * C``: A the rows (not transposed: a transposed A would mix them), B constant."""
    row = node.row(0)
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
    return [_dense(node, b, row, kernel, bias, (kernel.shape[1],))]


@handles("MatMul", since=(13,))
def matmul(node: Node, b: Builder) -> list[Value]:
    """Rows times a constant matrix (or vector): the product over the last axis, every other axis of size 1."""
    row = node.row(0)
    if row.rank < 2:
        raise Unsupported("a product of a rank-1 tensor runs over the batch")
    if any(d != 1 for d in row.dims[:-1]):
        raise Unsupported(f"a product of [batch, {', '.join(map(str, row.dims))}] needs shaped tensors")
    weight = node.const(1, "the weight").astype(np.float64)
    if weight.ndim == 1:
        return [_dense(node, b, row, weight.reshape(-1, 1), None, row.dims[:-1])]
    if weight.ndim != 2:
        raise Unsupported(f"a weight of shape {list(weight.shape)}: batched products need shaped tensors")
    return [_dense(node, b, row, weight, None, (*row.dims[:-1], weight.shape[1]))]


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
    if any(d != 1 for d in row.dims[: axis - 1]):
        raise Unsupported(f"normalized from axis {axis} of [batch, {', '.join(map(str, row.dims))}], not the whole row")
    scale = per_feature(node.const(1, "the scale"), row, "the scale")
    bias = node.optional(2, "the bias")
    shift = np.zeros(row.width) if bias is None else per_feature(bias, row, "the bias")
    epsilon = float(node.attr("epsilon", 1e-5))
    out = b.add(LayerNorm, node.name, [row.value], row.width, scale=scale, bias=shift, epsilon=epsilon)
    return [Row(out, row.dims)]


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


@handles("ReduceMean", "ReduceSum", "ReduceMax", since=(13, 18, 20))
def reduce(node: Node, b: Builder) -> list[Value]:
    """A reduction over every feature of the row (axes may name the axes of size 1 too, not the batch)."""
    row = node.row(0)
    given = node.optional(1, "axes")
    axes = [int(a) for a in (node.attr("axes") if given is None else given.reshape(-1)) or ()]
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return [row]
        raise Unsupported("no axes: the reduction would run over the batch too")
    reduced = {axis_of(row, a) for a in axes}
    if any(d != 1 for k, d in enumerate(row.dims) if k + 1 not in reduced):
        shape = ", ".join(map(str, row.dims))
        raise Unsupported(f"a reduction over axes {sorted(reduced)} of [batch, {shape}] leaves parts of the row apart")
    keep = node.attr("keepdims", 1)
    dims = tuple(1 if k + 1 in reduced else d for k, d in enumerate(row.dims) if keep or k + 1 not in reduced)
    kind = "max" if node.op_type == "ReduceMax" else "sum"
    out = Row(b.add(Reduce, node.name, [row.value], 1, kind=kind), dims)
    return [affine(b, node, out, 1.0 / row.width, 0.0) if node.op_type == "ReduceMean" else out]
