"""Reference rows: a few inputs (and noise) with the Python frameworks' outputs, written next to the C.

C and C++ consumers (the CMake test program, Lamarr's own tests) check the compiled library against
them without Python. Plain text, so it diffs and reads anywhere::

    # comment lines start with '#'
    function NAME N_INPUTS N_OUTPUTS N_NOISE           one per exported C function
    symbol NAME N_INPUTS N_OUTPUTS N_NOISE N_ROWS ATOL RTOL
    in V...                                            N_INPUTS values  } N_ROWS times
    random V...                                        N_NOISE values (generators only)
    out V...                                           N_OUTPUTS values: what Python computed

Floats are printed with ``%.9g`` (float32 round-trips exactly; ``inf``, ``-inf``, ``nan`` as printf
writes them). A C value passes when ``|c - out| <= ATOL + RTOL * |out|``, as in the parity check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from exporter.backend import CSource
from exporter.common.escaping import one_line
from exporter.common.options import DEFAULT_ATOL, DEFAULT_RTOL

if TYPE_CHECKING:
    from exporter.check.subject import Exported

N_ROWS = 8
SEED = 7  # not the parity check's seed: these rows are a separate sample


@dataclass
class ReferenceRows:
    """One symbol's rows: inputs, noise (generators) and the Python outputs."""

    symbol: str
    inputs: np.ndarray
    noise: np.ndarray | None
    outputs: np.ndarray
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL


def reference_rows(
    ex: Exported, n_rows: int = N_ROWS, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL
) -> ReferenceRows:
    """``n_rows`` rows in the range the chain was fitted on, and what the Python frameworks make of them."""
    rows = ex.inputs(samples=n_rows, seed=SEED)[:n_rows]
    noise = ex.noise(n_rows, seed=SEED)
    outputs = ex.reference(rows, *([] if noise is None else [noise]))
    return ReferenceRows(ex.symbol, rows, noise, np.asarray(outputs, dtype=np.float32), atol, rtol)


def ref_path(c_path: Path) -> Path:
    """Where the rows of ``OUT.c`` go: ``OUT.ref.txt`` beside it."""
    return c_path.with_suffix(".ref.txt")


def _line(tag: str, values: Iterable[float]) -> str:
    return " ".join([tag, *(f"{float(v):.9g}" for v in values)])


def format_rows(title: str, sources: Sequence[CSource], rows: Sequence[ReferenceRows]) -> str:
    """The whole file: every function of ``sources``, then each symbol's rows."""
    # the title names a file: one line of printable ASCII, so CMake's line-by-line reader sees no forged `function` line
    lines = [
        f"# lamarr-export reference rows for {one_line(title)}",
        "# format: see exporter/check/reference_rows.py or the README",
    ]
    for source in sources:
        lines += [f"function {name} {n_in} {n_out} {n_noise}" for name, (n_in, n_out, n_noise) in source.widths.items()]
    for r in rows:
        n_noise = 0 if r.noise is None else r.noise.shape[1]
        head = f"symbol {r.symbol} {r.inputs.shape[1]} {r.outputs.shape[1]} {n_noise} {len(r.inputs)}"
        lines.append(f"{head} {r.atol:.9g} {r.rtol:.9g}")
        for i in range(len(r.inputs)):
            lines.append(_line("in", r.inputs[i]))
            if r.noise is not None:
                lines.append(_line("random", r.noise[i]))
            lines.append(_line("out", r.outputs[i]))
    return "\n".join(lines) + "\n"


def parse_rows(text: str) -> tuple[dict[str, tuple[int, int, int]], list[ReferenceRows]]:
    """Read a reference-rows file back (the tests use it to check the C against the committed rows)."""
    functions: dict[str, tuple[int, int, int]] = {}
    symbols: list[ReferenceRows] = []
    rows: dict[str, list[list[float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        tag, *rest = line.split()
        if tag == "function":
            functions[rest[0]] = (int(rest[1]), int(rest[2]), int(rest[3]))
        elif tag == "symbol":
            if symbols:
                _close(symbols[-1], rows)
            rows = {"in": [], "random": [], "out": []}
            empty = np.zeros((0, 0), np.float32)
            symbols.append(ReferenceRows(rest[0], empty, None, empty, float(rest[5]), float(rest[6])))
        else:
            rows[tag].append([float(v) for v in rest])
    if symbols:
        _close(symbols[-1], rows)
    return functions, symbols


def _close(r: ReferenceRows, rows: dict[str, list[list[float]]]) -> None:
    r.inputs = np.asarray(rows["in"], dtype=np.float32)
    r.noise = np.asarray(rows["random"], dtype=np.float32) if rows["random"] else None
    r.outputs = np.asarray(rows["out"], dtype=np.float32)
