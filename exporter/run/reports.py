"""What a run explains once parity is known: the traces it asks for, and the report (``--json``, ``--report``).

One model: its trace (on request, or when its parity failed) and its ``export`` document and page. A set (a
manifest): each model's trace as one model's, and for a pipeline the trace of each stage its diagnosis names,
on the rows of the comparison that names it; one ``set`` document and one page with a section per model and
per pipeline (``exporter/check/report``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from exporter.run.request import Checks
from exporter.run.summary import Result

if TYPE_CHECKING:
    from exporter.build.toolchain import CompiledModel
    from exporter.check.compare import ParityReport
    from exporter.check.pipeline_parity import PipelineReport
    from exporter.check.report import Sections
    from exporter.check.subject import Exported, ExportedModel
    from exporter.check.trace import Traced
    from exporter.common.progress import Progress


def traces(result: Result, checks: Checks, progress: Progress) -> list[Traced]:
    """Every trace the run asks for: ``checks.trace`` True traces every model (and the stages a failed pipeline's
    diagnosis names), None only what failed, False nothing. A trace that cannot run is reported, not raised."""
    if checks.trace is False:
        return []
    found: list[Traced] = []
    for ex in result.exports:
        report = result.reports.get(ex.symbol)
        if report is None or (checks.trace is None and report.passed):
            continue
        if ex.model is not None:
            found += _trace_model(ex.model, cast("ParityReport", report), checks, progress)
        else:
            for stage, comparison, stage_report in cast("PipelineReport", report).named_stages():
                model = next(part for part in ex.parts if part.symbol == stage)
                found += _traced(model, stage_report, progress, ex.symbol, stage, comparison)
    return found


def _trace_model(ex: ExportedModel, report: ParityReport, checks: Checks, progress: Progress) -> list[Traced]:
    """A model's trace: on request, or when its C disagrees with the framework (a batch that differs from one
    row is no step drifting from the framework: no trace for it)."""
    if not checks.trace and report.agrees:
        return []
    return _traced(ex, report, progress, ex.symbol)


def _traced(
    ex: ExportedModel,
    report: ParityReport,
    progress: Progress,
    symbol: str,
    stage: str | None = None,
    comparison: str | None = None,
) -> list[Traced]:
    """``ex`` traced on the worst rows of ``report`` (its own parity, or a pipeline stage's comparison)."""
    from exporter.check.trace import WORST_ROWS, Traced, trace

    if report.arrays is None or ex.graph is None:
        return []
    rows = [int(r) for r in report.worst_rows(WORST_ROWS)]
    n_steps = len(ex.graph.ops) + (len(ex.chain.post.ops) if ex.chain.post is not None else 0)
    what = f"tracing {n_steps} steps on the {len(rows)} worst rows (one C build)"
    try:
        with progress.step("trace", what if stage is None else f"{symbol}: stage {stage}: {what}"):
            arrays = report.arrays
            found = trace(ex, arrays.inputs, rows, report.atol, report.rtol, arrays.noise)
        return [Traced(symbol, found, None, stage, comparison)]
    except Exception as err:  # a diagnosis that fails must not cost the user the export itself
        from exporter.frontends.keras.quiet import brief  # Keras' texts quote whole configurations

        return [Traced(symbol, None, f"{type(err).__name__}: {brief(err)}", stage, comparison)]


def report_files(
    result: Result, checks: Checks, compiled: CompiledModel | None, progress: Progress
) -> dict[Path, bytes]:
    """The JSON document (kept in ``result.document``) and, with a report folder, its files and plots: a model's
    when the run exported one model, else a set's."""
    alone = result.exports[0].model if len(result.exports) == 1 else None
    if alone is not None:
        return _model_report(result, alone, checks, compiled, progress)
    return _set_report(result, checks, progress)


def _model_report(
    result: Result, ex: ExportedModel, checks: Checks, compiled: CompiledModel | None, progress: Progress
) -> dict[Path, bytes]:
    from exporter.check.report import draw, render_html
    from exporter.check.report import report_files as files_of
    from exporter.check.report.document import export_document

    outputs = result.outputs
    report = result.model_report(ex)
    sections = []
    if outputs.report and report is not None:
        with progress.step("report", "drawing the report's plots"):
            classifier_graph = ex.graph if ex.chain.post is None else None
            sections = draw(report, classifier_graph, ex.framework, outputs.pt_column, compiled, ex.reference)
    result.document = export_document(
        model=result.spec.title,
        ex=ex,
        report=report,
        samples=checks.samples,
        user_rows=0 if checks.user_rows is None else len(checks.user_rows),
        traced=next(iter(result.traces), None),
        files=_names(result),
        timings=progress.timings,
    )
    return files_of(outputs.report, result.document, render_html(result.document, sections)) if outputs.report else {}


def _set_report(result: Result, checks: Checks, progress: Progress) -> dict[Path, bytes]:
    from exporter.check.report import render_set_html
    from exporter.check.report import report_files as files_of
    from exporter.check.report.document import set_document

    outputs = result.outputs
    pages: dict[str, Sections] = {}
    if outputs.report and result.reports:
        with progress.step("report", f"drawing the report's plots for {len(result.exports)} functions"):
            pages = {ex.symbol: _pictures(ex, result) for ex in result.exports}
    result.document = set_document(
        manifest=result.spec.title,
        library=result.spec.library,
        exports=result.exports,
        reports=result.reports,
        traces=result.traces,
        samples=checks.samples,
        files=_names(result),
        timings=progress.timings,
    )
    if not outputs.report:
        return {}
    pages = {ex.symbol: pages.get(ex.symbol, []) for ex in result.exports}
    return files_of(outputs.report, result.document, render_set_html(result.document, pages))


def _pictures(ex: Exported, result: Result) -> Sections:
    """The plots of one function of a set: a model's as its own report draws them, a pipeline's comparisons."""
    from exporter.check.report import draw, draw_pipeline

    report = result.reports.get(ex.symbol)
    if report is None:
        return []
    model = ex.model
    if model is not None:
        graph = model.graph if model.chain.post is None else None
        return draw(cast("ParityReport", report), graph, model.framework)
    return draw_pipeline(cast("PipelineReport", report), ex.framework)


def _names(result: Result) -> dict[str, str | None]:
    return {k: None if v is None else str(v) for k, v in result.outputs.names().items()}
