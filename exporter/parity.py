"""Does the compiled C compute what the framework computes? Inputs, comparison, report.

A row passes when ``|c - ref| <= atol + rtol * |ref|`` (or both are the same infinity,
or both NaN). Besides random normal rows, the inputs include edge rows that drive
tanh, sigmoid and softmax into saturation, where naive C code loses accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4
DEFAULT_SAMPLES = 10_000


def edge_rows(n_inputs: int) -> np.ndarray:
    """Deterministic rows at the edges: zeros, constants, one-hot spikes up to 100, alternating signs.

    Spikes saturate tanh, sigmoid and softmax through a single large term; constants and
    alternating rows stop at 30, beyond which two correct float32 evaluations of an
    unbounded (ReLU, linear) network legitimately differ by more than the default atol
    wherever large terms cancel. Check larger inputs with --inputs and a matching --atol.
    """
    rows = [np.zeros(n_inputs)]
    for v in (1e-6, 0.5, 1.0, 3.0, 10.0, 30.0):
        rows += [np.full(n_inputs, v), np.full(n_inputs, -v)]
    for v in (10.0, -10.0, 100.0, -100.0):
        rows += list(np.eye(n_inputs) * v)
    for v in (10.0, 30.0):
        alternating = np.where(np.arange(n_inputs) % 2 == 0, v, -v)
        rows += [alternating, -alternating]
    return np.asarray(rows, dtype=np.float32)


def make_inputs(
    n_inputs: int, samples: int = DEFAULT_SAMPLES, seed: int = 0, user_rows: np.ndarray | None = None
) -> np.ndarray:
    """Random standard-normal rows (a tenth of them scaled by 5), edge rows, then the user's rows."""
    rng = np.random.default_rng(seed)
    random = rng.standard_normal((samples, n_inputs))
    random[: samples // 10] *= 5.0
    parts = [random.astype(np.float32), edge_rows(n_inputs)]
    if user_rows is not None:
        parts.append(np.asarray(user_rows, dtype=np.float32).reshape(-1, n_inputs))
    return np.concatenate(parts)


def _ordered(x: np.ndarray) -> np.ndarray:
    bits = x.astype(np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(2**31) - bits, bits)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of float32 values between a and b (0 for equal values and for two NaNs)."""
    dist = np.abs(_ordered(a) - _ordered(b))
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return np.where(nan_a & nan_b, 0, np.where(nan_a | nan_b, 2**32, dist))


@dataclass
class ColumnParity:
    column: int
    max_abs: float
    max_rel: float
    max_ulp: int
    failures: int
    worst_row: int  # index into the inputs of the row furthest beyond (or closest to) tolerance


@dataclass
class ParityArrays:
    """The numbers behind a report: the rows and both outputs, for plots and the trace."""

    inputs: np.ndarray
    c_out: np.ndarray
    ref: np.ndarray
    noise: np.ndarray | None = None  # a generator's noise rows, fed to both sides


@dataclass
class ParityReport:
    reference: str
    rows: int
    atol: float
    rtol: float
    columns: list[ColumnParity]
    worst_input: list[float]
    arrays: ParityArrays | None = field(default=None, repr=False, compare=False)  # not part of to_dict()

    @property
    def passed(self) -> bool:
        return all(c.failures == 0 for c in self.columns)

    def verdict(self) -> str:
        """One reproducible line for the generated file's banner (no machine-dependent numbers)."""
        word = "passed" if self.passed else "FAILED"
        return (
            f"{word} against {self.reference} on {self.rows} rows, |c - ref| <= {self.atol:g} + {self.rtol:g} * |ref|"
        )

    def table(self) -> str:
        lines = [
            f"{'output':>6} {'max abs err':>12} {'max rel err':>12} {'max ULP':>9} {'failing':>8} {'worst row':>9}"
        ]
        for c in self.columns:
            lines.append(
                f"{c.column:>6} {c.max_abs:>12.3e} {c.max_rel:>12.3e} {c.max_ulp:>9d} "
                f"{c.failures:>8d} {c.worst_row:>9d}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, arrays=None))  # the arrays are for plots, not for the record
        del data["arrays"]
        return {**data, "passed": self.passed}

    def worst_rows(self, n: int) -> np.ndarray:
        """Indices of the ``n`` rows furthest beyond (or closest to) tolerance, worst first."""
        if self.arrays is None:
            raise ValueError("this report keeps no arrays (made by compare(), not check_parity())")
        err = errors(self.arrays.c_out, self.arrays.ref, self.atol, self.rtol)
        score = np.nan_to_num(err.ratio, nan=0.0).max(axis=1, initial=0.0)
        return np.argsort(-score, kind="stable")[:n]


@dataclass
class Errors:
    """Elementwise comparison of C against the reference: what every parity figure is made of."""

    diff: np.ndarray  # |c - ref| in float64; 0 where both are equal (same infinity, both NaN), inf for one NaN
    bound: np.ndarray  # atol + rtol * |ref|
    rel: np.ndarray  # diff / |ref| where ref != 0, else 0

    @property
    def ratio(self) -> np.ndarray:
        """diff / bound: above 1 fails. NaN (0/0 at zero tolerance) counts as passing."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.diff / self.bound

    @property
    def failing(self) -> np.ndarray:
        return ~(self.diff <= self.bound)


def errors(c_out: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> Errors:
    c_out = np.asarray(c_out, dtype=np.float32)
    ref = np.asarray(ref, dtype=np.float32).reshape(c_out.shape)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(c_out.astype(np.float64) - ref.astype(np.float64))
        same = (c_out == ref) | (np.isnan(c_out) & np.isnan(ref))
        diff = np.where(same, 0.0, np.nan_to_num(diff, nan=np.inf))
        bound = np.where(np.isnan(ref), atol, atol + rtol * np.abs(ref.astype(np.float64)))  # both NaN: passes
        nonzero = ref != 0  # relative error is reported where it means something
        rel = np.where(nonzero, diff / np.where(nonzero, np.abs(ref.astype(np.float64)), 1.0), 0.0)
    return Errors(diff=diff, bound=bound, rel=rel)


def compare(
    c_out: np.ndarray, ref: np.ndarray, inputs: np.ndarray, atol: float, rtol: float, reference: str
) -> ParityReport:
    c_out = np.asarray(c_out, dtype=np.float32)
    ref = np.asarray(ref, dtype=np.float32).reshape(c_out.shape)
    err = errors(c_out, ref, atol, rtol)
    diff, bound, rel, ratio = err.diff, err.bound, err.rel, err.ratio
    ulps = ulp_distance(c_out, ref)
    columns = []
    for j in range(c_out.shape[1]):
        worst = int(np.argmax(np.nan_to_num(ratio[:, j], nan=np.inf)))
        columns.append(
            ColumnParity(
                column=j,
                max_abs=float(diff[:, j].max(initial=0.0)),
                max_rel=float(rel[:, j].max(initial=0.0)),
                max_ulp=int(ulps[:, j].max(initial=0)),
                failures=int(np.count_nonzero(~(diff[:, j] <= bound[:, j]))),
                worst_row=worst,
            )
        )
    worst_col = max(columns, key=lambda c: ratio[c.worst_row, c.column])
    return ParityReport(
        reference=reference,
        rows=int(c_out.shape[0]),
        atol=atol,
        rtol=rtol,
        columns=columns,
        worst_input=[float(v) for v in inputs[worst_col.worst_row]],
    )


def noise_rows(n_rows: int, n_noise: int, seed: int = 1) -> np.ndarray:
    """Standard-normal noise for a generator, as Lamarr draws it: the same rows go to C and the framework."""
    return np.random.default_rng(seed).standard_normal((n_rows, n_noise)).astype(np.float32)


def check_parity(
    compiled: Callable[..., np.ndarray],
    reference: Callable[..., np.ndarray],
    inputs: np.ndarray,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    reference_name: str = "the framework",
    noise: np.ndarray | None = None,
) -> ParityReport:
    """Run both on the same float32 rows (and a generator's same noise rows) and compare; the report
    keeps the arrays (``report.arrays``)."""
    inputs = np.asarray(inputs, dtype=np.float32)
    extra = () if noise is None else (np.asarray(noise, dtype=np.float32),)
    c_out = np.asarray(compiled(inputs, *extra), dtype=np.float32)
    ref = np.asarray(reference(inputs, *extra), dtype=np.float32).reshape(c_out.shape)
    report = compare(c_out, ref, inputs, atol, rtol, reference_name)
    report.arrays = ParityArrays(inputs, c_out, ref, *extra)
    return report
