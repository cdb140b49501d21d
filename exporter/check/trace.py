"""Which step goes wrong? Compare C and the framework after every step, on the worst rows.

The production function is never changed for this. Each step's output is an IR value; a copy of the
graph whose output is all those values laid end to end (one Concatenate appended: it only copies) is
rendered by the same backend as a C function of its own (``SYMBOL_trace``), compiled once and called on
the rows; each step's columns are its result, computed by the exported code of every step. The
framework side is its own intermediate output for the same value (``LoadedModel.intermediates``). The
first step whose output differs beyond the parity tolerance is the one to look at: every step before
it agrees.

After the network come the steps the framework does not know: an output activation (fused into the
last Dense or a step of its own) and each step of the inverse target transform. Their reference is
``Export.after_network``, the very code the chain's reference runs after the network, applied to the
network's own output. On the C side each target transform step is the target transform's ops up to
that step (``SYMBOL_trace_targetK``, in the same file), fed with the C network's output: the C path
of the exported function, so an error the transform amplifies beyond tolerance shows where it does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from exporter.backend import CSource, render, render_set
from exporter.check.compare import errors
from exporter.common.errors import ExportError
from exporter.common.escaping import terminal_line
from exporter.ir import Concatenate, Graph
from exporter.ir.chain import Chain
from exporter.ir.columns import ColumnStage

if TYPE_CHECKING:
    from exporter.check.subject import ExportedModel

WORST_ROWS = 5


@dataclass
class TraceStep:
    index: int
    name: str
    op: str
    value: str  # the IR value this step writes
    width: int
    max_abs: float
    max_rel: float
    worst_ratio: float  # max |c - ref| / (atol + rtol * |ref|) over the traced rows; above 1 drifts
    drifts: bool


@dataclass
class Trace:
    """Per-step agreement of C and framework on a few input rows (indices into the parity rows)."""

    rows: list[int]
    atol: float
    rtol: float
    steps: list[TraceStep]

    @property
    def first_drift(self) -> TraceStep | None:
        return next((s for s in self.steps if s.drifts), None)

    def verdict(self) -> str:
        drift = self.first_drift
        if drift is None:
            return f"every step agrees within tolerance on the {len(self.rows)} worst rows"
        return f"first step beyond tolerance: step {drift.index} '{drift.name}' ({drift.op})"

    def table(self) -> str:
        lines = [f"{'step':>4}  {'max abs err':>11}  {'max rel err':>11}  {'err/tol':>9}  name: op"]
        for s in self.steps:
            mark = "  <-- drifts" if s is self.first_drift else ""
            step = terminal_line(f"{s.name}: {s.op}")  # a name from a file, on its one line
            lines.append(f"{s.index:>4}  {s.max_abs:>11.3e}  {s.max_rel:>11.3e}  {s.worst_ratio:>9.3g}  {step}{mark}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        drift = self.first_drift
        return {
            "rows": self.rows,
            "first_drift": None if drift is None else {"index": drift.index, "name": drift.name, "op": drift.op},
            "steps": [asdict(s) for s in self.steps],
        }


@dataclass
class Traced:
    """A trace a run asked for: of export ``symbol`` (a model, or a pipeline's ``stage``, traced on the rows of
    its ``comparison``: ``alone`` on Python's upstream values, ``conditional`` on C's), and the trace or why it
    could not run (``error``)."""

    symbol: str
    trace: Trace | None
    error: str | None = None
    stage: str | None = None
    comparison: str | None = None

    def lines(self) -> list[str]:
        """The summary's lines: the verdict, then the table (or the reason it could not run)."""
        what = "trace" if self.stage is None else f"trace of stage {self.stage} ({self.comparison} comparison's rows)"
        if self.trace is None:
            return [f"{what}: could not run ({self.error})"]
        return [f"{what}: {self.trace.verdict()}", *("  " + line for line in self.trace.table().splitlines())]

    def to_dict(self) -> dict[str, Any]:
        """A pipeline's: the stage and comparison with the trace (a model's trace is its document's own fields)."""
        trace = None if self.trace is None else self.trace.to_dict()
        return {"stage": self.stage, "comparison": self.comparison, "trace": trace, "trace_error": self.error}


def tapped(graph: Graph, values: list[str]) -> Graph:
    """``graph`` computing ``values`` laid end to end as its output (the graph itself is untouched)."""
    output = next(name for k in range(len(graph.widths) + 1) if (name := f"trace{k}") not in graph.widths)
    width = sum(graph.widths[v] for v in values)
    taps = Concatenate("trace", tuple(values), output, width)
    return replace(graph, output=output, widths={**graph.widths, output: width}, ops=[*graph.ops, taps])


def trace(
    ex: ExportedModel, inputs: np.ndarray, rows: list[int], atol: float, rtol: float, noise: np.ndarray | None = None
) -> Trace:
    """Compare every step of ``ex`` on ``inputs[rows]`` (a generator: with ``noise[rows]``); one C build."""
    graph = ex.graph
    intermediates = ex.loaded.intermediates if ex.loaded is not None else None
    if graph is None or ex.loaded is None or intermediates is None:
        raise ExportError(f"{ex.chain.source}: the {ex.framework} frontend gives no intermediate outputs")
    picked = ex.network_inputs(np.asarray(inputs, dtype=np.float32)[rows])
    if graph.noise and noise is None:
        raise ExportError(f"{ex.chain.source}: a generator is traced with the noise rows its parity check used")
    extra = () if not graph.noise else (np.asarray(noise, dtype=np.float32)[rows],)
    # after the network: the output activation (by the value it writes) and the target transform's steps
    after = ex.after_network(ex.loaded.reference(picked, *extra)) if ex.after_network is not None else []
    known = [op.output for op in graph.ops if intermediates.knows(op.output)]
    reference = intermediates(known, picked, *extra)
    reference.update((label, values) for label, values in after if label in graph.widths)
    pre, post = ex.chain.pre, ex.chain.post
    offset = len(pre.ops) if pre is not None else 0  # indices are the rows of the inspect table
    steps = [] if pre is None else [_preprocessing_step(ex, inputs, rows, picked, offset - 1, atol, rtol)]
    values = [op.output for op in graph.ops if op.output in reference]
    values += [] if graph.output in values else [graph.output]  # what the target transform receives
    taps = tapped(graph, values)
    targets = [] if post is None else _target_steps(post, after)
    source = _trace_source(ex, taps, targets)
    n_in, n_out, n_noise = taps.n_inputs, taps.n_outputs, taps.n_noise  # built as the parity check builds it
    compiled = ex.compile_source(source, n_in, n_out, n_noise=n_noise, one_isa=True, one_row=True)
    got, start, outputs = compiled(picked, *extra), 0, {}
    for value in values:
        outputs[value], start = got[:, start : start + graph.widths[value]], start + graph.widths[value]
    for index, op in enumerate(graph.ops):
        if op.output in reference:
            ref = reference[op.output]
            steps.append(_step(offset + index, op.name, op.describe(), op.output, outputs[op.output], ref, atol, rtol))
    offset += len(graph.ops)
    for k, target in enumerate(targets):
        assert post is not None
        stage = ColumnStage(post.n_inputs, post.ops[: target.end])
        c = compiled.sibling(f"{ex.symbol}_trace_target{k}", stage.n_inputs, stage.n_outputs)(outputs[graph.output])
        steps.append(target.step(post, offset, c, atol, rtol))
    return Trace(rows=[int(r) for r in rows], atol=atol, rtol=rtol, steps=steps)


class TargetStep(NamedTuple):
    """One step of the target transform: its ops ``first`` to ``end`` (excluded) of the stage, and the
    reference's values after it."""

    label: str  # the step's path, the prefix of its ops' names (``tY / scale``)
    first: int
    end: int
    reference: np.ndarray

    def step(self, post: ColumnStage, offset: int, got: np.ndarray, atol: float, rtol: float) -> TraceStep:
        """The trace's row: named as its one op, or as the step with the inspect rows of its ops."""
        ops = post.ops[self.first : self.end]
        rows = f"column steps {offset + self.first}-{offset + self.end - 1}"
        name, op = (ops[0].name, ops[0].describe()) if len(ops) == 1 else (self.label, rows)
        return _step(offset + self.end - 1, name, op, self.label, got, self.reference, atol, rtol)


def _target_steps(post: ColumnStage, after: list[tuple[str, np.ndarray]]) -> list[TargetStep]:
    """The target transform's ops cut into its steps: each step's ops are the run named after it
    (``tY / scale (inverse)``, ``tY / ct / a (inverse)`` for the steps ``tY / scale``, ``tY / ct``). Ops that do
    not line up with the steps are one step, the whole transform, so a step is never compared with another
    step's values."""
    ops, start, found = post.ops, 0, []
    for label, values in after:
        end = start
        while end < len(ops) and (ops[end].name == label or ops[end].name.startswith(label + " ")):
            end += 1
        if end > start:  # a step whose inverse is the identity has no op
            found.append(TargetStep(label, start, end, values))
        start = end
    if ops and (start != len(ops) or not found):
        return [TargetStep("target transform", 0, len(ops), after[-1][1])]
    return found


def _trace_source(ex: ExportedModel, taps: Graph, targets: list[TargetStep]) -> CSource:
    """The tapped network (``SYMBOL_trace``) and, per target transform step, the target transform up to
    and including that step (``SYMBOL_trace_targetK``): one file, one compile, rendered as exported."""
    network = render(taps, f"{ex.symbol}_trace", options=ex.options)
    if not targets:
        return network
    post = ex.chain.post
    assert post is not None
    parts = [
        render(
            Chain(pre=ColumnStage(post.n_inputs, post.ops[: t.end])), f"{ex.symbol}_trace_target{k}", options=ex.options
        )
        for k, t in enumerate(targets)
    ]
    return render_set(network.symbol, ex.chain.source, [network, *parts])


def _step(
    index: int, name: str, op: str, value: str, got: np.ndarray, ref: np.ndarray, atol: float, rtol: float
) -> TraceStep:
    err = errors(got, ref, atol, rtol)
    ratio = np.nan_to_num(err.ratio, nan=0.0)
    return TraceStep(
        index=index,
        name=name,
        op=op,
        value=value,
        width=int(np.asarray(got).shape[1]),
        max_abs=float(err.diff.max(initial=0.0)),
        max_rel=float(err.rel.max(initial=0.0)),
        worst_ratio=float(ratio.max(initial=0.0)),
        drifts=bool(err.failing.any()),
    )


def _preprocessing_step(
    ex: ExportedModel, inputs: np.ndarray, rows: list[int], prepared: np.ndarray, index: int, atol: float, rtol: float
) -> TraceStep:
    """The chain's preprocessing as one step: the C ``SYMBOL_preprocess`` against the Python transformers."""
    pre = ex.chain.pre
    assert pre is not None
    compiled = ex.compile(one_row=True).sibling(f"{ex.symbol}_preprocess", pre.n_inputs, pre.n_outputs)
    raw = np.asarray(inputs, dtype=np.float32)[rows]
    steps = f"column step {index}" if index == 0 else f"column steps 0-{index}"  # the inspect table's rows
    return _step(index, "preprocessing", steps, "input", compiled(raw), prepared, atol, rtol)
