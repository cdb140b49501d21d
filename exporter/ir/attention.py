"""Scaled dot-product attention over sets and sequences: the IR's one genuinely shaped op for Transformers.

A multi-head attention layer is three Dense ops (the query, key and value projections, each a row op over
its items), this ``Attention`` op (per head: scores of every query against every key, a masked softmax
along the keys, the weighted sum of the values, the heads side by side) and a Dense (the output
projection). Only the middle step has no row op to reuse: it reads whole tensors, loops over their items
itself (``steps`` 1) and keeps one query's scores in the function's shared working memory
(``Op.scratch_floats``), never in a static or heap buffer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from exporter.ir.layout import Reshape, Slice
from exporter.ir.ops import Op, Shape

# What a query whose every key is masked gets: Keras' fused path (``dot_product_attention``) gives every key
# the same weight, the mean of the values; its explicit path (taken when the layer has dropout) gives zeros.
EMPTY_ROWS = ("uniform", "zero")


@dataclass
class Attention(Op):
    """``softmax(q k^T * scale, masked) v`` per head; inputs ``q`` (Q, heads * key_dim), ``k`` (K, heads * key_dim),
    ``v`` (K, heads * value_dim) and optionally ``mask``, (Q, K) or (K,) / (1, K) for every query, where key j is
    attended where the mask is nonzero (Keras casts it to bool); the output is (Q, heads * value_dim), the heads
    side by side as Keras' output projection reads them. ``causal``: query i also sees only keys j <= i.

    Scores are dot products summed in double in key order and rounded to the model's type (as Keras' float32
    logits are), the softmax and the weighted sum in double, rounded once per output: one row and a block of
    rows, and every instruction-set variant, give the same bits.
    """

    heads: int = 1
    key_dim: int = 1
    value_dim: int = 1
    keys: int = 1
    scale: float = 1.0
    causal: bool = False
    empty: str = "uniform"

    template: ClassVar[str] = "attention"
    widens: ClassVar[bool] = True  # reads its inputs in double
    n_inputs: ClassVar[int | None] = None  # q, k, v, then the mask when there is one

    def __post_init__(self) -> None:
        if min(self.heads, self.key_dim, self.value_dim, self.keys) < 1 or self.empty not in EMPTY_ROWS:
            raise ValueError(f"attention of {self.heads} heads, dims {self.key_dim}/{self.value_dim}, {self.empty}")
        if self.width % (self.heads * self.value_dim) or len(self.inputs) not in (3, 4):
            raise ValueError(f"attention output of {self.width} floats from {len(self.inputs)} inputs")
        self.scale = float(self.scale)

    @property
    def queries(self) -> int:
        return self.width // (self.heads * self.value_dim)

    @property
    def masked(self) -> bool:
        return len(self.inputs) == 4

    def describe(self) -> str:
        mask = ", masked" if self.masked else ""
        causal = ", causal" if self.causal else ""
        return (
            f"Attention {self.heads} heads x (key {self.key_dim}, value {self.value_dim}), "
            f"{self.queries} queries x {self.keys} keys{mask}{causal}"
        )

    def _expected(self) -> list[Shape]:
        hk, hv = self.heads * self.key_dim, self.heads * self.value_dim
        return [(self.queries, hk), (self.keys, hk), (self.keys, hv)]

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        if list(in_shapes[:3]) != self._expected():
            return None
        if self.masked and in_shapes[3] not in ((self.queries, self.keys), (1, self.keys), (self.keys,)):
            return None
        return (self.queries, self.heads * self.value_dim)

    def out_width(self, in_widths: list[int]) -> int:
        expected = [q * f for q, f in self._expected()]
        if in_widths[:3] != expected or (self.masked and in_widths[3] not in (self.queries * self.keys, self.keys)):
            return -1
        return self.width

    def scratch_floats(self) -> int:
        return self.keys  # one query's scores, then its weights, for one head at a time

    def helpers(self, math: str) -> tuple[str, ...]:
        return ("exp",) if math == "fast" else ()  # the softmax's inline exp (templates/ops/attention.c.j2)

    def flops(self, in_widths: list[int]) -> int:
        pairs = self.heads * self.queries * self.keys
        return pairs * (2 * self.key_dim + 2 * self.value_dim + 4)

    def refusal(self) -> str | None:
        if self.scale != self.scale or abs(self.scale) == float("inf"):
            return f"scale {self.scale}: must be a finite number"
        return super().refusal()


def mask_feeds(ops: Iterable[Op], values: Iterable[str]) -> set[str]:
    """Those of ``values`` read only as attention masks (through slices and reshapes): a model input the parity
    check must fill with 0/1 masks, not random numbers, to test what masking does."""
    ops = list(ops)

    def only_masks(value: str) -> bool:
        readers = [op for op in ops if value in op.inputs]
        return bool(readers) and all(
            only_masks(op.output)
            if isinstance(op, (Reshape, Slice))
            else isinstance(op, Attention) and op.masked and op.inputs.index(value) == 3
            for op in readers
        )

    return {v for v in values if only_masks(v)}
