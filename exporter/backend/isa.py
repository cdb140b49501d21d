"""The instruction-set variants a network's code is written for, and how each blocks its Dense sums.

Lamarr builds every model with ``gcc -std=c99 -O3`` and no ``-march``, on grid nodes from
x86-64-v2 to v4, so the generated file carries the network code once per variant below and
picks one per call with ``__builtin_cpu_supports`` (x86-64, GCC >= 12 or Clang >= 14; elsewhere
the preprocessor keeps the baseline alone). A per-call check rather than ``target_clones``
because the variants differ in their source (register blocking), not only in their flags, and
it needs no ifunc (musl, C++ builds of the file) and no mutable state of ours.

Every output's sum is bias + x[0] w[0] + x[1] w[1] + ... in that order in every variant, for
every block shape (a narrow layer's in the interleaved partial sums of ``exporter/ir/sums.py``): the blocking
only chooses which sums are in registers together, so the variants give the same bits (ISO C mode, no FMA
contraction; Clang is told so by a pragma).

That is the default contract, ``bit-identical``. Under ``--math fma`` the contract is ``fma``: each
step of those sums is one explicit fused multiply-add, ``acc = fmaf(w, x, acc)`` (``fma`` in double),
in the same order, in every variant whose hardware has FMA (x86-64-v3 and v4 here, any build whose
target has it: aarch64, ``-march=x86-64-v3``...; ``SYMBOL_FUSED`` in the file says which the baseline is):
they give the same bits among themselves, one rounding per step instead of two. The baseline
without FMA hardware keeps multiply-then-add (a libm ``fmaf`` would be a slow call per weight), so
its bits differ from theirs by rounding; each variant's batch still equals its own rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Variant:
    """One instruction set: its C ``target`` (None: whatever the compiler targets), its level for
    the dispatch, and the register blocking measured fastest for it on the efficiency network.

    ``row_columns``: output columns summed at once for one row (per-row calls);
    ``batch_rows`` x ``batch_columns``: the block of ``SYMBOL_batch``, each weight loaded once
    for ``batch_rows`` rows. Counts are for float; double sums half as many columns at once.
    The sums take half the vector registers or more (SSE2: 8 of 16 xmm; AVX2: 8 of 16 ymm;
    AVX-512: 8 of 32 zmm for one row, 16 for a batch block), enough independent adds to hide
    their latency; more spill (AVX2 with 32 columns per row kept one sum on the stack, which
    made it slower than SSE2). AVX-512's batch block is 8 rows x 32 columns: a 32-column strip of a
    128-wide layer's weights (16 kB) stays in L1 while the 8 rows use it, so each block of 8 rows reads
    the layer's weights from L2 once, where 3 x 128 (measured 5% faster than 4 x 64 on Zen 4) read
    them once per 3 rows. On Zen 5, the whole efficiency network, 8 x 32 measured 10% faster than
    3 x 128 in both contracts (0.89 against 0.99 us per row bit-identical, 0.85 against 0.97 with
    FMA), 6 x 32 to 10 x 32, 4 x 64 and 6 x 64 between the two, 12 x 32 and 8 x 64 slower; AVX2 keeps
    4 x 16, which 6 x 16, 4 x 24, 3 x 32 and 2 x 32 did not beat with FMA (docs/speed.md).
    """

    name: str  # as the banner and the benchmark name it
    suffix: str  # appended to the static function names
    level: int  # what SYMBOL_isa() returns for it
    target: str | None
    features: tuple[str, ...]  # what __builtin_cpu_supports must confirm before it runs
    row_columns: int
    batch_rows: int
    batch_columns: int
    chunk: int = 0  # columns per loop over the sums (0: one statement per column); see ``chunk_of``
    fma: bool = False  # its hardware has fused multiply-add: under --math fma its sums call fmaf, inlined
    row_unroll: int = 1  # inputs per pass of a per-row Dense's loop (``unroll``)

    def columns(self, rows: int, real: str) -> int:
        per_row = self.row_columns if rows == 1 else self.batch_columns
        return max(1, per_row // 2) if real == "double" else per_row

    def unroll(self, rows: int) -> int:
        """Inputs a Dense's loop takes per pass (each sum still adds them in order). Measured on Zen 5 (one call
        per row of the efficiency network): two per pass took AVX-512's time from 1.84 to 1.74 us, with the
        kernels off their 64-byte boundary (``KERNEL_OFFSET``); four made GCC spill its sums (2.63 us)."""
        return self.row_unroll if rows == 1 else 1

    def chunk_of(self, real: str) -> int:
        """Columns summed by one loop of two vectors (AVX-512: 32 floats) instead of one statement each.

        Measured with GCC 12 on 128-wide layers: a statement per column makes GCC's SLP and alias
        passes take seconds per variant at -O3 (the export's own compile waits for them); a loop
        of more than two vectors keeps its sums in memory at -O2; a loop of at most 16 iterations
        is unrolled early at -O3 and costs as much as the statements. Two zmm (32 floats) is the
        one size that compiles 10x faster at both levels and runs as fast; narrower vectors would
        need 16 columns or fewer, so the baseline, AVX2 and double keep one statement per column."""
        return self.chunk if real == "float" else 0


_V3_FEATURES = ("avx2", "fma", "bmi", "bmi2")
BASELINE = Variant("baseline", "", 1, None, (), row_columns=32, batch_rows=2, batch_columns=16)
V3 = Variant(
    "x86-64-v3", "_v3", 3, "arch=x86-64-v3", _V3_FEATURES, row_columns=64, batch_rows=4, batch_columns=16, fma=True
)
V4 = Variant(
    "x86-64-v4",
    "_v4",
    4,
    "arch=x86-64-v4",
    (*_V3_FEATURES, "avx512f", "avx512bw", "avx512dq", "avx512vl"),
    row_columns=128,
    batch_rows=8,
    batch_columns=32,
    chunk=32,
    fma=True,
    row_unroll=2,
)
VARIANTS = {"auto": (BASELINE, V3, V4), "none": (BASELINE,)}  # per Options.dispatch (exporter.common.options)


def contract(maths: Iterable[str]) -> str:
    """The contract of a function whose parts are written under these ``math`` options, as ``SYMBOL_info`` states it:
    "fma" if any part's sums are fused, else "bit-identical" (docs/c-contract.md)."""
    return "fma" if "fma" in set(maths) else "bit-identical"


KERNEL_OFFSET = 32  # bytes past a 64-byte boundary where a streamed Dense kernel starts (``kernel_pad``)
STREAMED = 32768  # bytes of a Dense kernel from which it starts there


def kernel_pad(real: str, variants: tuple[Variant, ...], weights: int) -> int:
    """Zeros before the first of a Dense kernel's ``weights`` in its 64-byte aligned array (GCC, Clang): in a float
    file holding a variant that reads whole rows of 128 weights per input (AVX-512's one call per row), for a
    kernel of at least ``STREAMED`` bytes, which one call per row reads from L2 whatever the core.

    On Zen 5 a stream of 64-byte loads 32 bytes off the cache lines reads L2 faster than aligned ones
    (benchmarks/stream.c over a malloc'd buffer, 16 bytes off: 240 GB/s; 64-byte aligned: 200 GB/s): the efficiency
    network's one call per row took 1.57 us instead of 1.68 (x86-64-v4). The variants that read a row in pieces of
    32 or 64 columns (SSE2, AVX2) then touch one cache line more per piece (their 16- and 32-byte loads never split
    one): about 1% per row on a quiet machine, nothing on the batch (7-8% measured under load). Kernels that stay in
    L1 lose more: split loads cost L1 reads, and the PID networks' batches (64-wide, 51 kB of kernels) took 13 to
    21% longer (docs/speed.md). Intel's cost of AVX-512's split loads is not measured."""
    wide = real == "float" and any(v.row_columns >= 128 for v in variants) and 4 * weights >= STREAMED
    return KERNEL_OFFSET // 4 if wide else 0


CPUINFO_NAMES = {"bmi": "bmi1"}  # Linux's /proc/cpuinfo name where it differs from __builtin_cpu_supports'


def missing_on_this_cpu(variant: Variant, cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """The features ``variant`` needs that this (Linux) CPU lacks: tests and benchmarks force only
    the variants it can run. Without /proc/cpuinfo every feature counts as missing."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return list(variant.features)
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [f for f in variant.features if CPUINFO_NAMES.get(f, f) not in flags]


def running_level() -> int:
    """The level of the best variant this CPU runs: a parity build compiles that one alone
    (``-DSYMBOL_ISA``), since it is the one a dispatching file would run here."""
    return max(v.level for v in VARIANTS["auto"] if not missing_on_this_cpu(v))
