"""``lamarr-export MODEL``: export, compile, prove parity, write. Exit 0 ok, 1 parity failure, 2 user error.

``lamarr-export inspect MODEL`` prints the model as the exporter sees it (exit 0 exportable, 2 not).
Under ``--json`` stdout carries one JSON document and nothing else (see ``exporter/report/schema.json``);
progress lines go to stderr, and not at all under ``--quiet`` or ``--json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from exporter.backend.isa import DEFAULT_DISPATCH, DISPATCH_MODES
from exporter.backend.mathlib import DEFAULT_MATH, MATH_MODES, REALS
from exporter.errors import ExportError
from exporter.parity import DEFAULT_ATOL, DEFAULT_RTOL, DEFAULT_SAMPLES
from exporter.progress import Progress
from exporter.report.document import error_document, to_json
from exporter.version import __version__

if TYPE_CHECKING:
    from exporter.api import Export
    from exporter.parity import ParityReport
    from exporter.trace import Trace

EXIT_OK, EXIT_PARITY, EXIT_USER = 0, 1, 2
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax")  # as exporter.api, without importing it for --help


class Parser(argparse.ArgumentParser):
    """argparse that, under ``--json``, also prints a usage error as a JSON error document (still exit 2)."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if self.json_errors:
            print(to_json(error_document(f"{self.prog}: {message}")), end="", flush=True)
        super().error(message)


class CMakeDir(argparse.Action):
    """``--cmake-dir``: where ``LamarrExport.cmake`` is, in a checkout or an installed wheel; like --version."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from exporter.backend import shipped_dir

        print(shipped_dir("cmake", "LamarrExport.cmake"))
        parser.exit()


def _non_negative(kind: type) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def _command(prog: str, description: str, epilog: str, optional_model: bool = False) -> Parser:
    """A parser for one command, with the model file as its argument."""
    p = Parser(prog=prog, description=description, epilog=epilog)
    p.add_argument(
        "model",
        nargs="?" if optional_model else None,
        help="the model file (.keras, or legacy Keras .h5), or a fitted transformer (.pkl, .joblib, .skops) "
        "to export on its own",
    )
    return p


def _name_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", metavar="SYMBOL", help="the C function's name (default: the model file's stem)")


def _output_flags(p: argparse.ArgumentParser) -> None:
    """The flags that shape what a command prints, shared by export and inspect."""
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout (for CI), nothing else")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--version", action="version", version=f"lamarr-export {__version__}")


def parser() -> Parser:
    p = _command(
        "lamarr-export",
        "Export a trained Keras model to one standalone C99 function and prove it computes what Keras computes. "
        "'lamarr-export inspect MODEL' shows the model as the exporter sees it.",
        "Exit codes: 0 exported (and parity passed), 1 parity failed, 2 user error.",
        optional_model=True,
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.c",
        help="C file to write; the header goes beside it as OUT.h (default: <model stem>.c in the current directory)",
    )
    _name_flag(p)
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
        p.add_argument(
            flag,
            type=_non_negative(float),
            default=default,
            metavar=metavar,
            help=f"{kind} tolerance (default {default:g})",
        )
    p.add_argument("--so", metavar="OUT.so", help="also write the compiled shared library")
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
    p.add_argument(
        "--dispatch",
        choices=DISPATCH_MODES,
        default=DEFAULT_DISPATCH,
        help=f"{DEFAULT_DISPATCH} (default): the network's code once per x86-64 level (baseline, v3, v4), each "
        "call running the best one the CPU supports, same bits; none: once, for what the compiler targets",
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="compare C and Keras after every step on the worst rows and name the first step that drifts "
        "(done anyway when parity fails)",
    )
    p.add_argument(
        "--report", metavar="DIR", help="write DIR/report.json and DIR/report.html (plots: needs matplotlib)"
    )
    p.add_argument(
        "--pt-column",
        type=_non_negative(int),
        metavar="INDEX",
        help="with --report: the pT-like input to draw each output against, C and Keras overlaid",
    )
    p.add_argument(
        "--cmake-dir",
        action=CMakeDir,
        nargs=0,
        help="print the folder of LamarrExport.cmake (for CMake's include()) and exit",
    )
    p.add_argument(
        "--depends",
        action="store_true",
        help="with a manifest (MODELS.toml): print the files it reads, one per line, and stop (for build systems)",
    )
    _chain_flags(p)
    _output_flags(p)
    return p


def _columns(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected column numbers like 1 or 1,3, got {text!r}") from None


def _chain_flags(p: argparse.ArgumentParser) -> None:
    chain = p.add_argument_group("preprocessing and output (the exported function maps raw inputs to final outputs)")
    chain.add_argument(
        "--log-columns",
        type=_columns,
        action="extend",
        default=[],
        metavar="I[,J...]",
        help="take the natural log of these raw input columns first (counting from 0), e.g. pT",
    )
    chain.add_argument(
        "--preprocess",
        action="append",
        default=[],
        metavar="FILE",
        help="a fitted scikit-learn transformer (.pkl, .joblib, .skops) applied to the inputs; "
        "repeat it to apply several, in order",
    )
    chain.add_argument(
        "--target-transform",
        metavar="FILE",
        help="a transformer fitted on the training targets: its inverse is applied to the output",
    )
    chain.add_argument(
        "--output-activation", choices=OUTPUT_ACTIVATIONS, help="activation for a network that outputs logits"
    )
    chain.add_argument(
        "--noise",
        type=_non_negative(int),
        default=0,
        metavar="N",
        help="a generator whose one input ends with N noise entries: SYMBOL(output, input, random) "
        "(a model with two inputs, conditions and noise, is a generator without this flag)",
    )
    flax = p.add_argument_group("Flax models (instead of MODEL)")
    flax.add_argument("--flax", metavar="PKG.MODULE:CLASS", help="a flax.linen module class, importable from here")
    flax.add_argument("--flax-kwargs", metavar="JSON", help="its constructor arguments, e.g. '{\"layer\": [128, 128]}'")
    flax.add_argument("--params", metavar="FILE.msgpack", help="its parameters, saved with flax.serialization")
    flax.add_argument("--n-inputs", type=int, metavar="N", help="the width of one input row the module receives")


def inspect_parser() -> Parser:
    p = _command(
        "lamarr-export inspect",
        "Print the model as the exporter sees it, one row per step: op, widths, parameters, FLOPs, "
        "and every refused layer with the reason, at once.",
        "Exit codes: 0 exportable, 2 not exportable (the table is printed all the same) or user error.",
        optional_model=True,
    )
    _name_flag(p)
    _chain_flags(p)
    _output_flags(p)
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
    stem = Path(args.model).stem if args.model else args.name or args.flax.rpartition(":")[2]
    c_path = Path(args.output) if args.output else Path(stem + ".c")
    if c_path.suffix != ".c":
        raise ExportError(f"-o {c_path}: the output must be a .c file (the header is written beside it)")
    return c_path


def _report_dir(args: argparse.Namespace) -> Path | None:
    """Check the flags that go with --report and --trace before any work is done or file written."""
    if args.pt_column is not None and not args.report:
        raise ExportError("--pt-column draws a curve in the report: add --report DIR")
    if args.trace and args.no_check:
        raise ExportError("--trace compares the compiled C with Keras: it cannot run with --no-check")
    if not args.report:
        return None
    directory = Path(args.report)
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"--report {directory}: exists and is not a folder")
    if not args.no_check and importlib.util.find_spec("matplotlib") is None:
        raise ExportError("--report draws its plots with matplotlib: pip install 'lamarr-export[report]'")
    return directory


def _trace(
    args: argparse.Namespace, ex: Export, report: ParityReport | None, progress: Progress
) -> tuple[Trace | None, str | None]:
    """Trace on request, and always when parity failed; a trace that cannot run is reported, not fatal."""
    from exporter.trace import WORST_ROWS, trace

    if report is None or report.arrays is None or (report.passed and not args.trace) or ex.graph is None:
        return None, None
    rows = [int(r) for r in report.worst_rows(WORST_ROWS)]
    message = f"tracing {len(ex.graph.ops)} steps on the {len(rows)} worst rows (one C build per step)"
    try:
        with progress.step("trace", message):
            return trace(ex, report.arrays.inputs, rows, report.atol, report.rtol, report.arrays.noise), None
    except Exception as err:  # a diagnosis that fails must not cost the user the export itself
        return None, f"{type(err).__name__}: {err}"


def _check_model_flags(args: argparse.Namespace) -> None:
    if bool(args.model) == bool(args.flax):
        raise ExportError("give a model file, or a Flax module with --flax (not both)")
    if not args.flax and (args.flax_kwargs or args.params or args.n_inputs is not None):
        raise ExportError("--flax-kwargs, --params and --n-inputs go with --flax")


def _export(args: argparse.Namespace) -> Export:
    """The chain the flags describe: a network with its steps, or a transformer on its own."""
    from exporter.api import export_chain, export_flax, symbol_for
    from exporter.frontends.sklearn.safe_load import SUFFIXES

    chain = {
        "preprocess": args.preprocess,
        "log_columns": args.log_columns,
        "target_transform": args.target_transform,
        "output_activation": args.output_activation,
        "math": getattr(args, "math", None),
        "dtype": getattr(args, "dtype", "float"),
        "dispatch": getattr(args, "dispatch", DEFAULT_DISPATCH),
    }
    if args.noise and (args.flax or Path(args.model).suffix in SUFFIXES):
        raise ExportError("--noise goes with a Keras generator model")
    if args.flax:
        from exporter.frontends.flax import load_flax_cli

        module, params = load_flax_cli(args.flax, args.flax_kwargs, args.params, args.n_inputs)
        symbol = args.name or symbol_for(None, args.flax.rpartition(":")[2], chain["dtype"])
        return export_flax(module, params, n_inputs=args.n_inputs, name=symbol, **chain)
    if Path(args.model).suffix in SUFFIXES:
        if args.target_transform or args.output_activation:
            raise ExportError(f"{args.model}: --target-transform and --output-activation need a network")
        return export_chain(
            preprocess=[args.model, *args.preprocess],
            log_columns=args.log_columns,
            name=args.name,
            math=chain["math"],
            dtype=chain["dtype"],
            dispatch=chain["dispatch"],
        )
    return export_chain(args.model, name=args.name, noise=args.noise, **chain)


def run(args: argparse.Namespace) -> int:
    from exporter.api import write_atomically
    from exporter.cli_manifest import is_manifest, run_manifest
    from exporter.inspect import inspect_export
    from exporter.refrows import format_rows, ref_path, reference_rows
    from exporter.report.document import export_document
    from exporter.toolchain import CompileError

    if is_manifest(args.model):
        return run_manifest(args)
    if args.depends:
        raise ExportError("--depends lists the files of a manifest: give a .toml file")
    progress = Progress(enabled=not (args.quiet or args.json))
    _check_model_flags(args)
    c_path = _output_paths(args)
    user_rows = _user_rows(args.inputs)
    report_dir = _report_dir(args)

    with progress.step("load+export", f"reading {args.model or args.flax}"):
        ex = _export(args)
    n_inputs = ex.chain.n_inputs
    if user_rows is not None and (user_rows.ndim != 2 or user_rows.shape[1] != n_inputs):
        raise ExportError(f"--inputs {args.inputs}: shape {user_rows.shape}, the model takes {n_inputs} inputs per row")
    if args.pt_column is not None and args.pt_column >= n_inputs:
        raise ExportError(f"--pt-column {args.pt_column}: the model has inputs 0 to {n_inputs - 1}")
    if args.pt_column is not None and ex.chain.n_noise:
        raise ExportError("--pt-column draws one curve per output: a generator's output is a distribution")

    report = compiled = None
    try:
        if not args.no_check or args.so:
            with progress.step("compile", "compiling the C"):
                compiled = ex.compile()
    except CompileError as err:
        raise ExportError(f"the C compiler failed (check CC and CFLAGS):\n{err}") from None
    if compiled is not None and not args.no_check:
        rows = ex.inputs(args.samples, user_rows)
        with progress.step("parity", f"checking parity against {ex.framework} on {len(rows):,} rows"):
            report = ex.check(compiled, rows, args.atol, args.rtol)
    traced, trace_error = _trace(args, ex, report, progress)

    files = ex.files(c_path, report)
    with progress.step("reference rows", "computing the reference rows"):
        rows = reference_rows(ex, atol=args.atol, rtol=args.rtol)
    files[ref_path(c_path)] = format_rows(ex.symbol, [ex.source], [rows]).encode()
    if args.so:
        files[Path(args.so)] = compiled.library.read_bytes()  # type: ignore[union-attr]
    if args.json or report_dir:
        from exporter.report import draw, report_files

        sections = []
        if report_dir and report is not None:
            with progress.step("report", "drawing the report's plots"):
                classifier_graph = ex.graph if ex.chain.post is None else None
                sections = draw(report, classifier_graph, ex.framework, args.pt_column, compiled, ex.reference)
        document = export_document(
            model=args.model or args.flax,
            ex=ex,
            inspection=inspect_export(ex.chain, ex.symbol, ex.source.stack_bytes),
            report=report,
            samples=args.samples,
            user_rows=0 if user_rows is None else len(user_rows),
            trace=traced,
            trace_error=trace_error,
            files={k: None if v is None else str(v) for k, v in _file_names(args, c_path, report_dir).items()},
            timings=progress.timings,
        )
        if report_dir:
            files.update(report_files(report_dir, document, sections))
    write_atomically(files)
    if args.json:
        print(to_json(document), end="")
    else:
        _summary(args, ex, c_path, report, progress.timings, traced, trace_error, report_dir)
    return EXIT_PARITY if report is not None and not report.passed else EXIT_OK


def _file_names(args: argparse.Namespace, c_path: Path, report_dir: Path | None) -> dict[str, Path | None]:
    return {
        "c": c_path,
        "h": c_path.with_suffix(".h"),
        "ref": c_path.with_suffix(".ref.txt"),
        "so": Path(args.so) if args.so else None,
        "report_json": report_dir / "report.json" if report_dir else None,
        "report_html": report_dir / "report.html" if report_dir else None,
    }


def _summary(
    args: argparse.Namespace,
    ex: Export,
    c_path: Path,
    report: ParityReport | None,
    timings: dict[str, float],
    traced: Trace | None,
    trace_error: str | None,
    report_dir: Path | None,
) -> None:
    chain, source = ex.chain, ex.source
    steps = [op for stage, _ in chain.stages for op in stage.ops]
    print(
        f"lamarr-export {__version__}: {args.model or args.flax} -> {c_path}, {c_path.with_suffix('.h')}"
        + (f", {args.so}" if args.so else "")
    )
    print(
        f"  symbol {ex.symbol}: {chain.n_inputs} inputs"
        + (f" + {chain.n_noise} noise" if chain.n_noise else "")
        + f" -> {chain.n_outputs} outputs, "
        f"{len(steps)} steps, {chain.n_params:,} parameters, C source {len(source.c) / 1024:.1f} KiB, "
        f"stack {source.stack_bytes:,} B per call"
    )
    if len(source.functions) > 1:
        print(f"  functions: {', '.join(source.functions)}")
    for op in steps:
        print(f"    {op.name}: {op.describe()}")
    if report is None:
        print("  parity: not checked (--no-check)")
    else:
        print(f"  parity: {report.verdict()} [{ex.framework_version or ex.framework}]")
        print("    " + report.table().replace("\n", "\n    "))
        if not report.passed:
            worst = ", ".join(f"{v:.6g}" for v in report.worst_input)
            print(f"    worst input row: [{worst}]")
    if traced is not None:
        print(f"  trace: {traced.verdict()}")
        print("    " + traced.table().replace("\n", "\n    "))
    elif trace_error:
        print(f"  trace: could not run ({trace_error})")
    if report_dir is not None:
        print(f"  report: {report_dir / 'report.html'}, {report_dir / 'report.json'}")
    print("  time: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))


def run_inspect(args: argparse.Namespace) -> int:
    """``lamarr-export inspect``: the table, exit 0 if the model is exportable, else 2 (after the table)."""
    from exporter.errors import UnsupportedModelError
    from exporter.inspect import STAGES, inspect_export, inspect_keras
    from exporter.report.document import inspect_document

    _check_model_flags(args)
    progress = Progress(enabled=not (args.quiet or args.json))
    keras_file = bool(args.model) and Path(args.model).suffix in (".keras", ".h5", ".hdf5")
    chain = args.preprocess or args.log_columns or args.target_transform or args.output_activation
    framework = "Keras"
    if keras_file and not chain:
        inspection = inspect_keras(args.model, args.name, progress)  # shows a refused network layer by layer
    else:
        try:
            with progress.step("load+export", f"reading {args.model or args.flax}"):
                ex = _export(args)
        except UnsupportedModelError:
            if not keras_file:
                raise
            inspection = inspect_keras(args.model, args.name, progress)
        else:
            inspection, framework = inspect_export(ex.chain, ex.symbol, ex.source.stack_bytes), ex.framework
    model = args.model or args.flax
    if args.json:
        print(to_json(inspect_document(model, inspection, framework=framework)), end="")
    else:
        print(f"lamarr-export {__version__} inspect: {model}, symbol {inspection.symbol}")
        noise = f" + {inspection.n_noise} noise" if inspection.n_noise else ""
        shape = (
            f"{inspection.n_inputs} inputs{noise} -> {inspection.n_outputs} outputs, " if inspection.n_inputs else ""
        )
        print(f"  {shape}{len(inspection.rows)} rows: {STAGES[inspection.stage]}")
        print("    " + inspection.table().replace("\n", "\n    "))
    if not inspection.exportable:
        print(
            f"lamarr-export: error: {inspection.source}: cannot export {len(inspection.problems)} layer(s)",
            file=sys.stderr,
        )
        return EXIT_USER
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    inspecting = argv[:1] == ["inspect"]  # a model file named 'inspect' would need './inspect'
    p = inspect_parser() if inspecting else parser()
    p.json_errors = "--json" in argv
    args = p.parse_args(argv[1:] if inspecting else argv)
    try:
        return run_inspect(args) if inspecting else run(args)
    except ExportError as err:
        print(f"lamarr-export: error: {err}", file=sys.stderr)
        if args.json:
            print(to_json(error_document(err)), end="")
        return EXIT_USER


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()
