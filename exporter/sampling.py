"""Parity inputs in the physical range the preprocessing was fitted on.

A network behind a QuantileTransformer sees standard-normal values only if its raw
inputs lie where the quantiles were fitted; random normal raw inputs would test the
clipping and little else. So each raw column is sampled from what the first fitted
step touching it knows (quantiles and their plateaus and bounds, a scaler's centre
and spread, a min-max range), mapped back through the elementwise functions applied
before it (``log(pT)`` -> ``exp``), and rows mix typical values with the edges.
"""

from __future__ import annotations

import numpy as np

from exporter.ir.chain import Chain
from exporter.ir.columns import (
    ColumnOp,
    ColumnStage,
    Expression,
    Function,
    MulAdd,
    Power,
    Quantile,
    Select,
    Standardize,
)
from exporter.parity import make_inputs

_UNDO = {
    "log": np.exp,
    "log1p": np.expm1,
    "log10": lambda y: np.power(10.0, y),
    "exp": lambda y: np.log(np.abs(y) + 1e-300),
    "expm1": lambda y: np.log1p(np.maximum(y, -1 + 1e-12)),
    "sqrt": np.square,
    "square": lambda y: np.sqrt(np.abs(y)),
    "arctanh": np.tanh,
    "tanh": lambda y: np.arctanh(np.clip(y, -0.999999, 0.999999)),
}


def _points(op: ColumnOp, c: int, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Typical values and edge values (every one of which the rows must reach) of op's c-th input column."""
    normal = rng.standard_normal(k)
    if isinstance(op, Standardize):
        return op.center[c] + op.scale[c] * normal, op.center[c] + op.scale[c] * np.array([-5.0, 0.0, 5.0])
    if isinstance(op, MulAdd):
        lo, hi = op.clip or (0.0, 1.0)
        y = rng.uniform(lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo), k)
        return (y - op.add[c]) / op.mul[c], (np.array([lo, hi]) - op.add[c]) / op.mul[c]
    if isinstance(op, Quantile) and not op.inverse_direction:
        q = op.quantiles[:, c]
        span = max(q[-1] - q[0], 1e-12)
        beyond = [q[0] - 0.05 * span, q[-1] + 0.05 * span, np.nextafter(q[0], -np.inf), np.nextafter(q[-1], np.inf)]
        return rng.uniform(q[0], q[-1], k), np.concatenate([q, beyond])  # bounds, plateaus, just outside
    if isinstance(op, Quantile):
        return (2.0 * normal if op.normal else rng.uniform(-0.1, 1.1, k)), np.array([0.0])
    if isinstance(op, Expression) and op.backward is not None:  # where the function is defined: its inverse's range
        return op.backward.evaluate(2.0 * normal), op.backward.evaluate(np.array([-8.0, 0.0, 8.0]))
    if isinstance(op, Power) and op.method == "box-cox" and not op.inverse_direction:
        return np.exp(normal), np.array([1.0])
    return 3.0 * normal, np.array([0.0])


def _column_pool(stage: ColumnStage, raw: int, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Typical and edge values of raw input column ``raw``, from the first fitted op that reads it."""
    position = raw
    undo: list[str] = []
    values = None
    for op in stage.ops:
        if isinstance(op, Select):
            if position not in op.columns:
                break  # dropped: any value will do
            position = op.columns.index(position)
        elif position in op.columns:
            if isinstance(op, Function):
                undo.append(op.kind)
                continue
            values = _points(op, op.columns.index(position), rng, k)
            break
    typical, edges = values if values is not None else (rng.standard_normal(k), np.array([0.0]))
    with np.errstate(all="ignore"):
        for kind in reversed(undo):
            typical, edges = _UNDO[kind](typical), _UNDO[kind](edges)
    typical, edges = typical[np.isfinite(typical)], edges[np.isfinite(edges)]
    return typical, edges if edges.size else typical[:1]


def chain_inputs(chain: Chain, samples: int, seed: int = 0, user_rows: np.ndarray | None = None) -> np.ndarray:
    """Rows for the parity check of ``chain``: domain-aware when it starts with preprocessing."""
    if chain.pre is None:
        return make_inputs(chain.n_inputs, samples, seed, user_rows)
    rng = np.random.default_rng(seed)
    pools = [_column_pool(chain.pre, raw, rng, max(samples, 1)) for raw in range(chain.n_inputs)]
    rows = np.stack([rng.choice(np.concatenate(pool), samples) for pool in pools], axis=1)
    n_edges = max(len(edges) for _, edges in pools)  # every edge value of every column appears at least once
    edges = np.stack([np.resize(rng.permutation(edges), n_edges) for _, edges in pools], axis=1)
    parts = [rows, edges]
    if user_rows is not None:
        parts.append(np.asarray(user_rows, dtype=np.float64).reshape(-1, chain.n_inputs))
    return np.concatenate(parts).astype(np.float32)
