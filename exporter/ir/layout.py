"""The IR's ops that only move floats: where each value's elements land in the output (joins, slices,
reshapes), with no arithmetic. Their shape rules are the whole of their meaning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from exporter.ir.ops import Op, Shape, size


@dataclass
class Concatenate(Op):
    """Inputs laid end to end along ``axis`` (counted from the last of a row's axes, -1), in order: in each of
    the ``steps`` slices the axes before it make, the inputs' blocks one after the other."""

    axis: int = -1

    template: ClassVar[str] = "concatenate"
    n_inputs: ClassVar[int | None] = None

    def describe(self) -> str:
        return f"Concatenate of {len(self.inputs)}" + ("" if self.axis == -1 else f" along axis {self.axis}")

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        first = in_shapes[0]
        if not -len(first) <= self.axis < 0:
            return None
        at = self.axis % len(first)
        if any(len(s) != len(first) or s[:at] != first[:at] or s[at + 1 :] != first[at + 1 :] for s in in_shapes):
            return None
        out = (*first[:at], sum(s[at] for s in in_shapes), *first[at + 1 :])
        return out if size(first[:at]) == self.steps and size(out[at:]) == self.width else None

    def out_width(self, in_widths: list[int]) -> int:
        return sum(in_widths)

    def flops(self, in_widths: list[int]) -> int:
        return 0


@dataclass
class Slice(Op):
    """Features ``start`` to ``start + width`` of the input row (``x[:, a:b]``: conditions split from noise)."""

    start: int = 0

    template: ClassVar[str] = "slice"

    def __post_init__(self) -> None:
        if self.start < 0 or self.width < 1:
            raise ValueError(f"slice of {self.width} features from {self.start}")

    def describe(self) -> str:
        return f"Slice {self.start}:{self.start + self.width}"

    def out_width(self, in_widths: list[int]) -> int:
        return self.width if self.start + self.width <= in_widths[0] else -1

    def flops(self, in_widths: list[int]) -> int:
        return 0


@dataclass
class Reshape(Op):
    """The same floats, row-major, under another shape (Flatten, Reshape): nothing to compute, a copy only
    when the output cannot take the input's buffer."""

    shape: Shape = ()

    template: ClassVar[str] = "reshape"
    in_place: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.shape = tuple(int(n) for n in self.shape)
        if size(self.shape) != self.width or min(self.shape, default=0) < 1:
            raise ValueError(f"shape {self.shape} does not hold {self.width} values")

    def describe(self) -> str:
        return f"Reshape to {self.shape}"

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        return self.shape if size(in_shapes[0]) == self.width else None

    def flops(self, in_widths: list[int]) -> int:
        return 0


@dataclass
class Transpose(Op):
    """The axes of a row's tensor reordered: output axis k is input axis ``perm[k]`` (Keras' Permute)."""

    in_shape: Shape = ()
    perm: tuple[int, ...] = ()

    template: ClassVar[str] = "transpose"

    def __post_init__(self) -> None:
        self.in_shape = tuple(int(n) for n in self.in_shape)
        self.perm = tuple(int(a) for a in self.perm)
        if sorted(self.perm) != list(range(len(self.in_shape))) or size(self.in_shape) != self.width:
            raise ValueError(f"permutation {self.perm} of a tensor of shape {self.in_shape}")

    def describe(self) -> str:
        return f"Transpose {'x'.join(map(str, self.in_shape))} by {self.perm}"

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        return tuple(self.in_shape[a] for a in self.perm) if list(in_shapes) == [self.in_shape] else None

    def in_strides(self) -> tuple[int, ...]:
        """For each output axis, the input's stride (in floats) along it: the C walks the output in order."""
        strides = [size(self.in_shape[a + 1 :]) for a in range(len(self.in_shape))]
        return tuple(strides[a] for a in self.perm)

    def flops(self, in_widths: list[int]) -> int:
        return 0


@dataclass
class Expand(Op):
    """A tensor repeated along axes (numpy's ``broadcast_to``: ``in_shape`` aligned with ``shape`` at the right,
    each of its axes of 1 repeated to the output's length, missing leading axes added): one operand of a
    broadcasting merge, RepeatVector. Walked like a ``Transpose``, the input's stride 0 along a repeated axis."""

    in_shape: Shape = ()
    shape: Shape = ()

    template: ClassVar[str] = "transpose"

    def __post_init__(self) -> None:
        self.in_shape = tuple(int(n) for n in self.in_shape)
        self.shape = tuple(int(n) for n in self.shape)
        lead = len(self.shape) - len(self.in_shape)
        fits = lead >= 0 and all(n in (1, m) for n, m in zip(self.in_shape, self.shape[lead:], strict=True))
        if not fits or size(self.shape) != self.width or min(self.shape, default=0) < 1:
            raise ValueError(f"shape {self.in_shape} cannot be broadcast to {self.shape}")

    def describe(self) -> str:
        return f"Expand {'x'.join(map(str, self.in_shape))} to {'x'.join(map(str, self.shape))}"

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        return self.shape if list(in_shapes) == [self.in_shape] else None

    def out_width(self, in_widths: list[int]) -> int:
        return self.width if in_widths == [size(self.in_shape)] else -1

    def in_strides(self) -> tuple[int, ...]:
        """For each output axis, the input's stride (in floats) along it: 0 where it is repeated."""
        lead = len(self.shape) - len(self.in_shape)
        padded = (1,) * lead + self.in_shape
        return tuple(size(padded[a + 1 :]) if padded[a] > 1 else 0 for a in range(len(padded)))

    def flops(self, in_widths: list[int]) -> int:
        return 0
