"""The one export pipeline: load, IR, render -> compile -> parity -> reference rows -> files -> summary.

``export_spec(spec, outputs, checks)`` runs these steps for anything that can say what it exports
(:class:`Exportable`): one model (``exporter.spec.ModelSpec``) or a set of models compiled into one
library (a manifest, ``exporter.manifest.ModelSet``). The command line builds the spec from its
flags and prints ``result.summary()``; the manifest builds it from TOML; Python callers build it
directly. Every file is written at the end, all at once or not at all.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from exporter.criteria import DEFAULT_CRITERION
from exporter.errors import ExportError, InputError
from exporter.files import check_writable
from exporter.parity import DEFAULT_ATOL, DEFAULT_RTOL, DEFAULT_SAMPLES, ParityReport, in_chunks
from exporter.progress import Progress

if TYPE_CHECKING:
    from exporter.api import Export
    from exporter.backend import CSource
    from exporter.batchcheck import BatchCheck
    from exporter.toolchain import CompiledModel
    from exporter.trace import Trace


class Exportable(Protocol):
    """What the pipeline exports: one or more models that end up in one ``.c`` and one ``.h``."""

    @property
    def title(self) -> str:
        """What the user named: a model file, a Flax class, a manifest."""
        ...

    def files(self) -> list[Path]:
        """The files read (a build system's dependencies)."""
        ...

    def exports(self, progress: Progress) -> list[Export]:
        """Every model loaded, as IR and rendered C; the first one's symbol loads the library."""
        ...

    def combine(self, parts: list[CSource]) -> CSource:
        """The one ``.c`` and ``.h`` of the rendered models."""
        ...

    def rows_title(self, exports: list[Export]) -> str:
        """The title of the reference-rows file."""
        ...


def batch_check_wanted() -> bool:
    """The batch check (``exporter.batchcheck``) is on unless ``LAMARR_EXPORT_BATCH_CHECK=0``: its build
    compiles every variant with its blocks of rows, about five times the parity build; a test suite
    exporting hundreds of small models leaves it to the tests about it (tests/conftest.py)."""
    return os.environ.get("LAMARR_EXPORT_BATCH_CHECK", "1") != "0"


@dataclass
class Checks:
    """What the pipeline proves: parity on ``samples`` random rows (plus edge rows and ``user_rows``).

    ``trace``: True traces every step on the worst rows, None only when parity fails, False never.
    An export's own ``parity`` settings (a manifest entry's ``criterion``, ``atol``, ``rtol``) override these.
    """

    def rule(self, own: dict[str, Any]) -> tuple[str, float, float]:
        """Criterion, atol and rtol for an export with settings ``own`` (its keys win over these)."""
        return own.get("criterion", self.criterion), own.get("atol", self.atol), own.get("rtol", self.rtol)

    parity: bool = True
    samples: int = DEFAULT_SAMPLES
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL
    criterion: str = DEFAULT_CRITERION  # "float32" (exporter/criteria.py) or "fixed" (atol, rtol)
    user_rows: np.ndarray | None = None
    trace: bool | None = None
    rows_file: Path | None = None  # the file ``user_rows`` came from: an input, never to be written over
    batch: bool = field(default_factory=batch_check_wanted)  # SYMBOL_batch against one call per row


@dataclass
class Outputs:
    """Where the results go: ``c`` (the header beside it as ``.h``, the reference rows as ``.ref.txt``),
    the compiled library ``so``, a ``report`` folder (``pt_column``: the input its curves are drawn
    against); ``document`` makes the JSON document even without a report (for ``--json``)."""

    c: Path
    so: Path | None = None
    report: Path | None = None
    pt_column: int | None = None
    document: bool = False
    card: bool = False  # also NAME.plugins.json: what SQLamarr's plugins need (exporter/library.py)

    def check(self, inputs: list[Path]) -> None:
        """No output may be one of the ``inputs`` or another output: refused before anything is read or written.

        Files are compared as the file system knows them (symbolic and hard links, ``..``), so two
        spellings of one file are one file.
        """
        read = {_identity(Path(p)): p for p in inputs}
        written: dict[object, str] = {}
        for kind, path in self.names().items():
            if path is None:
                continue
            key = _identity(path)
            what = OUTPUT_KINDS[kind]
            if key in read:
                raise ExportError(f"{path}: the {what} would overwrite an input ({read[key]})")
            if key in written:
                raise ExportError(f"{path}: both the {written[key]} and the {what} would be written there")
            written[key] = what
            check_writable(path)

    def names(self) -> dict[str, Path | None]:
        """Every output file by kind, as the JSON document lists them."""
        report = self.report
        return {
            "c": self.c,
            "h": self.c.with_suffix(".h"),
            "ref": self.c.with_suffix(".ref.txt"),
            "so": self.so,
            "card": self.c.with_suffix(".plugins.json") if self.card else None,
            "report_json": report / "report.json" if report else None,
            "report_html": report / "report.html" if report else None,
        }


OUTPUT_KINDS = {
    "c": "C file (-o)",
    "h": "header (beside -o)",
    "ref": "reference rows (beside -o)",
    "so": "library (--so)",
    "card": "plugin card (beside -o)",
    "report_json": "report.json (--report)",
    "report_html": "report.html (--report)",
}


def _identity(path: Path) -> object:
    """The resolved path's device and inode when it exists (the same for every link to it), else the path."""
    resolved = path.resolve()  # a folder that does not exist yet still resolves (`new/../model.keras`)
    try:
        status = resolved.stat()
    except OSError:
        return resolved
    return (status.st_dev, status.st_ino)


@dataclass
class Result:
    """What a run made: the exports, their parity reports (by symbol), the trace and the timings."""

    spec: Exportable
    outputs: Outputs
    exports: list[Export]
    reports: dict[str, ParityReport] = field(default_factory=dict)
    trace: Trace | None = None
    trace_error: str | None = None
    document: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """No parity check failed (an unchecked export passes: nothing was found wrong)."""
        return all(r.passed for r in self.reports.values())

    def summary(self) -> str:
        from exporter.summary import summary

        return summary(self)


def export_spec(
    spec: Exportable, outputs: Outputs, checks: Checks | None = None, progress: Progress | None = None
) -> Result:
    """Run every step for ``spec``; raises ``ExportError`` for the user's mistakes, before writing anything."""
    from exporter.files import write_atomically
    from exporter.library import card, infos, with_library
    from exporter.library import check_names as check_library_names
    from exporter.refrows import format_rows, ref_path, reference_rows

    checks = checks or Checks()
    progress = progress or Progress(enabled=False)
    outputs.check([*spec.files(), *([checks.rows_file] if checks.rows_file else [])])
    with progress.step("load+export", f"reading {spec.title}"):
        exports = spec.exports(progress)
    for warning in (w for ex in exports for w in ex.warnings):
        progress.warn(warning)
    single = len(exports) == 1
    _check_inputs(exports[0], outputs, checks)
    library = getattr(spec, "library", None)
    check_library_names([ex.symbol for ex in exports], library, spec.title)
    with ThreadPoolExecutor(2) as pool:  # the compilers run in their own processes: the references meanwhile
        # the parity build holds the networks and transforms, not the library's info and self-tests: those
        # embed the reference rows and the verdict, which are known only later (a --so library is the
        # final source, compiled once parity is known)
        building = pool.submit(_compile, _combined(spec, exports), exports, progress, True) if checks.parity else None
        batching = pool.submit(_batch_check, spec, exports, progress) if checks.parity and checks.batch else None
        with progress.step("reference rows", "computing the reference rows (the files' and the self-tests')"):
            ref_rows = [reference_rows(ex, atol=checks.atol, rtol=checks.rtol) for ex in exports]
        expected = [_expected(ex, checks, progress, single) for ex in exports] if building else []
        compiled = building.result() if building else None
    result = Result(spec, outputs, exports, timings=progress.timings)
    if compiled is not None:
        for ex, (rows, noise, reference) in zip(exports, expected, strict=False):
            fn = compiled if ex is exports[0] else compiled.sibling(ex.symbol, *ex.source.widths[ex.symbol])
            what = f"checking parity against {ex.framework} on {len(rows):,} rows"
            with progress.step("parity", what if single else f"{ex.symbol}: {what}"):
                criterion, atol, rtol = checks.rule(getattr(ex, "parity", {}))
                result.reports[ex.symbol] = ex.check(fn, rows, atol, rtol, noise, reference, criterion)
    if batching is not None:
        batch = batching.result()
        for ex in exports:  # each model's networks on its own report: a mismatch fails that model's parity
            report = result.reports.get(ex.symbol)
            if isinstance(report, ParityReport) and ex.source.networks:
                report.batch = batch.only({net.name for net in ex.source.networks})
    if single:
        result.trace, result.trace_error = _trace(checks, exports[0], result.reports.get(exports[0].symbol), progress)

    source = spec.combine([ex.final_source(result.reports.get(ex.symbol)) for ex in exports])
    verdicts = {ex.symbol: _verdict(result.reports.get(ex.symbol)) for ex in exports}
    information = infos(exports, ref_rows, verdicts, library)  # the weights hashed once, for the .c and the card
    source = with_library(source, exports, ref_rows, information, library)
    files = {outputs.c: source.c.encode(), outputs.c.with_suffix(".h"): source.h.encode()}
    if outputs.card:
        so_name = outputs.so.name if outputs.so else f"lib{outputs.c.stem}.so"
        files[outputs.c.with_suffix(".plugins.json")] = card(so_name, information).encode()
    files[ref_path(outputs.c)] = format_rows(spec.rows_title(exports), [ex.source for ex in exports], ref_rows).encode()
    if outputs.so:  # every variant and block of rows, the info with the verdict: the file as written
        written = _compile(source, exports, progress, False)  # held: the library's folder goes with it
        files[outputs.so] = written.library.read_bytes()
    if single and (outputs.document or outputs.report):
        files.update(_report(result, checks, compiled, progress))
    write_atomically(files)
    return result


def _check_inputs(ex: Export, outputs: Outputs, checks: Checks) -> None:
    """The user's rows and the report's pT column must fit the model (known once it is loaded)."""
    n_inputs = ex.chain.n_inputs
    rows = checks.user_rows
    if rows is not None and (rows.ndim != 2 or rows.shape[1] != n_inputs):
        raise InputError("user_rows", f"shape {rows.shape}, the model takes {n_inputs} inputs per row")
    if outputs.pt_column is not None and outputs.pt_column >= n_inputs:
        raise InputError("pt_column", f"{outputs.pt_column}: the model has inputs 0 to {n_inputs - 1}")
    if outputs.pt_column is not None and ex.chain.n_noise:
        raise InputError("pt_column", "draws one curve per output: a generator's output is a distribution")


def _expected(
    ex: Export, checks: Checks, progress: Progress, single: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The parity rows (and a generator's noise rows) and the frameworks' outputs on them."""
    rows = ex.inputs(checks.samples, checks.user_rows)
    noise = ex.noise(len(rows))
    what = f"computing the {ex.framework} reference on {len(rows):,} rows"
    with progress.step("parity", what if single else f"{ex.symbol}: {what}"):
        return rows, noise, in_chunks(ex.reference, rows, *([] if noise is None else [noise]))


def _verdict(report: Any) -> str:
    """What ``SYMBOL_info`` says of parity: the report's verdict, or that it did not run."""
    return report.verdict() if report is not None else "not checked"


def _compile(source: CSource, exports: list[Export], progress: Progress, one_isa: bool) -> CompiledModel:
    """One library for every model, loaded through the first model's symbol (the others are its siblings).

    ``one_isa``: only the instruction-set variant this CPU runs, which is what parity can check here
    (the file's other variants give the same bits: tests/test_dispatch.py), and without the blocks of
    rows of ``SYMBOL_batch`` (parity calls one row at a time; the blocks give the same bits:
    tests/test_c_contract.py); a library written for the user (``--so``) holds all of it."""
    from exporter.toolchain import CompileError

    first = exports[0]
    message = "compiling the C" if len(exports) == 1 else f"compiling the {len(exports)} models into one library"
    chain = first.chain
    try:
        with progress.step("compile", message):
            n_in, n_out, n_noise = chain.n_inputs, chain.n_outputs, chain.n_noise
            through_first = replace(source, symbol=first.symbol)  # a set's file carries the set's name
            return first.compile_source(through_first, n_in, n_out, n_noise=n_noise, one_isa=one_isa, one_row=one_isa)
    except CompileError as err:
        failed = ExportError(f"the C compiler failed (check CC and CFLAGS):\n{err}")
        failed.multiline = True  # the compiler's own lines (the CLI still escapes control characters)
        raise failed from None


def _combined(spec: Exportable, exports: list[Export]) -> CSource:
    """The one file of every model, under the first one's symbol."""
    return replace(spec.combine([ex.source for ex in exports]), symbol=exports[0].symbol)


def _batch_check(spec: Exportable, exports: list[Export], progress: Progress) -> BatchCheck:
    """``SYMBOL_batch`` against one call per row, in every variant this CPU runs (``exporter.batchcheck``):
    one more build, with every variant and the blocks of rows, which the parity build leaves out."""
    from exporter.batchcheck import build_and_run
    from exporter.toolchain import CompileError

    source = _combined(spec, exports)
    edit = getattr(exports[0], "c_edit", None)  # the test hook changes this build's C as it changes the parity build's
    source = replace(source, c=edit(source.c)) if edit is not None else source
    try:
        with progress.step("compile", "compiling the batch check (every instruction set, blocks of rows)"):
            return build_and_run(source)
    except CompileError as err:
        raise ExportError(f"the C compiler failed (check CC and CFLAGS):\n{err}") from None


def _trace(
    checks: Checks, ex: Export, report: ParityReport | None, progress: Progress
) -> tuple[Trace | None, str | None]:
    """Trace on request, and when parity failed unless told not to; a trace that cannot run is reported."""
    from exporter.trace import WORST_ROWS, trace

    # a batch that differs from one row is not a step that drifts from the framework: no trace for it
    wanted = checks.trace or (checks.trace is None and report is not None and not report.agrees)
    if report is None or report.arrays is None or not wanted or ex.graph is None:
        return None, None
    rows = [int(r) for r in report.worst_rows(WORST_ROWS)]
    n_steps = len(ex.graph.ops) + (len(ex.chain.post.ops) if ex.chain.post is not None else 0)
    message = f"tracing {n_steps} steps on the {len(rows)} worst rows (one C build)"
    try:
        with progress.step("trace", message):
            return trace(ex, report.arrays.inputs, rows, report.atol, report.rtol, report.arrays.noise), None
    except Exception as err:  # a diagnosis that fails must not cost the user the export itself
        from exporter.frontends.keras.quiet import brief  # Keras' texts quote whole configurations

        return None, f"{type(err).__name__}: {brief(err)}"


def _report(result: Result, checks: Checks, compiled: CompiledModel | None, progress: Progress) -> dict[Path, bytes]:
    """The JSON document (kept in ``result.document``) and, with a report folder, its files and plots."""
    from exporter.inspect import inspect_export
    from exporter.report import draw, report_files
    from exporter.report.document import export_document

    ex, outputs = result.exports[0], result.outputs
    report = result.reports.get(ex.symbol)
    sections = []
    if outputs.report and report is not None:
        with progress.step("report", "drawing the report's plots"):
            classifier_graph = ex.graph if ex.chain.post is None else None
            sections = draw(report, classifier_graph, ex.framework, outputs.pt_column, compiled, ex.reference)
    result.document = export_document(
        model=result.spec.title,
        ex=ex,
        inspection=inspect_export(ex.chain, ex.symbol, ex.source.stack_bytes, ex.dtype),
        report=report,
        samples=checks.samples,
        user_rows=0 if checks.user_rows is None else len(checks.user_rows),
        trace=result.trace,
        trace_error=result.trace_error,
        files={k: None if v is None else str(v) for k, v in outputs.names().items()},
        timings=progress.timings,
    )
    return report_files(outputs.report, result.document, sections) if outputs.report else {}
