"""``Contract``: every pair of two tensors' vectors summed in products (Keras' Dot, a batch matrix product).

The first input holds ``M`` vectors of ``depth`` values (any shape whose last axis is ``depth``), the second
``N``; output entry ``i * N + j`` is the sum over ``k`` of ``a[i][k] * b[j][k]``, in double, rounded once
(closer to the exact sum than float32 sums). The output takes the ``shape`` the frontend states for its
``M * N`` values (Keras: the first input's other axes, then the second's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from exporter.ir.ops import Op, Shape, size


@dataclass
class Contract(Op):
    """``y[i, j] = sum_k a[i, k] * b[j, k]`` over the last axis (``depth``) of both inputs."""

    depth: int = 1
    shape: Shape = ()

    template: ClassVar[str] = "contract"
    n_inputs: ClassVar[int | None] = 2

    def __post_init__(self) -> None:
        self.shape = tuple(int(n) for n in self.shape) or (self.width,)
        if self.depth < 1 or size(self.shape) != self.width or len(self.inputs) != 2:
            raise ValueError(f"a contraction over {self.depth} of shape {self.shape} from {len(self.inputs)} inputs")

    def describe(self) -> str:
        return f"Contract over {self.depth} to {'x'.join(map(str, self.shape))}"

    def vectors(self, in_widths: list[int]) -> tuple[int, int]:
        """``(M, N)``: the vectors of each input."""
        return in_widths[0] // self.depth, in_widths[1] // self.depth

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        if self.steps != 1 or any(s[-1] != self.depth for s in in_shapes):
            return None
        return self.shape if size(in_shapes[0]) * size(in_shapes[1]) == self.width * self.depth**2 else None

    def out_width(self, in_widths: list[int]) -> int:
        fits = len(in_widths) == 2 and not any(w % self.depth for w in in_widths)
        return self.width if fits and in_widths[0] * in_widths[1] == self.width * self.depth**2 else -1

    def flops(self, in_widths: list[int]) -> int:
        return 2 * self.width * self.depth
