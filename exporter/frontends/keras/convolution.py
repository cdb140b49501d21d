"""Keras' convolution family: convolutions (grouped, depthwise, separable, transposed), pooling, zero padding, cropping,
upsampling, Permute and TimeDistributed, mapped to the shaped ops of ``exporter.ir.convolution``.

Every layer here reads a channels-last tensor per row (``data_format="channels_first"`` is refused by name)
and states Keras' padding explicitly: ``same`` as TensorFlow pads (the odd position after), ``causal`` all
before. Configurations are read as attributes, so a live layer and a stored one map alike (``layers.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.activations import from_keras
from exporter.frontends.keras.layers import Mapping, Shape, _numpy, _one, activate, handles, layer_mapping
from exporter.ir import Conv, ConvTranspose, Dense, Op, Pad, Pool, Reshape, Transpose, Upsample
from exporter.ir.convolution import Pairs, same_padding, windowed
from exporter.ir.ops import size
from exporter.ir.resize import Resize
from exporter.ir.transposed import transposed_positions


def _tuple(value: Any, rank: int) -> tuple[int, ...]:
    """A Keras size argument (an int, or one per spatial axis) as one int per spatial axis."""
    values = [value] * rank if isinstance(value, int) else list(value)
    if len(values) != rank or any(type(v) is not int for v in values):
        raise Unsupported(f"{value!r}: expected {rank} whole numbers")
    return tuple(values)


# True while TimeDistributed maps its inner layer: a layer here then runs over the slices of its input's leading
# axis (one axis more than its own input takes); every other call takes its own rank only.
_SLICED: ContextVar[bool] = ContextVar("sliced", default=False)


def _spatial(layer: Any, b: Builder, inputs: list[str], rank: int) -> tuple[str, tuple[int, ...]]:
    """The one input, channels last, of ``rank`` spatial axes, and its shape per row (per slice: ``_steps``)."""
    x, _ = _one(b, inputs)
    data_format = getattr(layer, "data_format", None) or "channels_last"
    if data_format != "channels_last":
        raise Unsupported(f"data_format {data_format!r}: only channels_last is supported")
    shape = b.shape(x)[-(rank + 1) :]
    if len(b.shape(x)) - (rank + 1) not in ((0, 1) if _SLICED.get() else (0,)) or len(shape) != rank + 1:
        raise Unsupported(f"input of shape {b.shape(x)}: expected {rank} spatial axes and the channels")
    return x, shape


def _steps(b: Builder, x: str, shape: tuple[int, ...]) -> int:
    """The slices of ``x`` a layer of per-slice input ``shape`` runs over: 1, or the leading axis' length when
    TimeDistributed gives it ``x`` with one axis more (``_SLICED``)."""
    return b.widths[x] // size(shape)


def _padding(
    mode: str, shape: tuple[int, ...], window: tuple[int, ...], strides: tuple[int, ...], dilation: tuple[int, ...]
) -> Pairs:
    """Keras' padding mode as (before, after) per spatial axis."""
    mode = str(mode).lower()
    if mode == "valid":
        return tuple((0, 0) for _ in window)
    if mode == "same":
        return tuple(same_padding(*args) for args in zip(shape[:-1], window, strides, dilation, strict=True))
    if mode == "causal" and len(window) == 1:
        return (((window[0] - 1) * dilation[0], 0),)
    raise Unsupported(f"padding {mode!r}")


def _add(b: Builder, cls: type[Op], name: str, x: str, width: int, **fields: Any) -> str:
    """``b.add`` of a grid op of ``x`` (``width``: per slice, run over ``x``'s slices: ``_steps``), an impossible
    geometry (a window wider than the padded input) refused as the layer's problem."""
    try:
        return b.add(cls, name, [x], width, steps=_steps(b, x, fields["in_shape"]), **fields)
    except ValueError as err:
        raise Unsupported(str(err)) from None


def conv_value(
    b: Builder, name: str, x: str, kernel: np.ndarray, bias: np.ndarray | None, padding: Pairs, **fields: Any
) -> str:
    """A ``Conv`` of ``x`` (of ``rank`` spatial axes, or a slice of it), its output's size found from the geometry."""
    rank = kernel.ndim - 2
    shape = b.shape(x)[-(rank + 1) :]
    window = tuple(kernel.shape[:rank])
    strides, dilation = fields.get("strides", (1,) * rank), fields.get("dilation", (1,) * rank)
    positions = windowed(shape[:-1], window, strides, dilation, padding)
    if min(positions) < 1:
        raise Unsupported(f"a window of {window} (dilation {dilation}) does not fit the padded input {shape}")
    width = math.prod(positions) * kernel.shape[-1]
    fields.update(in_shape=shape, window=window, padding=padding, kernel=kernel, bias=bias)
    return _add(b, Conv, name, x, width, **fields)


def _kernel_shapes(config: dict[str, Any], width: int | None, names: tuple[str, ...]) -> dict[str, Shape]:
    """The kernels' shapes as the configuration declares them (the input channels are the input's)."""
    window = config.get("kernel_size")
    window = [window] if isinstance(window, int) else list(window or [])
    filters, multiplier = config.get("filters"), config.get("depth_multiplier")
    shapes: dict[str, Shape] = {
        "kernel": (*window, None, filters or multiplier),
        "depthwise_kernel": (*window, None, multiplier),
        "pointwise_kernel": (*[1] * len(window), None, filters),
        "bias": (filters,),
    }
    return {name: shapes[name] for name in names}


def _convolution(rank: int, depthwise: bool) -> Mapping:
    def mapping(layer: Any, b: Builder, inputs: list[str]) -> str:
        x, shape = _spatial(layer, b, inputs, rank)
        if getattr(layer, "lora_rank", None):
            raise Unsupported("LoRA kernels are not supported")
        kernel = _numpy(layer.kernel)
        groups = int(getattr(layer, "groups", 1) or 1)
        if depthwise:  # (*window, channels, multiplier): one group per input channel
            groups = shape[-1]
            kernel = kernel.reshape((*kernel.shape[:rank], 1, -1))
        strides, dilation = _tuple(layer.strides, rank), _tuple(layer.dilation_rate, rank)
        padding = _padding(layer.padding, shape, tuple(kernel.shape[:rank]), strides, dilation)
        bias = _numpy(layer.bias) if layer.use_bias else None
        act = from_keras(layer.activation)
        linear = act.is_vector  # softmax over the filters: a row op after the convolution
        y = conv_value(
            b, layer.name, x, kernel, bias, padding, strides=strides, dilation=dilation, groups=groups,
            **({} if linear else {"activation": act}),
        )  # fmt: skip
        return activate(b, layer.name, y, act) if linear else y

    return mapping


for _rank in (1, 2, 3):
    for _prefix, _depthwise in (("", False), ("Depthwise", True)):
        if _rank < 3 or not _depthwise:  # Keras has no DepthwiseConv3D
            _variables = ("kernel", ("bias", "use_bias"))
            _mapping = _convolution(_rank, _depthwise)
            handles(f"{_prefix}Conv{_rank}D", variables=_variables, shapes=_kernel_shapes)(_mapping)


def _transposed_shapes(config: dict[str, Any], width: int | None, names: tuple[str, ...]) -> dict[str, Shape]:
    """A transposed convolution's kernel, ``(*window, filters, in_channels)``, and bias as declared."""
    window = config.get("kernel_size")
    window = [window] if isinstance(window, int) else list(window or [])
    shapes: dict[str, Shape] = {"kernel": (*window, config.get("filters"), None), "bias": (config.get("filters"),)}
    return {name: shapes[name] for name in names}


def transposed_crop(window: int, stride: int, dilation: int, padding: str, extra: int | None) -> tuple[int, int]:
    """Keras' ``valid``/``same`` and ``output_padding`` (``extra``) of one axis as the positions cropped from each end
    of the unpadded output (negative: added), as Keras' JAX backend pads it (its other backends give the same)."""
    reach = (window - 1) * dilation + 1
    if padding == "valid":
        return 0, -(max(reach, stride) - reach if extra is None else extra)
    if padding != "same":
        raise Unsupported(f"padding {padding!r}")
    total = stride + reach - 2 if extra is None else reach + reach % 2 - 2 + extra
    left = min(total // 2 + total % 2, reach - 1)
    return reach - 1 - left, reach - 1 - (total - left)


def _transposed(rank: int) -> Mapping:
    def mapping(layer: Any, b: Builder, inputs: list[str]) -> str:
        x, shape = _spatial(layer, b, inputs, rank)
        kernel = _numpy(layer.kernel)  # (*window, filters, channels) -> the IR's (*window, channels, filters)
        kernel = np.swapaxes(kernel, -1, -2)
        window = tuple(kernel.shape[:rank])
        strides, dilation = _tuple(layer.strides, rank), _tuple(layer.dilation_rate, rank)
        given = getattr(layer, "output_padding", None)
        extra = (None,) * rank if given is None else _tuple(given, rank)
        mode = str(layer.padding).lower()
        padding = tuple(transposed_crop(*a, mode, e) for *a, e in zip(window, strides, dilation, extra, strict=True))
        positions = transposed_positions(shape[:-1], window, strides, dilation, padding)
        if min(positions) < 1:
            raise Unsupported(f"output_padding {given!r} and padding {mode!r} leave no output of the input {shape}")
        bias = _numpy(layer.bias) if layer.use_bias else None
        act = from_keras(layer.activation)
        linear = act.is_vector
        fields = {"strides": strides, "dilation": dilation, **({} if linear else {"activation": act})}
        y = _add(
            b, ConvTranspose, layer.name, x, math.prod(positions) * kernel.shape[-1], in_shape=shape, window=window,
            padding=padding, kernel=kernel, bias=bias, **fields,
        )  # fmt: skip
        return activate(b, layer.name, y, act) if linear else y

    return mapping


for _rank in (1, 2):
    _variables = ("kernel", ("bias", "use_bias"))
    handles(f"Conv{_rank}DTranspose", variables=_variables, shapes=_transposed_shapes)(_transposed(_rank))


def _separable(rank: int) -> Mapping:
    """A depthwise convolution, then a Dense over the channels of every position (the 1x1 pointwise kernel)."""

    def mapping(layer: Any, b: Builder, inputs: list[str]) -> str:
        x, shape = _spatial(layer, b, inputs, rank)
        depthwise = _numpy(layer.depthwise_kernel)
        kernel = depthwise.reshape((*depthwise.shape[:rank], 1, -1))
        strides, dilation = _tuple(layer.strides, rank), _tuple(layer.dilation_rate, rank)
        padding = _padding(layer.padding, shape, tuple(kernel.shape[:rank]), strides, dilation)
        h = conv_value(
            b, f"{layer.name}/depthwise", x, kernel, None, padding, strides=strides, dilation=dilation,
            groups=shape[-1],
        )  # fmt: skip
        pointwise = _numpy(layer.pointwise_kernel).reshape(kernel.shape[-1], -1)
        bias = _numpy(layer.bias) if layer.use_bias else None
        act = from_keras(layer.activation)
        steps = math.prod(b.shape(h)[:-1])
        y = b.add(Dense, layer.name, [h], pointwise.shape[1], kernel=pointwise, bias=bias, steps=steps)
        return activate(b, layer.name, y, act)

    return mapping


for _rank in (1, 2):
    handles(
        f"SeparableConv{_rank}D",
        variables=("depthwise_kernel", "pointwise_kernel", ("bias", "use_bias")),
        shapes=_kernel_shapes,
    )(_separable(_rank))


def _pooling(rank: int, kind: str) -> Mapping:
    def mapping(layer: Any, b: Builder, inputs: list[str]) -> str:
        x, shape = _spatial(layer, b, inputs, rank)
        window = _tuple(layer.pool_size, rank)
        strides = window if layer.strides is None else _tuple(layer.strides, rank)
        padding = _padding(layer.padding, shape, window, strides, (1,) * rank)
        positions = windowed(shape[:-1], window, strides, (1,) * rank, padding)
        if min(positions) < 1:
            raise Unsupported(f"a window of {window} does not fit the input {shape}")
        width = math.prod(positions) * shape[-1]
        fields = {"in_shape": shape, "window": window, "strides": strides, "padding": padding, "kind": kind}
        return _add(b, Pool, layer.name, x, width, **fields)

    return mapping


def _global_pooling(rank: int, kind: str) -> Mapping:
    """One window over every position; without ``keepdims`` the channels as a row."""

    def mapping(layer: Any, b: Builder, inputs: list[str]) -> str:
        x, shape = _spatial(layer, b, inputs, rank)
        channels = shape[-1]
        y = _add(b, Pool, layer.name, x, channels, in_shape=shape, window=shape[:-1], kind=kind)
        flat = (*b.shape(y)[: -1 - rank], channels)  # the channels of each slice
        return y if getattr(layer, "keepdims", False) else b.add(Reshape, layer.name, [y], size(flat), shape=flat)

    return mapping


for _rank in (1, 2, 3):
    for _kind, _class in (("max", "Max"), ("average", "Average")):
        handles(f"{_class}Pooling{_rank}D")(_pooling(_rank, _kind))
        handles(f"Global{_class}Pooling{_rank}D")(_global_pooling(_rank, _kind))


def _pairs(value: Any, rank: int) -> Pairs:
    """Keras' padding or cropping amounts (an int, one per axis, or (before, after) per axis) as pairs."""
    if isinstance(value, int):
        return ((value, value),) * rank
    items = list(value)
    if rank == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
        return ((items[0], items[1]),)
    if len(items) == rank and all(isinstance(v, int) for v in items):
        return tuple((v, v) for v in items)
    if len(items) == rank and all(len(list(v)) == 2 for v in items):
        return tuple((int(a), int(c)) for a, c in items)
    raise Unsupported(f"amounts {value!r}")


def _padding_layer(rank: int, attribute: str, sign: int) -> Mapping:
    def mapping(layer: Any, b: Builder, inputs: list[str]) -> str:
        x, shape = _spatial(layer, b, inputs, rank)
        pads = tuple((sign * a, sign * c) for a, c in _pairs(getattr(layer, attribute), rank))
        out = [n + a + c for n, (a, c) in zip(shape[:-1], pads, strict=True)]
        if min(out) < 1:
            raise Unsupported(f"{attribute} {getattr(layer, attribute)!r} leaves nothing of the input {shape}")
        return _add(b, Pad, layer.name, x, math.prod(out) * shape[-1], in_shape=shape, pads=pads)

    return mapping


for _rank in (1, 2, 3):
    handles(f"ZeroPadding{_rank}D")(_padding_layer(_rank, "padding", 1))
    handles(f"Cropping{_rank}D")(_padding_layer(_rank, "cropping", -1))


@handles("CenterCrop")
def center_crop(layer: Any, b: Builder, inputs: list[str]) -> str:
    """The middle ``height`` x ``width`` of an image (Keras' start: half the difference, rounded down): a ``Pad``
    of negative amounts. A target larger than the image is resized by Keras, which is refused."""
    x, shape = _spatial(layer, b, inputs, 2)
    target = (int(layer.height), int(layer.width))
    if any(t > n or t < 1 for t, n in zip(target, shape, strict=False)):
        raise Unsupported(f"target {target} outside the image {shape[:2]}: Keras resizes it, which is not supported")
    pads = tuple((-((n - t) // 2), -((n - t) - (n - t) // 2)) for t, n in zip(target, shape, strict=False))
    return _add(b, Pad, layer.name, x, math.prod(target) * shape[-1], in_shape=shape, pads=pads)


def _upsampling(rank: int) -> Mapping:
    def mapping(layer: Any, b: Builder, inputs: list[str]) -> str:
        x, shape = _spatial(layer, b, inputs, rank)
        factors = _tuple(layer.size, rank)
        interpolation = str(getattr(layer, "interpolation", "nearest"))
        if interpolation == "bilinear" and rank == 2:  # Keras resizes the image to the multiplied size
            out = (shape[0] * factors[0], shape[1] * factors[1])
            return _add(b, Resize, layer.name, x, size(shape) * math.prod(factors), in_shape=shape, size=out)
        if interpolation != "nearest":
            raise Unsupported(f"interpolation {layer.interpolation!r}: only nearest (and bilinear in 2-D) is supported")
        return _add(b, Upsample, layer.name, x, size(shape) * math.prod(factors), in_shape=shape, factors=factors)

    return mapping


for _rank in (1, 2, 3):
    handles(f"UpSampling{_rank}D")(_upsampling(_rank))


@handles("Permute")
def permute(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, width = _one(b, inputs)
    shape = b.shape(x)
    perm = tuple(int(d) - 1 for d in layer.dims)
    if sorted(perm) != list(range(len(shape))):
        raise Unsupported(f"dims {tuple(layer.dims)} is no permutation of the {len(shape)} axes of a row")
    if perm == tuple(range(len(shape))):
        return x
    return _add(b, Transpose, layer.name, x, width, in_shape=shape, perm=perm)


@handles("TimeDistributed")
def time_distributed(layer: Any, b: Builder, inputs: list[str]) -> str:
    """The inner layer's own mapping on the whole tensor: exact for a layer acting on each step apart (a row
    op over the last axis, an elementwise map, a layer of this family run over the slices: ``_SLICED``), which
    the output's shape confirms; anything else is refused."""
    x, _ = _one(b, inputs)
    inner = getattr(layer, "layer", None)
    if inner is None or isinstance(inner, dict):  # a stored configuration: Keras builds the inner layer
        raise Unsupported("the inner layer is read from the built model only")
    cls = type(inner).__name__
    builtin = type(inner).__module__.startswith("keras.")
    mapping: Callable[[Any, Builder, list[str]], str] | None = layer_mapping(cls, builtin)
    if mapping is None:
        raise Unsupported(f"of {cls}: this layer type is not supported")
    shape = b.shape(x)
    expected = (shape[0], *(int(n) for n in inner.compute_output_shape((1, *shape[1:]))[1:]))
    sliced = _SLICED.set(True)
    try:
        y = mapping(inner, b, [x])
    except Unsupported as err:
        raise Unsupported(f"of {cls}: {err}") from None
    finally:
        _SLICED.reset(sliced)
    if b.shape(y) != expected or size(expected) != b.widths[y]:
        raise Unsupported(f"of {cls}: its translation does not act on each of the {shape[0]} steps apart")
    return y
