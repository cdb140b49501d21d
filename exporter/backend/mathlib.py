"""Which float functions the generated C uses: ``fast`` (our branch-free inline helpers) or ``libm``.

``--math fast`` (the default) evaluates tanh, sigmoid, exp, expm1, log1p, mish and the normal CDF
with the helpers of ``templates/math.c.j2``: plain float arithmetic and integer bit operations
that GCC vectorizes at ``-O2``/``-O3`` without ``-march`` or ``-ffast-math``, so a layer's
activations cost a few cycles per value instead of a libm call each. ``--math libm`` calls
``tanhf``, ``expf``..., for users who want libm's own results bit for bit. ``--math fma`` takes the
helpers of ``fast`` (libm's in double, which has no inline helpers) and changes the network's sums,
not the helpers (``exporter/backend/isa.py``: the contract). The modes, and the rule that double takes
libm's or fma's, are checked with the other options (``exporter.common.options``).

Only the helpers a model needs are emitted: each IR op says which it calls (``Op.helpers``, from
the activation table of ``exporter/ir/activations.py``), and ``HELPERS`` closes that set over the
helpers' own calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

# every helper of templates/math.c.j2, in definition order, with the helpers it calls
# (tests/test_fast_math.py checks these against the template)
HELPERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "bits": (),
        "float": (),
        "pick": ("bits", "float"),
        "min": ("pick",),
        "max": ("pick",),
        "round": (),
        "pow2": ("float",),
        "sign": ("bits", "float"),
        "expm1_reduced": (),
        "exp": ("pick", "min", "max", "round", "pow2", "expm1_reduced"),
        "expm1": ("pick", "min", "max", "round", "pow2", "sign", "expm1_reduced"),
        "log1p": ("bits", "float", "pick"),
        "tanh": ("bits", "float", "pick"),
        "sigmoid": ("pick", "exp"),
        "softplus_tail": ("exp", "log1p"),
        "mish": ("pick", "min", "exp"),
        "ncdf": ("bits", "float", "pick", "min", "exp"),
    }
)


def helper_mode(math: str, real: str) -> str:
    """How activations are evaluated under the option ``math``: "fast" (the inline helpers) or "libm"."""
    return "libm" if math == "libm" or real == "double" else "fast"


def helpers_needed(called: Iterable[str]) -> list[str]:
    """The helpers ``called`` and every helper they call, in definition order."""
    needed: set[str] = set()
    pending = set(called)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.update(HELPERS[name])
    return [name for name in HELPERS if name in needed]
