"""Does ``SYMBOL_batch`` give the bits of one call per row, in every instruction-set variant this CPU runs?

Parity against the framework calls the model one row at a time, in the variant this CPU runs: it
cannot see a batch block or another variant that rounds differently (GCC 12 once fused a Dense's
sums into FMA instructions in the AVX2 blocks of rows only). So one more library is built: a small
C file that includes the generated one, compiled with the same compiler and flags, calls each
network's static functions directly, per variant: the one-row function on every row, and the n-row
function on consecutive runs of odd and even lengths (every remainder of every block height). Each
variant's batch must equal its own rows bit for bit, and its rows those of the first variant of its group:
every variant is one group under the bit-identical contract; under fma (``exporter/backend/isa.py``) the
variants whose sums are fused (the file's C says which: ``SYMBOL_FUSED`` decides the baseline's) are one
group, and a variant that multiplies then adds is compared with itself only (batch against rows).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exporter.backend import CSource, NetworkCode
from exporter.backend.isa import missing_on_this_cpu
from exporter.check.inputs import make_inputs, noise_rows

RANDOM_ROWS = 160
"""Random rows per network, besides its edge rows (at most ``EDGE_ROWS`` of them): a few hundred in all."""
EDGE_ROWS = 160
RUNS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 16, 17, 24, 31, 33, 64, 65)
"""The lengths of the consecutive batch calls, repeated over the rows: each block height (2 to 8 rows)
meets every remainder, and runs of one row and of several blocks."""


@dataclass
class VariantBits:
    """One network in one variant: rows whose one-row result differs from that of ``reference`` (the first
    variant of its group; itself for the first), rows whose batch result differs from its own one-row result,
    and the largest difference in ULP. ``fma``: the network's contract is fma (exporter/backend/isa.py);
    ``fused``: this variant's sums are fused multiply-adds."""

    function: str
    variant: str
    rows: int
    row_mismatches: int
    batch_mismatches: int
    max_ulp: int
    reference: str = "baseline"
    fma: bool = False
    fused: bool = False

    @property
    def passed(self) -> bool:
        return self.row_mismatches == 0 and self.batch_mismatches == 0

    def failure(self) -> str:
        what = []
        if self.batch_mismatches:
            what.append(f"{self.function}_batch differs from one call per row in {self.batch_mismatches}")
        if self.row_mismatches:
            what.append(f"one call per row differs from {self.reference}'s in {self.row_mismatches}")
        return f"{self.variant}: {' and '.join(what)} of {self.rows} rows (up to {self.max_ulp} ULP)"


@dataclass
class BatchCheck:
    """Every network of a file, in every variant this CPU runs (``unavailable``: the others, and why)."""

    results: list[VariantBits] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def only(self, functions: set[str]) -> BatchCheck:
        """The results of some networks (one model's of a set)."""
        return BatchCheck([r for r in self.results if r.function in functions], self.unavailable)

    def verdict(self) -> str:
        """One line: the variants checked and the rows, or each failure."""
        if not self.passed:
            return "FAILED: " + "; ".join(r.failure() for r in self.results if not r.passed)
        variants = list(dict.fromkeys(r.variant for r in self.results))
        rows = max((r.rows for r in self.results), default=0)
        return (
            f"the same bits as one call per row in {', '.join(variants)} ({rows} rows, batches of 1 to {max(RUNS)})"
            + self.groups()
            + (f"; not run here: {', '.join(self.unavailable)}" if self.unavailable else "")
        )

    def groups(self) -> str:
        """Under the fma contract, which variants' rows were compared with each other ("" under bit-identical)."""
        fma = [r for r in self.results if r.fma]
        if not fma:
            return ""
        fused = list(dict.fromkeys(r.variant for r in fma if r.fused))
        alone = list(dict.fromkeys(r.variant for r in fma if not r.fused))
        said = [f"rows identical in {' = '.join(fused)} (fused multiply-add)"] if fused else []
        said += [f"{v} compared with itself only (multiply then add: other bits by contract)" for v in alone]
        return "; fma contract: " + ", ".join(said)


def harness(source: CSource, c_name: str) -> str:
    """The check's C: the generated file included, then per network ``NAME_check(level, batch, ...)``
    running one variant's one-row function on each of n rows (``batch`` 0) or its n-row function once,
    ``NAME_check_levels()``, the variants compiled here as a bit mask of their levels, and
    ``NAME_check_fused()``, those whose sums are fused multiply-adds (the fma contract)."""
    real = source.real
    lines = [f'#include "{c_name}"', ""]
    for net in source.networks:
        n_in, n_out, n_noise = source.widths[net.name]
        params = f"int level, int batch, {real} *output, const {real} *input, const {real} *random, size_t n"
        noise = ", random" if n_noise else ""
        row_args = f"output + r * {n_out}, input + r * {n_in}" + (f", random + r * {n_noise}" if n_noise else "")
        lines += [f"int {net.name}_check_levels(void);", f"int {net.name}_check_fused(void);"]
        lines += [f"void {net.name}_check({params});", ""]
        lines += [f"int {net.name}_check_levels(void)", "{", f"    return {_levels(net)};", "}", ""]
        lines += [f"int {net.name}_check_fused(void)", "{", f"    return {_fused(net)};", "}", ""]
        lines += [f"void {net.name}_check({params})", "{", "    size_t r;", "    (void)random;"]
        for variant, one_row, n_rows in net.variants:
            guard = _guard(net, variant.level)
            lines += [f"#if {guard}"] if guard else []
            lines += [
                f"    if (level == {variant.level}) {{",
                f"        if (batch) {n_rows}(output, input{noise}, n);",
                f"        else for (r = 0; r < n; ++r) {one_row}({row_args});",
                "        return;",
                "    }",
            ]
            lines += ["#endif"] if guard else []
        lines += ["    (void)level, (void)batch, (void)output, (void)input, (void)n, (void)r;", "}", ""]
    return "\n".join(lines)


def _guard(net: NetworkCode, level: int) -> str:
    """The condition under which the file compiles that variant (none: always)."""
    if len(net.variants) == 1:
        return ""
    return f"{net.symbol}_HAS({level})" if level == 1 else f"{net.symbol}_DISPATCH && {net.symbol}_HAS({level})"


def _levels(net: NetworkCode) -> str:
    """A C expression: the bit mask of the levels the file compiles here (the preprocessor decides, not Python)."""
    if len(net.variants) == 1:
        return str(1 << net.variants[0][0].level)
    terms = [f"(({_guard(net, v.level)}) ? {1 << v.level} : 0)" for v, _, _ in net.variants]
    return " | ".join(terms)


def _fused(net: NetworkCode) -> str:
    """A C expression: the bit mask of the levels whose sums are fused multiply-adds (the baseline's: the file's
    ``SYMBOL_FUSED``, which its compiler's target decides)."""
    if not net.fma:
        return "0"
    terms = [
        f"({net.symbol}_FUSED ? {1 << v.level} : 0)" if not v.fma else str(1 << v.level) for v, _, _ in net.variants
    ]
    return " | ".join(terms)


def _ordered(bits: np.ndarray, width: int) -> np.ndarray:
    """Sign-magnitude floats as integers in the order of their values (ULP distances)."""
    signed = bits.astype(np.int64) if width == 4 else bits.view(np.int64)
    top = -(2**31) if width == 4 else np.iinfo(np.int64).min
    return np.where(signed < 0, top - signed, signed)


def _compare(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Rows of ``a`` and ``b`` that differ in any bit, and the largest difference in ULP."""
    ints = np.int32 if a.dtype == np.float32 else np.int64
    ia, ib = a.view(ints), b.view(ints)
    rows = int(np.count_nonzero((ia != ib).any(axis=1)))
    if not rows:
        return 0, 0
    with np.errstate(over="ignore"):
        ulp = np.abs(_ordered(ia, a.itemsize) - _ordered(ib, a.itemsize))
    return rows, int(ulp.max())


def check_inputs(n_inputs: int, seed: int = 7) -> np.ndarray:
    """Random rows and (a spread of) the parity's edge rows: saturation, spikes, zeros."""
    rows = make_inputs(n_inputs, RANDOM_ROWS, seed)
    edges = rows[RANDOM_ROWS:]
    pick = np.linspace(0, len(edges) - 1, min(EDGE_ROWS, len(edges))).astype(int)
    return np.concatenate([rows[:RANDOM_ROWS], edges[pick]])


def run(library: Path, source: CSource) -> BatchCheck:
    """Load the built check and compare, network by network, every variant compiled here that this CPU runs."""
    import cffi

    real = source.real
    dtype = np.float64 if real == "double" else np.float32
    ffi = cffi.FFI()
    params = f"int, int, {real} *, const {real} *, const {real} *, size_t"
    ffi.cdef(
        "\n".join(
            f"int {n.name}_check_levels(void); int {n.name}_check_fused(void); void {n.name}_check({params});"
            for n in source.networks
        )
    )
    lib = ffi.dlopen(str(library))
    check, unavailable = BatchCheck(), {}
    for net in source.networks:
        n_in, n_out, n_noise = source.widths[net.name]
        x = np.ascontiguousarray(check_inputs(n_in), dtype=dtype)
        noise = np.ascontiguousarray(noise_rows(len(x), n_noise), dtype=dtype) if n_noise else None
        compiled = getattr(lib, f"{net.name}_check_levels")()
        fused = getattr(lib, f"{net.name}_check_fused")()
        fn = getattr(lib, f"{net.name}_check")
        first: dict[str, tuple[str, np.ndarray]] = {}  # per group: its first variant and that one's rows
        for variant, _, _ in net.variants:
            missing = missing_on_this_cpu(variant)
            if not compiled & (1 << variant.level) or missing:
                why = f"no {', '.join(missing)}" if missing else "not compiled by this compiler"
                unavailable.setdefault(variant.name, f"{variant.name} ({why})")
                continue
            rows = _call(ffi, fn, variant.level, x, noise, n_out, real)
            batch = _call(ffi, fn, variant.level, x, noise, n_out, real, runs=True)
            is_fused = bool(fused & (1 << variant.level))
            group = "all" if not net.fma else "fused" if is_fused else variant.name
            reference, expected = first.setdefault(group, (variant.name, rows))
            row_bad, row_ulp = _compare(rows, expected)
            batch_bad, batch_ulp = _compare(batch, rows)
            ulp = max(row_ulp, batch_ulp)
            bits = VariantBits(net.name, variant.name, len(x), row_bad, batch_bad, ulp, reference, net.fma, is_fused)
            check.results.append(bits)
    check.unavailable = list(unavailable.values())
    return check


def _call(
    ffi: Any, fn: Any, level: int, x: np.ndarray, noise: np.ndarray | None, n_out: int, real: str, runs: bool = False
) -> np.ndarray:
    """One variant on all rows: one-row calls, or consecutive batch calls of the lengths ``RUNS``."""
    out = np.full((len(x), n_out), np.nan, dtype=x.dtype)
    t = f"{real}[]"
    o, i = ffi.from_buffer(t, out), ffi.from_buffer(t, x)
    r = ffi.from_buffer(t, noise) if noise is not None else ffi.NULL
    n_in, n_noise = x.shape[1], 0 if noise is None else noise.shape[1]
    if not runs:
        fn(level, 0, o, i, r, len(x))
        return out
    start, k = 0, 0
    while start < len(x):
        n = min(RUNS[k % len(RUNS)], len(x) - start)
        fn(level, 1, o + start * n_out, i + start * n_in, r + start * n_noise if noise is not None else r, n)
        start, k = start + n, k + 1
    return out


def build_and_run(source: CSource, workdir: Path | None = None) -> BatchCheck:
    """Build the check beside a copy of the generated file (with ``$CC $CFLAGS``, as the parity build) and run it."""
    from exporter.build.toolchain import compile_files

    if not source.networks:
        return BatchCheck()
    with tempfile.TemporaryDirectory(prefix="lamarr-batch-") as tmp:
        folder = Path(workdir or tmp)
        (folder / f"{source.symbol}.c").write_text(source.c)
        (folder / f"{source.symbol}.h").write_text(source.h)
        check_c = folder / f"{source.symbol}_batch_check.c"
        check_c.write_text(harness(source, f"{source.symbol}.c"))
        return run(compile_files(check_c, folder / f"lib{source.symbol}_batch_check.so"), source)
