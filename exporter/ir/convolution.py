"""The IR's shaped ops over a grid of positions: convolutions, pooling, zero padding and cropping, upsampling.

Each reads one channels-last tensor of one to three spatial axes, ``(T, C)``, ``(H, W, C)`` or ``(D, H, W, C)``
per row, and states the shape it takes (``in_shape``) and the shape it writes: ``out_shape`` refuses any other
input. The templates see every op as a ``Grid`` of two spatial axes or more (a 1-D op is one position high) and
loop over the output's positions themselves (steps 1). Padding is explicit, ``(before, after)`` per spatial axis,
so that Keras' ``same``/``valid``/``causal`` and Flax's padding forms are all stated the same way
(``same_padding``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from exporter.ir.activations import LINEAR, Activation
from exporter.ir.ops import Op, Shape, size

Pairs = tuple[tuple[int, int], ...]


def same_padding(length: int, window: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's (and Keras', and Flax's ``"SAME"``) padding of one axis: as many outputs as
    ``ceil(length / stride)``, the odd padded position after."""
    reach = (window - 1) * dilation + 1
    out = -(-length // stride)
    total = max((out - 1) * stride + reach - length, 0)
    return total // 2, total - total // 2


def _ints(values: object, n: int, what: str) -> tuple[int, ...]:
    out = tuple(int(v) for v in np.asarray(values, dtype=np.int64).reshape(-1))
    if len(out) != n:
        raise ValueError(f"{what} {out}: expected {n} values")
    return out


NAMES = "dhw"  # the C names of the spatial axes, the last ones for fewer axes: (h, w), (d, h, w)


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a ``Grid``: its C name (the templates print ``o<name>`` for an output position's
    index along it, ``i<name>`` for the input's), its input and output lengths, the window's extent, stride,
    dilation and the padding before (or the window's offset), and the divisors that read its index out of a
    flat position (``out_div``: the output positions of the axes after it) or out of the window's leading
    axes (``window_div``: their extents after it, leading axes only)."""

    name: str
    n: int
    out: int
    k: int = 1
    s: int = 1
    d: int = 1
    before: int = 0
    out_div: int = 1
    window_div: int = 1


@dataclass(frozen=True)
class Grid:
    """An op's geometry as the templates see it: two spatial axes or more (a 1-D op is one position high),
    the input channels ``c``. The templates loop over the flat output positions, and over a window as its
    leading axes merged into one loop (``lead_window`` positions) and its last axis."""

    axes: tuple[Axis, ...]
    c: int
    transposed: bool = False  # a transposed convolution: input i meets output i * s + k * d - before

    @classmethod
    def of(cls, shape: Shape, out: Shape, c: int, window: Shape = (), strides: Shape = (), dilation: Shape = (),
           before: Shape = ()) -> Grid:  # fmt: skip
        """The grid of ``shape`` -> ``out`` positions; a 1-D op gets a leading axis of one position."""
        n = max(len(shape), 2)

        def padded(values: Shape, fill: int) -> Shape:
            values = tuple(values) or (fill,) * len(shape)
            return (fill,) * (n - len(values)) + values

        shape, out, window = padded(shape, 1), padded(out, 1), padded(window, 1)
        strides, dilation, before = padded(strides, 1), padded(dilation, 1), padded(before, 0)
        axes = tuple(
            Axis(NAMES[len(NAMES) - n + t], shape[t], out[t], window[t], strides[t], dilation[t], before[t],
                 math.prod(out[t + 1 :]), math.prod(window[t + 1 : -1]))
            for t in range(n)
        )  # fmt: skip
        return cls(axes, c)

    @property
    def lead(self) -> tuple[Axis, ...]:
        """The axes before the last (one for a 2-D grid)."""
        return self.axes[:-1]

    @property
    def last(self) -> Axis:
        return self.axes[-1]

    @property
    def positions(self) -> int:
        """The output's positions."""
        return math.prod(a.out for a in self.axes)

    @property
    def lead_window(self) -> int:
        """The window's positions over the leading axes (the templates' loop ``i``)."""
        return math.prod(a.k for a in self.lead)

    @property
    def window(self) -> int:
        """The window's positions."""
        return math.prod(a.k for a in self.axes)


@dataclass(frozen=True)
class Span:
    """Along one axis of a ``Grid``, the output positions ``first`` to ``first + count - 1`` that copy an input
    position (``Pad``); ``div``: the copied positions of the axes after it, to read its index out of a flat one."""

    axis: Axis
    first: int
    count: int
    div: int


@dataclass
class Spatial(Op):
    """Base of the ops over the positions of a channels-last tensor of ``in_shape`` (one to three spatial axes).
    With ``steps`` > 1 the input is ``(steps, *in_shape)``, the op run on each of its slices apart (Keras'
    TimeDistributed); ``width`` is then one slice's output, as a row op's."""

    in_shape: Shape = ()

    def __post_init__(self) -> None:
        self.in_shape = tuple(int(n) for n in self.in_shape)
        if not 2 <= len(self.in_shape) <= len(NAMES) + 1 or min(self.in_shape) < 1:
            raise ValueError(f"input shape {self.in_shape}: expected 1 to {len(NAMES)} spatial axes and channels")

    @property
    def rank(self) -> int:
        """Its spatial axes: 1 to 3."""
        return len(self.in_shape) - 1

    def result(self) -> Shape:
        """The output's shape per row, from ``in_shape``."""
        raise NotImplementedError

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        lead = (self.steps,) if self.steps > 1 else ()
        return (*lead, *self.result()) if list(in_shapes) == [(*lead, *self.in_shape)] else None

    def out_width(self, in_widths: list[int]) -> int:
        return self.width if in_widths == [size(self.in_shape)] else -1

    def _check_width(self) -> None:
        out = self.result()
        if min(out) < 1 or size(out) != self.width:
            raise ValueError(f"{type(self).__name__} of {self.in_shape} gives {out}, not {self.width} values")


def windowed(lengths: Shape, window: Shape, strides: Shape, dilation: Shape, padding: Pairs) -> Shape:
    """The positions a sliding window takes along each spatial axis (< 1: it does not fit)."""
    return tuple(
        (n + a + b - (k - 1) * d - 1) // s + 1
        for n, k, s, d, (a, b) in zip(lengths, window, strides, dilation, padding, strict=True)
    )


@dataclass
class Windowed(Spatial):
    """An op sliding a window over the positions: ``window`` positions per spatial axis, ``strides``,
    ``dilation`` and ``padding`` ((before, after) per axis; padded positions are outside the input)."""

    window: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    padding: Pairs = ()

    crops: ClassVar[bool] = False  # negative padding allowed (a transposed convolution's extra positions)

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.rank
        self.window = _ints(self.window, n, "window")
        self.strides = _ints(self.strides or (1,) * n, n, "strides")
        self.dilation = _ints(self.dilation or (1,) * n, n, "dilation")
        self.padding = tuple((int(a), int(b)) for a, b in (self.padding or ((0, 0),) * n))
        if len(self.padding) != n or min(self.window + self.strides + self.dilation) < 1:
            raise ValueError(f"window {self.window}, strides {self.strides}, dilation {self.dilation}")
        if not self.crops and any(a < 0 or b < 0 for a, b in self.padding):
            raise ValueError(f"padding {self.padding}: must be >= 0")

    def positions(self) -> tuple[int, ...]:
        """The output's positions per spatial axis."""
        return windowed(self.in_shape[:-1], self.window, self.strides, self.dilation, self.padding)

    @property
    def grid(self) -> Grid:
        before = tuple(p[0] for p in self.padding)
        out = self.result()[:-1]
        return Grid.of(self.in_shape[:-1], out, self.in_shape[-1], self.window, self.strides, self.dilation, before)

    def _geometry(self) -> str:
        parts = [f"{'x'.join(map(str, self.window))}"]
        if any(s > 1 for s in self.strides):
            parts.append(f"strides {'x'.join(map(str, self.strides))}")
        if any(d > 1 for d in self.dilation):
            parts.append(f"dilation {'x'.join(map(str, self.dilation))}")
        if any(any(p) for p in self.padding):
            parts.append("padding " + " ".join(f"{a}+{b}" for a, b in self.padding))
        return ", ".join(parts)


@dataclass
class Conv(Windowed):
    """``y = act(conv(x, kernel) + bias)``, channels last; ``kernel`` in the Keras and Flax layout,
    ``(*window, in_channels / groups, filters)``: the filters of one position and input channel are
    contiguous, which the C's inner loop runs over (as a Dense's). ``groups`` split the input channels and the
    filters into that many consecutive blocks, block g of filters reading block g of channels (depthwise:
    one channel per group)."""

    kernel: np.ndarray = None  # type: ignore[assignment]
    bias: np.ndarray | None = None
    groups: int = 1
    activation: Activation = LINEAR

    template: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.kernel = np.ascontiguousarray(self.kernel, dtype=np.float32)
        channels = self.in_shape[-1]
        expected = (*self.window, channels // max(self.groups, 1), self.kernel.shape[-1])
        if self.groups < 1 or channels % self.groups or self.kernel.shape[-1] % self.groups:
            raise ValueError(f"{self.groups} groups of {channels} channels and {self.kernel.shape[-1]} filters")
        if self.kernel.shape != expected:
            raise ValueError(f"kernel of shape {self.kernel.shape}, expected {expected}")
        if self.bias is not None:
            self.bias = np.ascontiguousarray(self.bias, dtype=np.float32).reshape(-1)
            if self.bias.shape != (self.filters,):
                raise ValueError(f"bias of {self.bias.size} values for {self.filters} filters")
        self._check_width()

    @property
    def filters(self) -> int:
        return int(self.kernel.shape[-1])

    def result(self) -> Shape:
        return (*self.positions(), self.filters)

    def describe(self) -> str:
        groups = f", {self.groups} groups" if self.groups > 1 else ""
        bias = "" if self.bias is not None else ", no bias"
        shape, act = "x".join(map(str, self.in_shape)), self.activation.describe()
        return f"Conv{self.rank}D {shape}->{self.filters} {self._geometry()}{groups}, {act}{bias}"

    def flops(self, in_widths: list[int]) -> int:
        per_output = 2 * math.prod(self.window) * self.in_shape[-1] // self.groups
        return self.width * per_output + self.activation.flops(self.width)

    def helpers(self, math: str) -> tuple[str, ...]:
        return self.activation.helpers(math)

    def file_helpers(self) -> tuple[str, ...]:
        return ("barriers",)  # KEEP_SUMS in its loop over input channels, OPAQUE on its kernel

    def scratch_floats(self) -> int:
        return self.filters  # one position's sums, where the C loops over all filters at once

    @property
    def activations(self) -> tuple[Activation, ...]:
        return (self.activation,)

    def refusal(self) -> str | None:
        if self.activation.is_vector:
            return f"a {self.activation.kind} activation inside a convolution: apply it as a layer of its own"
        return super().refusal()


@dataclass
class Pool(Windowed):
    """The maximum, the average or the sum of each window, channel by channel. Padded positions are not values:
    a maximum ignores them; an average divides by the input positions its window covers (Keras' ``same``), or,
    with ``count_padding``, by the whole window; a sum adds zeros for them (JAX's ``reduce_window_sum``)."""

    kind: str = "max"
    count_padding: bool = False

    template: ClassVar[str] = "pool"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in ("max", "average", "sum"):
            raise ValueError(f"unknown pooling {self.kind!r}")
        self._check_width()

    def result(self) -> Shape:
        return (*self.positions(), self.in_shape[-1])

    def describe(self) -> str:
        divisor = ", padding counted" if self.count_padding and any(any(p) for p in self.padding) else ""
        shape = "x".join(map(str, self.in_shape))
        return f"{self.kind.capitalize()}Pool{self.rank}D {shape} {self._geometry()}{divisor}"

    def flops(self, in_widths: list[int]) -> int:
        return self.width * math.prod(self.window)

    def helpers(self, math: str) -> tuple[str, ...]:
        return ("max",) if self.kind == "max" else ()

    def scratch_floats(self) -> int:
        return self.in_shape[-1]  # one position's maxima or sums


@dataclass
class Pad(Spatial):
    """Zeros added around the positions, ``(before, after)`` per spatial axis; a negative amount crops that
    many positions instead (Keras' ZeroPadding and Cropping)."""

    pads: Pairs = ()

    template: ClassVar[str] = "pad"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.pads = tuple((int(a), int(b)) for a, b in self.pads)
        if len(self.pads) != self.rank:
            raise ValueError(f"pads {self.pads} for {self.rank} spatial axes")
        self._check_width()

    def result(self) -> Shape:
        return (*(n + a + b for n, (a, b) in zip(self.in_shape[:-1], self.pads, strict=True)), self.in_shape[-1])

    @property
    def grid(self) -> Grid:
        before = tuple(a for a, _ in self.pads)
        return Grid.of(self.in_shape[:-1], self.result()[:-1], self.in_shape[-1], before=before)

    @property
    def spans(self) -> tuple[Span, ...]:
        """The box of output positions that copy an input position, per grid axis. The template copies the box
        and zeros the rest, with no test per position: GCC 12 vectorized a per-position ``inside ? x : 0`` of
        two channels with its masks' lanes mismatched (padded rows read as garbage)."""
        spans = []
        for a in reversed(self.grid.axes):
            first = max(0, a.before)
            count = max(0, min(a.out, a.n + a.before) - first)
            spans.insert(0, Span(a, first, count, math.prod(s.count for s in spans)))
        return tuple(spans)

    @property
    def copied(self) -> int:
        """The output positions that copy an input position (the rest are zeros)."""
        return math.prod(s.count for s in self.spans)

    def describe(self) -> str:
        amounts = " ".join(f"{a:+d}{b:+d}" for a, b in self.pads)
        return f"Pad{self.rank}D {'x'.join(map(str, self.in_shape))} by {amounts}"

    def flops(self, in_widths: list[int]) -> int:
        return 0


@dataclass
class Upsample(Spatial):
    """Each position repeated ``factors`` times along each spatial axis (nearest-neighbour upsampling)."""

    factors: tuple[int, ...] = ()

    template: ClassVar[str] = "upsample"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.factors = _ints(self.factors, self.rank, "factors")
        if min(self.factors) < 1:
            raise ValueError(f"factors {self.factors}: must be >= 1")
        self._check_width()

    def result(self) -> Shape:
        return (*(n * f for n, f in zip(self.in_shape[:-1], self.factors, strict=True)), self.in_shape[-1])

    @property
    def grid(self) -> Grid:
        return Grid.of(self.in_shape[:-1], self.result()[:-1], self.in_shape[-1], window=self.factors)

    def describe(self) -> str:
        return f"Upsample{self.rank}D {'x'.join(map(str, self.in_shape))} by {'x'.join(map(str, self.factors))}"

    def flops(self, in_widths: list[int]) -> int:
        return 0
