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
  over its non-zero values (where terms cancel to a value near zero; a ReLU's exact zeros aside) are the
  least any value is allowed; a generator: at most
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
from collections.abc import Sequence
from typing import Any

import numpy as np

from exporter.check.compare import ParityReport
from exporter.check.inputs import in_chunks, inside_fitted
from exporter.check.verdicts import (
    FLOOR_ULP,
    GATE_LEVELS,
    K_QUANTILE,
    K_VALUE,
    MIN_TAIL,
    NUDGE_SEED,
    QUANTILES,
    RULED,
    TYPICAL,
    ColumnJudgement,
    Judgement,
)
from exporter.common.errors import Float64Unavailable


def ulp32(x: np.ndarray) -> np.ndarray:
    """The float32 ULP at each value (float64); the largest float32's beyond the float32 range."""
    magnitude = np.minimum(np.abs(np.nan_to_num(np.asarray(x, np.float64), nan=0.0)), np.finfo(np.float32).max)
    with np.errstate(over="ignore"):  # the ULP at float32's largest value is inf: nothing compares to it
        return np.spacing(magnitude.astype(np.float32)).astype(np.float64)


def nudge(x: np.ndarray, rng: np.random.Generator | None, keep: Sequence[int] = ()) -> np.ndarray:
    """``x`` moved by one float32 ULP with random signs (unchanged when ``rng`` is None), but for its columns
    ``keep``: discrete inputs (a mask's 0/1, an Embedding's index), which no rounding moves, and which a nudge
    would turn into other values (1 ULP above 0 is a kept key) and so blow the envelope up."""
    if rng is None:
        return x
    x = np.asarray(x, dtype=np.float64)
    step = rng.choice((-1.0, 1.0), x.shape) * ulp32(x)
    if len(keep):
        step[..., list(keep)] = 0.0
    with np.errstate(invalid="ignore"):
        return x + step


_BLOCK = 256  # columns judged at once: numpy over a block, the memory of a few blocks of rows


def _masked(values: np.ndarray, mask: np.ndarray, reduce: Any, empty: Any) -> list[Any]:
    """``reduce(v)`` of each column's values where ``mask`` holds (``empty`` where none does): one numpy call
    over the columns every row of which counts (the same arithmetic as column by column; each column made
    contiguous, as a partition wants), the others alone."""
    out: list[Any] = [empty] * values.shape[1]
    every, some = mask.all(axis=0), mask.any(axis=0)
    whole = np.flatnonzero(every & some)
    if len(whole):
        for j, v in zip(whole, np.asarray(reduce(np.ascontiguousarray(values[:, whole].T), axis=-1)).T, strict=True):
            out[j] = v
    for j in np.flatnonzero(~every & some):
        out[j] = reduce(values[mask[:, j], j], axis=0)
    return out


def _percentiles(values: np.ndarray, mask: np.ndarray, qs: Sequence[float] = QUANTILES) -> list[list[float]]:
    """Each column's percentiles ``qs`` of its values where ``mask`` holds (zeros for none)."""
    per = _masked(values, mask, lambda v, axis: np.percentile(v, qs, axis=axis), [0.0] * len(qs))
    return [[float(q) for q in p] for p in per]


def _columns(
    js: np.ndarray,
    c: np.ndarray,
    f: np.ndarray,
    r: np.ndarray,
    envelope: np.ndarray,
    row_typical: np.ndarray,
    rows: np.ndarray,
    generator: bool,
    floor: float,
) -> list[ColumnJudgement]:
    """Columns ``js`` judged on ``rows`` (indices): both bounds, non-finite values apart."""
    c, f, r, envelope = (a[np.ix_(rows, js)] for a in (c, f, r, envelope))
    row_typical = row_typical[rows][:, None]
    finite = np.isfinite(c) & np.isfinite(f) & np.isfinite(r)
    same = (c == f) | (np.isnan(c) & np.isnan(f))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        unit = np.where(finite, ulp32(r), 1.0)
        e_c = np.where(finite, np.abs(c - r), 0.0)
        env = np.where(finite, envelope, 0.0)
        # one value's float32 error is one draw of the rounding there, often smaller by luck: the column's
        # typical error (90% of its ULPs) is the least any value is allowed, and where terms cancel to a
        # value near zero (its own ULP says nothing of the rounding), the column's median absolute error
        # over its values other than 0 (a ReLU's zeros are exact in every evaluation: they say nothing of
        # the rounding of the others)
        env_ulp = _percentiles(env / unit, finite, (*QUANTILES, TYPICAL))  # one partition of each column for both
        typical_ulp = np.array([p.pop() for p in env_ulp])
        typical = np.array(_masked(env, finite & (r != 0), np.median, 0.0), dtype=np.float64)
        least = np.maximum(np.maximum(typical, typical_ulp * unit), row_typical)
        bound = K_VALUE * np.maximum(env, least) + floor * unit
        ratio = np.where(finite, e_c / bound, np.where(same, 0.0, np.inf))
    c_ulp = _percentiles(e_c / unit, finite)
    with np.errstate(invalid="ignore"):  # inf - inf where both overflowed: not finite, not counted
        framework_ulp = _percentiles(np.where(finite, np.abs(f - r), 0.0) / unit, finite)
    worst = np.argmax(ratio, axis=0) if len(rows) else np.zeros(len(js), int)
    judged = []
    for k, j in enumerate(js):
        n = int(finite[:, k].sum())
        ruled = [
            (q, qc, qe)
            for q, qc, qe in zip(QUANTILES[:RULED], c_ulp[k], env_ulp[k], strict=False)
            if n * (100 - q) >= 100 * MIN_TAIL
        ]
        gate = None
        if generator and n > 1:  # the output distribution: each quantile held to the bound of the values there
            levels = [q for q in GATE_LEVELS if n * min(q, 100 - q) >= 100 * MIN_TAIL] or [50.0]  # 10 values beyond
            ranks = np.round(np.asarray(levels) / 100 * (n - 1)).astype(int)
            by_c = np.argsort(np.where(finite[:, k], c[:, k], np.inf))[ranks]
            by_r = np.argsort(np.where(finite[:, k], r[:, k], np.inf))[ranks]
            gate = float(np.max(np.abs(c[by_c, k] - r[by_r, k]) / np.maximum(bound[by_c, k], bound[by_r, k])))
        judged.append(
            ColumnJudgement(
                column=int(j),
                c_ulp=c_ulp[k],
                envelope_ulp=env_ulp[k],
                framework_ulp=framework_ulp[k],
                beyond=int(np.count_nonzero(ratio[:, k] > 1.0)),
                worst_row=int(rows[worst[k]]) if len(rows) else 0,
                worst_ratio=float(ratio[worst[k], k]) if len(rows) else 0.0,
                failed_quantile=next((q for q, qc, qe in ruled if qc > K_QUANTILE * qe + floor), None),
                gate=gate,
                floor=floor,
            )
        )
    return judged


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
        if c.shape[1] < 600:  # numpy's nanmedian sorts a narrow row at once, a wide one in a loop over rows
            row = (
                np.nanmedian(np.where(np.isfinite(envelope), envelope, np.nan), axis=1) if c.size else np.zeros(len(c))
            )
        else:
            row = np.array(_masked(envelope.T, np.isfinite(envelope).T, np.median, np.nan), dtype=np.float64)
    row = np.nan_to_num(row, nan=0.0)
    blocks = [np.arange(start, min(start + _BLOCK, c.shape[1])) for start in range(0, c.shape[1], _BLOCK)]
    columns = [col for js in blocks for col in _columns(js, c, f, r, envelope, row, judged, generator, floor)]
    outside = (
        [col for js in blocks for col in _columns(js, c, f, r, envelope, row, apart, False, floor)]
        if len(apart)
        else []
    )
    return Judgement(columns, len(judged), generator, outside, len(apart))


def _float64_rows(fn: Any, inputs: np.ndarray, noise: np.ndarray | None, rng: np.random.Generator | None) -> np.ndarray:
    """``fn`` (a float64 reference) on every row, a chunk at a time, as float64 rows."""
    extra = () if noise is None else (noise,)
    out = in_chunks(lambda *chunk: fn(*chunk, rng=rng), inputs, *extra, dtype=np.float64)
    return out.reshape(len(out), -1)


def floor_for(*chains: Any) -> float:
    """The floor, in ULPs, for the C of ``chains``: ``FLOOR_ULP`` plus the square root of the widest value its
    networks compute (a C sum of n terms in row order rounds about sqrt(n) times, where TensorFlow's tree
    of partial sums rounds about log2(n) times: a 228-wide softmax's sum, 15 ULP against 1)."""
    widths = [w for c in chains if getattr(c, "net", None) is not None for w in c.net.widths.values()]
    return FLOOR_ULP + math.sqrt(max(widths, default=1))


def judge_chain(report: ParityReport, reference64: Any, chain: Any, rows: np.ndarray) -> ParityReport:
    """``judge_report`` for one chain: rows outside its fitted range apart, its floor, generator or not."""

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
