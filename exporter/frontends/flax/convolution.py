"""Traced JAX on tensors: convolutions (transposed ones too), windowed reductions (``nn.avg_pool``,
``nn.max_pool``), reductions over the positions (``jnp.mean(x, axis=0)``), zero padding (``jnp.pad``) and
``nn.Dense`` over a tensor's last axis, mapped to the ops of ``exporter.ir.convolution`` (and a Dense in steps).

A row is traced as one example: ``nn.Conv`` and the pools add a batch axis of 1 around their primitive, which is
checked and dropped; the value the jaxpr reshapes (``x.reshape(T, C)``) keeps its floats in order, so the
tensor's shape per row is the primitive operand's own (``aval``), given to the IR by a ``Reshape`` (a relabel)
where the walk's value has another (``recurrent.relabel`` keeps a flat row flat through reshapes).
Each mapping returns the IR value, or None when the primitive is not used on a tensor this way (the walk in
``jaxpr.py`` then tries its own branches).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.ir import Activate, Activation, Conv, ConvTranspose, Dense, Expand, Merge, Pad, Pool, Reshape, Slice
from exporter.ir.convolution import windowed
from exporter.ir.ops import Shape
from exporter.ir.transposed import transposed_positions


def _as(b: Builder, label: str, x: str, shape: Shape) -> str:
    """``x`` under ``shape`` (the same floats in order)."""
    return x if b.shape(x) == shape else b.add(Reshape, label, [x], b.widths[x], shape=shape)


def _example(eqn: Any) -> Shape:
    """The first operand's shape without its batch axis of 1 (one row is one example)."""
    shape = tuple(int(n) for n in eqn.invars[0].aval.shape)
    if len(shape) not in (3, 4, 5) or shape[0] != 1:
        raise Unsupported(f"an operand of shape {shape}: one example of one to three spatial axes and channels")
    return shape[1:]


def _add(b: Builder, cls: type, label: str, x: str, width: int, **fields: Any) -> str:
    try:
        return b.add(cls, label, [x], width, **fields)
    except ValueError as err:
        raise Unsupported(str(err)) from None


def _conv(b: Builder, label: str, eqn: Any, x: str, constants: list[Any]) -> str | None:
    p = eqn.params
    kernel = constants[1]
    if kernel is None:
        return None
    shape = _example(eqn)
    rank = len(shape) - 1
    numbers = p["dimension_numbers"]
    channels_last = (0, rank + 1, *range(1, rank + 1))
    if tuple(numbers.lhs_spec) != channels_last or tuple(numbers.out_spec) != channels_last:
        raise Unsupported(f"dimension numbers {numbers}: only channels-last inputs are supported")
    if tuple(numbers.rhs_spec) != (rank + 1, rank, *range(rank)):
        raise Unsupported(f"kernel dimension numbers {numbers.rhs_spec}: only (*window, in, out) is supported")
    if p["batch_group_count"] != 1:
        raise Unsupported("batch groups are not supported")
    padding = tuple((int(a), int(c)) for a, c in p["padding"])
    kernel = np.asarray(kernel, np.float64)
    window, strides, dilation = kernel.shape[:rank], tuple(p["window_strides"]), tuple(p["rhs_dilation"])
    x = _as(b, label, x, shape)
    groups = p["feature_group_count"]
    if any(d != 1 for d in p["lhs_dilation"]) or any(a < 0 or c < 0 for a, c in padding):
        return _transposed(b, label, x, shape, kernel, tuple(p["lhs_dilation"]), strides, dilation, padding, groups)
    width = math.prod(windowed(shape[:-1], window, strides, dilation, padding)) * kernel.shape[-1]
    fields = {"window": window, "strides": strides, "dilation": dilation, "padding": padding}
    return _add(b, Conv, label, x, width, in_shape=shape, kernel=kernel, groups=groups, **fields)


def _transposed(
    b: Builder, label: str, x: str, shape: Shape, kernel: np.ndarray, inflate: Shape, strides: Shape,
    dilation: Shape, padding: tuple[tuple[int, int], ...], groups: int,
) -> str:  # fmt: skip
    """A convolution of the input spread ``inflate`` apart (``lhs_dilation``: ``nn.ConvTranspose``, either
    ``transpose_kernel``), or padded by negative amounts (a crop): a ``ConvTranspose`` of the kernel flipped, its
    JAX padding counted from the dilated kernel's reach (padding ``reach - 1`` on both sides crops nothing)."""
    if any(s != 1 for s in strides):
        raise Unsupported(f"window strides {strides} with input dilation {inflate} or negative padding {padding}")
    rank = len(shape) - 1
    window = kernel.shape[:rank]
    flipped = kernel[(slice(None, None, -1),) * rank]
    reach = [(k - 1) * d for k, d in zip(window, dilation, strict=True)]
    crop = tuple((r - lo, r - hi) for r, (lo, hi) in zip(reach, padding, strict=True))
    positions = transposed_positions(shape[:-1], window, inflate, dilation, crop)
    if min(positions) < 1:
        raise Unsupported(f"padding {padding} leaves no output of the input {shape}")
    fields = {"window": window, "strides": inflate, "dilation": dilation, "padding": crop, "groups": groups}
    return _add(b, ConvTranspose, label, x, math.prod(positions) * kernel.shape[-1], in_shape=shape,
                kernel=flipped, **fields)  # fmt: skip


def _pool(kind: str) -> Callable[[Builder, str, Any, str, list[Any]], str | None]:
    def mapping(b: Builder, label: str, eqn: Any, x: str, constants: list[Any]) -> str | None:
        p = eqn.params
        shape = _example(eqn)
        window, strides, padding = p["window_dimensions"], p["window_strides"], p["padding"]
        outer = [window[0], window[-1], strides[0], strides[-1], *padding[0], *padding[-1]]
        if outer != [1, 1, 1, 1, 0, 0, 0, 0] or any(d != 1 for d in (*p["base_dilation"], *p["window_dilation"])):
            raise Unsupported("a window over the batch or the channels, or dilated: only over the positions")
        fields = {"window": window[1:-1], "strides": strides[1:-1], "padding": tuple(padding[1:-1]), "kind": kind}
        width = math.prod(windowed(shape[:-1], *(fields[k] for k in ("window", "strides")), (1,) * (len(shape) - 1),
                                   fields["padding"])) * shape[-1]  # fmt: skip
        return _add(b, Pool, label, _as(b, label, x, shape), width, in_shape=shape, **fields)

    return mapping


def _reduce(kind: str) -> Callable[[Builder, str, Any, str, list[Any]], str | None]:
    """A reduction of a tensor over all its axes but the channels (global pooling); None for a row's."""

    def mapping(b: Builder, label: str, eqn: Any, x: str, constants: list[Any]) -> str | None:
        shape = tuple(int(n) for n in eqn.invars[0].aval.shape)
        if len(shape) < 2:
            return None
        if len(shape) > 4 or tuple(eqn.params["axes"]) != tuple(range(len(shape) - 1)):
            raise Unsupported(f"a reduction over axes {eqn.params['axes']} of shape {shape}: only over the positions")
        y = _add(b, Pool, label, _as(b, label, x, shape), shape[-1], in_shape=shape, window=shape[:-1], kind=kind)
        return b.add(Reshape, label, [y], shape[-1], shape=(shape[-1],))

    return mapping


def _pad(b: Builder, label: str, eqn: Any, x: str, constants: list[Any]) -> str | None:
    """``jnp.pad`` with zeros around the positions (Flax's ``CAUSAL`` padding); negative amounts crop."""
    shape = tuple(int(n) for n in eqn.invars[0].aval.shape)
    config = [tuple(int(n) for n in c) for c in eqn.params["padding_config"]]
    lead = 0
    while len(shape) - lead > 2 and shape[lead] == 1 and config[lead] == (0, 0, 0):
        lead += 1
    shape, config = shape[lead:], config[lead:]
    value = constants[1]
    if value is None or np.any(np.asarray(value) != 0) or len(shape) not in (2, 3, 4):
        raise Unsupported("padding other than zeros, or of a tensor not of one to three spatial axes and channels")
    if config[-1] != (0, 0, 0) or any(c[2] for c in config):
        raise Unsupported(f"padding {config}: only around the positions, not the channels, without interior padding")
    pads = tuple((lo, hi) for lo, hi, _ in config[:-1])
    out = [n + lo + hi for n, (lo, hi) in zip(shape[:-1], pads, strict=True)]
    if min(out) < 1:
        raise Unsupported(f"padding {config} leaves nothing of shape {shape}")
    return _add(b, Pad, label, _as(b, label, x, shape), math.prod(out) * shape[-1], in_shape=shape, pads=pads)


def _dense(b: Builder, label: str, eqn: Any, x: str, constants: list[Any]) -> str | None:
    """``nn.Dense`` on a tensor: a matrix product over its last axis, a Dense run on each of the leading axes'
    slices; None for a row's (``jaxpr.py`` maps it)."""
    shape = tuple(int(n) for n in eqn.invars[0].aval.shape)
    (lhs, rhs), batch = eqn.params["dimension_numbers"]
    kernel = constants[1]
    if len(shape) < 2 or kernel is None or constants[0] is not None:
        return None
    kernel = np.asarray(kernel, np.float64)
    if any(batch) or tuple(lhs) != (len(shape) - 1,) or tuple(rhs) != (0,) or kernel.ndim != 2:
        raise Unsupported(f"matrix product with dimension numbers {eqn.params['dimension_numbers']}")
    x = _as(b, label, x, shape)
    return b.add(Dense, label, [x], kernel.shape[1], kernel=kernel, steps=math.prod(shape[:-1]))


def _broadcast(b: Builder, label: str, eqn: Any, x: str, constants: list[Any]) -> str | None:
    """Axes of 1 added around a tensor (the pools' batch axis): the same floats; None for anything else."""
    shape = tuple(int(n) for n in eqn.params["shape"])
    return x if len(shape) > 1 and math.prod(shape) == b.widths[x] else None


def broadcast_merge(b: Builder, label: str, eqn: Any, xs: list[str], kind: str) -> str:
    """A merge of two values of different shapes that broadcast (numpy's rule: JAX's binary primitives take axes
    of 1 against any length): each operand not of the result's shape ``Expand``-ed to it."""
    out = tuple(int(n) for n in eqn.outvars[0].aval.shape)
    ins = [tuple(int(n) for n in var.aval.shape) for var in eqn.invars]
    if len(ins) != len(xs) or any(len(shape) != len(out) for shape in ins):
        raise Unsupported(f"operands of shapes {ins}: a merge of network values of one rank")
    names = [
        _as(b, label, x, out)
        if shape == out
        else b.add(Expand, label, [_as(b, label, x, shape)], math.prod(out), in_shape=shape, shape=out)
        for x, shape in zip(xs, ins, strict=True)
    ]
    return b.add(Merge, label, names, math.prod(out), kind=kind)


def _slice(b: Builder, label: str, eqn: Any, x: str, constants: list[Any]) -> str:
    """``x[..., a:b, ...]`` cut along one axis (the others whole): a Slice of each of the axes before it."""
    shape = tuple(int(n) for n in eqn.invars[0].aval.shape)
    p = eqn.params
    cut = [
        i
        for i, (a, z, n) in enumerate(zip(p["start_indices"], p["limit_indices"], shape, strict=True))
        if (a, z) != (0, n)
    ]
    if len(cut) > 1 or any(s != 1 for s in p["strides"] or ()):
        raise Unsupported(f"a slice of shape {shape} along axes {cut} or with strides: one axis, every item")
    k = cut[0] if cut else 0
    steps, inner = math.prod(shape[:k]), math.prod(shape[k + 1 :])
    start, width = int(p["start_indices"][k]) * inner, (int(p["limit_indices"][k]) - int(p["start_indices"][k])) * inner
    y = b.add(Slice, label, [_as(b, label, x, (steps, shape[k] * inner))], width, start=start, steps=steps)
    return _as(b, label, y, tuple(int(n) for n in eqn.outvars[0].aval.shape))


def _convert(b: Builder, label: str, eqn: Any, x: str, constants: list[Any]) -> str:
    """``astype``: to an integer type as JAX converts (toward zero, NaN to 0, saturating at the type's bounds),
    between floats and from integers as it is; to bool (``x != 0``) refused."""
    to, source = np.dtype(eqn.params["new_dtype"]), np.dtype(eqn.invars[0].aval.dtype)
    if to == np.bool_ or (to.kind == "f" and to.itemsize < 4):
        raise Unsupported(f"a conversion to {to} is not supported")
    if to.kind not in "iu" or source.kind != "f":
        return x
    low, high = float(np.iinfo(to).min), float(np.iinfo(to).max)
    for act in (Activation("nan_to_num", {"nan": 0.0, "posinf": high, "neginf": low}),
                Activation("clip", {"low": low, "high": high}), Activation("trunc")):  # fmt: skip
        x = b.add(Activate, label, [x], b.widths[x], activation=act)
    return x


SHAPED: dict[str, Callable[[Builder, str, Any, str, list[Any]], str | None]] = {
    "conv_general_dilated": _conv,
    "reduce_window_max": _pool("max"),
    "reduce_window_sum": _pool("sum"),
    "reduce_max": _reduce("max"),
    "reduce_sum": _reduce("sum"),
    "broadcast_in_dim": _broadcast,
    "pad": _pad,
    "dot_general": _dense,
    "slice": _slice,
    "convert_element_type": _convert,
}


def on_tensor(b: Builder, label: str, eqn: Any, x: str, constants: list[Any]) -> str | None:
    """The IR value of primitive ``eqn`` on the network value ``x`` (``constants``: each operand's value where
    known, else None), or None when it is none of the uses above."""
    mapping = SHAPED.get(eqn.primitive.name)
    return mapping(b, label, eqn, x, constants) if mapping else None
