"""Column ops: the preprocessing and target transforms, computed in double precision.

A whole chain of transformers (Pipelines, ColumnTransformers, log columns) is a row of
doubles that ops rewrite in place: ``Select`` lays the columns out (reorders, drops,
duplicates), ``Mix`` (``column_formulas.py``) replaces a block of columns by linear combinations of
them (a decorrelation), every other op maps some of the columns one by one and leaves the rest alone. Each op knows its
inverse, written exactly as scikit-learn computes it, so the C can match it to
the last bits.

A column op owns its rules: its output width (``out_width``), cost (``flops``, ``n_params``), why it
cannot be exported (``refusal``), its inverse, the values its fitted parameters say its inputs take
(``domain``: where the parity check samples) and the functions of ``templates/columns/helpers.c.j2``
its C calls (``file_helpers``). Adding one: see "How to add" in docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

import numpy as np

from exporter.common.errors import ExportError, NotInvertible
from exporter.ir.weights import Weighted

EPS = float(np.finfo(np.float64).eps)  # np.spacing(1.0), the threshold sklearn and scipy use
# numpy's elementwise functions a column may go through, each with what undoes it on sampled values
# (where the function is defined: parity inputs are drawn after it and mapped back before it)
UNDO: Mapping[str, Callable[[np.ndarray], np.ndarray]] = MappingProxyType(
    {
        "log": np.exp,
        "log1p": np.expm1,
        "log10": lambda y: np.power(10.0, y),
        "exp": lambda y: np.log(np.abs(y) + 1e-300),
        "expm1": lambda y: np.log1p(np.maximum(y, -1 + 1e-12)),
        "sqrt": np.square,
        "square": lambda y: np.sqrt(np.abs(y)),
        "arctanh": np.tanh,
        "tanh": lambda y: np.arctanh(np.clip(y, -0.999999, 0.999999)),
    }
)
FUNCTIONS = tuple(UNDO)


def _doubles(values: object, n: int, what: str) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    if array.size == 1 and n != 1:
        array = np.full(n, array[0])
    if array.size != n:
        raise ValueError(f"{what} has {array.size} values for {n} columns")
    return array


@dataclass
class ColumnOp(Weighted):
    """Base: maps ``columns`` of the row (indices), leaving the others unchanged; ``name`` is the step path."""

    name: str
    columns: tuple[int, ...]

    template: ClassVar[str] = ""
    non_finite: ClassVar[str] = "fitted parameters contain NaN or infinity"

    def out_width(self, width: int) -> int:
        return width

    def flops(self) -> int:
        """Estimated floating-point operations per call: about 4 per column it maps."""
        return 4 * len(self.columns)

    def domain(self, c: int, normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Typical values of the op's ``c``-th input column (as many as ``normal``, standard-normal draws
        to shape) and the edge values a parity check must reach."""
        return 3.0 * normal, np.array([0.0])

    def fitted(self, c: int) -> tuple[float, float] | None:
        """The range of the op's ``c``-th input column the op was fitted on, where it records one: outside
        it a model extrapolates, and its parity is reported apart (``exporter/check/inputs.py``)."""
        return None

    def inverse(self) -> list[ColumnOp]:
        """The ops undoing this one, as scikit-learn's ``inverse_transform`` computes it (maybe none)."""
        raise NotInvertible(f"{self.name}: {type(self).__name__} has no inverse")

    def file_helpers(self) -> tuple[str, ...]:
        """The functions of ``templates/columns/helpers.c.j2`` its C calls: each defined once per file."""
        return ()

    def describe(self) -> str:
        return f"{type(self).__name__} on columns {list(self.columns)}"


@dataclass
class Select(ColumnOp):
    """``out[j] = in[columns[j]]``: the layout a ColumnTransformer produces (its column order, drops)."""

    n_in: int = 0
    template: ClassVar[str] = "select"

    def out_width(self, width: int) -> int:
        return len(self.columns)

    def flops(self) -> int:
        return 0

    def inverse(self) -> list[ColumnOp]:
        if sorted(self.columns) != list(range(self.n_in)):
            raise NotInvertible(f"{self.name}: columns {list(self.columns)} drop or repeat inputs")
        return [Select(f"{self.name} (inverse)", tuple(int(i) for i in np.argsort(self.columns)), len(self.columns))]

    def describe(self) -> str:
        return f"Select {self.n_in} -> {len(self.columns)} columns {list(self.columns)}"


@dataclass
class Standardize(ColumnOp):
    """``(x - center) / scale``: standardising scalers (center 0 for scaling alone), and MulAdd's inverse."""

    center: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    template: ClassVar[str] = "standardize"

    def __post_init__(self) -> None:
        self.center = _doubles(self.center, len(self.columns), "center")
        self.scale = _doubles(self.scale, len(self.columns), "scale")

    def domain(self, c: int, normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        center, scale = self.center[c], self.scale[c]
        return center + scale * normal, center + scale * np.array([-5.0, 0.0, 5.0])

    def inverse(self) -> list[ColumnOp]:
        return [MulAdd(f"{self.name} (inverse)", self.columns, self.scale, self.center)]


@dataclass
class MulAdd(ColumnOp):
    """``x * mul + add``, then clipped to [lo, hi] if ``clip``: range scalers, and Standardize's inverse."""

    mul: np.ndarray = field(default_factory=lambda: np.ones(0))
    add: np.ndarray = field(default_factory=lambda: np.zeros(0))
    clip: tuple[float, float] | None = None
    template: ClassVar[str] = "muladd"

    def __post_init__(self) -> None:
        self.mul = _doubles(self.mul, len(self.columns), "mul")
        self.add = _doubles(self.add, len(self.columns), "add")

    def domain(self, c: int, normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Inputs that land a quarter of the range beyond [lo, hi] (or [0, 1]) on either side."""
        lo, hi = self.clip or (0.0, 1.0)
        y = rng.uniform(lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo), len(normal))
        return (y - self.add[c]) / self.mul[c], (np.array([lo, hi]) - self.add[c]) / self.mul[c]

    def fitted(self, c: int) -> tuple[float, float] | None:
        """The inputs that map onto [lo, hi] (or [0, 1]): a min-max scaler's fitted data range."""
        ends = (np.array(self.clip or (0.0, 1.0)) - self.add[c]) / self.mul[c]
        return float(ends.min()), float(ends.max())

    def inverse(self) -> list[ColumnOp]:
        # a range scaler's inverse_transform in sklearn: (x - min_) / scale_, no clipping
        return [Standardize(f"{self.name} (inverse)", self.columns, self.add, self.mul)]


@dataclass
class Function(ColumnOp):
    """An elementwise numpy function (FunctionTransformer, log columns); ``inverse_kind`` as sklearn's."""

    kind: str = "log"
    inverse_kind: str | None = None  # None: no inverse (FunctionTransformer without inverse_func)
    template: ClassVar[str] = "function"

    def __post_init__(self) -> None:
        for kind in (self.kind, self.inverse_kind):
            if kind is not None and kind not in FUNCTIONS:
                raise ValueError(f"unknown function {kind!r}")

    def inverse(self) -> list[ColumnOp]:
        if self.inverse_kind is None:
            raise NotInvertible.function_transformer(self.name, self.kind)
        return [Function(f"{self.name} (inverse)", self.columns, self.inverse_kind, self.kind)]

    def describe(self) -> str:
        return f"{self.kind} on columns {list(self.columns)}"


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

    def domain(self, c: int, normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Forward: inside the quantiles, every quantile (bounds, plateaus) and just outside; inverse: its range."""
        k = len(normal)
        if self.inverse_direction:
            return (2.0 * normal if self.normal else rng.uniform(-0.1, 1.1, k)), np.array([0.0])
        q = self.quantiles[:, c]
        span = max(q[-1] - q[0], 1e-12)
        beyond = [q[0] - 0.05 * span, q[-1] + 0.05 * span, np.nextafter(q[0], -np.inf), np.nextafter(q[-1], np.inf)]
        return rng.uniform(q[0], q[-1], k), np.concatenate([q, beyond])

    def fitted(self, c: int) -> tuple[float, float] | None:
        """Forward: from the first to the last quantile (the fitted data's extremes)."""
        return None if self.inverse_direction else (float(self.quantiles[0, c]), float(self.quantiles[-1, c]))

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

    def file_helpers(self) -> tuple[str, ...]:
        """numpy's interp, and the normal CDF (inverse: back from the normal) or its quantile (forward: to it)."""
        return ("interp", *(("ndtr" if self.inverse_direction else "ndtri",) if self.normal else ()))

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

    def domain(self, c: int, normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.method == "box-cox" and not self.inverse_direction:  # defined for positive values only
            return np.exp(normal), np.array([1.0])
        return super().domain(c, normal, rng)

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
        return sum(op.n_params for op in self.ops)

    def then(self, other: ColumnStage) -> ColumnStage:
        if other.n_inputs != self.n_outputs:
            raise ExportError(
                f"{other.ops[0].name if other.ops else 'next step'} takes {other.n_inputs} columns, "
                f"but the step before gives {self.n_outputs}"
            )
        return ColumnStage(self.n_inputs, [*self.ops, *other.ops])

    def inverse(self) -> ColumnStage:
        return ColumnStage(self.n_outputs, [inv for op in reversed(self.ops) for inv in op.inverse()])


@dataclass
class Polynomial(ColumnOp):
    """PolynomialFeatures: the row becomes its monomials, each made as scikit-learn makes it.

    Column ``c`` of the full expansion is ``1`` (``source[c] == -2``), input ``feature[c]``
    (``source[c] == -1``), or full column ``source[c]`` times input ``feature[c]``: one product
    per column, in scikit-learn's order, so the doubles are the same. ``keep`` picks the output
    columns from the full expansion (a minimum degree drops the low ones). Forward only.
    """

    source: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    feature: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    keep: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    template: ClassVar[str] = "polynomial"

    def __post_init__(self) -> None:
        self.source = np.ascontiguousarray(self.source, dtype=np.int32).reshape(-1)
        self.feature = np.ascontiguousarray(self.feature, dtype=np.int32).reshape(-1)
        self.keep = np.ascontiguousarray(self.keep, dtype=np.int32).reshape(-1)
        if self.source.size != self.feature.size or np.any(self.source >= np.arange(self.source.size)):
            raise ValueError("every product must use an earlier column")

    def out_width(self, width: int) -> int:
        return int(self.keep.size)

    def flops(self) -> int:
        return int(self.source.size)  # one product per column of the expansion

    def inverse(self) -> list[ColumnOp]:
        raise NotInvertible(f"{self.name}: PolynomialFeatures has no inverse (it is a forward-only step)")

    def describe(self) -> str:
        return f"PolynomialFeatures {len(self.columns)} -> {self.keep.size} columns"


@dataclass
class FixedBin(ColumnOp):
    """FastQuantileLayer: per column, ``values`` sampled on ``linspace(lo, hi, n)`` and interpolated
    in float32 exactly as the layer's graph does (outside the grid it keeps interpolating the end
    bins' fractions, and a bin index past int64 becomes 0, as the layer does on x86). ``back`` is the
    (lo, hi, values) of its inverse."""

    lo: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    hi: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.float32))
    back: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    template: ClassVar[str] = "fixedbin"

    def __post_init__(self) -> None:
        self.lo = np.ascontiguousarray(self.lo, dtype=np.float32).reshape(-1)
        self.hi = np.ascontiguousarray(self.hi, dtype=np.float32).reshape(-1)
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        n = len(self.columns)
        if self.lo.size != n or self.hi.size != n or self.values.ndim != 2 or self.values.shape[0] != n:
            raise ValueError(f"grids do not match {n} columns")
        if self.values.shape[1] < 2:
            raise ValueError("a grid needs at least two values")

    def inverse(self) -> list[ColumnOp]:
        if self.back is None:
            raise NotInvertible(f"{self.name}: no backward grid")
        forward = (self.lo, self.hi, self.values)
        return [FixedBin(f"{self.name} (inverse)", self.columns, *self.back, back=forward)]

    def describe(self) -> str:
        return f"fixed-grid quantile interpolation ({self.values.shape[1]} points)"
