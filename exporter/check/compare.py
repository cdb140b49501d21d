"""Does the compiled C compute what the framework computes? The comparison, chunk by chunk, and its report.

A value passes when ``|c - ref| <= atol + rtol * |ref|``, or when both are the same infinity or
both NaN (a NaN the framework computes too is agreement). A NaN on one side only always fails and is
counted apart (``nan_mismatches``). ``rtol * |ref|`` counts as 0 where ``ref`` is 0 (so ``--rtol inf``
does not turn ``inf * 0`` into a failure) and where ``ref`` is infinite (only the same infinity agrees).

The rows compared come from ``inputs.py`` (random rows, and edge rows that drive tanh, sigmoid and
softmax into saturation, where naive C code loses accuracy); the rules that judge the errors from
``verdicts.py`` and ``criteria.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from exporter.check import inputs as input_rows
from exporter.check.inputs import in_chunks
from exporter.common.options import DEFAULT_ATOL, DEFAULT_RTOL

if TYPE_CHECKING:
    from exporter.check.batch_bits import BatchCheck
    from exporter.check.verdicts import Judgement

RULE = "|c - ref| <= atol + rtol * |ref|, or both NaN, or the same infinity; NaN on one side only fails"


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
    nan_mismatches: int = 0  # values where exactly one side is NaN (counted in failures too)


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
    # SYMBOL_batch against one call per row in every variant this CPU runs (exporter/check/batch_bits.py)
    batch: BatchCheck | None = field(default=None, compare=False)
    # the float32 rule's verdict (exporter/check/criteria.py); None: the fixed rule above decides
    judgement: Judgement | None = field(default=None, repr=False, compare=False)
    fallback: str | None = None  # why the float32 rule was asked for but could not decide

    @property
    def agrees(self) -> bool:
        """The C agrees with the framework by the rule in force (the batch check aside)."""
        if self.judgement is not None:
            return self.judgement.passed
        return all(c.failures == 0 for c in self.columns)

    @property
    def passed(self) -> bool:
        return self.agrees and (self.batch is None or self.batch.passed)

    def verdict(self) -> str:
        """One reproducible line for the generated file's banner (no machine-dependent numbers); a batch
        that differs from one call per row comes first: the file then breaks its own promise."""
        word = "passed" if self.agrees else "FAILED"
        if self.judgement is not None:
            line = self.judgement.verdict(word, self.reference)
        else:
            nans = sum(c.nan_mismatches for c in self.columns)
            one_sided = f" ({nans} values NaN on one side only)" if nans else ""
            fallback = f"; rule fixed, since {self.fallback}" if self.fallback else ""
            line = (
                f"{word} against {self.reference} on {self.rows} rows, "
                f"|c - ref| <= {self.atol:g} + {self.rtol:g} * |ref|" + one_sided + fallback
            )
        return line if self.batch is None or self.batch.passed else f"{self.batch.verdict()}; parity {line}"

    def table(self) -> str:
        lines = [self.judgement.table()] if self.judgement is not None else self._fixed_table()
        if self.batch is not None:
            lines.append(f"batch: {self.batch.verdict()}")
        return "\n".join(lines)

    def _fixed_table(self) -> list[str]:
        lines = [
            f"{'output':>6} {'max abs err':>12} {'max rel err':>12} {'max ULP':>9} {'failing':>8} {'worst row':>9}"
            f" {'NaN one side':>12}"
        ]
        for c in self.columns:
            lines.append(
                f"{c.column:>6} {c.max_abs:>12.3e} {c.max_rel:>12.3e} {c.max_ulp:>9d} "
                f"{c.failures:>8d} {c.worst_row:>9d} {c.nan_mismatches:>12d}"
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, arrays=None, judgement=None))  # the arrays are for plots, not for the record
        del data["arrays"]
        data["judgement"] = None if self.judgement is None else self.judgement.to_dict()
        return {**data, "passed": self.passed}

    def worst_rows(self, n: int) -> np.ndarray:
        """Indices of the ``n`` rows furthest beyond (or closest to) tolerance, worst first."""
        if self.arrays is None:
            raise ValueError("this report keeps no arrays (made by compare(), not check_parity())")
        rows, scores = np.zeros(0, dtype=np.int64), np.zeros(0)
        for start in range(0, self.rows, input_rows.CHUNK_ROWS):  # the n best of each chunk and of the ones before
            end = start + input_rows.CHUNK_ROWS
            err = errors(self.arrays.c_out[start:end], self.arrays.ref[start:end], self.atol, self.rtol)
            rows = np.concatenate([rows, np.arange(start, start + len(err.diff))])
            scores = np.concatenate([scores, np.nan_to_num(err.ratio, nan=0.0).max(axis=1, initial=0.0)])
            keep = np.argsort(-scores, kind="stable")[:n]
            rows, scores = rows[keep], scores[keep]
        return rows


@dataclass
class Errors:
    """Elementwise comparison of C against the reference: what every parity figure is made of."""

    diff: np.ndarray  # |c - ref| in float64; 0 where both are equal (same infinity, both NaN), inf for one NaN
    bound: np.ndarray  # atol + rtol * |ref|, with rtol * |ref| taken as 0 where ref is 0 or not finite
    rel: np.ndarray  # diff / |ref| where ref != 0, else 0
    one_nan: np.ndarray  # exactly one side is NaN: a failure at any tolerance

    @property
    def ratio(self) -> np.ndarray:
        """diff / bound: above 1 fails, a one-sided NaN is inf. NaN (0/0 at zero tolerance) counts as passing."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.one_nan, np.inf, self.diff / self.bound)

    @property
    def failing(self) -> np.ndarray:
        return self.one_nan | ~(self.diff <= self.bound)


def errors(c_out: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> Errors:
    c_out = np.asarray(c_out, dtype=np.float32)
    ref = np.asarray(ref, dtype=np.float32).reshape(c_out.shape)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(c_out.astype(np.float64) - ref.astype(np.float64))
        same = (c_out == ref) | (np.isnan(c_out) & np.isnan(ref))
        diff = np.where(same, 0.0, np.nan_to_num(diff, nan=np.inf))
        magnitude = np.abs(ref.astype(np.float64))
        scaled = np.isfinite(magnitude) & (magnitude > 0)  # no inf * 0, no NaN or inf bound from ref itself
        bound = atol + np.where(scaled, rtol * np.where(scaled, magnitude, 0.0), 0.0)
        rel = np.where(scaled, diff / np.where(scaled, magnitude, 1.0), 0.0)  # where it means something
    return Errors(diff=diff, bound=bound, rel=rel, one_nan=np.isnan(c_out) != np.isnan(ref))


@dataclass
class _Tally:
    """The per-column figures of a comparison, added up chunk by chunk (the same figures as all at once)."""

    n_columns: int
    seen: int = 0
    columns: list[ColumnParity] = field(default_factory=list)
    worst_ratio: list[float] = field(default_factory=list)  # ratio at each column's worst row, as argmax saw it

    def __post_init__(self) -> None:
        self.columns = [ColumnParity(j, 0.0, 0.0, 0, 0, 0) for j in range(self.n_columns)]
        self.worst_ratio = [-np.inf] * self.n_columns

    def add(self, c_out: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> None:
        err = errors(c_out, ref, atol, rtol)
        ratio, failing, ulps = err.ratio, err.failing, ulp_distance(c_out, ref)
        for j, c in enumerate(self.columns):
            ranked = np.nan_to_num(ratio[:, j], nan=np.inf)
            best = int(np.argmax(ranked)) if len(ranked) else 0
            if len(ranked) and (self.seen == 0 or ranked[best] > self.worst_ratio[j]):  # first of equals wins
                c.worst_row, self.worst_ratio[j] = self.seen + best, float(ranked[best])
            c.max_abs = max(c.max_abs, float(err.diff[:, j].max(initial=0.0)))
            c.max_rel = max(c.max_rel, float(err.rel[:, j].max(initial=0.0)))
            c.max_ulp = max(c.max_ulp, int(ulps[:, j].max(initial=0)))
            c.failures += int(np.count_nonzero(failing[:, j]))
            c.nan_mismatches += int(np.count_nonzero(err.one_nan[:, j]))
        self.seen += len(c_out)

    def report(self, inputs: np.ndarray, atol: float, rtol: float, reference: str) -> ParityReport:
        worst = max(range(self.n_columns), key=lambda j: self.worst_ratio[j])
        return ParityReport(
            reference=reference,
            rows=self.seen,
            atol=atol,
            rtol=rtol,
            columns=self.columns,
            worst_input=[float(v) for v in inputs[self.columns[worst].worst_row]] if self.seen else [],
        )


def compare(
    c_out: np.ndarray, ref: np.ndarray, inputs: np.ndarray, atol: float, rtol: float, reference: str
) -> ParityReport:
    c_out = np.asarray(c_out, dtype=np.float32)
    ref = np.asarray(ref, dtype=np.float32).reshape(c_out.shape)
    tally = _Tally(c_out.shape[1])
    for start in range(0, len(c_out), input_rows.CHUNK_ROWS):
        tally.add(c_out[start : start + input_rows.CHUNK_ROWS], ref[start : start + input_rows.CHUNK_ROWS], atol, rtol)
    return tally.report(inputs, atol, rtol, reference)


def check_parity(
    compiled: Callable[..., np.ndarray],
    reference: Callable[..., np.ndarray] | np.ndarray,
    inputs: np.ndarray,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    reference_name: str = "the framework",
    noise: np.ndarray | None = None,
) -> ParityReport:
    """Run both on the same float32 rows (and a generator's same noise rows) and compare; the report
    keeps the arrays (``report.arrays``). ``reference`` may be the framework's outputs on ``inputs``
    already computed (while the C compiled)."""
    inputs = np.asarray(inputs, dtype=np.float32)
    extra = () if noise is None else (np.asarray(noise, dtype=np.float32),)
    c_out = in_chunks(compiled, inputs, *extra)
    ref = reference if isinstance(reference, np.ndarray) else in_chunks(reference, inputs, *extra)
    ref = np.asarray(ref, dtype=np.float32).reshape(c_out.shape)
    report = compare(c_out, ref, inputs, atol, rtol, reference_name)
    report.arrays = ParityArrays(inputs, c_out, ref, *extra)
    return report
