"""``lamarr-export check LIB.so [--json]``: what a built library says about itself, and its self-tests run.

A user with a library (built from their own manifest, or a release) has no Python reference at hand and
no C++ test program installed: the library checks itself (``SYMBOL_selftest``, ``exporter/check/library_card.py``).
This loads it, finds its functions by the info each holds (the JSON's head, a constant string in the
file: the same for a manifest's library and a single model's, stripped or not), prints each one's
metadata and runs every self-test; exit 0 only if all pass, 1 if one fails (the symbol and the row
named), 2 for a file that is not a loadable library or holds no lamarr-export function.
Loading a library runs its code (its constructors): check the libraries you would load anyway.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import re
from pathlib import Path
from typing import Any

from exporter.check.library_card import SCHEMA
from exporter.cli.output import emit
from exporter.cli.parser import Parser
from exporter.common.errors import EXIT_OK, EXIT_PARITY, ExportError

# the info's first keys, as json.dumps writes them (exporter.check.library_card.info_json): a function of the
# library each
_INFO_HEAD = re.compile(rb'\{"schema":"' + re.escape(SCHEMA.encode()) + rb'","symbol":"([A-Za-z_][A-Za-z0-9_]*)"')


def check_parser() -> Parser:
    p = Parser(
        prog="lamarr-export check",
        description="Load a library built from lamarr-export's C, list its functions with their metadata "
        "(SYMBOL_info) and run every self-test (SYMBOL_selftest).",
        allow_abbrev=False,
        epilog="Exit codes: 0 every self-test passed, 1 one failed, 2 not a library or no lamarr-export function.",
    )
    p.add_argument("library", metavar="LIB.so", help="the shared library (.so, .dylib)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout, nothing else")
    return p


def symbols_in(data: bytes) -> list[str]:
    """The functions whose info the file holds, in file order."""
    return list(dict.fromkeys(m.decode() for m in _INFO_HEAD.findall(data)))


def check_library(path: Path) -> dict[str, Any]:
    """Every function's info and self-test: ``{"library", "passed", "symbols": [{"symbol", "info", "selftest"}]}``."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ExportError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        lib = ctypes.CDLL(str(path.resolve()))
    except OSError as err:
        raise ExportError(f"{path}: not a shared library this system can load ({err})") from None
    names = symbols_in(data)
    if not names:
        raise ExportError(f"{path}: no lamarr-export function in it (no SYMBOL_info): not built from lamarr-export's C")
    symbols = [_check_symbol(lib, path, name) for name in names]
    libraries = {s["info"].get("library") for s in symbols} - {None}
    if libraries:  # a manifest's: its list, in its order, must be the functions found
        listed = _listed(lib, path, sorted(libraries)[0])
        if sorted(listed) != sorted(names):
            raise ExportError(
                f"{path}: its symbol list ({', '.join(listed)}) is not its functions ({', '.join(names)})"
            )
        symbols.sort(key=lambda s: listed.index(s["symbol"]))
    return {"library": str(path), "passed": all(s["selftest"]["passed"] for s in symbols), "symbols": symbols}


def _listed(lib: ctypes.CDLL, path: Path, library: str) -> list[str]:
    """What ``LIBRARY_symbols()`` lists, up to its NULL."""
    try:
        fn = getattr(lib, f"{library}_symbols")
    except AttributeError:
        raise ExportError(f"{path}: {library}_symbols is not exported") from None
    fn.restype, fn.argtypes = ctypes.POINTER(ctypes.c_char_p), []
    listed, names = fn(), []
    while listed[len(names)] is not None:
        names.append(listed[len(names)].decode())
    return names


def _check_symbol(lib: ctypes.CDLL, path: Path, name: str) -> dict[str, Any]:
    try:
        info_fn, row_fn = getattr(lib, f"{name}_info"), getattr(lib, f"{name}_selftest_row")
    except AttributeError:
        raise ExportError(
            f"{path}: {name}: its info is in the file but {name}_info or {name}_selftest_row is not "
            "exported (hidden symbols?)"
        ) from None
    info_fn.restype, info_fn.argtypes = ctypes.c_char_p, []
    row_fn.restype, row_fn.argtypes = ctypes.c_int, [ctypes.c_int]
    try:
        info = json.loads(info_fn())
    except ValueError as err:
        raise ExportError(f"{path}: {name}_info: not valid JSON ({err})") from None
    failed = []
    for row in range(int(info.get("selftest_rows", 0))):
        bad = row_fn(row)
        if bad:
            failed.append({"row": row, "values": bad})
    return {"symbol": name, "info": info, "selftest": {"passed": not failed, "failed_rows": failed}}


def describe(result: dict[str, Any]) -> str:
    """The human-readable lines: one block per function."""
    lines = [f"{result['library']}: {len(result['symbols'])} lamarr-export function(s)"]
    for s in result["symbols"]:
        info, test = s["info"], s["selftest"]
        random = f" + {info['n_random']} random" if info["n_random"] else ""
        lines.append(
            f"  {s['symbol']}: {info['kind']}, {info['n_inputs']} inputs{random} -> {info['n_outputs']} outputs"
        )
        lines.append(f"    inputs: {', '.join(info['inputs'])}")
        lines.append(f"    outputs: {', '.join(info['outputs'])}")
        lines.append(
            f"    made by {info['exporter']} from {', '.join(f['file'] for f in info['sources']) or '(Python objects)'}"
        )
        lines.append(f"    parity: {info['parity']['verdict']}")
        if test["passed"]:
            lines.append(f"    self-test: passed ({info['selftest_rows']} rows)")
        for f in test["failed_rows"]:
            lines.append(
                f"    self-test: FAILED: {s['symbol']} row {f['row']}: {f['values']} value(s) beyond the tolerance"
            )
    lines.append("check: passed" if result["passed"] else "check: FAILED")
    return "\n".join(lines) + "\n"


def run_check(args: argparse.Namespace) -> int:
    result = check_library(Path(args.library))
    emit(json.dumps(result, indent=2) + "\n" if args.json else describe(result))
    return EXIT_OK if result["passed"] else EXIT_PARITY
