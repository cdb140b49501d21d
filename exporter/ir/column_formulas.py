"""Column ops for the user's own transformers: ``Mix`` (Lamarr's decorrelation, any ``(x - c) @ M``)
and ``Expression`` (a FunctionTransformer's formula). Like every column op they compute in double;
see ``exporter/ir/columns.py`` for the others and how a chain of them runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from exporter.common.errors import NotInvertible
from exporter.ir.columns import ColumnOp, _doubles
from exporter.ir.expression import Expr, X


@dataclass
class Expression(ColumnOp):
    """A formula of each value ``x`` (``exporter.ir.expression``): a FunctionTransformer with the user's
    functions, from scikinC's ``inC`` C expressions or traced; ``backward`` None: no inverse."""

    forward: Expr = X
    backward: Expr | None = None
    label: str = ""  # the Python function's name, for the C comments
    template: ClassVar[str] = "expression"

    def inverse(self) -> list[ColumnOp]:
        if self.backward is None:
            raise NotInvertible.function_transformer(self.name, self.label)
        inverse = f"inverse {self.label}"
        return [Expression(f"{self.name} (inverse)", self.columns, self.backward, self.forward, inverse)]

    def flops(self) -> int:
        return 20 * len(self.columns)  # a few operations and about one libm call per value

    def domain(self, c: int, normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Where the formula is defined: the inverse's values (logit's inputs are sigmoid's outputs)."""
        if self.backward is None:
            return super().domain(c, normal, rng)
        return self.backward.evaluate(2.0 * normal), self.backward.evaluate(np.array([-8.0, 0.0, 8.0]))

    def describe(self) -> str:
        return f"{self.label or 'expression'}: y = {self.forward.c()}"


@dataclass
class Mix(ColumnOp):
    """``y = (x - center) @ matrix + offset`` on the block ``columns``: a decorrelation, a rotation.

    Each output is ``sum_j (x[j] - center[j]) * matrix[j][i]``, one fused multiply-add per term in
    ``j`` order, then ``+ offset[i]``: what numpy's BLAS computes for ``(x - center).dot(matrix) +
    offset`` on many rows, bit for bit (measured with OpenBLAS; C's ``fma`` is exact everywhere).
    ``inverse_matrix`` is the inverse as the transformer computes it
    (Lamarr's DecorrTransformer: ``eig.T``); without it the inverse is ``numpy.linalg.inv(matrix)``,
    refused when the matrix is singular or too ill-conditioned to invert in double.
    """

    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    center: np.ndarray | float = 0.0  # a number: the same for every column
    offset: np.ndarray | float = 0.0
    inverse_matrix: np.ndarray | None = None
    template: ClassVar[str] = "mix"

    MAX_CONDITION: ClassVar[float] = 1e12  # beyond this, an inverse computed in double loses most digits

    def __post_init__(self) -> None:
        k = len(self.columns)
        self.matrix = _square(self.matrix, k, "matrix")
        self.center = _doubles(self.center, k, "center")
        self.offset = _doubles(self.offset, k, "offset")
        if self.inverse_matrix is not None:
            self.inverse_matrix = _square(self.inverse_matrix, k, "inverse matrix")

    @property
    def centered(self) -> bool:
        """Whether the C subtracts ``center`` (not when it is all zeros: x - 0.0 is x)."""
        return bool(np.any(self.center != 0.0))

    @property
    def shifted(self) -> bool:
        """Whether the C adds ``offset`` (not when it is all zeros)."""
        return bool(np.any(self.offset != 0.0))

    @property
    def n_params(self) -> int:
        """The matrix, and the centre and offset where the C uses them (the stored inverse is not used)."""
        return self.matrix.size + len(self.columns) * (self.centered + self.shifted)

    def flops(self) -> int:
        return 2 * self.matrix.size + len(self.columns) * (self.centered + self.shifted)

    def domain(self, c: int, normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.center[c] + 3.0 * normal, self.center[c] + np.array([0.0])

    def inverse(self) -> list[ColumnOp]:
        undo = self.inverse_matrix
        if undo is None:
            condition = np.linalg.cond(self.matrix) if self.matrix.size else 1.0
            if not condition < self.MAX_CONDITION:
                raise NotInvertible(f"{self.name}: its matrix is singular (condition number {condition:.3g})")
            undo = np.linalg.inv(self.matrix)
        return [Mix(f"{self.name} (inverse)", self.columns, undo, self.offset, self.center, self.matrix)]

    def describe(self) -> str:
        return f"mix {len(self.columns)} columns {list(self.columns)} (x - c) @ M"


def _square(values: object, k: int, what: str) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.shape != (k, k):
        raise ValueError(f"{what} has shape {array.shape}, expected ({k}, {k})")
    return array
