"""Products and selections of computed tensors: what attention is made of when a file writes it out.

PyTorch's exporters (and others) write a Transformer's attention as ordinary ops: a ``MatMul`` of the
queries by the transposed keys, a scale, a mask added (``-inf`` where ``Where`` picks it) or selected in, a
``Softmax`` over the keys, a ``MatMul`` of the weights by the values. Reading those ops one by one, not
matching one exporter's node sequence onto ``Attention``, reads any attention written so (causal, with a
padding mask, with a bias, heads split any way), at the cost of holding the scores as a tensor of their own.
``MatMul`` is the one genuinely shaped op that needs; ``Select`` is ``Where`` of a computed condition (a 0/1
mask input), ``Masked`` a constant mask (causal: ``-inf`` above the diagonal) added or filled in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from exporter.ir.ops import Op, Shape, size


@dataclass
class MatMul(Op):
    """``a @ b`` of two computed tensors, batched over their leading axes: ``a`` (*lead, M, K) by ``b``
    (*lead, K, N) gives (*lead, M, N). Each output is a sum over K in double, in order, rounded once."""

    lead: Shape = ()
    rows: int = 1  # M
    inner: int = 1  # K

    template: ClassVar[str] = "matmul"
    widens: ClassVar[bool] = True  # reads its inputs in double
    n_inputs: ClassVar[int | None] = 2

    def __post_init__(self) -> None:
        self.lead = tuple(int(n) for n in self.lead)
        if min(self.rows, self.inner, self.columns, *self.lead, 1) < 1 or self.width % (size(self.lead) * self.rows):
            raise ValueError(f"a product of {self.lead} x {self.rows} x {self.inner} into {self.width} floats")

    @property
    def count(self) -> int:
        """Products of the leading axes."""
        return size(self.lead)

    @property
    def columns(self) -> int:
        """N: the output's last axis."""
        return self.width // max(size(self.lead) * self.rows, 1)

    def describe(self) -> str:
        lead = "".join(f"{n}x" for n in self.lead)
        return f"MatMul {lead}({self.rows}x{self.inner}) @ {lead}({self.inner}x{self.columns})"

    def _expected(self) -> list[Shape]:
        return [(*self.lead, self.rows, self.inner), (*self.lead, self.inner, self.columns)]

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        ok = [tuple(s) for s in in_shapes] == self._expected()
        return (*self.lead, self.rows, self.columns) if ok else None

    def out_width(self, in_widths: list[int]) -> int:
        return self.width if in_widths == [math.prod(s) for s in self._expected()] else -1

    def flops(self, in_widths: list[int]) -> int:
        return 2 * self.width * self.inner


@dataclass
class Select(Op):
    """``Where``: ``on_true`` where the first input is nonzero (NaN counts, as C's and ONNX's casts to bool
    have it), else ``on_false``; a side given as None takes the second input's value. The constants may be
    infinite: a mask's ``-inf``."""

    on_true: float | None = 1.0
    on_false: float | None = 0.0

    template: ClassVar[str] = "select"
    in_place: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True
    n_inputs: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        sides = [v for v in (self.on_true, self.on_false) if v is None]
        if len(self.inputs) != 1 + len(sides) or any(v != v for v in (self.on_true, self.on_false) if v is not None):
            raise ValueError(f"a selection of {self.on_true}/{self.on_false} from {len(self.inputs)} inputs")

    def describe(self) -> str:
        def side(v: float | None) -> str:
            return "x" if v is None else repr(v)

        return f"Select c != 0 ? {side(self.on_true)} : {side(self.on_false)}"


@dataclass
class Masked(Op):
    """A constant attention mask on a computed tensor: ``x + mask`` (an additive mask of 0 and ``-inf``, or a
    bias), or with ``fill`` (1 where a ``Where`` of a constant condition picks the constant) ``mask`` there and
    ``x`` elsewhere. The mask may hold infinities (C's ``INFINITY``), never NaN."""

    mask: np.ndarray = None  # type: ignore[assignment]
    fill: np.ndarray | None = None

    template: ClassVar[str] = "masked"
    in_place: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.mask = np.asarray(self.mask, dtype=np.float32).reshape(-1)
        if self.fill is not None:
            self.fill = np.asarray(self.fill, dtype=np.float32).reshape(-1)
        if self.mask.shape != (self.width,) or (self.fill is not None and self.fill.shape != (self.width,)):
            raise ValueError(f"a mask of {self.mask.size} values on {self.width}")

    def describe(self) -> str:
        return f"Masked {self.width} ({'filled' if self.fill is not None else 'added'})"

    def refusal(self) -> str | None:
        return "its mask holds NaN" if np.isnan(self.mask).any() else None
