"""The float32 criterion: as strict as float32 allows, and no stricter.

A fixed ``|c - ref| <= atol + rtol |ref|`` against a float32 framework cannot tell a wrong
translation from float32 rounding that a steep step (a QuantileTransformer's inverse, a tanh(100 x))
amplifies: the same correct chain passes or fails with the backend. So errors are measured from a
float64 reference of the same model (the framework's own layers run in float64, scikit-learn's
transforms already are), and the C is judged against what float32 itself does there:

- ``e_c = |c - r64|``: the C's error; ``e_f = |f32 - r64|``: the framework's own float32 error;
- ``e_n = |r64(nudged) - r64|``: what one float32 rounding does at that value: the float64 chain with
  its network's inputs and outputs (and each pipeline stage's output) moved by one float32 ULP (random
  signs). The C computes the target transform in float32 where scikit-learn uses float64, so the
  framework's own error does not cover that step; the nudge does, and it is large exactly where a
  step amplifies. (The raw rows are not nudged: they are float32 on both sides, and a nudge off a
  QuantileTransformer's plateau moves the reference by a million ULPs where the C is exact);
- the float32 envelope ``env = max(e_f, e_n)``, and ``ulp = ulp32(r64)``.

Per output column, on the rows inside the range the preprocessing was fitted on:

- **distribution**: for q in 50, 90, 99 %: ``Q_q(e_c / ulp) <= K_QUANTILE * Q_q(env / ulp) + floor``,
  each quantile ruled on when at least ``MIN_TAIL`` values lie above it (the maximum, or the 99% of a
  few hundred rows, is a value or two, which the per-value bound judges);
- **per value**: ``e_c <= K_VALUE * max(env, row, Q_90(env / ulp) * ulp, median(env)) + floor * ulp``
  for every value (a value's own float32 error is one draw of the rounding there, luckily small at
  times: the median absolute envelope of its row's outputs (large inputs whose terms cancel round
  every output of the row alike), the column's typical error in ULPs and its median absolute error
  (where terms cancel to a value near zero) are the least any value is allowed; a generator: at most
  ``GATE_BEYOND`` of its rows beyond, and its output quantiles (``GATE_LEVELS``, each with 10 values
  beyond it) no further from float64's than the per-value bound of the values sitting there, as a
  release gate compares distributions);
- non-finite values: the C must give what the float32 framework gives (both NaN, or the same value);
- the floor is ``FLOOR_ULP + sqrt(n)`` ULPs, n the widest value the network computes (``floor_for``).

The constants were chosen by measurement (docs/parity.md has the table): correct translations
(generators with QuantileTransformer and PowerTransformer targets, QuantileTransformer, log and scaler
preprocessing, a network of every activation, BatchNormalization, residual adds and softmax, and the 28
exports of examples/lamarr_pid.toml) reach at most 0.39 of a distribution bound and 0.65 of a per-value
bound on the numpy, JAX and TensorFlow backends; the weakest break measured, one first-layer weight
changed in its 4th significant digit, reaches 1.24 to 1.29 times them; swapped columns, a dropped
activation or a wrong inverse 10^4 to 10^6 times. The floor covers the C's own float32 arithmetic in
the steps scikit-learn computes in float64 (up to about 9 ULP in a QuantileTransformer inverse) and its
row-order sums.
Rows outside the fitted range are extrapolation: judged apart and reported, never part of the verdict.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from exporter.errors import Float64Unavailable
from exporter.parity import DEFAULT_ATOL, DEFAULT_RTOL, ParityReport

CRITERIA = ("float32", "fixed")
DEFAULT_CRITERION = "float32"
K_QUANTILE = 3.0
K_VALUE = 16.0
FLOOR_ULP = 8.0
QUANTILES = (50.0, 90.0, 99.0, 100.0)  # reported; the distribution rule holds at the first three
RULED = 3
MIN_TAIL = 10  # a quantile is ruled on when at least this many values lie above it: a rarer one is a few values
TYPICAL = 90.0  # the percentile of a column's float32 error (in ULPs) any of its values is allowed
GATE_LEVELS = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
GATE_QUANTILE = 1.0  # a generator's output-quantile shift over its bound (see the module's docstring)
GATE_BEYOND = 1e-3  # fraction of a generator's values beyond the per-value bound
NUDGE_SEED = 3


@dataclass(frozen=True)
class Criterion:
    """Which rule decides parity, with its numbers; ``fixed`` uses ``atol`` and ``rtol`` only."""

    name: str = DEFAULT_CRITERION
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL

    def __post_init__(self) -> None:
        if self.name not in CRITERIA:
            raise ValueError(f"{self.name!r}: expected one of {', '.join(CRITERIA)}")

    def rule(self) -> str:
        """The rule in words, with its constants: reproducible, for the generated file's banner."""
        if self.name == "fixed":
            return f"rule fixed: |c - ref| <= {self.atol:g} + {self.rtol:g} * |ref|"
        return (
            f"rule float32: per output, C's error from float64 at quantiles 50/90/99% <= {K_QUANTILE:g} x float32's + "
            f"floor (where {MIN_TAIL} values lie above), every value <= {K_VALUE:g} x float32's + floor; floor "
            f"{FLOOR_ULP:g} + sqrt(widest sum) ULP"
        )


def chosen(criterion: str | None, atol: float | None, rtol: float | None) -> str | None:
    """The criterion asked for: ``atol`` and ``rtol`` are the fixed rule's numbers, so giving one without a
    criterion chooses it, and giving one with ``float32`` is refused (ValueError) rather than ignored."""
    tolerances = atol is not None or rtol is not None
    if criterion == "float32" and tolerances:
        raise ValueError("atol and rtol are the fixed rule's tolerances: drop them, or choose the criterion fixed")
    return "fixed" if tolerances and criterion is None else criterion


def ulp32(x: np.ndarray) -> np.ndarray:
    """The float32 ULP at each value (float64); the largest float32's beyond the float32 range."""
    magnitude = np.minimum(np.abs(np.nan_to_num(np.asarray(x, np.float64), nan=0.0)), np.finfo(np.float32).max)
    with np.errstate(over="ignore"):  # the ULP at float32's largest value is inf: nothing compares to it
        return np.spacing(magnitude.astype(np.float32)).astype(np.float64)


def nudge(x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """``x`` moved by one float32 ULP with random signs (unchanged when ``rng`` is None)."""
    if rng is None:
        return x
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return x + rng.choice((-1.0, 1.0), x.shape) * ulp32(x)


@dataclass
class ColumnJudgement:
    """One output column under the float32 rule: the numbers each bound compared."""

    column: int
    c_ulp: list[float]  # the C's error quantiles (QUANTILES), in float32 ULPs of the float64 reference
    envelope_ulp: list[float]  # the float32 envelope's quantiles, same units
    framework_ulp: list[float]  # the framework's own float32 error quantiles (for the report)
    beyond: int  # values beyond the per-value bound (non-finite disagreements included)
    worst_row: int
    worst_ratio: float  # e_c / per-value bound at the worst row
    failed_quantile: float | None = None  # the first quantile over its bound, if any
    gate: float | None = None  # a generator's largest output-quantile shift over its bound: above 1 fails
    floor: float = FLOOR_ULP  # the floor in ULPs: FLOOR_ULP + sqrt of the widest sum the C rounds (``floor_for``)

    def decided(self, rows: int, generator: bool) -> tuple[bool, str]:
        """Passed, and the rule and numbers that decided it."""
        if self.failed_quantile is not None:
            i = QUANTILES.index(self.failed_quantile)
            bound = K_QUANTILE * self.envelope_ulp[i] + self.floor
            return False, (
                f"output {self.column}: C's {self.failed_quantile:g}% error {self.c_ulp[i]:.3g} ULP > "
                f"{K_QUANTILE:g} x float32's {self.envelope_ulp[i]:.3g} + {self.floor:.3g} = {bound:.3g}"
            )
        allowed = int(GATE_BEYOND * rows) if generator else 0
        if self.beyond > allowed:
            return False, (
                f"output {self.column}: {self.beyond} of {rows} values beyond {K_VALUE:g} x float32's error + "
                f"{self.floor:.3g} ULP (allowed {allowed}); worst at row {self.worst_row}, "
                f"{self.worst_ratio:.3g} x the bound"
            )
        if self.gate is not None and self.gate > GATE_QUANTILE:
            return False, (
                f"output {self.column}: an output quantile moved {self.gate:.3g} x as far from float64's as float32's "
                f"bound allows (gate {GATE_QUANTILE:g})"
            )
        return True, (
            f"output {self.column}: C's max error {self.c_ulp[-1]:.3g} ULP vs float32's {self.envelope_ulp[-1]:.3g}, "
            f"worst value {self.worst_ratio:.3g} x its bound"
        )


@dataclass
class Judgement:
    """The float32 rule's verdict on one comparison, and extrapolation rows judged apart."""

    columns: list[ColumnJudgement]
    rows: int  # rows judged (inside the fitted range)
    generator: bool = False
    extrapolation: list[ColumnJudgement] = field(default_factory=list)  # the rows outside, for the record
    extrapolation_rows: int = 0

    @property
    def passed(self) -> bool:
        return all(c.decided(self.rows, self.generator)[0] for c in self.columns)

    def reason(self) -> str:
        """The deciding numbers: the first failing column, else the tightest one."""
        decided = [c.decided(self.rows, self.generator) for c in self.columns]
        failing = [text for ok, text in decided if not ok]
        if failing:
            return "; ".join(failing[:3]) + ("" if len(failing) <= 3 else f"; {len(failing) - 3} more")
        if not self.columns:
            return "no values"
        tightest = max(self.columns, key=lambda c: c.worst_ratio)
        return tightest.decided(self.rows, self.generator)[1]

    def verdict(self, word: str, reference: str) -> str:
        """The banner's line: reproducible (the rule and the row counts, no measured numbers)."""
        apart = f" ({self.extrapolation_rows} extrapolation rows apart)" if self.extrapolation_rows else ""
        gates = f"; generator gates: <= {GATE_BEYOND:g} of values beyond, output quantiles by the per-value bound"
        return f"{word} against {reference} (float64 and float32) on {self.rows} rows{apart}, {Criterion().rule()}" + (
            gates if self.generator else ""
        )

    def table(self) -> str:
        """Per output: the C's error quantiles against the float32 envelope's (ULPs), and what decided."""
        head = "/".join(f"{q:g}%" for q in QUANTILES)
        gate = f" {'q shift x':>11}" if self.generator else ""  # a generator's gate, threshold GATE_QUANTILE
        lines = [
            f"decided by: {self.reason()}",
            f"{'output':>6} {'C error ' + head + ' (ULP)':>34} {'float32 ' + head:>34} {'beyond':>7} {'worst x':>8}"
            + gate,
        ]
        for c in self.columns:
            ours = "/".join(f"{v:.3g}" for v in c.c_ulp)
            theirs = "/".join(f"{v:.3g}" for v in c.envelope_ulp)
            shift = f" {c.gate if c.gate is not None else 0.0:>11.2e}" if self.generator else ""
            lines.append(f"{c.column:>6} {ours:>34} {theirs:>34} {c.beyond:>7d} {c.worst_ratio:>8.3g}" + shift)
        note = self.extrapolation_note()
        return "\n".join([*lines, note] if note else lines)

    def extrapolation_note(self) -> str:
        if not self.extrapolation_rows:
            return ""
        beyond = sum(c.beyond for c in self.extrapolation)
        worst = max((c.worst_ratio for c in self.extrapolation), default=0.0)
        return (
            f"{self.extrapolation_rows} extrapolation rows (outside the fitted range) judged apart, not in the "
            f"verdict: {beyond} values beyond the per-value bound, worst {worst:.3g} x"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "generator": self.generator,
            "reason": self.reason(),
            "columns": [asdict(c) for c in self.columns],
            "extrapolation_rows": self.extrapolation_rows,
            "extrapolation": [asdict(c) for c in self.extrapolation],
        }


def _percentiles(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.percentile(values, QUANTILES)] if values.size else [0.0] * len(QUANTILES)


def _typical_ulp(env: np.ndarray, unit: np.ndarray, finite: np.ndarray) -> float:
    """A column's typical float32 error in ULPs (its TYPICAL percentile): the least any of its values may carry."""
    return float(np.percentile((env / unit)[finite], TYPICAL)) if finite.any() else 0.0


def _column(
    j: int,
    c: np.ndarray,
    f: np.ndarray,
    r: np.ndarray,
    envelope: np.ndarray,
    row_typical: np.ndarray,
    rows: np.ndarray,
    generator: bool,
    floor: float,
) -> ColumnJudgement:
    """Column ``j`` judged on ``rows`` (indices): both bounds, non-finite values apart."""
    c, f, r, envelope, row_typical = c[rows], f[rows], r[rows], envelope[rows], row_typical[rows]
    finite = np.isfinite(c) & np.isfinite(f) & np.isfinite(r)
    same = (c == f) | (np.isnan(c) & np.isnan(f))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        unit = np.where(finite, ulp32(r), 1.0)
        e_c = np.where(finite, np.abs(c - r), 0.0)
        env = np.where(finite, envelope, 0.0)
        # one value's float32 error is one draw of the rounding there, often smaller by luck: the column's
        # typical error (90% of its ULPs) is the least any value is allowed, and where terms cancel to a
        # value near zero (its own ULP says nothing of the rounding), the column's median absolute error
        typical_ulp = _typical_ulp(env, unit, finite)
        typical = float(np.median(env[finite])) if finite.any() else 0.0
        least = np.maximum(np.maximum(typical, typical_ulp * unit), row_typical)
        bound = K_VALUE * np.maximum(env, least) + floor * unit
        ratio = np.where(finite, e_c / bound, np.where(same, 0.0, np.inf))
    c_ulp, env_ulp = _percentiles((e_c / unit)[finite]), _percentiles((env / unit)[finite])
    e_f = np.where(finite, np.abs(f - r), 0.0)
    n = int(finite.sum())
    ruled = [
        (q, qc, qe)
        for q, qc, qe in zip(QUANTILES[:RULED], c_ulp, env_ulp, strict=False)
        if n * (100 - q) >= 100 * MIN_TAIL
    ]
    failed = next((q for q, qc, qe in ruled if qc > K_QUANTILE * qe + floor), None)
    worst = int(np.argmax(ratio)) if len(ratio) else 0
    gate = None
    if generator and n > 1:  # the output distribution: each quantile held to the bound of the values sitting there
        levels = [q for q in GATE_LEVELS if n * min(q, 100 - q) >= 100 * MIN_TAIL] or [50.0]  # 10 values beyond
        ranks = np.round(np.asarray(levels) / 100 * (n - 1)).astype(int)
        by_c, by_r = np.argsort(np.where(finite, c, np.inf))[ranks], np.argsort(np.where(finite, r, np.inf))[ranks]
        gate = float(np.max(np.abs(c[by_c] - r[by_r]) / np.maximum(bound[by_c], bound[by_r])))
    return ColumnJudgement(
        column=j,
        c_ulp=c_ulp,
        envelope_ulp=env_ulp,
        framework_ulp=_percentiles((e_f / unit)[finite]),
        beyond=int(np.count_nonzero(ratio > 1.0)),
        worst_row=int(rows[worst]) if len(rows) else 0,
        worst_ratio=float(ratio[worst]) if len(ratio) else 0.0,
        failed_quantile=failed,
        gate=gate,
        floor=floor,
    )


def judge(
    c_out: np.ndarray,
    framework: np.ndarray,
    ref64: np.ndarray,
    nudged64: np.ndarray,
    inside: np.ndarray | None = None,
    generator: bool = False,
    floor: float = FLOOR_ULP,
) -> Judgement:
    """The float32 rule on ``c_out`` (the C), ``framework`` (float32), ``ref64`` and ``nudged64`` (float64).

    ``inside``: True for rows inside the fitted range (None: every row); the others are judged apart.
    """
    c = np.asarray(c_out, dtype=np.float32).astype(np.float64)
    f = np.asarray(framework, dtype=np.float32).reshape(c.shape).astype(np.float64)
    r = np.asarray(ref64, dtype=np.float64).reshape(c.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        envelope = np.fmax(np.abs(f - r), np.abs(np.asarray(nudged64, dtype=np.float64).reshape(c.shape) - r))
    inside = np.ones(len(c), bool) if inside is None else np.asarray(inside, bool)
    judged, apart = np.flatnonzero(inside), np.flatnonzero(~inside)
    # a row's typical rounding: large inputs whose terms cancel round every output of the row alike
    with warnings.catch_warnings():  # a row of non-finite values only has no typical rounding: 0
        warnings.simplefilter("ignore", RuntimeWarning)
        row = np.nanmedian(np.where(np.isfinite(envelope), envelope, np.nan), axis=1) if c.size else np.zeros(len(c))
    row = np.nan_to_num(row, nan=0.0)
    columns = [
        _column(j, c[:, j], f[:, j], r[:, j], envelope[:, j], row, judged, generator, floor) for j in range(c.shape[1])
    ]
    outside = [
        _column(j, c[:, j], f[:, j], r[:, j], envelope[:, j], row, apart, False, floor) for j in range(c.shape[1])
    ]
    return Judgement(columns, len(judged), generator, outside if len(apart) else [], len(apart))


def _float64_rows(fn: Any, inputs: np.ndarray, noise: np.ndarray | None, rng: np.random.Generator | None) -> np.ndarray:
    """``fn`` (a float64 reference) on every row, a chunk at a time, as float64."""
    from exporter.parity import CHUNK_ROWS

    parts = []
    for start in range(0, max(len(inputs), 1), CHUNK_ROWS):
        extra = () if noise is None else (noise[start : start + CHUNK_ROWS],)
        out = np.asarray(fn(inputs[start : start + CHUNK_ROWS], *extra, rng=rng), dtype=np.float64)
        parts.append(out.reshape(len(out), -1))
    return np.concatenate(parts)


def floor_for(*chains: Any) -> float:
    """The floor, in ULPs, for the C of ``chains``: ``FLOOR_ULP`` plus the square root of the widest value its
    networks compute (a C sum of n terms in row order rounds about sqrt(n) times, where TensorFlow's tree
    of partial sums rounds about log2(n) times: a 228-wide softmax's sum, 15 ULP against 1)."""
    widths = [w for c in chains if getattr(c, "net", None) is not None for w in c.net.widths.values()]
    return FLOOR_ULP + math.sqrt(max(widths, default=1))


def judge_chain(report: ParityReport, reference64: Any, chain: Any, rows: np.ndarray) -> ParityReport:
    """``judge_report`` for one chain: rows outside its fitted range apart, its floor, generator or not."""
    from exporter.sampling import inside_fitted

    return judge_report(report, reference64, inside_fitted(chain, rows), bool(chain.n_noise), floor_for(chain))


def judge_report(
    report: ParityReport, reference64: Any, inside: np.ndarray | None, generator: bool, floor: float = FLOOR_ULP
) -> ParityReport:
    """``report`` (made by ``check_parity``, keeping its arrays) judged by the float32 rule, in place.

    ``reference64(rows[, noise], rng=None)``: the float64 reference, nudged when given ``rng``; None, or
    ``Float64Unavailable`` when called, leaves the fixed rule deciding and records why (``fallback``).
    """
    arrays = report.arrays
    assert arrays is not None, "judged from the rows and outputs check_parity keeps"
    if reference64 is None:
        report.fallback = "this framework gives no float64 reference"
        return report
    try:
        r = _float64_rows(reference64, arrays.inputs, arrays.noise, None)
        nudged = _float64_rows(reference64, arrays.inputs, arrays.noise, np.random.default_rng(NUDGE_SEED))
    except Float64Unavailable as err:
        report.fallback = str(err)
        return report
    report.judgement = judge(arrays.c_out, arrays.ref, r, nudged, inside, generator, floor)
    return report
