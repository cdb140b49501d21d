"""What a run made (:class:`Result`) and the text it prints on stdout: what was written, each symbol's shape,
parity (and trace), timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from exporter.backend.headline import headline, shape
from exporter.common.escaping import terminal_line
from exporter.common.plural import count
from exporter.common.progress import in_order
from exporter.common.version import __version__

if TYPE_CHECKING:
    from exporter.check.compare import ParityReport
    from exporter.check.subject import Exported, ExportedModel, Report
    from exporter.check.trace import Traced
    from exporter.run.request import Exportable, Outputs


def summary(result: Result) -> str:
    """One model in detail (its steps, the parity table, the trace); a set of models one symbol at a time."""
    model = result.exports[0].model if result.spec.one_model else None
    lines = model_summary(result, model) if model is not None else set_summary(result)
    return "\n".join(lines) + "\n"


def _indent(text: str, by: str) -> str:
    return by + text.replace("\n", "\n" + by)


def _written(result: Result) -> str:
    o = result.outputs
    files = [str(o.c), str(o.c.with_suffix(".h"))]
    if not result.spec.one_model:
        files.append(str(o.c.with_suffix(".ref.txt")))
    return f"lamarr-export {__version__}: {result.spec.title} -> {', '.join(files + ([str(o.so)] if o.so else []))}"


def model_summary(result: Result, ex: ExportedModel) -> list[str]:
    """The run of one model ``ex``: its steps as ``inspect`` numbers them, its parity table and its trace."""
    chain, source = ex.chain, ex.source
    report = result.model_report(ex)
    steps = [op for stage, _ in chain.stages for op in stage.ops]
    lines = [
        _written(result),
        f"  symbol {headline(ex.symbol, chain, count(len(steps), 'step'), source)}",
    ]
    if len(source.functions) > 1:
        lines.append(f"  functions: {', '.join(source.functions)}")
    digits = len(str(len(steps) - 1))
    # inspect's numbers; a name from a file on one line, whatever it holds (the CLI escapes the rest)
    lines += [
        f"    {i:>{digits}}  {terminal_line(op.name)}: {terminal_line(op.describe())}" for i, op in enumerate(steps)
    ]
    if report is None:
        lines.append("  parity: not checked (--no-check)")
    else:
        lines.append(f"  parity: {report.verdict()} [{ex.framework_version or ex.framework}]")
        lines.append(_indent(report.table(), "    "))
        if not report.passed:
            lines.append(f"    worst input row: [{', '.join(f'{v:.6g}' for v in report.worst_input)}]")
    lines += [_indent(line, "  ") for traced in result.traces for line in traced.lines()]
    return [*lines, *_report_line(result), "  " + time_line(result.timings)]


def _report_line(result: Result) -> list[str]:
    folder = result.outputs.report
    return [] if folder is None else [f"  report: {folder / 'report.html'}, {folder / 'report.json'}"]


def time_line(timings: dict[str, float]) -> str:
    """``time: load+export 1.52 s, ...`` in the steps' order. The compiler runs in its own process while
    Python computes the reference (timed under ``parity``): when both ran, their times overlap, and the line
    says so, lest they be added up as the run's length."""
    overlap = " (compile and parity overlap)" if {"compile", "parity"} <= timings.keys() else ""
    return f"time{overlap}: " + ", ".join(f"{k} {v:.2f} s" for k, v in in_order(timings).items())


def set_summary(result: Result) -> list[str]:
    lines = [_written(result)]
    for ex in result.exports:
        chain = ex.chain
        lines.append(
            f"  symbol {ex.symbol}: {shape(chain.n_inputs, chain.n_noise, chain.n_outputs)}, "
            f"{count(chain.n_params, 'parameter')}; functions: {', '.join(ex.source.functions)}"
        )
        report = result.reports.get(ex.symbol)
        if report is None:
            lines.append("    parity: not checked (--no-check)")
        else:
            lines.append(f"    parity: {report.verdict()}")
            if not report.passed or ex.model is None:  # a composition's: the diagnosis and the error distribution
                lines.append(_indent(report.table(), "      "))
        traced = [line for t in result.traces if t.symbol == ex.symbol for line in t.lines()]
        lines += [_indent(line, "    ") for line in traced]
    return [*lines, *_report_line(result)]


@dataclass
class Result:
    """What a run made: the exports, their parity reports (by symbol), the traces and the timings."""

    spec: Exportable
    outputs: Outputs
    exports: list[Exported]
    reports: dict[str, Report] = field(default_factory=dict)
    traces: list[Traced] = field(default_factory=list)  # each model's, and each pipeline stage's its diagnosis named
    document: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """No parity check failed (an unchecked export passes: nothing was found wrong)."""
        return all(r.passed for r in self.reports.values())

    def model_report(self, ex: ExportedModel) -> ParityReport | None:
        """The report of model ``ex``, a ``ParityReport`` as its ``check`` makes (None: not checked)."""
        return cast("ParityReport | None", self.reports.get(ex.symbol))

    def summary(self) -> str:
        """The text the command line prints on stdout (see the module's docstring)."""
        return summary(self)
