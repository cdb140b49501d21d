"""The command line's flags: one parser per command, and the words errors quote for each spec field.

Importing this module imports no ML framework, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from types import MappingProxyType
from typing import NoReturn

from exporter.backend.column_names import split_names
from exporter.check.inputs import DEFAULT_SAMPLES
from exporter.check.report.document import error_document, to_json
from exporter.common.errors import EXIT_USER
from exporter.common.escaping import terminal
from exporter.common.options import CHOICES, DEFAULT_ATOL, DEFAULT_DISPATCH, DEFAULT_MATH, DEFAULT_RTOL, DEFAULT_TREES
from exporter.common.version import __version__
from exporter.ir.chain import OUTPUT_ACTIVATIONS
from exporter.spec import Words

# The flag of each spec field (and of the pipeline's inputs), for errors in the user's words.
CLI_WORDS = Words(
    MappingProxyType(
        {
            "model": "MODEL",
            "name": "--name",
            "flax": "--flax",
            "flax_kwargs": "--flax-kwargs",
            "params": "--params",
            "n_inputs": "--n-inputs",
            "preprocess": "--preprocess",
            "log_columns": "--log-columns",
            "target_transform": "--target-transform",
            "output_activation": "--output-activation",
            "inputs": "--input-names",
            "outputs": "--output-names",
            "noise": "--noise",
            "input_shape": "--input-shape",
            "math": "--math",
            "dtype": "--dtype",
            "trust": "--trust",
            "dispatch": "--dispatch",
            "trees": "--trees",
            "criterion": "--criterion",
            "atol": "--atol",
            "rtol": "--rtol",
            "user_rows": "--inputs",
            "pt_column": "--pt-column",
        }
    )
)


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and a pointer to ``--help`` (not the whole usage first);
    under ``--json`` also a JSON error document. Exit 2 either way."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if self.json_errors:
            print(to_json(error_document(f"{self.prog}: {message}")), end="", flush=True)
        self.exit(EXIT_USER, terminal(f"{self.prog}: error: {message} (see '{self.prog} --help')\n"))


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


def _choices(option: str) -> str:
    """How ``--help`` shows an option's choices; they are checked with the other options (``Options``), once."""
    return "{" + ",".join(CHOICES[option]) + "}"


def _command(prog: str, description: str, epilog: str, optional_model: bool = False) -> Parser:
    """A parser for one command, with the model file as its argument."""
    p = Parser(prog=prog, description=description, epilog=epilog, allow_abbrev=False)  # --preproces is a typo
    p.add_argument(
        "model",
        nargs="?" if optional_model else None,
        help="the model file (.keras, or legacy Keras .h5; .onnx), a Keras 2 SavedModel folder, or a fitted "
        "transformer (.pkl, .joblib, .skops) "
        "to export on its own",
    )
    return p


def _name_flag(p: argparse.ArgumentParser, output: bool = True) -> None:
    """``--name``, its default told as the code makes it (``output``: the command has ``-o``, whose stem wins)."""
    stem = "the model file's stem, or --params's for Flax"
    default = f"the stem of -o OUT.c; without -o, {stem}, <stem>_double with --dtype double" if output else stem
    p.add_argument("--name", metavar="SYMBOL", help=f"the C function's name (default: {default})")


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
            type=float,  # checked >= 0 with the other options (exporter.common.options)
            default=None,
            metavar=metavar,
            help=f"{kind} tolerance of the fixed rule, which giving it chooses (default {default:g})",
        )
    p.add_argument(
        "--criterion",
        metavar=_choices("criterion"),
        default=None,
        help="float32 (default): the C's error from a float64 reference of the same model may not exceed a few "
        "times what float32 itself makes there (see docs/parity.md); fixed: |c - ref| <= atol + rtol |ref| "
        "against the float32 framework, on every row",
    )
    p.add_argument("--so", metavar="OUT.so", help="also write the compiled shared library")
    p.add_argument(
        "--card",
        action="store_true",
        help="also write OUT.plugins.json: what SQLamarr's Plugin/GenerativePlugin need (a manifest always does)",
    )
    p.add_argument(
        "--math",
        metavar=_choices("math"),
        default=None,
        help=f"{DEFAULT_MATH} (default for float): inline branch-free approximations of tanh, exp... accurate to "
        "a few ULP, that the compiler vectorizes; libm (default for double): call libm's tanhf, expf... "
        "(slower, libm's results bit for bit); fma: fast (libm's in double) with the network's sums in fused "
        "multiply-adds where the hardware has them (x86-64-v3/v4 give the same bits as each other, the baseline "
        "other bits)",
    )
    p.add_argument(
        "--dtype",
        metavar=_choices("dtype"),
        default=None,
        help="the C type of inputs, outputs and arithmetic (default float); double: the symbol is "
        "<stem>_double by default",
    )
    p.add_argument(
        "--dispatch",
        metavar=_choices("dispatch"),
        default=None,
        help=f"{DEFAULT_DISPATCH} (default): the network's code once per x86-64 level (baseline, v3, v4), each "
        "call running the best one the CPU supports, same bits; none: once, for what the compiler targets",
    )
    p.add_argument(
        "--trees",
        metavar=_choices("trees"),
        default=None,
        help=f"how a tree ensemble's C is laid out (default {DEFAULT_TREES}: chosen by its size and shape, see "
        "docs/trees.md); the same decisions and bits in every layout",
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
    names = p.add_argument_group("column names (SYMBOL_info, for a loader to check)")
    names.add_argument(
        "--input-names",
        type=split_names,
        metavar="A,B,...",
        help="the input columns' names, in order (default: the preprocessing's fitted names, else x0,x1...)",
    )
    names.add_argument(
        "--output-names",
        type=split_names,
        metavar="A,B,...",
        help="the output columns' names, in order (default: the target transform's fitted names, else y0,y1...)",
    )
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
        "--trust",
        action="append",
        default=[],
        metavar="MODULE",
        help="your own module (imported from the working directory) whose classes and functions the transformer "
        "files may load, e.g. the one defining Lamarr's DecorrTransformer; repeat it for several",
    )
    chain.add_argument(
        "--noise",
        type=_non_negative(int),
        default=0,
        metavar="N",
        help="a generator whose one input ends with N noise entries: SYMBOL(output, input, random) "
        "(a model with two inputs, conditions and noise, is a generator without this flag)",
    )
    chain.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="[NAME=]D1,D2...",
        help="an ONNX model's input dimensions after the batch, fixing its dynamic ones (NAME: which input; "
        "repeat it for several)",
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
    _name_flag(p, output=False)
    _chain_flags(p)
    _output_flags(p)
    return p
