"""What a step of the generated C is rendered for, and how it writes one step of a network's sums.

A :class:`Target` names the symbol (the prefix of every static name), the C type, how activations are
evaluated, the instruction-set variant being written and the contract (``exporter/backend/isa.py``):
under the default one a step of a sum is ``acc += w * x`` (two roundings, never contracted), under
``--math fma`` one fused multiply-add, spelled the same way in every variant so that those with FMA give
the same bits. The templates (ops/dense.c.j2, ops/affine.c.j2) ask it for that text and spell none.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.backend.isa import VARIANTS, Variant


@dataclass(frozen=True)
class Target:
    """What every step is rendered for: the exported symbol (prefix of every static name), the C type
    computed in ("float" or "double"), how activations are evaluated ("fast" or "libm":
    ``exporter.backend.mathlib.helper_mode``) and whether the sums fuse their multiply-adds (``--math fma``)."""

    symbol: str
    real: str
    math: str
    variants: tuple[Variant, ...] = VARIANTS["none"]  # instruction sets the network code is written for
    suffix: str = ""  # of the variant a step is rendered for (``Variant.suffix``): see ``helper``
    fma: bool = False  # the fma contract (exporter/backend/isa.py): sums fused where the hardware has FMA
    fused: bool = False  # the variant a step is rendered for calls fmaf itself (its hardware has FMA): see ``madd``

    @property
    def helper(self) -> str:
        """The prefix of the math helpers the code calls: ``SYMBOL_``, or ``SYMBOL_v3_`` in that variant's code,
        which has its own copies of them compiled for its own target (see templates/math.c.j2)."""
        return f"{self.symbol}{self.suffix}_"

    def muladd(self, a: str, b: str, c: str) -> str:
        """The C expression ``a * b + c``: two roundings under the bit-identical contract; under fma, ``fmaf`` in
        a variant with FMA hardware (GCC and Clang inline it under the variant's target), else ``SYMBOL_FMA``
        (ops/helpers.c.j2), which is fmaf where the compiler's target has FMA and two roundings elsewhere."""
        if not self.fma:
            return f"{a} * {b} + {c}"
        call = ("fmaf" if self.real == "float" else "fma") if self.fused else f"{self.symbol}_FMA"
        return f"{call}({a}, {b}, {c})"

    def madd(self, acc: str, w: str, x: str) -> str:
        """The C statement of one step of a sum, ``acc`` plus ``w * x`` (see ``muladd``)."""
        return f"{acc} = {self.muladd(w, x, acc)};" if self.fma else f"{acc} += {w} * {x};"
