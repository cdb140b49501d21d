"""Parity inputs in the physical range the preprocessing was fitted on.

A network behind a QuantileTransformer sees standard-normal values only if its raw
inputs lie where the quantiles were fitted; random normal raw inputs would test the
clipping and little else. So each raw column is sampled from what the first fitted
step touching it knows (quantiles and their plateaus and bounds, a scaler's centre
and spread, a min-max range), mapped back through the elementwise functions applied
before it (``log(pT)`` -> ``exp``), and rows mix typical values with the edges.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from exporter.common import interrupt
from exporter.common.errors import ExportError
from exporter.ir.chain import Chain
from exporter.ir.columns import UNDO, ColumnStage, Function, Select
from exporter.ir.graph import Graph
from exporter.ir.layout import Reshape, Slice
from exporter.ir.ops import Activate, Op, size
from exporter.ir.trees import TreeEnsemble


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
            values = op.domain(op.columns.index(position), rng.standard_normal(k), rng)
            break
    typical, edges = values if values is not None else (rng.standard_normal(k), np.array([0.0]))
    with np.errstate(all="ignore"):
        for kind in reversed(undo):
            typical, edges = UNDO[kind](typical), UNDO[kind](edges)
    typical, edges = typical[np.isfinite(typical)], edges[np.isfinite(edges)]
    return typical, edges if edges.size else typical[:1]


def _fitted_range(stage: ColumnStage, raw: int) -> tuple[float, float] | None:
    """The range of raw column ``raw`` that the first fitted op reading it was fitted on, mapped back
    through the elementwise functions before it (None: no op records one)."""
    position, undo = raw, []
    for op in stage.ops:
        if isinstance(op, Select):
            if position not in op.columns:
                return None
            position = op.columns.index(position)
        elif position in op.columns:
            if isinstance(op, Function):
                undo.append(op.kind)
                continue
            fitted = op.fitted(op.columns.index(position))
            if fitted is None:
                return None
            ends = np.array(fitted)
            with np.errstate(all="ignore"):
                for kind in reversed(undo):
                    ends = UNDO[kind](ends)
            return float(np.nanmin(ends)), float(np.nanmax(ends))
    return None


def inside_fitted(chain: Chain, rows: np.ndarray) -> np.ndarray:
    """Per row: every raw input inside the range its preprocessing was fitted on (NaN rows count as
    outside). Rows outside are extrapolation: their parity is reported apart from the verdict."""
    rows = np.asarray(rows, dtype=np.float64)
    inside = np.ones(len(rows), dtype=bool)
    if chain.pre is None:
        return inside
    for raw in range(chain.n_inputs):
        fitted = _fitted_range(chain.pre, raw)
        if fitted is not None:
            inside &= (rows[:, raw] >= fitted[0]) & (rows[:, raw] <= fitted[1])
    return inside


def _tree_rows(chain: Chain, seed: int) -> list[np.ndarray]:
    """Rows on the thresholds of the tree ensembles that read the raw inputs (and NaN rows where they route NaN)."""
    net = chain.net
    ops = [op for op in net.ops if isinstance(op, TreeEnsemble) and op.inputs == (net.input,)] if net else []
    return [op.boundary_rows(chain.n_inputs, np.random.default_rng(seed)) for op in ops]


def with_masks(graph: Graph | None, rows: np.ndarray, seed: int) -> np.ndarray:
    """``rows`` with each input the network reads only as an attention mask (``InputPart.mask``) made 0/1: row i
    keeps ``i % (n + 1)`` of its n entries, every count from none to all, the first ones in even rows (a padded
    set), anywhere in odd rows. Random numbers there would all count as kept and test no masking at all."""
    parts = [p for p in graph.parts if p.mask] if graph is not None else []
    if not parts:
        return rows
    rng = np.random.default_rng(seed + 1)
    rows = rows.copy()
    for part in parts:
        n = size(part.shape)
        for i in range(len(rows)):
            kept = np.arange(n) < i % (n + 1)
            rows[i, part.offset : part.offset + n] = kept if i % 2 == 0 else rng.permutation(kept)
    return rows


def discrete_columns(graph: Graph | None) -> list[int]:
    """The input columns that hold discrete values (attention masks, Embedding indices): no float32 rounding
    moves them, so the float64 reference's nudge must not either (``criteria.nudge``)."""
    if graph is None:
        return []
    masks = [k for p in graph.parts if p.mask for k in range(p.offset, p.offset + size(p.shape))]
    return sorted({*masks, *index_columns(graph)})


# elementwise activations that a run of index columns may pass through on its way to an op reading indices: each
# monotone, so the whole numbers drawn in [low, high) (and halves beyond the ends) stay indices in range if the
# ends do (a ReLU before the lookup; the trunc and clip of a cast to int)
_INDEX_PATHS: dict[str, Callable[..., float]] = {
    "linear": lambda x: x,
    "nan_to_num": lambda x, **_: x,
    "relu": lambda x: max(x, 0.0),
    "trunc": math.trunc,
    "floor": math.floor,
    "clip": lambda x, low, high: min(max(x, low), high),
}


def _run_start(graph: Graph, producers: dict[str, Op], value: str, low: int, high: int) -> int | None:
    """Where in the input row the run of columns that ``value`` holds starts, following it back through
    reshapes, slices and ``_INDEX_PATHS`` activations that keep the indices in range (None: computed)."""
    start = 0
    while value != graph.input:
        op = producers.get(value)
        if isinstance(op, Slice) and op.steps == 1:
            start += op.start
        elif isinstance(op, Activate) and op.steps == 1 and op.activation.kind in _INDEX_PATHS:
            f = functools.partial(_INDEX_PATHS[op.activation.kind], **op.activation.params)
            if not (low - 1 < f(low - 0.5) and f(high - 0.5) < high):
                return None
        elif not isinstance(op, Reshape):
            return None
        value = op.inputs[0]
    return start


def index_columns(graph: Graph, source: str | None = None) -> dict[int, tuple[int, int]]:
    """The input columns an op reads as indices (an ``Embedding``'s, an ``Encode``'s: ``Op.index_range``),
    directly or through reshapes and slices of the input and activations that keep them in range
    (``_INDEX_PATHS``), each with its range ``[low, high)``: parity rows draw whole numbers in range there, as a
    model's real inputs are (elsewhere the C follows the op's rule, where Keras may raise).

    With the chain's ``source``: ``ExportError`` for indices the network computes instead, as no parity row can
    keep them in range (TensorFlow raises on the first outside it), so the check cannot run."""
    producers = {op.output: op for op in graph.ops}
    columns: dict[int, tuple[int, int]] = {}
    for op in graph.ops:
        span = op.index_range()
        start = None if span is None else _run_start(graph, producers, op.inputs[0], *span)
        if start is not None:
            columns.update(dict.fromkeys(range(start, start + graph.widths[op.inputs[0]]), span))
        elif span is not None and source is not None:
            by = producers[op.inputs[0]]
            raise ExportError(
                f"{source}: {op.name!r} ({type(op).__name__}) reads indices that {by.name!r} ({by.describe()}) "
                "computes: the parity check draws indices in range only where they are input columns (through "
                "reshapes, slices and activations that keep them: docs/keras-layers.md); export it with --no-check"
            )
    return columns


def with_indices(rows: np.ndarray, columns: dict[int, tuple[int, int]], seed: int) -> np.ndarray:
    """``rows`` with each index column replaced by whole numbers in its range ``[low, high)``, the first rows at
    the ends of that range (0, high - 1, -1, low, and halves truncated to them, those in range), the rest
    at random."""
    rng = np.random.default_rng(seed)
    for column, (low, high) in columns.items():
        values = rng.integers(low, high, len(rows)).astype(np.float64)
        ends = np.array([0, high - 1, -1, low, high - 0.5, -0.5, low - 0.5])
        ends = ends[(np.trunc(ends) >= low) & (np.trunc(ends) < high)][: len(rows)]
        values[: len(ends)] = ends
        rows[:, column] = values
    return rows


def chain_inputs(chain: Chain, samples: int, seed: int = 0, user_rows: np.ndarray | None = None) -> np.ndarray:
    """Rows for the parity check of ``chain``: domain-aware when it starts with preprocessing, masks made 0/1."""
    if chain.pre is None:
        indices = index_columns(chain.net, chain.source) if chain.net is not None else {}
        rows = with_masks(chain.net, with_indices(make_inputs(chain.n_inputs, samples, seed), indices, seed), seed)
        given = [] if user_rows is None else [np.asarray(user_rows, dtype=np.float32).reshape(-1, chain.n_inputs)]
        return np.concatenate([rows, *given, *_tree_rows(chain, seed)])
    rng = np.random.default_rng(seed)
    pools = [_column_pool(chain.pre, raw, rng, max(samples, 1)) for raw in range(chain.n_inputs)]
    rows = np.stack([rng.choice(np.concatenate(pool), samples) for pool in pools], axis=1)
    n_edges = max(len(edges) for _, edges in pools)  # every edge value of every column appears at least once
    edges = np.stack([np.resize(rng.permutation(edges), n_edges) for _, edges in pools], axis=1)
    parts = [rows, edges]
    if user_rows is not None:
        parts.append(np.asarray(user_rows, dtype=np.float64).reshape(-1, chain.n_inputs))
    return np.concatenate(parts).astype(np.float32)


DEFAULT_SAMPLES = 10_000
# Rows evaluated and compared at once: the framework's intermediate values and the float64 error arrays
# stay this size however many rows are checked (a million rows of a 128-wide network at once take 7 GB).
CHUNK_ROWS = 65_536


MAX_SPIKES = 2048  # columns given a one-hot spike of their own among the edge rows (``edge_rows``)


def edge_rows(n_inputs: int) -> np.ndarray:
    """Deterministic rows at the edges: zeros, constants, one-hot spikes up to 100, alternating signs.

    Spikes saturate tanh, sigmoid and softmax through a single large term; constants and
    alternating rows stop at 30, beyond which two correct float32 evaluations of an
    unbounded (ReLU, linear) network legitimately differ by more than the default atol
    wherever large terms cancel. Check larger inputs with --inputs and a matching --atol.
    """
    rows = [np.zeros(n_inputs)]
    for v in (1e-6, 0.5, 1.0, 3.0, 10.0, 30.0):
        rows += [np.full(n_inputs, v), np.full(n_inputs, -v)]
    # a spike in every column, or in MAX_SPIKES columns evenly spread over a wider row (a volume's tensor: a spike
    # in each of its columns would take columns x columns floats, gigabytes)
    columns = np.unique(np.linspace(0, n_inputs - 1, min(n_inputs, MAX_SPIKES)).round().astype(np.int64))
    spikes = np.zeros((4, len(columns), n_inputs), dtype=np.float32)
    for i, v in enumerate((10.0, -10.0, 100.0, -100.0)):
        spikes[i, np.arange(len(columns)), columns] = v
    for v in (10.0, 30.0):
        alternating = np.where(np.arange(n_inputs) % 2 == 0, v, -v)
        rows += [alternating, -alternating]
    flat = np.asarray(rows, dtype=np.float32)
    return np.concatenate([flat[:13], spikes.reshape(-1, n_inputs), flat[13:]])


def make_inputs(
    n_inputs: int, samples: int = DEFAULT_SAMPLES, seed: int = 0, user_rows: np.ndarray | None = None
) -> np.ndarray:
    """Random standard-normal rows (a tenth of them scaled by 5), edge rows, then the user's rows."""
    rng = np.random.default_rng(seed)
    random = np.empty((samples, n_inputs), dtype=np.float32)
    for start in range(0, samples, CHUNK_ROWS):  # the same draws as one call, without a float64 copy of them all
        random[start : start + CHUNK_ROWS] = rng.standard_normal((min(CHUNK_ROWS, samples - start), n_inputs))
    random[: samples // 10] *= 5.0
    parts = [random, edge_rows(n_inputs)]
    if user_rows is not None:
        parts.append(np.asarray(user_rows, dtype=np.float32).reshape(-1, n_inputs))
    return np.concatenate(parts)


def noise_rows(n_rows: int, n_noise: int, seed: int = 1) -> np.ndarray:
    """Standard-normal noise for a generator, as Lamarr draws it: the same rows go to C and the framework."""
    return np.random.default_rng(seed).standard_normal((n_rows, n_noise)).astype(np.float32)


def in_chunks(
    fn: Callable[..., np.ndarray], inputs: np.ndarray, *extra: np.ndarray, dtype: type = np.float32
) -> np.ndarray:
    """``fn`` on ``CHUNK_ROWS`` rows at a time (of ``inputs`` and the arrays beside them), as ``dtype``:
    a framework's memory stays one chunk's, and a Ctrl-C that it swallowed is raised between chunks."""
    parts = []
    for start in range(0, max(len(inputs), 1), CHUNK_ROWS):
        parts.append(np.asarray(fn(*(a[start : start + CHUNK_ROWS] for a in (inputs, *extra))), dtype=dtype))
        interrupt.check()
    return np.concatenate(parts)
