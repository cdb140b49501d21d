"""The raw input row's columns before the network reads them: preprocessing lanes as column ops, and parts of
the row sliced from it whole.

A lane of ``jaxpr.Lanes`` (a column of the raw row with the elementwise ``jnp`` steps applied to it) becomes
column ops of the chain's preprocessing stage (``column_op``). A model that reads its row in parts (a sequence,
then its mask) cannot have each as preprocessing (the stage selects its columns once), so the walk tries again
with ``JaxprWalker.whole`` set: a part that is a run of the raw columns as they are becomes a ``Slice`` of the
whole row, the network's input (``part``).
"""

from __future__ import annotations

from typing import Any

from exporter.ir import Slice
from exporter.ir.columns import ColumnOp, Function, MulAdd, Standardize


def column_op(kind: str, arg: float, column: int) -> ColumnOp:
    name = f"jnp {kind}"
    if kind in ("log", "log1p", "exp", "expm1", "sqrt", "tanh", "arctanh", "square"):
        return Function(name, (column,), kind, None)
    if kind == "sub":
        return Standardize(name, (column,), arg, 1.0)
    if kind == "div":
        return Standardize(name, (column,), 0.0, arg)
    if kind == "add":
        return MulAdd(name, (column,), 1.0, arg)
    return MulAdd(name, (column,), arg, 0.0)  # mul


def part(walker: Any, v: Any) -> Any:
    """``v`` (``jaxpr.Lanes``) as a Slice of the whole raw row when it is a run of its columns untouched, else None."""
    sources = [src for src, _ in v.lanes]
    if any(ops for _, ops in v.lanes) or sources != list(range(sources[0], sources[0] + len(sources))):
        return None
    whole = type(v)(tuple((i, ()) for i in range(walker.n_inputs)))
    row = walker.to_data(whole) if v != whole else None
    if row is None:
        return None  # the whole row: the walk's own path
    name = walker.b.add(Slice, "input part", [row.name], len(sources), start=sources[0])
    walker.materialized[v] = type(row)(name, v.scalar)
    return walker.materialized[v]
