"""The export's steps, the same for every kind of export: load, IR, render -> compile -> parity -> reference
rows -> files -> summary.

``export_spec(spec, outputs, checks)`` runs these steps for anything that can say what it exports
(:class:`Exportable`): one model (``exporter.spec.ModelSpec``) or a set of models compiled into one
library (a manifest, ``exporter.sets.manifest.ModelSet``). The command line builds the spec from its
flags and prints ``result.summary()``; the manifest builds it from TOML; Python callers build it
directly. Every file is written at the end, all at once or not at all.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from exporter.common.errors import ExportError, InputError
from exporter.common.progress import Progress
from exporter.run.request import Checks, Exportable, Outputs
from exporter.run.summary import Result

if TYPE_CHECKING:
    from exporter.backend import CSource
    from exporter.build.toolchain import CompiledModel
    from exporter.check.batch_bits import BatchCheck
    from exporter.check.subject import Exported, Report


def export_spec(
    spec: Exportable, outputs: Outputs, checks: Checks | None = None, progress: Progress | None = None
) -> Result:
    """Run every step for ``spec``; raises ``ExportError`` for the user's mistakes, before writing anything."""
    from exporter.check.library_card import card, infos, with_library
    from exporter.check.library_card import check_names as check_library_names
    from exporter.check.reference_rows import format_rows, ref_path, reference_rows
    from exporter.common.files import write_atomically
    from exporter.run.reports import report_files, traces

    checks = checks or Checks()
    progress = progress or Progress(enabled=False)
    outputs.check([*spec.files(), *([checks.rows_file] if checks.rows_file else [])])
    with progress.step("load+export", f"reading {spec.title}"):
        exports = spec.exports(progress)
    for warning in (w for ex in exports for w in ex.warnings):
        progress.warn(warning)
    single = len(exports) == 1
    _check_inputs(exports[0], outputs, checks, single)
    library = spec.library
    check_library_names([ex.symbol for ex in exports], library, spec.title)
    with ThreadPoolExecutor(2) as pool:  # the compilers run in their own processes: the references meanwhile
        # the parity build holds the networks and transforms, not the library's info and self-tests: those
        # embed the reference rows and the verdict, which are known only later (a --so library is the
        # final source, compiled once parity is known)
        building = pool.submit(_compile, _combined(spec, exports), exports, progress, True) if checks.parity else None
        batching = pool.submit(_batch_check, spec, exports, progress) if checks.parity and checks.batch else None
        with progress.step("reference rows", "computing the reference rows (the files' and the self-tests')"):
            ref_rows = [reference_rows(ex, atol=ex.options.atol, rtol=ex.options.rtol) for ex in exports]
        expected = [_expected(ex, checks, progress, single) for ex in exports] if building else []
        compiled = building.result() if building else None
    result = Result(spec, outputs, exports, timings=progress.timings)
    if compiled is not None:
        for ex, (rows, noise, python) in zip(exports, expected, strict=False):
            fn = compiled if ex is exports[0] else compiled.sibling(ex.symbol, *ex.source.widths[ex.symbol])
            what = f"checking parity against {ex.framework} on {len(rows):,} rows"
            with progress.step("parity", what if single else f"{ex.symbol}: {what}"):
                rule = ex.options
                result.reports[ex.symbol] = ex.check(fn, rows, rule.atol, rule.rtol, noise, python, rule.criterion)
    if batching is not None:
        batch = batching.result()
        for model in (m for ex in exports if (m := ex.model) is not None):  # a pipeline's C holds no network
            report = result.model_report(model)  # a mismatch fails the parity of the model whose network it is
            if report is not None and model.source.networks:
                report.batch = batch.only({net.name for net in model.source.networks})
    result.traces = traces(result, checks, progress)

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
    if outputs.document or outputs.report:
        files.update(report_files(result, checks, compiled, progress))
    write_atomically(files)
    return result


def _check_inputs(ex: Exported, outputs: Outputs, checks: Checks, single: bool) -> None:
    """The user's rows and the report's pT column must fit the model (known once it is loaded); a set's functions
    take rows of their own widths, and its report draws no one model's curves."""
    if not single and (checks.user_rows is not None or outputs.pt_column is not None):
        raise InputError("user_rows" if checks.user_rows is not None else "pt_column", "one model's: not for a set")
    n_inputs = ex.chain.n_inputs
    rows = checks.user_rows
    if rows is not None and (rows.ndim != 2 or rows.shape[1] != n_inputs):
        raise InputError("user_rows", f"shape {rows.shape}, the model takes {n_inputs} inputs per row")
    if outputs.pt_column is not None and outputs.pt_column >= n_inputs:
        raise InputError("pt_column", f"{outputs.pt_column}: the model has inputs 0 to {n_inputs - 1}")
    if outputs.pt_column is not None and ex.chain.n_noise:
        raise InputError("pt_column", "draws one curve per output: a generator's output is a distribution")


def _expected(
    ex: Exported, checks: Checks, progress: Progress, single: bool
) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """The parity rows (and a generator's noise rows) and the Python side of parity on them (``ex.expect``)."""
    rows = ex.inputs(checks.samples, checks.user_rows)
    noise = ex.noise(len(rows))
    what = f"computing the {ex.framework} reference on {len(rows):,} rows"
    with progress.step("parity", what if single else f"{ex.symbol}: {what}"):
        return rows, noise, ex.expect(rows, noise)


def _verdict(report: Report | None) -> str:
    """What ``SYMBOL_info`` says of parity: the report's verdict, or that it did not run."""
    return report.verdict() if report is not None else "not checked"


def _compile(source: CSource, exports: list[Exported], progress: Progress, one_isa: bool) -> CompiledModel:
    """One library for every model, loaded through the first model's symbol (the others are its siblings).

    ``one_isa``: only the instruction-set variant this CPU runs, which is what parity can check here
    (the file's other variants give the same bits, under --math fma those with FMA: tests/test_dispatch.py;
    the batch check compares them), and without the blocks of
    rows of ``SYMBOL_batch`` (parity calls one row at a time; the blocks give the same bits:
    tests/test_c_contract.py); a library written for the user (``--so``) holds all of it."""
    from exporter.build.toolchain import CompileError, build

    first = exports[0]
    message = "compiling the C" if len(exports) == 1 else f"compiling the {len(exports)} models into one library"
    chain = first.chain
    try:
        with progress.step("compile", message):
            through_first = first.edited(replace(source, symbol=first.symbol))  # a set's file carries the set's name
            return build(through_first, chain.n_inputs, chain.n_outputs, None, chain.n_noise, one_isa, one_isa)
    except CompileError as err:
        failed = ExportError(f"the C compiler failed (check CC and CFLAGS):\n{err}")
        failed.multiline = True  # the compiler's own lines (the CLI still escapes control characters)
        raise failed from None


def _combined(spec: Exportable, exports: list[Exported]) -> CSource:
    """The one file of every model, under the first one's symbol."""
    return replace(spec.combine([ex.source for ex in exports]), symbol=exports[0].symbol)


def _batch_check(spec: Exportable, exports: list[Exported], progress: Progress) -> BatchCheck:
    """``SYMBOL_batch`` against one call per row, in every variant this CPU runs (``exporter.check.batch_bits``):
    one more build, with every variant and the blocks of rows, which the parity build leaves out."""
    from exporter.build.toolchain import CompileError
    from exporter.check.batch_bits import build_and_run

    source = exports[0].edited(_combined(spec, exports))  # a test's edit changes this build's C as the parity build's
    try:
        with progress.step("compile", "compiling the batch check (every instruction set, blocks of rows)"):
            return build_and_run(source)
    except CompileError as err:
        raise ExportError(f"the C compiler failed (check CC and CFLAGS):\n{err}") from None
