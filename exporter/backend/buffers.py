"""Where each IR value lives during a call: the caller's buffers or a stack scratch array.

Scratch arrays are reused as soon as the value they hold is dead, so the stack a call
needs stays near twice the widest layer. Only ops that declare ``in_place`` may write
over an input that dies with them; every other op gets an output distinct from its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.ir import Graph, Op

INPUT, OUTPUT, RANDOM = "input", "output", "random"
# The most stack scratch one call may take (a row, or a block of rows of a batch): the whole default stack of a
# secondary thread on macOS, a sixteenth of the 8 MiB glibc gives a new thread by default (its RLIMIT_STACK).
MAX_STACK_BYTES = 512 * 1024


@dataclass
class BufferPlan:
    location: dict[str, str]  # value -> C array expression
    sizes: list[int]  # floats in each scratch array
    copy_from: str | None  # scratch array to copy into `output` at the end, if any


def plan_buffers(graph: Graph, scratch_prefix: str) -> BufferPlan:
    last_use: dict[str, int] = {}
    for index, op in enumerate(graph.ops):
        for name in op.inputs:
            last_use[name] = index
    last_use[graph.output] = len(graph.ops)

    location = {graph.input: INPUT}
    if graph.noise:
        location[graph.noise] = RANDOM  # the caller's noise, read-only like the input
    holder: dict[str, int] = {}  # value -> scratch index
    sizes: list[int] = []
    free: list[int] = []

    def take(width: int) -> int:
        if free:
            best = max(free, key=lambda i: (sizes[i] >= width, -sizes[i] if sizes[i] >= width else sizes[i]))
            free.remove(best)
            sizes[best] = max(sizes[best], width)
            return best
        sizes.append(width)
        return len(sizes) - 1

    for index, op in enumerate(graph.ops):
        dying = [v for v in dict.fromkeys(op.inputs) if v in holder and last_use[v] == index]
        writes_output = index == len(graph.ops) - 1 and op.output == graph.output and graph.input not in op.inputs
        if writes_output:
            location[op.output] = OUTPUT
        else:
            width = graph.widths[op.output]
            if op.in_place and dying:
                slot = holder.pop(dying.pop(0))
                sizes[slot] = max(sizes[slot], width)
            else:
                slot = take(width)
            holder[op.output] = slot
            location[op.output] = f"{scratch_prefix}{slot}"
        free.extend(holder.pop(v) for v in dying)

    copy_from = None if location[graph.output] == OUTPUT else location[graph.output]
    return BufferPlan(location=location, sizes=sizes, copy_from=copy_from)


def block_rows(graph: Graph, plan: BufferPlan, most: int, real_size: int) -> int:
    """The rows of a batch block: ``most`` (the variant's), or fewer, the most whose scratch (each value's array
    and the ops' working memory, per row) fits ``MAX_STACK_BYTES``; 1 (no batch block: SYMBOL_batch calls the
    one-row code on each row) when not even two rows fit. Any block gives the bits of one row per call."""
    per_row = real_size * (sum(plan.sizes) + max((op.scratch_floats() for op in graph.ops), default=0))
    return max(1, min(most, MAX_STACK_BYTES // max(per_row, 1)))


def stored_reads(op: Op, locations: list[str], prefix: str, strides: dict[str, int]) -> list[tuple[str, str]]:
    """The local pointers (name, array) an op reads its inputs through, passed through ``SYMBOL_OPAQUE``: those
    of an op that widens its inputs to double (``Op.widens``) from arrays this function writes. The compiler then
    cannot forward a value stored by an earlier op to this op's loads: it reads the float in memory. Seen, GCC 12
    folds ``(double)(float)d`` to ``d`` once its SLP vectorizer has made both conversions vector ones (a match.pd
    conversion pair, wrong: the rounding to float is lost), in whichever code (one row, a block of rows, a
    variant) it vectorizes so: their bits then differ (docs/c-contract.md#bit-identity)."""
    if not op.widens:
        return []
    arrays = [a for a in dict.fromkeys(locations) if a not in (INPUT, RANDOM)]
    strides.update({f"{prefix}_in{i}": strides[a] for i, a in enumerate(arrays)})
    return [(f"{prefix}_in{i}", a) for i, a in enumerate(arrays)]


def sliced(buf: str, width: int, steps: int, strides: dict[str, int]) -> str:
    """The C array an op running in ``steps`` slices of a value reads in slice ``step`` (the loop variable of
    ``templates/functions.c.j2``), with the row stride of the whole value."""
    if steps == 1:
        return buf
    at = f"({buf} + step * {width // steps})"
    strides[at] = strides[buf]
    return at
