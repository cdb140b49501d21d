"""A network op as a template sees it (:class:`Step`), and which activations the next Dense applies in its loop.

One call per row reads each Dense's weights once from L2, and the loads of a layer's weights cannot run far
ahead while the activation of the layer before is being computed: its next input waits on it, and the core's
window fills. On Zen 5 the 768 tanh of the efficiency network then took 0.17 us of its 1.69 us per row, the
same with or without the dependency. ``defer_activations`` moves a Dense's activation (and skip) into the loop
of the Dense that reads it: the producer leaves its sums in the function's working memory; the consumer
applies the activation to ``DEFER_BLOCK`` inputs one block ahead of the block whose weights it is reading,
writing the producer's output as before, so that the activation runs while weights stream in. The same
expression on the same sums: the bits are unchanged; only the time changes (1.69 -> 1.59 us per row with a
block of 32; 16, 64 and a block of lookahead 2 measured slower: docs/speed.md). One row, in the variants whose
Dense sums are loops of two vectors (``Variant.chunk_of``: AVX-512), with GCC 12.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, ClassVar

from exporter.backend.isa import kernel_pad
from exporter.backend.target import Target
from exporter.ir import Op
from exporter.ir.ops import Dense
from exporter.ir.sums import partial_sums

DEFER_BLOCK = 32  # inputs per block of a deferred activation: one is applied while the block before is summed


UNROLLED_INPUTS = 16  # GCC's max-completely-peel-times: the longest loop -O2/-O3 unroll completely (``Step.weights``)


@dataclass
class Step:
    """One network op as a template sees it: the op, its static-name prefix, its buffers and its row block.

    ``x(i, k)`` and ``y(k)`` are the C lvalues of element ``k`` of input ``i`` and of the output
    in row ``r`` of a block of ``rows`` rows (plain ``buf[k]`` when ``rows`` is 1). ``tmp`` is the stack
    array of the op's working memory (``Op.scratch_floats`` per row; row ``r`` of a block from
    ``r * scratch_floats``), which all ops of the function share, each only while it runs. ``block`` is
    the number of output columns a Dense sums at once (the variant's register blocking), ``chunk``
    how many of them one loop sums (0: a statement per column; ``Variant.chunk_of``).
    """

    op: Op
    id: str
    ins: list[str]
    out: str
    in_widths: list[int]
    template: Any
    m: Target
    rows: int
    strides: dict[str, int]
    block: int
    chunk: int = 0
    unroll: int = 1  # inputs per pass of a Dense's loop over them (``Variant.unroll``)
    tmp: str = ""
    reads: list[tuple[str, str]] = field(default_factory=list)  # (pointer, array): ``buffers.stored_reads``
    raw: bool = False  # a Dense leaving its sums in ``tmp``: the next applies its activation (``defer_activations``)
    pending: Step | None = None  # the Dense before, whose activation this one applies in its loop over the inputs
    defer_block: ClassVar[int] = DEFER_BLOCK

    def _at(self, buf: str, k: str, flat: bool) -> str:
        return f"{buf}[{k}]" if self.rows == 1 or flat else f"{buf}[r * {self.strides[buf]} + {k}]"

    def _at_row(self, buf: str, k: str, row: int) -> str:
        return f"{buf}[{k}]" if row == 0 else f"{buf}[{row * self.strides[buf]} + {k}]"

    def x_row(self, i: int, k: str, row: int) -> str:
        """Element ``k`` of input ``i`` in the block's row number ``row`` (a constant)."""
        return self._at_row(self.ins[i], k, row)

    def y_row(self, k: str, row: int) -> str:
        """Element ``k`` of the output in the block's row number ``row`` (a constant)."""
        return self._at_row(self.out, k, row)

    def weights(self, array: str) -> str:
        """The C name a Dense reads its ``kernel`` or ``bias`` through. With at most ``UNROLLED_INPUTS`` inputs,
        a local pointer passed through ``SYMBOL_OPAQUE``: GCC may unroll the loop over so few inputs, see each
        weight, turn ``acc + w * x`` with w < 0 into ``acc - |w| * x`` and fuse the mix into FMADDSUB
        instructions (GCC 12, even without contraction: other bits than the baseline's one row). Wider
        layers read the arrays themselves: their loops are never unrolled, and the pointers cost the AVX2
        blocks of rows 23% more instructions on the example network. A kernel starts ``pad`` past its array's."""
        pad = self.pad if array == "kernel" else 0
        return array if self.op.n_in <= UNROLLED_INPUTS else f"{self.id}_{array}" + (f" + {pad}" if pad else "")

    @property
    def pad(self) -> int:
        """The zeros before a Dense kernel's first weight in its array (``isa.kernel_pad``); 0 for other ops."""
        return kernel_pad(self.m.real, self.m.variants, self.op.kernel.size) if isinstance(self.op, Dense) else 0

    def chunks(self, n: int) -> tuple[int, int]:
        """How a Dense block of ``n`` columns keeps its sums: (loops, tail), ``loops`` arrays of ``chunk``
        columns summed by a loop each, then ``tail`` columns a statement each (all ``n`` without chunks)."""
        c = self.chunk
        return (n // c, n % c) if c and n >= c else (0, n)

    def x(self, i: int, k: str, flat: bool = False) -> str:
        return self._at(self.ins[i], k, flat)

    def y(self, k: str, flat: bool = False) -> str:
        return self._at(self.out, k, flat)

    def flat(self, width: int, inputs: list[int]) -> bool:
        """Whether the output and ``inputs`` hold the block's rows back to back (row stride ``width``):
        an elementwise pass is then one loop over all the block's values, which GCC vectorizes at
        -O2 where it does not vectorize the same loop nested in a loop over rows."""
        buffers = [self.out, *(self.ins[i] for i in inputs)]
        return self.rows > 1 and all(self.strides[b] == width for b in buffers)


def defer_activations(steps: list[Step], rows: int, tmp: str) -> int:
    """Marks each pair of consecutive Dense steps of a one-row function whose activation moves into the consumer's
    loop; returns the floats of sums the function's working memory ``tmp`` must then hold (0: none)."""
    widest = 0
    for prev, nxt in pairwise(steps):
        if rows == 1 and _deferrable(prev, nxt):
            prev.raw, nxt.pending, prev.tmp, nxt.tmp = True, prev, tmp, tmp
            widest = max(widest, prev.op.width)
    return widest


def _deferrable(prev: Step, nxt: Step) -> bool:
    """Both Dense on one step each, every block of both summed in chunks, ``prev`` applying an elementwise
    activation or a skip as its sums leave the registers, ``nxt`` reading its output in one pass over inputs
    that come in whole blocks, and not a narrow layer's sums (``exporter.ir.sums``)."""
    a, b = prev.op, nxt.op
    if not (isinstance(a, Dense) and isinstance(b, Dense) and a.steps == 1 and b.steps == 1):
        return False
    fused = not a.activation.is_vector and (a.residual or not a.activation.is_linear)
    chunked = all(s.chunk and s.op.width % s.chunk == 0 for s in (prev, nxt)) and b.width <= nxt.block
    whole = b.n_in % DEFER_BLOCK == 0 and b.n_in >= 2 * DEFER_BLOCK
    return fused and chunked and whole and b.inputs[0] == a.output and partial_sums(b) == 1
