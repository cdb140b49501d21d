"""``lamarr-export MODEL``: export, compile, prove parity, write. Exit 0 ok, 1 parity failure, 2 user error."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from exporter.backend.mathlib import DEFAULT_MATH, MATH_MODES, REALS
from exporter.errors import ExportError
from exporter.parity import DEFAULT_ATOL, DEFAULT_RTOL, DEFAULT_SAMPLES
from exporter.version import __version__

if TYPE_CHECKING:
    from exporter.api import Export
    from exporter.parity import ParityReport

EXIT_OK, EXIT_PARITY, EXIT_USER = 0, 1, 2


def _non_negative(kind: type) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lamarr-export",
        description="Export a trained Keras model to one standalone C99 function and prove it computes "
        "what Keras computes.",
        epilog="Exit codes: 0 exported (and parity passed), 1 parity failed, 2 user error.",
    )
    p.add_argument("model", help="the model file (.keras, or legacy Keras .h5)")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.c",
        help="C file to write; the header goes beside it as OUT.h (default: <model stem>.c in the current directory)",
    )
    p.add_argument("--name", metavar="SYMBOL", help="the C function's name (default: the model file's stem)")
    p.add_argument("--no-check", action="store_true", help="skip compiling and the parity check")
    p.add_argument(
        "--samples",
        type=_non_negative(int),
        default=DEFAULT_SAMPLES,
        metavar="N",
        help=f"random input rows for the parity check (default {DEFAULT_SAMPLES}; edge rows are added)",
    )
    p.add_argument("--inputs", metavar="FILE.npy", help="your own input rows (n_rows x n_inputs) to check as well")
    for flag, metavar, default, kind in (
        ("--atol", "A", DEFAULT_ATOL, "absolute"),
        ("--rtol", "R", DEFAULT_RTOL, "relative"),
    ):
        p.add_argument(flag, type=_non_negative(float), default=default, metavar=metavar,
                       help=f"{kind} tolerance (default {default:g})")  # fmt: skip
    p.add_argument(
        "--math",
        choices=MATH_MODES,
        default=None,
        help=f"{DEFAULT_MATH} (default for float): inline branch-free approximations of tanh, exp... accurate to "
        "a few ULP, that the compiler vectorizes; libm (default for double): call libm's tanhf, expf... "
        "(slower, libm's results bit for bit)",
    )
    p.add_argument(
        "--dtype",
        choices=REALS,
        default="float",
        help="the C type of inputs, outputs and arithmetic (default float); double: the symbol is "
        "<stem>_double by default",
    )
    p.add_argument("--so", metavar="OUT.so", help="also write the compiled shared library")
    p.add_argument("--version", action="version", version=f"lamarr-export {__version__}")
    return p


def _user_rows(path: str | None) -> np.ndarray | None:
    if path is None:
        return None
    try:
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ExportError(f"--inputs {path}: cannot read as a .npy array ({err})") from None
    if rows.ndim not in (1, 2) or not np.issubdtype(rows.dtype, np.number):
        raise ExportError(f"--inputs {path}: expected a numeric (rows x inputs) array, got {rows.dtype} {rows.shape}")
    return rows


def _output_paths(args: argparse.Namespace) -> Path:
    c_path = Path(args.output) if args.output else Path(Path(args.model).stem + ".c")
    if c_path.suffix != ".c":
        raise ExportError(f"-o {c_path}: the output must be a .c file (the header is written beside it)")
    return c_path


def run(args: argparse.Namespace) -> int:
    from exporter.api import export_keras, write_atomically
    from exporter.toolchain import CompileError

    c_path = _output_paths(args)
    user_rows = _user_rows(args.inputs)
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = now - clock
        clock = now

    ex = export_keras(args.model, args.name, args.math, args.dtype)
    lap("load+export")
    graph = ex.graph
    if user_rows is not None and (user_rows.ndim != 2 or user_rows.shape[1] != graph.n_inputs):
        raise ExportError(
            f"--inputs {args.inputs}: shape {user_rows.shape}, the model takes {graph.n_inputs} inputs per row"
        )

    report = compiled = None
    try:
        if not args.no_check or args.so:
            compiled = ex.compile()
            lap("compile")
    except CompileError as err:
        raise ExportError(f"the C compiler failed (check CC and CFLAGS):\n{err}") from None
    if compiled is not None and not args.no_check:
        report = ex.check(compiled, ex.inputs(args.samples, user_rows), args.atol, args.rtol)
        lap("parity")

    ex.write(c_path, report)
    if args.so:
        write_atomically({Path(args.so): compiled.library.read_bytes()})  # type: ignore[union-attr]
    _summary(args, ex, c_path, report, timings)
    return EXIT_PARITY if report is not None and not report.passed else EXIT_OK


def _summary(
    args: argparse.Namespace, ex: Export, c_path: Path, report: ParityReport | None, timings: dict[str, float]
) -> None:
    graph, source = ex.graph, ex.source
    print(
        f"lamarr-export {__version__}: {args.model} -> {c_path}, {c_path.with_suffix('.h')}"
        + (f", {args.so}" if args.so else "")
    )
    print(
        f"  symbol {ex.symbol}: {graph.n_inputs} inputs -> {graph.n_outputs} outputs, "
        f"{len(graph.ops)} steps, {graph.n_params:,} parameters, C source {len(source.c) / 1024:.1f} KiB, "
        f"stack {source.stack_bytes:,} B per call"
    )
    for op in graph.ops:
        print(f"    {op.name}: {op.describe()}")
    if report is None:
        print("  parity: not checked (--no-check)")
    else:
        print(f"  parity: {report.verdict()} [{ex.loaded.framework} {ex.loaded.framework_version}]")
        print("    " + report.table().replace("\n", "\n    "))
        if not report.passed:
            worst = ", ".join(f"{v:.6g}" for v in report.worst_input)
            print(f"    worst input row: [{worst}]")
    print("  time: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except ExportError as err:
        print(f"lamarr-export: error: {err}", file=sys.stderr)
        return EXIT_USER


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()
