"""Column ops: the preprocessing and target transforms, computed in double precision.

A whole chain of transformers (Pipelines, ColumnTransformers, log columns) is a row of
doubles that ops rewrite in place: ``Select`` lays the columns out (reorders, drops,
duplicates), ``Mix`` replaces a block of columns by linear combinations of them (a
decorrelation), every other op maps some of the columns one by one and leaves the rest alone. Each op knows its
inverse, written exactly as scikit-learn computes it, so the C can match it to
the last bits.

Adding a column op: a dataclass here with ``template`` and ``inverse()``, a template
``templates/columns/<template>.c.j2`` with the macros ``decls`` and ``body``, a mapping
in ``exporter/frontends/sklearn/transformers.py`` and a parity test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from exporter.errors import ExportError
from exporter.ir.expression import Expr, X

EPS = float(np.finfo(np.float64).eps)  # np.spacing(1.0), the threshold sklearn and scipy use
FUNCTIONS = ("log", "log1p", "log10", "exp", "expm1", "sqrt", "square", "arctanh", "tanh")


class NotInvertible(ExportError):
    """A step without an inverse was asked for one."""


def _doubles(values: object, n: int, what: str) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    if array.size == 1 and n != 1:
        array = np.full(n, array[0])
    if array.size != n:
        raise ValueError(f"{what} has {array.size} values for {n} columns")
    return array


@dataclass
class ColumnOp:
    """Base: maps ``columns`` of the row (indices), leaving the others unchanged; ``name`` is the step path."""

    name: str
    columns: tuple[int, ...]

    template: ClassVar[str] = ""

    def out_width(self, width: int) -> int:
        return width

    def inverse(self) -> list[ColumnOp]:
        """The ops undoing this one, as scikit-learn's ``inverse_transform`` computes it (maybe none)."""
        raise NotInvertible(f"{self.name}: {type(self).__name__} has no inverse")

    def describe(self) -> str:
        return f"{type(self).__name__} on columns {list(self.columns)}"


@dataclass
class Select(ColumnOp):
    """``out[j] = in[columns[j]]``: the layout a ColumnTransformer produces (its column order, drops)."""

    n_in: int = 0
    template: ClassVar[str] = "select"

    def out_width(self, width: int) -> int:
        return len(self.columns)

    def inverse(self) -> list[ColumnOp]:
        if sorted(self.columns) != list(range(self.n_in)):
            raise NotInvertible(f"{self.name}: columns {list(self.columns)} drop or repeat inputs")
        return [Select(f"{self.name} (inverse)", tuple(int(i) for i in np.argsort(self.columns)), len(self.columns))]

    def describe(self) -> str:
        return f"Select {self.n_in} -> {len(self.columns)} columns {list(self.columns)}"


@dataclass
class Standardize(ColumnOp):
    """``(x - center) / scale``: StandardScaler, RobustScaler, MaxAbsScaler (center 0), MinMax inverse."""

    center: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    template: ClassVar[str] = "standardize"

    def __post_init__(self) -> None:
        self.center = _doubles(self.center, len(self.columns), "center")
        self.scale = _doubles(self.scale, len(self.columns), "scale")

    def inverse(self) -> list[ColumnOp]:
        return [MulAdd(f"{self.name} (inverse)", self.columns, self.scale, self.center)]


@dataclass
class MulAdd(ColumnOp):
    """``x * mul + add``, then clipped to [lo, hi] if ``clip``: MinMaxScaler, scaler inverses."""

    mul: np.ndarray = field(default_factory=lambda: np.ones(0))
    add: np.ndarray = field(default_factory=lambda: np.zeros(0))
    clip: tuple[float, float] | None = None
    template: ClassVar[str] = "muladd"

    def __post_init__(self) -> None:
        self.mul = _doubles(self.mul, len(self.columns), "mul")
        self.add = _doubles(self.add, len(self.columns), "add")

    def inverse(self) -> list[ColumnOp]:
        # sklearn's MinMaxScaler.inverse_transform: (x - min_) / scale_, no clipping
        return [Standardize(f"{self.name} (inverse)", self.columns, self.add, self.mul)]


@dataclass
class Function(ColumnOp):
    """An elementwise numpy function (FunctionTransformer, log columns); ``inverse_kind`` as sklearn's."""

    kind: str = "log"
    inverse_kind: str | None = None  # None: identity, as FunctionTransformer without inverse_func
    template: ClassVar[str] = "function"

    def __post_init__(self) -> None:
        for kind in (self.kind, self.inverse_kind):
            if kind is not None and kind not in FUNCTIONS:
                raise ValueError(f"unknown function {kind!r}")

    def inverse(self) -> list[ColumnOp]:
        if self.inverse_kind is None:
            return []
        return [Function(f"{self.name} (inverse)", self.columns, self.inverse_kind, self.kind)]

    def describe(self) -> str:
        return f"{self.kind} on columns {list(self.columns)}"


@dataclass
class Expression(ColumnOp):
    """A formula of each value ``x`` (``exporter.ir.expression``): a FunctionTransformer with the user's
    functions, from scikinC's ``inC`` C expressions or traced; ``backward`` None is the identity."""

    forward: Expr = X
    backward: Expr | None = None
    label: str = ""  # the Python function's name, for the C comments
    template: ClassVar[str] = "expression"

    def inverse(self) -> list[ColumnOp]:
        if self.backward is None:
            return []
        inverse = f"inverse {self.label}"
        return [Expression(f"{self.name} (inverse)", self.columns, self.backward, self.forward, inverse)]

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


@dataclass
class Quantile(ColumnOp):
    """QuantileTransformer, forward or inverse, to a uniform or normal distribution, as sklearn does it.

    ``quantiles`` is (n_quantiles, n_columns); ``references`` the n_quantiles levels in [0, 1].
    """

    quantiles: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    references: np.ndarray = field(default_factory=lambda: np.zeros(0))
    normal: bool = False
    inverse_direction: bool = False
    template: ClassVar[str] = "quantile"

    BOUNDS_THRESHOLD: ClassVar[float] = 1e-7

    def __post_init__(self) -> None:
        self.quantiles = np.ascontiguousarray(self.quantiles, dtype=np.float64)
        self.references = np.ascontiguousarray(self.references, dtype=np.float64).reshape(-1)
        if self.quantiles.shape != (self.references.size, len(self.columns)):
            raise ValueError(f"quantiles {self.quantiles.shape} do not match {len(self.columns)} columns")

    @property
    def clip(self) -> tuple[float, float]:
        """sklearn's clip of the normal output: ppf(1e-7 - eps) and ppf(1 - (1e-7 - eps))."""
        from statistics import NormalDist

        low = self.BOUNDS_THRESHOLD - np.spacing(1)
        return NormalDist().inv_cdf(low), NormalDist().inv_cdf(1 - low)

    @property
    def backward(self) -> tuple[np.ndarray, np.ndarray]:
        """-quantiles and -references, reversed: sklearn's second interpolation, which averaged with
        the first gives the middle of a plateau of repeated quantiles."""
        return -self.quantiles[::-1], -self.references[::-1]

    def inverse(self) -> list[ColumnOp]:
        return [
            Quantile(
                f"{self.name} (inverse)",
                self.columns,
                self.quantiles,
                self.references,
                self.normal,
                not self.inverse_direction,
            )
        ]

    def describe(self) -> str:
        direction = "inverse " if self.inverse_direction else ""
        return f"{direction}quantile ({'normal' if self.normal else 'uniform'}, {self.references.size} quantiles)"


@dataclass
class Power(ColumnOp):
    """PowerTransformer's power step (its standardisation is a separate ``Standardize``)."""

    method: str = "yeo-johnson"
    lambdas: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inverse_direction: bool = False
    template: ClassVar[str] = "power"

    def __post_init__(self) -> None:
        if self.method not in ("yeo-johnson", "box-cox"):
            raise ValueError(f"unknown power method {self.method!r}")
        self.lambdas = _doubles(self.lambdas, len(self.columns), "lambdas")

    @property
    def zero_flags(self) -> list[int]:
        """Per column: does lambda count as 0? Each direction has its own test in scipy/sklearn."""
        if self.method == "box-cox":
            return [int(lam == 0.0 if self.inverse_direction else abs(lam) < 1e-19) for lam in self.lambdas]
        return [int(abs(lam) < EPS) for lam in self.lambdas]

    @property
    def two_flags(self) -> list[int]:
        """Per column (Yeo-Johnson): does lambda count as 2?"""
        return [int(not abs(lam - 2.0) > EPS) for lam in self.lambdas]

    def inverse(self) -> list[ColumnOp]:
        return [Power(f"{self.name} (inverse)", self.columns, self.method, self.lambdas, not self.inverse_direction)]

    def describe(self) -> str:
        return f"{'inverse ' if self.inverse_direction else ''}{self.method}"


@dataclass
class ColumnStage:
    """A sequence of column ops taking ``n_inputs`` doubles to ``n_outputs``."""

    n_inputs: int
    ops: list[ColumnOp] = field(default_factory=list)

    @property
    def widths(self) -> list[int]:
        """The row width before each op and after the last."""
        widths = [self.n_inputs]
        for op in self.ops:
            widths.append(op.out_width(widths[-1]))
        return widths

    @property
    def n_outputs(self) -> int:
        return self.widths[-1]

    @property
    def max_width(self) -> int:
        return max(self.widths)

    @property
    def n_params(self) -> int:
        return sum(v.size for op in self.ops for v in vars(op).values() if isinstance(v, np.ndarray))

    def then(self, other: ColumnStage) -> ColumnStage:
        if other.n_inputs != self.n_outputs:
            raise ExportError(
                f"{other.ops[0].name if other.ops else 'next step'} takes {other.n_inputs} columns, "
                f"but the step before gives {self.n_outputs}"
            )
        return ColumnStage(self.n_inputs, [*self.ops, *other.ops])

    def inverse(self) -> ColumnStage:
        return ColumnStage(self.n_outputs, [inv for op in reversed(self.ops) for inv in op.inverse()])
