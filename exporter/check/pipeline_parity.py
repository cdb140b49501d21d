"""Parity of a pipeline, told apart: a wrong translation, or float32 differences amplified downstream.

A pipeline can fail end to end while each stage is right: a GlobalPID generator may turn the last
bit of a RICH output into a visible difference. So four comparisons are made on the same rows and
noise rows:

- **end to end**: the C pipeline against the Python composition;
- **routing**: the C pipeline against its own C stages called in turn with the IR's slices (bit for
  bit): the glue copies the values the IR says;
- **stage by stage**: each C stage on the values Python's upstream stages gave, against the Python
  stage on the same values: a stage that fails here is translated wrong;
- **conditional**: each C stage on the values C's upstream stages gave, against the Python stage on
  those values: a stage that fails only here differs where C's upstream takes it.

If only the end to end comparison fails, the difference is upstream float32 noise amplified downstream.
How much each stage amplifies the difference it is fed is measured on the same values (``Amplification``):
what it receives from C's upstream, what that becomes through the Python stage, and what the stage adds.
Each comparison uses the run's criterion (exporter/check/criteria.py): under the float32 rule the end to end
reference is the composition of the stages' float64 references, so amplified float32 rounding passes
and "wrong translation of stage X" is said only when stage X fails on Python's own upstream values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from exporter.check.compare import ParityArrays, ParityReport, check_parity, compare, errors
from exporter.check.criteria import floor_for, judge_chain, judge_report
from exporter.check.inputs import inside_fitted
from exporter.check.verdicts import Criterion
from exporter.ir.pipeline import gather

if TYPE_CHECKING:
    from exporter.build.toolchain import CompiledModel
    from exporter.check.subject import ExportedModel, ExportedPipeline

QUANTILES = (50.0, 90.0, 99.0, 99.9)
ALONE, CONDITIONAL = "alone", "conditional"  # a stage's comparison on Python's upstream values, on C's


@dataclass
class PipelineReport:
    """The four comparisons; ``passed`` only when all pass. Quacks like a ``ParityReport`` for the summary."""

    end_to_end: ParityReport
    routing_ok: bool
    stages: dict[str, ParityReport]  # stage by stage: on Python's upstream values
    conditional: dict[str, ParityReport]  # on C's upstream values

    @property
    def passed(self) -> bool:
        return self.routing_ok and self.end_to_end.passed and self.translated

    @property
    def translated(self) -> bool:
        """Every stage passes on its own and on C's upstream values, and the glue routes as the IR says."""
        return self.routing_ok and all(r.passed for r in (*self.stages.values(), *self.conditional.values()))

    @property
    def rows(self) -> int:
        return self.end_to_end.rows

    @property
    def arrays(self) -> ParityArrays | None:
        return self.end_to_end.arrays

    def wrong_stages(self) -> list[str]:
        """The stages translated wrong: they fail on Python's own upstream values."""
        return [name for name, r in self.stages.items() if not r.passed]

    def named_stages(self) -> list[tuple[str, str, ParityReport]]:
        """The stages the diagnosis names, in call order, each with the comparison that names it: ``alone`` (a
        wrong translation: it fails on Python's upstream values), else ``conditional`` (it fails on C's); none
        when the routing is wrong or every stage passes. What a trace of the pipeline looks into."""
        if not self.routing_ok:
            return []
        wrong = [(name, ALONE, r) for name, r in self.stages.items() if not r.passed]
        return wrong or [(name, CONDITIONAL, r) for name, r in self.conditional.items() if not r.passed]

    def diagnosis(self) -> str:
        """Which comparison fails, in words."""
        if not self.routing_ok:
            return "the pipeline's C glue differs from its C stages called in turn: a wrong translation of the routing"
        named = self.named_stages()
        names = ", ".join(name for name, _, _ in named)
        if named and named[0][1] == ALONE:
            numbers = "".join(f" ({name}: {r.judgement.reason()})" for name, _, r in named if r.judgement is not None)
            return f"wrong translation of stage {names}: it fails on Python's own upstream values{numbers}"
        if named:
            return f"stage {names} passes on Python's upstream values but fails on the values C's upstream gives it"
        if not self.end_to_end.passed:
            return (
                "amplified float32 differences: every stage passes on its own and on C's upstream values; "
                "upstream differences within tolerance grow beyond it downstream"
            )
        return "every stage passes on its own and on C's upstream values; the routing is exact"

    def verdict(self) -> str:
        """One reproducible line for the banner."""
        e = self.end_to_end
        word = "passed" if self.passed else "FAILED"
        if e.judgement is not None:
            return e.judgement.verdict(f"{word} end to end, stage by stage and conditionally", e.reference)
        return (
            f"{word} end to end, stage by stage and conditionally against {e.reference} on {e.rows} rows, "
            f"|c - ref| <= {e.atol:g} + {e.rtol:g} * |ref|"
        )

    def distribution(self) -> str:
        """The end to end error distribution: |c - ref| over the tolerance, quantiles and the count beyond 1."""
        arrays = self.end_to_end.arrays
        if self.end_to_end.judgement is not None:
            return "end to end, by the float32 rule:"
        if arrays is None:
            return "end to end error distribution: not kept"
        err = errors(arrays.c_out, arrays.ref, self.end_to_end.atol, self.end_to_end.rtol)
        ratio = np.nan_to_num(err.ratio, nan=0.0).ravel()
        points = ", ".join(f"{q:g}% {np.percentile(ratio, q):.3g}" for q in QUANTILES)
        beyond = int(np.count_nonzero(err.failing))
        return (
            f"end to end |c - ref| / tolerance: {points}, max {ratio.max(initial=0.0):.3g}; "
            f"{beyond:,} of {ratio.size:,} values beyond tolerance; max |c - ref| {err.diff.max(initial=0.0):.3g}"
        )

    def table(self) -> str:
        lines = [f"diagnosis: {self.diagnosis()}", self.distribution(), self.end_to_end.table(), _stage_header()]
        for name in self.stages:
            lines.append(_stage_line(name, self.stages[name], self.conditional[name]))
        lines.append(f"routing: {'C glue == C stages in turn, bit for bit' if self.routing_ok else 'DIFFERS'}")
        return "\n".join(lines)

    def amplification(self, name: str) -> Amplification:
        """What stage ``name`` does to the difference its C upstream feeds it (from its two comparisons' values)."""
        alone, conditional = self.stages[name].arrays, self.conditional[name].arrays
        assert alone is not None and conditional is not None, "the stage comparisons keep their values"
        return Amplification(
            received=_row_max(conditional.inputs, alone.inputs),
            propagated=_row_max(conditional.ref, alone.ref),
            added=_row_max(conditional.c_out, conditional.ref),
        )


def _row_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, the largest |a - b| over the columns (float64); equal values (NaN on both sides too) differ by 0,
    a NaN on one side by inf."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, np.nan_to_num(np.abs(a - b), nan=np.inf))
    return diff.max(axis=1, initial=0.0)


@dataclass
class Amplification:
    """One stage, row by row (the largest difference over the columns), between C's pipeline and Python's:

    - ``received``: |x_C - x_Py|, what the stage's inputs differ by (0 for a stage reading the input only);
    - ``propagated``: |Py(x_C) - Py(x_Py)|, that difference carried through the stage as Python computes it;
    - ``added``: |C(x_C) - Py(x_C)|, the stage's own error on the same inputs (its conditional comparison).

    The stage's output differs from Python's by at most ``propagated + added``; ``gain`` (propagated over
    received) is how much the stage amplifies what it is fed, ``added`` what its translation adds."""

    received: np.ndarray
    propagated: np.ndarray
    added: np.ndarray

    def gain(self) -> np.ndarray:
        """propagated / received on the rows that receive a difference."""
        fed = self.received > 0
        with np.errstate(invalid="ignore"):  # inf over inf: a NaN on one side, upstream and here
            return self.propagated[fed] / self.received[fed]

    def to_dict(self) -> dict[str, Any]:
        """Each quantity's median and largest value over the rows; the gain's over the rows fed a difference."""

        def spread(values: np.ndarray) -> dict[str, float] | None:
            if not values.size:
                return None
            return {"median": float(np.median(values)), "max": float(values.max())}

        return {
            "rows": int(self.received.size),
            "rows_fed": int(np.count_nonzero(self.received > 0)),
            "received": spread(self.received),
            "propagated": spread(self.propagated),
            "added": spread(self.added),
            "gain": spread(self.gain()),
        }


def _worst(report: ParityReport) -> float:
    """The largest |c - ref| of any output: the size of a stage's difference at a glance."""
    return max((c.max_abs for c in report.columns), default=0.0)


def _stage_header() -> str:
    return f"{'stage':>16} {'alone':>7} {'max abs err':>12} {'on C upstream':>14} {'max abs err':>12}"


def _stage_line(name: str, alone: ParityReport, conditional: ParityReport) -> str:
    def word(r: ParityReport) -> str:
        return "passed" if r.passed else "FAILED"

    return f"{name:>16} {word(alone):>7} {_worst(alone):>12.3e} {word(conditional):>14} {_worst(conditional):>12.3e}"


def _judged(
    c_out: np.ndarray,
    ref: np.ndarray,
    x: np.ndarray,
    noise: list[np.ndarray],
    ex: ExportedModel,
    criterion: Criterion,
) -> ParityReport:
    """One stage's C values against its Python values on ``x``, by ``criterion`` (float32: from the stage's
    float64 reference on the same ``x``, rows outside its fitted range apart)."""
    report = compare(c_out, ref, x, criterion.atol, criterion.rtol, ex.framework)
    report.arrays = ParityArrays(x, np.asarray(c_out, np.float32), np.asarray(ref, np.float32), *noise)
    if criterion.name == "fixed":
        return report
    return judge_chain(report, ex.reference64, ex.chain, x)


def check_pipeline(
    pipe: ExportedPipeline,
    compiled: CompiledModel,
    rows: np.ndarray,
    noise: np.ndarray | None,
    criterion: Criterion,
    py_values: dict[str, np.ndarray] | None = None,
) -> PipelineReport:
    """Run the four comparisons on ``rows`` and ``noise`` (the same on both sides); ``py_values``: the Python
    values of every source on them (``pipe.values``), when they were computed already."""
    atol, rtol = criterion.atol, criterion.rtol
    rows = np.asarray(rows, dtype=np.float32)
    if py_values is None:  # once: the end to end reference is made of them
        py_values = pipe.values(rows, noise, pipe.python_stage)
    reference = pipe.output(py_values)
    end_to_end = check_parity(compiled, np.asarray(reference), rows, atol, rtol, pipe.framework, noise)
    if criterion.name == "float32":
        inside = np.ones(len(rows), dtype=bool)  # a row is extrapolation if any stage extrapolates on it
        for stage, ex in zip(pipe.pipeline.stages, pipe.stages, strict=True):
            inside &= inside_fitted(ex.chain, gather(stage.reads, py_values))
        floor = floor_for(*(ex.chain for ex in pipe.stages))
        judge_report(end_to_end, pipe.reference64, inside, bool(pipe.pipeline.n_noise), floor)
    stage_fns = [compiled.sibling(s.name, s.n_inputs, s.n_outputs, s.n_noise) for s in pipe.pipeline.stages]

    def c_stage(index: int, x: np.ndarray, *stage_noise: np.ndarray) -> np.ndarray:
        return stage_fns[index].batch(x, *stage_noise)

    c_values = pipe.values(rows, noise, c_stage)
    assert end_to_end.arrays is not None
    routed = pipe.output(c_values)
    routing_ok = bool(np.array_equal(routed, end_to_end.arrays.c_out, equal_nan=True))
    stages: dict[str, ParityReport] = {}
    conditional: dict[str, ParityReport] = {}
    for index, (stage, ex) in enumerate(zip(pipe.pipeline.stages, pipe.stages, strict=True)):
        part = slice(stage.noise_offset, stage.noise_offset + stage.n_noise)
        extra = [] if not stage.n_noise or noise is None else [noise[:, part]]
        x_py = gather(stage.reads, py_values)
        stages[stage.name] = _judged(c_stage(index, x_py, *extra), py_values[stage.name], x_py, extra, ex, criterion)
        x_c = gather(stage.reads, c_values)
        python_on_c = pipe.python_stage(index, x_c, *extra)
        conditional[stage.name] = _judged(c_values[stage.name], python_on_c, x_c, extra, ex, criterion)
    return PipelineReport(end_to_end, routing_ok, stages, conditional)
