"""``lamarr-export MODEL [flags]``: the flags made into a model spec, run through the export's steps."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from exporter.backend.naming import symbol_from_stem
from exporter.check.report.document import to_json
from exporter.cli.options import c_path, options_from_args, report_dir
from exporter.cli.output import emit
from exporter.cli.parser import CLI_WORDS
from exporter.common.errors import EXIT_OK, EXIT_PARITY, ExportError
from exporter.common.progress import Progress
from exporter.frontends.onnx import input_shapes
from exporter.spec import ModelSpec, kwargs_from_json


def spec_from_args(args: argparse.Namespace) -> ModelSpec:
    """The model the flags describe (export and inspect share them), checked before any file is read."""
    with CLI_WORDS.wording():
        spec = ModelSpec(
            name=args.name,
            model=Path(args.model) if args.model else None,
            flax=args.flax,
            flax_kwargs=kwargs_from_json(args.flax_kwargs),
            params=Path(args.params) if args.params else None,
            n_inputs=args.n_inputs,
            preprocess=[Path(p) for p in args.preprocess],
            log_columns=args.log_columns,
            target_transform=Path(args.target_transform) if args.target_transform else None,
            output_activation=args.output_activation,
            noise=args.noise,
            input_shape=input_shapes(args.input_shape),
            trust=args.trust,
            options=options_from_args(args),
            words=CLI_WORDS,
        )
        spec.check()
    return spec


NPY_MAGIC = b"\x93NUMPY"


def _user_rows(path: str | None) -> np.ndarray | None:
    """The rows of ``--inputs``: a non-empty numeric .npy array (anything else named plainly, never numpy's words
    about pickles for a text file)."""
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise ExportError(
                    f"--inputs {path}: not a .npy file; save the rows with numpy.save "
                    "(a text file: numpy.save('rows.npy', numpy.loadtxt(...)))"
                )
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ExportError(f"--inputs {path}: cannot read as a .npy array ({err})") from None
    if rows.ndim not in (1, 2) or not np.issubdtype(rows.dtype, np.number):
        raise ExportError(f"--inputs {path}: expected a numeric (rows x inputs) array, got {rows.dtype} {rows.shape}")
    if rows.size == 0:
        raise ExportError(f"--inputs {path}: holds no rows (shape {rows.shape})")
    return rows


def run(args: argparse.Namespace) -> int:
    from exporter.cli.manifest import is_manifest, run_manifest
    from exporter.run.request import Checks, Outputs
    from exporter.run.steps import export_spec

    if is_manifest(args.model):
        return run_manifest(args)
    if args.depends:
        raise ExportError("--depends lists the files of a manifest: give a .toml file")
    spec = spec_from_args(args)
    c = c_path(args.output, spec.stem)
    if args.output and spec.name is None:
        spec.name = symbol_from_stem(c.stem)  # the file the user named names its function
    outputs = Outputs(
        c,
        so=Path(args.so) if args.so else None,
        report=report_dir(args),
        pt_column=args.pt_column,
        document=args.json,
        card=args.card,
    )
    checks = Checks(
        parity=not args.no_check,
        samples=args.samples,
        user_rows=_user_rows(args.inputs),
        trace=True if args.trace else None,
        rows_file=Path(args.inputs) if args.inputs else None,
    )
    with CLI_WORDS.wording():
        result = export_spec(spec, outputs, checks, Progress(enabled=not (args.quiet or args.json)))
    emit(to_json(result.document) if args.json else result.summary())
    return EXIT_OK if result.passed else EXIT_PARITY
