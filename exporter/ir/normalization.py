"""Normalizations by a statistic of groups of values (group, RMS, unit) and embedding look-ups.

``Normalize`` covers what ``LayerNorm`` (mean and variance of the whole row) does not: the statistic is one of
``KINDS``, taken over each of ``groups`` groups of channels. The normalized block (``width`` floats per step)
is a tensor whose last axis has ``channels`` entries; group ``g`` holds channels ``g * channels / groups`` up
to the next group's, at every position of the axes before the last (Keras' GroupNormalization over an image:
every pixel's channels of that group). With one group and ``channels == width`` it is a normalization over
the trailing axes (RMSNormalization, UnitNormalization), run over the leading ones with ``steps``. Computed
in double in two passes, rounded once per output.

``Embedding`` looks up a row of its table for each input value: the index is the value truncated toward
zero (Keras casts float inputs to int32), a negative index counts from the end (Keras' ``take`` on every
backend), and an index outside ``[-vocabulary, vocabulary)`` or NaN gives NaN in all the row's ``dim``
outputs (JAX's fill mode; TensorFlow raises instead).

``Encode`` counts indices (Keras' CategoryEncoding): the index is again the value truncated toward zero; one in
``[0, depth)`` sets (``multi_hot``) or adds one to (``count``) its output, any other (negative, ``depth`` or
more, NaN) adds nothing: TensorFlow's and JAX's rule for indices past the end, and JAX's for negative ones
(TensorFlow raises on those in multi_hot and count; its one_hot gives nothing, as here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from exporter.ir.ops import Op, Shape, _vector, size

# kind -> what the group's values are divided by (the ``inverse`` the template multiplies with)
KINDS = {
    "standardize": "sqrt(variance + epsilon), after subtracting the mean (GroupNormalization)",
    "variance": "sqrt(variance + epsilon), not centred (LayerNormalization(rms_scaling=True), as Keras computes it)",
    "rms": "sqrt(mean of squares + epsilon) (RMSNormalization)",
    "unit": "max(sqrt(sum of squares), epsilon) (UnitNormalization: the L2 norm)",
}


@dataclass
class Normalize(Op):
    """``y = (x [- mean]) * inverse * scale[c] + bias[c]`` with ``inverse`` from the statistic ``kind`` of x's
    group; ``scale`` and ``bias`` have one value per channel (``c``: the position along the last axis)."""

    kind: str = "standardize"
    channels: int = 1
    groups: int = 1
    scale: np.ndarray | None = None
    bias: np.ndarray | None = None
    epsilon: float = 1e-3

    template: ClassVar[str] = "normalize"
    in_place: ClassVar[bool] = True  # a group is read whole before any of its values is written
    widens: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown normalization kind {self.kind!r}")
        if self.channels < 1 or self.width % self.channels or self.groups < 1 or self.channels % self.groups:
            raise ValueError(f"{self.groups} groups of {self.channels} channels over {self.width} values")
        if self.scale is not None:
            self.scale = _vector("scale", self.scale, self.channels)
        if self.bias is not None:
            self.bias = _vector("bias", self.bias, self.channels)
        self.epsilon = float(self.epsilon)

    @property
    def centred(self) -> bool:
        """Whether the mean is taken (and subtracted: ``standardize``, or only for the variance)."""
        return self.kind in ("standardize", "variance")

    @property
    def per_group(self) -> int:
        """Channels in each group."""
        return self.channels // self.groups

    @property
    def positions(self) -> int:
        """Positions along the axes before the last, in one step: each holds every group's channels."""
        return self.width // self.channels

    def describe(self) -> str:
        groups = f", {self.groups} groups" if self.groups > 1 else ""
        return f"Normalize ({self.kind}) {self.width}{groups}, epsilon {self.epsilon:g}"

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        """The input's shape: its last ``size(shape[k:]) == width`` axes normalized in each of ``steps`` slices,
        the last of them ``channels`` long unless the groups are made of the whole block."""
        (shape,) = in_shapes
        for k in range(len(shape)):
            fits = (size(shape[:k]), size(shape[k:])) == (self.steps, self.width)
            if fits and (self.channels == self.width or shape[-1] == self.channels):
                return shape
        return None

    def flops(self, in_widths: list[int]) -> int:
        return (7 if self.centred else 5) * self.width

    def file_helpers(self) -> tuple[str, ...]:
        return ("barriers",)  # OPAQUE on its scale and bias, and on its input (``widens``)

    def refusal(self) -> str | None:
        if not (np.isfinite(self.epsilon) and self.epsilon >= 0) or (self.kind == "unit" and self.epsilon == 0):
            return f"epsilon {self.epsilon}: must be a finite number >= 0 (> 0 for a unit norm)"
        return super().refusal()


@dataclass
class Embedding(Op):
    """Each input value, an index, replaced by its row of ``table`` (vocabulary x dim): ``(..., L)`` in,
    ``(..., L, dim)`` out. See the module's docstring for the index rule."""

    table: np.ndarray = None  # type: ignore[assignment]

    template: ClassVar[str] = "embedding"
    widens: ClassVar[bool] = True  # reads its inputs in double

    def __post_init__(self) -> None:
        self.table = np.ascontiguousarray(self.table, dtype=np.float32)
        if self.table.ndim != 2 or min(self.table.shape) < 1 or self.width % self.table.shape[1]:
            raise ValueError(f"table of shape {self.table.shape} for {self.width} outputs")

    @property
    def vocabulary(self) -> int:
        return int(self.table.shape[0])

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    def describe(self) -> str:
        return f"Embedding {self.vocabulary}x{self.dim}"

    def out_width(self, in_widths: list[int]) -> int:
        return in_widths[0] * self.dim if len(in_widths) == 1 else -1

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        (shape,) = in_shapes
        return (*shape, self.dim) if self.steps == 1 and size(shape) * self.dim == self.width else None

    def flops(self, in_widths: list[int]) -> int:
        return self.width

    def index_range(self) -> tuple[int, int] | None:
        return -self.vocabulary, self.vocabulary


@dataclass
class Encode(Op):
    """Each step's input values, indices, counted into ``depth`` outputs (``count``), or marked 1 where any falls
    (``count`` false: multi_hot, and one_hot with one value per step). See the module's docstring for the rule."""

    depth: int = 1
    count: bool = False

    template: ClassVar[str] = "encode"
    widens: ClassVar[bool] = True  # reads its inputs in double

    def __post_init__(self) -> None:
        if self.depth < 1 or self.width != self.depth:
            raise ValueError(f"an encoding of depth {self.depth} into {self.width} outputs")

    def describe(self) -> str:
        return f"Encode ({'count' if self.count else 'hot'}) into {self.depth}"

    def out_width(self, in_widths: list[int]) -> int:
        return self.width if len(in_widths) == 1 else -1

    def flops(self, in_widths: list[int]) -> int:
        return self.width + in_widths[0]

    def index_range(self) -> tuple[int, int] | None:
        return 0, self.depth
