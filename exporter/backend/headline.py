"""An export in one line (symbol, widths, steps, parameters, C size, stack): for summaries and ``repr``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter.common.plural import count

if TYPE_CHECKING:
    from exporter.backend import CSource


def shape(n_inputs: int, n_noise: int, n_outputs: int) -> str:
    """``12 inputs -> 4 outputs``; a generator's noise too: ``12 inputs + 128 noise -> 2 outputs``."""
    noise = f" + {count(n_noise, 'noise')}" if n_noise else ""
    return f"{count(n_inputs, 'input')}{noise} -> {count(n_outputs, 'output')}"


def headline(symbol: str, chain: Any, steps: str, source: CSource) -> str:
    """``efficiency: 12 inputs -> 4 outputs, 7 steps, 84,740 parameters, C source 74.9 KiB, stack 1,024 B per
    call``: an export in one line, for the summary and for ``repr`` (a dataclass's would print every weight)."""
    return (
        f"{symbol}: {shape(chain.n_inputs, chain.n_noise, chain.n_outputs)}, {steps}, "
        f"{count(chain.n_params, 'parameter')}, C source {len(source.c) / 1024:.1f} KiB, "
        f"stack {source.stack_bytes:,} B per call"
    )
