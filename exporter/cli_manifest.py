"""``lamarr-export models.toml``: every model of a manifest into one ``.c``, ``.h``, reference rows (and ``.so``).

Each model is compiled into the one library and checked against its Python frameworks through
its own symbol there, so the parity proven is the parity of the file that is written.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from exporter.errors import ExportError
from exporter.progress import Progress
from exporter.version import __version__

if TYPE_CHECKING:
    from exporter.manifest import ModelSet
    from exporter.parity import ParityReport

# Flags that describe one model: in a manifest they are keys of its entry, or not supported.
PER_MODEL = {
    "name": "--name (the symbols are the manifest's [models.SYMBOL] names)",
    "inputs": "--inputs",
    "trace": "--trace",
    "report": "--report",
    "pt_column": "--pt-column",
    "json": "--json",
    "log_columns": "--log-columns (a manifest key)",
    "preprocess": "--preprocess (a manifest key)",
    "target_transform": "--target-transform (a manifest key)",
    "output_activation": "--output-activation (a manifest key)",
    "noise": "--noise (a manifest key)",
    "flax": "--flax (a manifest key)",
    "flax_kwargs": "--flax-kwargs (a manifest key)",
    "params": "--params (a manifest key)",
    "n_inputs": "--n-inputs (a manifest key)",
}


def is_manifest(model: str | None) -> bool:
    return bool(model) and Path(model).suffix == ".toml"  # type: ignore[arg-type]


def run_manifest(args: argparse.Namespace) -> int:
    """Export, compile once, check every model, write atomically; exit 1 if any model fails parity."""
    from exporter.api import write_atomically
    from exporter.backend.naming import symbol_from_stem
    from exporter.manifest import export_manifest, read_manifest
    from exporter.refrows import format_rows, ref_path, reference_rows
    from exporter.toolchain import CompileError, build

    if args.depends:
        for entry in read_manifest(args.model):
            print("\n".join(str(p.resolve()) for p in entry.files()))
        return 0
    for key, flag in PER_MODEL.items():
        if getattr(args, key) not in (None, False, [], 0):
            raise ExportError(f"{args.model}: {flag} does not go with a manifest")
    manifest = Path(args.model)
    if not manifest.is_file():
        raise ExportError(f"{manifest}: no such manifest")
    c_path = Path(args.output) if args.output else Path(manifest.stem + ".c")
    if c_path.suffix != ".c":
        raise ExportError(f"-o {c_path}: the output must be a .c file (the header is written beside it)")
    progress = Progress(enabled=not args.quiet)
    with progress.step("load+export", f"reading {manifest}"):
        model_set = export_manifest(manifest, symbol_from_stem(c_path.stem), lambda s: progress.say(f"model {s}"))

    reports: dict[str, ParityReport] = {}
    compiled = None
    if not args.no_check or args.so:
        try:
            with progress.step("compile", f"compiling the {len(model_set.exports)} models into one library"):
                first = model_set.exports[0]  # the library is loaded through one symbol, the others are siblings
                compiled = build(replace(model_set.source(), symbol=first.symbol), 0, 0)
        except CompileError as err:
            raise ExportError(f"the C compiler failed (check CC and CFLAGS):\n{err}") from None
    if compiled is not None and not args.no_check:
        for ex in model_set.exports:
            chain = ex.chain
            fn = compiled.sibling(ex.symbol, chain.n_inputs, chain.n_outputs, chain.n_noise)
            rows = ex.inputs(args.samples)
            with progress.step("parity", f"{ex.symbol}: parity against {ex.framework} on {len(rows):,} rows"):
                reports[ex.symbol] = ex.check(fn, rows, args.atol, args.rtol)
    source = model_set.source(reports)
    references = [reference_rows(ex, atol=args.atol, rtol=args.rtol) for ex in model_set.exports]
    files = {
        c_path: source.c.encode(),
        c_path.with_suffix(".h"): source.h.encode(),
        ref_path(c_path): format_rows(manifest.name, [ex.source for ex in model_set.exports], references).encode(),
    }
    if args.so:
        files[Path(args.so)] = compiled.library.read_bytes()  # type: ignore[union-attr]
    write_atomically(files)
    _summary(args, model_set, c_path, reports)
    return 1 if any(not r.passed for r in reports.values()) else 0


def _summary(args: argparse.Namespace, model_set: ModelSet, c_path: Path, reports: dict[str, ParityReport]) -> None:
    outputs = [str(c_path), str(c_path.with_suffix(".h")), str(c_path.with_suffix(".ref.txt"))]
    print(f"lamarr-export {__version__}: {args.model} -> {', '.join(outputs + ([args.so] if args.so else []))}")
    for ex in model_set.exports:
        chain = ex.chain
        noise = f" + {chain.n_noise} noise" if chain.n_noise else ""
        print(
            f"  symbol {ex.symbol}: {chain.n_inputs} inputs{noise} -> {chain.n_outputs} outputs, "
            f"{chain.n_params:,} parameters; functions: {', '.join(ex.source.functions)}"
        )
        report = reports.get(ex.symbol)
        if report is None:
            print("    parity: not checked (--no-check)")
        else:
            print(f"    parity: {report.verdict()}")
            if not report.passed:
                print("      " + report.table().replace("\n", "\n      "))
