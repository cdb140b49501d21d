"""``lamarr-export inspect MODEL``: the model as the exporter sees it; exit 0 if exportable, else 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exporter.backend.headline import shape
from exporter.check.report.document import to_json
from exporter.cli.output import emit
from exporter.cli.parser import CLI_WORDS
from exporter.common.errors import EXIT_OK, EXIT_USER
from exporter.common.plural import count, noun
from exporter.common.progress import Progress
from exporter.common.version import __version__
from exporter.frontends.onnx import is_onnx_file


def run_inspect(args: argparse.Namespace) -> int:
    """The table, exit 0 if the model is exportable, else 2 (after the table)."""
    from exporter.check.inspect import STAGES, inspect_export, inspect_keras, inspect_onnx
    from exporter.check.report.document import inspect_document
    from exporter.cli.export import spec_from_args
    from exporter.common.errors import UnsupportedModelError

    spec = spec_from_args(args)
    progress = Progress(enabled=not (args.quiet or args.json))
    path = Path(args.model) if args.model else None
    keras_file = path is not None and (path.suffix in (".keras", ".h5", ".hdf5") or path.is_dir())
    onnx_file = path is not None and is_onnx_file(path)
    chain = args.preprocess or args.log_columns or args.target_transform or args.output_activation
    framework, version = ("ONNX Runtime", "") if onnx_file else ("Keras", "")
    if keras_file and not chain:
        inspection = inspect_keras(args.model, args.name, progress)  # shows a refused network layer by layer
    elif onnx_file and not chain:
        with CLI_WORDS.wording():  # refused nodes in place; input_shape's errors in the flag's words
            inspection = inspect_onnx(path, args.name, spec.input_shape, spec.noise)
    else:
        try:
            with progress.step("load+export", f"reading {spec.title}"), CLI_WORDS.wording():
                ex = spec.build()
        except UnsupportedModelError:
            if onnx_file:
                inspection = inspect_onnx(path, args.name, spec.input_shape, spec.noise)
            elif keras_file:
                inspection = inspect_keras(args.model, args.name, progress)
            else:
                raise
        else:
            inspection = inspect_export(ex.chain, ex.symbol, ex.source.stack_bytes, ex.options.dtype)
            for warning in ex.warnings:
                progress.warn(warning)
            framework, version = ex.framework, ex.framework_version
    model = args.model or args.flax
    if args.json:
        emit(to_json(inspect_document(model, inspection, framework, inspection.framework_version or version)))
    else:
        widths = (inspection.n_inputs, inspection.n_noise, inspection.n_outputs)
        known = f"{shape(*widths)}, " if inspection.n_inputs and inspection.n_outputs is not None else ""
        emit(
            f"lamarr-export {__version__} inspect: {model}, symbol {inspection.symbol}\n"
            f"  {known}{count(len(inspection.rows), 'row')}: {STAGES[inspection.stage]}\n"
            "    " + inspection.table().replace("\n", "\n    ") + "\n"
        )
    if not inspection.exportable:
        kinds = sorted({p.kind for p in inspection.problems}) if onnx_file else ["layer"]
        problems = f"{len(inspection.problems)} " + "/".join(noun(len(inspection.problems), k) for k in kinds)
        emit(f"lamarr-export: error: {inspection.source}: cannot export {problems}\n", sys.stderr)
        return EXIT_USER
    return EXIT_OK
