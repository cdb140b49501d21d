"""The rules that decide parity, and their verdicts in words: what a comparison is judged by.

``fixed``: ``|c - ref| <= atol + rtol |ref|``. ``float32`` (the default): the C's error from a float64
reference, judged against float32's own error from it (``criteria.py`` measures both; the constants and
the reasons they give live here, so that the comparison and the report can name a verdict without
running the measurement).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from exporter.common.options import DEFAULT_ATOL, DEFAULT_CRITERION, DEFAULT_RTOL, check_choice, check_tolerance

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

    def __post_init__(self) -> None:  # as an export's options are checked: a caller of ``check`` gives them too
        check_choice("criterion", self.name)
        check_tolerance("atol", self.atol)
        check_tolerance("rtol", self.rtol)

    def rule(self) -> str:
        """The rule in words, with its constants: reproducible, for the generated file's banner."""
        if self.name == "fixed":
            return f"rule fixed: |c - ref| <= {self.atol:g} + {self.rtol:g} * |ref|"
        return (
            f"rule float32: per output, C's error from float64 at quantiles 50/90/99% <= {K_QUANTILE:g} x float32's + "
            f"floor (where {MIN_TAIL} values lie above), every value <= {K_VALUE:g} x float32's + floor; floor "
            f"{FLOOR_ULP:g} + sqrt(widest sum) ULP"
        )


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
