"""``lamarr-export models.toml``: every model of a manifest into one ``.c``, ``.h``, reference rows (and ``.so``).

Each model is compiled into the one library and checked against its Python frameworks through
its own symbol there, so the parity proven is the parity of the file that is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from exporter.check.report.document import to_json
from exporter.cli.output import emit
from exporter.cli.parser import parser
from exporter.common.errors import EXIT_OK, EXIT_PARITY, ExportError
from exporter.common.escaping import cmake_list_item
from exporter.common.progress import Progress

# Flags that describe one model: in a manifest they are keys of its entry, or not supported.
PER_MODEL = {
    "name": "--name (the symbols are the manifest's [models.SYMBOL] names)",
    "inputs": "--inputs",
    "pt_column": "--pt-column",
    "log_columns": "--log-columns (a manifest key)",
    "preprocess": "--preprocess (a manifest key)",
    "target_transform": "--target-transform (a manifest key)",
    "output_activation": "--output-activation (a manifest key)",
    "noise": "--noise (a manifest key)",
    "input_names": "--input-names (the manifest key inputs)",
    "output_names": "--output-names (the manifest key outputs)",
    "flax": "--flax (a manifest key)",
    "flax_kwargs": "--flax-kwargs (a manifest key)",
    "params": "--params (a manifest key)",
    "n_inputs": "--n-inputs (a manifest key)",
}


def is_manifest(model: str | None) -> bool:
    return bool(model) and Path(model).suffix == ".toml"  # type: ignore[arg-type]


def run_manifest(args: argparse.Namespace) -> int:
    """Export, compile once, check every model, write atomically; exit 1 if any model fails parity. ``--json``,
    ``--report`` and ``--trace`` cover every model and pipeline (``exporter.run.reports``)."""
    from exporter.backend.naming import symbol_from_stem
    from exporter.cli.options import c_path, options_from_args, report_dir
    from exporter.run.request import Checks, Outputs
    from exporter.run.steps import export_spec
    from exporter.sets.manifest import ModelSet, read_manifest

    flags = options_from_args(args)  # for every entry, as docs/manifests.md says (or refused there, by name)
    if args.depends:
        for flag in ("json", "report", "trace"):
            if getattr(args, flag):
                raise ExportError(f"--depends prints the files the manifest reads, one per line: not with --{flag}")
        files = dict.fromkeys(str(p.resolve()) for entry in read_manifest(args.model, flags) for p in entry.files())
        for file in files:  # CMake reads the lines back as a list: a path it would split is refused, not listed
            try:
                cmake_list_item(file)
            except ValueError as err:
                raise ExportError(f"{args.model}: --depends: {file!r}: {err}; rename it") from None
        emit("\n".join(files) + "\n")
        return EXIT_OK
    defaults = parser()
    for key, flag in PER_MODEL.items():
        if getattr(args, key) != defaults.get_default(key):  # given, even as 0 (--pt-column 0)
            raise ExportError(f"{args.model}: {flag} does not go with a manifest")
    manifest = Path(args.model)
    if not manifest.is_file():
        raise ExportError(f"{manifest}: no such manifest")
    out = c_path(args.output, manifest.stem)
    report = report_dir(args)
    spec = ModelSet(symbol_from_stem(out.stem), manifest, read_manifest(manifest, flags), tuple(args.trust))
    outputs = Outputs(out, so=Path(args.so) if args.so else None, report=report, document=args.json, card=True)
    # --trace: each model whose parity failed, each stage a failed pipeline's diagnosis names; else none
    checks = Checks(parity=not args.no_check, samples=args.samples, trace=None if args.trace else False)
    result = export_spec(spec, outputs, checks, Progress(enabled=not (args.quiet or args.json)))
    emit(to_json(result.document) if args.json else result.summary())
    return EXIT_OK if result.passed else EXIT_PARITY
