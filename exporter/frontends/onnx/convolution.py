"""ONNX's convolution family -> the IR's shaped ops: ``Conv`` (1-D and 2-D, groups, depthwise), ``ConvTranspose``
(``exporter.ir.transposed``), ``MaxPool``, ``AveragePool``, ``GlobalAveragePool``, ``GlobalMaxPool`` and zero ``Pad``.

ONNX is channels-first (``[batch, C, L]``, ``[batch, C, H, W]``) and the walk keeps each row flat in ONNX's
own order, so the C's input is the ONNX input flattened as ONNX holds it. The IR's ``Conv``, ``Pool`` and
``Pad`` are channels-last: each node here is a ``Transpose`` to ``(*positions, C)``, the op, and a
``Transpose`` back to ``(C, *positions)``; the global pools need none (a ``Reduce`` over each channel's
positions, which are contiguous channels-first). ONNX's kernel ``(M, C / group, *window)`` is re-ordered
to the IR's ``(*window, C / group, M)``, and ``ConvTranspose``'s ``(C, M / group, *window)`` likewise. Padding
is stated explicitly: ``pads`` as written, or ``auto_pad`` (``SAME_UPPER`` the odd position after,
``SAME_LOWER`` before, ``VALID`` none); a ``ConvTranspose``'s as the positions it crops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.onnx.declare import (
    Node,
    Row,
    Sizes,
    Value,
    attribute,
    exact,
    flat,
    handles,
    scalar,
    tensor,
    transposed,
)
from exporter.frontends.onnx.elementwise import affine
from exporter.ir import Conv, ConvTranspose, Op, Pad, Pool, Reduce
from exporter.ir.convolution import Pairs, same_padding, windowed
from exporter.ir.ops import Shape
from exporter.ir.transposed import transposed_positions


def spatial(node: Node, i: int = 0) -> Row:
    """A channels-first input of one or two spatial axes: ``[batch, C, L]`` or ``[batch, C, H, W]``."""
    row = node.row(i)
    if len(row.dims) not in (2, 3):
        raise Unsupported(f"an input of shape [batch, {', '.join(map(str, row.dims))}]: 1 or 2 spatial axes")
    return row


def channels_last(b: Builder, name: str, row: Row) -> str:
    """``(C, *positions)`` -> ``(*positions, C)``."""
    n = len(row.dims)
    return transposed(b, name, tensor(b, name, row, row.dims), (*range(1, n), 0))


def channels_first(b: Builder, name: str, value: str) -> Row:
    """``(*positions, C)`` -> ``(C, *positions)``, as a row of the walk."""
    n = len(b.shape(value))
    out = transposed(b, name, value, (n - 1, *range(n - 1)))
    return flat(b, name, out, b.shape(out))


def _ints(node: Node, attr: str, n: int, default: int) -> tuple[int, ...]:
    values = tuple(int(v) for v in node.attr(attr, None) or [default] * n)
    if len(values) != n or min(values) < 1:
        raise Unsupported(f"{attr} {list(values)} for {n} spatial axes")
    return values


def padding(node: Node, positions: Shape, window: Shape, strides: Shape, dilation: Shape) -> Pairs:
    """``pads`` (all begins, then all ends) or ``auto_pad`` as (before, after) per spatial axis."""
    n = len(positions)
    auto = node.attr("auto_pad", "NOTSET")
    if auto == "VALID":
        return ((0, 0),) * n
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pairs = [same_padding(*args) for args in zip(positions, window, strides, dilation, strict=True)]
        return tuple((a, b) if auto == "SAME_UPPER" else (b, a) for a, b in pairs)
    if auto != "NOTSET":
        raise Unsupported(f"auto_pad {auto!r}")
    pads = [int(p) for p in node.attr("pads", None) or [0] * 2 * n]
    if len(pads) != 2 * n or min(pads) < 0:
        raise Unsupported(f"pads {pads} for {n} spatial axes")
    return tuple(zip(pads[:n], pads[n:], strict=True))


def _add(b: Builder, cls: type[Op], name: str, x: str, width: int, **fields: Any) -> str:
    try:
        return b.add(cls, name, [x], width, **fields)
    except ValueError as err:  # an impossible geometry, as the op's own check states it
        raise Unsupported(str(err)) from None


def _weighted(node: Node) -> tuple[Row, np.ndarray, Shape, Shape, Shape, int]:
    """A convolution's input, constant weight (two axes of channels, then the window), its window, strides,
    dilations and groups."""
    row = spatial(node)
    weight = node.const(1, "the weight").astype(np.float64)
    n = len(row.dims) - 1
    if weight.ndim != n + 2:
        raise Unsupported(f"a weight of shape {list(weight.shape)} for {n} spatial axes")
    window = tuple(int(k) for k in weight.shape[2:])
    if tuple(node.attr("kernel_shape", window)) != window:
        raise Unsupported(f"kernel_shape {node.attr('kernel_shape')} differs from the weight's {list(window)}")
    strides, dilation = _ints(node, "strides", n, 1), _ints(node, "dilations", n, 1)
    return row, weight, window, strides, dilation, int(node.attr("group", 1))


def _window_terms(node: Any, sizes: Sizes) -> int:
    """A convolution's fan-in: its weight's size over the output channels (``Conv``: ``(M, C / group, *window)``;
    ``ConvTranspose``: ``(C, M / group, *window)``, each input channel of the group reaching every output one)."""
    weight = sizes.of(node, 1)
    if len(weight) < 3:
        return 1
    if node.op_type == "Conv":
        return math.prod(weight[1:])
    return weight[0] // max(attribute(node, "group", 1), 1) * math.prod(weight[2:])


@handles("Conv", since=(11, 22), terms=_window_terms)
def conv(node: Node, b: Builder) -> list[Value]:
    """``Conv`` with a constant weight ``(M, C / group, *window)`` and optional bias ``(M,)``."""
    row, weight, window, strides, dilation, groups = _weighted(node)
    channels, positions = row.dims[0], row.dims[1:]
    n = len(positions)
    if groups < 1 or channels % groups or weight.shape[1] * groups != channels:
        raise Unsupported(f"group {groups} with a weight of shape {list(weight.shape)} for {channels} channels")
    pads = padding(node, positions, window, strides, dilation)
    out = windowed(positions, window, strides, dilation, pads)
    if min(out) < 1:
        raise Unsupported(f"a window of {list(window)} does not fit the padded input {list(positions)}")
    kernel = weight.transpose((*range(2, n + 2), 1, 0))  # (M, C/g, *window) -> (*window, C/g, M)
    bias = node.optional(2, "the bias")
    x = channels_last(b, node.name, row)
    filters = int(weight.shape[0])
    y = _add(
        b, Conv, node.name, x, math.prod(out) * filters, in_shape=b.shape(x), window=window, strides=strides,
        dilation=dilation, padding=pads, kernel=kernel, bias=bias, groups=groups,
    )  # fmt: skip
    return [channels_first(b, node.name, y)]


def _transposed_crop(node: Node, positions: Shape, window: Shape, strides: Shape, dilation: Shape) -> Pairs:
    """What ``ConvTranspose``'s ``pads``, ``auto_pad``, ``output_padding`` and ``output_shape`` crop from each end of
    the unpadded output, ``(n - 1) * stride + (window - 1) * dilation + 1`` long (negative: positions added)."""
    n = len(positions)
    extra = tuple(int(v) for v in node.attr("output_padding", None) or [0] * n)
    if len(extra) != n or min(extra) < 0 or any(e >= s for e, s in zip(extra, strides, strict=True)):
        raise Unsupported(f"output_padding {list(extra)} for strides {list(strides)}: each below its stride")
    full = transposed_positions(positions, window, strides, dilation, tuple((0, -e) for e in extra))
    auto, shape = node.attr("auto_pad", "NOTSET"), node.attr("output_shape", None)
    if shape is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        if any(extra):  # ONNX's shape inference adds it to the output's length, ONNX Runtime does not
            raise Unsupported(f"auto_pad {auto} with output_padding {list(extra)}: ONNX and ONNX Runtime disagree")
        shape = [p * s for p, s in zip(positions, strides, strict=True)]
    if shape is not None:  # the total padding from the output's length: the odd position after for SAME_UPPER
        shape = [int(v) for v in shape][-n:]
        if len(shape) != n:
            raise Unsupported(f"output_shape {shape} for {n} spatial axes")
        totals = [f - length for f, length in zip(full, shape, strict=True)]
        if min(totals) < 0:  # ONNX Runtime pads nothing then (a shorter output), the reference evaluator more
            raise Unsupported(f"an output of {shape} positions, more than the {list(full)} the input reaches")
        pads = [(t // 2, t - t // 2) if auto == "SAME_UPPER" else (t - t // 2, t // 2) for t in totals]
    elif auto in ("NOTSET", "VALID"):
        pads = list(padding(node, positions, window, strides, dilation)) if auto == "NOTSET" else [(0, 0)] * n
    else:
        raise Unsupported(f"auto_pad {auto!r}")
    return tuple((a, z - e) for (a, z), e in zip(pads, extra, strict=True))


@handles("ConvTranspose", since=(11, 22), terms=_window_terms)
def conv_transpose(node: Node, b: Builder) -> list[Value]:
    """``ConvTranspose`` with a constant weight ``(C, M / group, *window)`` and optional bias ``(M,)``."""
    row, weight, window, strides, dilation, groups = _weighted(node)
    channels, positions = row.dims[0], row.dims[1:]
    n = len(positions)
    if weight.shape[0] != channels or groups < 1 or channels % groups:
        raise Unsupported(f"a weight of shape {list(weight.shape)} in {groups} groups for {channels} channels")
    crop = _transposed_crop(node, positions, window, strides, dilation)
    out = transposed_positions(positions, window, strides, dilation, crop)
    if min(out) < 1:
        raise Unsupported(f"pads {[list(p) for p in crop]} leave no output of the input {list(positions)}")
    cin, fout = channels // groups, int(weight.shape[1])  # (C, M/g, *w) -> (g, C/g, M/g, *w) -> (*w, C/g, M)
    kernel = weight.reshape(groups, cin, fout, *window).transpose((*range(3, n + 3), 1, 0, 2))
    kernel = kernel.reshape(*window, cin, groups * fout)
    x = channels_last(b, node.name, row)
    y = _add(
        b, ConvTranspose, node.name, x, math.prod(out) * groups * fout, in_shape=b.shape(x), window=window,
        strides=strides, dilation=dilation, padding=crop, kernel=kernel, bias=node.optional(2, "the bias"),
        groups=groups,
    )  # fmt: skip
    return [channels_first(b, node.name, y)]


def _pool(node: Node, b: Builder, kind: str) -> list[Value]:
    row = spatial(node)
    node.only_first_output(" (the indices)")
    positions = row.dims[1:]
    n = len(positions)
    window = _ints(node, "kernel_shape", n, 0)
    strides, dilation = _ints(node, "strides", n, 1), _ints(node, "dilations", n, 1)
    pads = padding(node, positions, window, strides, dilation)
    out = windowed(positions, window, strides, dilation, pads)
    if node.attr("ceil_mode", 0):
        reach = [(k - 1) * d + 1 for k, d in zip(window, dilation, strict=True)]
        spans = [p + a + z - r for p, (a, z), r in zip(positions, pads, reach, strict=True)]
        if any(span % s for span, s in zip(spans, strides, strict=True)):
            raise Unsupported("ceil_mode 1 adds a window past the padded input: only ceil_mode 0 is supported")
    if min(out) < 1:
        raise Unsupported(f"a window of {list(window)} does not fit the padded input {list(positions)}")
    x = channels_last(b, node.name, row)
    count = bool(node.attr("count_include_pad", 0))
    y = _add(
        b, Pool, node.name, x, math.prod(out) * row.dims[0], in_shape=b.shape(x), window=window, strides=strides,
        dilation=dilation, padding=pads, kind=kind, count_padding=count,
    )  # fmt: skip
    return [channels_first(b, node.name, y)]


@handles("MaxPool", since=(12, 22), terms=exact)
def max_pool(node: Node, b: Builder) -> list[Value]:
    if node.attr("storage_order", 0):
        raise Unsupported("storage_order 1 (column-major indices)")
    return _pool(node, b, "max")


@handles("AveragePool", since=(11, 19, 22), terms=lambda node, sizes: math.prod(attribute(node, "kernel_shape", [1])))
def average_pool(node: Node, b: Builder) -> list[Value]:
    return _pool(node, b, "average")


def _positions(node: Any, sizes: Sizes) -> int:
    """The positions an average adds (a maximum: 0)."""
    return 0 if node.op_type == "GlobalMaxPool" else math.prod(sizes.of(node, 0)[2:])


@handles("GlobalAveragePool", "GlobalMaxPool", since=(1, 22), terms=_positions)
def global_pool(node: Node, b: Builder) -> list[Value]:
    """Each channel's positions reduced to one value: a ``Reduce`` per channel (``steps``), channels-first."""
    row = node.row(0)
    if not row.dims:
        raise Unsupported("an input without a channel axis")
    channels, count = row.dims[0], math.prod(row.dims[1:])
    x = tensor(b, node.name, row, (channels, count))
    kind = "max" if node.op_type == "GlobalMaxPool" else "sum"
    reduced = b.add(Reduce, node.name, [x], 1, kind=kind, steps=channels)
    y = flat(b, node.name, reduced, (channels, *[1] * (len(row.dims) - 1)))
    return [affine(b, node, y, 1.0 / count, 0.0) if kind == "sum" else y]


@handles("Pad", since=(13, 18, 19, 21, 23, 24, 25), terms=exact)
def pad(node: Node, b: Builder) -> list[Value]:
    """Zeros around the positions of a channels-first tensor, the batch and the channels unpadded (negative
    pads, a crop, are refused: onnx's reference evaluator, the float64 reference, does not take them)."""
    row = spatial(node)
    mode = node.attr("mode", "constant")
    if mode != "constant":
        raise Unsupported(f"mode {mode!r}: only constant (zero) padding is supported")
    value = node.optional(2, "the constant value")
    if value is not None and value.size and scalar(value, "the constant value") != 0.0:
        raise Unsupported("a constant value other than 0")
    rank = row.rank
    amounts = [int(p) for p in node.const(1, "pads").reshape(-1)]
    given = node.optional(3, "axes")
    axes = list(range(rank)) if given is None else [int(a) % rank for a in given.reshape(-1)]
    if len(amounts) != 2 * len(axes):
        raise Unsupported(f"pads {amounts} for axes {axes}")
    full = {a: (amounts[k], amounts[k + len(axes)]) for k, a in enumerate(axes)}
    if any(full.get(a, (0, 0)) != (0, 0) for a in (0, 1)):
        raise Unsupported(f"pads {amounts} pad the batch or the channels: only the positions are padded")
    pairs = tuple(full.get(a, (0, 0)) for a in range(2, rank))
    if min(amounts) < 0:
        raise Unsupported(f"pads {amounts}: negative pads (a crop) are not supported")
    x = channels_last(b, node.name, row)
    width = row.dims[0] * math.prod(n + a + z for n, (a, z) in zip(row.dims[1:], pairs, strict=True))
    return [channels_first(b, node.name, _add(b, Pad, node.name, x, width, in_shape=b.shape(x), pads=pairs))]
