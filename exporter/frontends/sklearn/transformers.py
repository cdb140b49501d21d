"""Fitted scikit-learn transformers -> IR column stages, one mapping per class.

Every supported transformer works feature by feature, so Pipelines compose column
ops and a ColumnTransformer is a ``Select`` (its output layout: transformed columns
in transformer order, then the remainder) followed by each transformer's ops moved
to its block of output columns. Problems are collected with the step path
(``tX / colcnv / quantile``) so that the user sees all of them at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from exporter.errors import Problem, UnsupportedModelError
from exporter.frontends.builder import Unsupported
from exporter.ir.columns import FUNCTIONS, ColumnOp, ColumnStage, Function, MulAdd, Power, Quantile, Select, Standardize

Mapping = Callable[[Any, int, str, list[Problem]], list[ColumnOp]]
TRANSFORMERS: dict[str, Mapping] = {}  # class name -> mapping
IMPORT_PATHS: list[str] = []  # each class where scikit-learn exports it: the safe loader's allow-list


def handles(*paths: str) -> Callable[[Mapping], Mapping]:
    """Register a mapping for the classes at ``paths`` (``sklearn.preprocessing.StandardScaler``)."""

    def register(fn: Mapping) -> Mapping:
        for path in paths:
            TRANSFORMERS[path.rpartition(".")[2]] = fn
            IMPORT_PATHS.append(path)
        return fn

    return register


def _all(n: int) -> tuple[int, ...]:
    return tuple(range(n))


def _fitted(est: Any, *attributes: str) -> None:
    missing = [a for a in attributes if not hasattr(est, a)]
    if missing:
        raise Unsupported(f"{type(est).__name__} is not fitted (no {', '.join(missing)})")


def _scaler(est: Any, n: int, path: str, fitted: tuple[str, str], center: Any, scale: Any) -> list[ColumnOp]:
    """``(x - center) / scale`` with an optional part switched off (0 or 1), as sklearn's scalers do."""
    _fitted(est, *fitted)
    return [Standardize(path, _all(n), center, scale)]


@handles("sklearn.preprocessing.StandardScaler")
def standard_scaler(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    center = getattr(est, "mean_", None) if est.with_mean else 0.0
    scale = getattr(est, "scale_", None) if est.with_std else 1.0
    return _scaler(est, n, path, ("scale_", "mean_"), center, scale)


@handles("sklearn.preprocessing.RobustScaler")
def robust_scaler(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    center = getattr(est, "center_", None) if est.with_centering else 0.0
    scale = getattr(est, "scale_", None) if est.with_scaling else 1.0
    return _scaler(est, n, path, ("center_", "scale_"), center, scale)


@handles("sklearn.preprocessing.MaxAbsScaler")
def max_abs_scaler(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    _fitted(est, "scale_")
    return [Standardize(path, _all(n), 0.0, est.scale_)]


@handles("sklearn.preprocessing.MinMaxScaler")
def min_max_scaler(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    _fitted(est, "scale_", "min_")
    clip = (float(est.feature_range[0]), float(est.feature_range[1])) if est.clip else None
    return [MulAdd(path, _all(n), est.scale_, est.min_, clip)]


@handles("sklearn.preprocessing.QuantileTransformer")
def quantile_transformer(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    _fitted(est, "quantiles_", "references_")
    return [Quantile(path, _all(n), est.quantiles_, est.references_, est.output_distribution == "normal")]


@handles("sklearn.preprocessing.PowerTransformer")
def power_transformer(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    _fitted(est, "lambdas_")
    ops: list[ColumnOp] = [Power(path, _all(n), est.method, est.lambdas_)]
    if est.standardize:
        ops.append(Standardize(f"{path} (standardize)", _all(n), est._scaler.mean_, est._scaler.scale_))
    return ops


def _function_kind(fn: Any, role: str) -> str | None:
    if fn is None:
        return None
    for kind in FUNCTIONS:
        if fn is getattr(np, kind):
            return kind
    raise Unsupported(f"{role} {getattr(fn, '__name__', fn)!r} is not one of numpy's {', '.join(FUNCTIONS)} (or None)")


@handles("sklearn.preprocessing.FunctionTransformer")
def function_transformer(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    if est.kw_args or est.inv_kw_args:
        raise Unsupported("kw_args / inv_kw_args are not supported")
    kind = _function_kind(est.func, "func")
    inverse = _function_kind(est.inverse_func, "inverse_func")
    if kind is None and inverse is None:
        return []
    if kind is None:  # identity forward, a real inverse: keep the inverse, with an identity forward op
        raise Unsupported("func=None with an inverse_func is not supported")
    return [Function(path, _all(n), kind, inverse)]


@handles("sklearn.pipeline.Pipeline")
def pipeline(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    ops: list[ColumnOp] = []
    width = n
    for name, step in est.steps:
        if step is None or step == "passthrough":
            continue
        step_ops = convert(step, width, f"{path} / {name}", problems)
        ops += step_ops
        width = ColumnStage(width, step_ops).n_outputs
    return ops


def _column_indices(columns: Any, n: int) -> list[int]:
    if isinstance(columns, slice):
        return list(range(n))[columns]
    array = np.asarray(columns)
    if array.dtype == bool:
        return [int(i) for i in np.flatnonzero(array)]
    if array.dtype.kind in "iu":
        return [int(i) % n for i in array.reshape(-1)]
    raise Unsupported(f"columns {columns!r}: only integer indices, slices and boolean masks are supported (no names)")


@handles("sklearn.compose.ColumnTransformer")
def column_transformer(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    _fitted(est, "transformers_")
    if getattr(est, "sparse_output_", False):
        raise Unsupported("sparse output is not supported")
    layout: list[int] = []
    blocks: list[tuple[int, list[ColumnOp]]] = []
    for name, trans, columns in est.transformers_:
        try:
            indices = _column_indices(columns, n)
        except Unsupported as err:
            problems.append(Problem(f"{path} / {name}", type(trans).__name__, str(err), "step"))
            continue
        if trans == "drop" or not indices:
            continue
        offset = len(layout)
        layout += indices
        if trans != "passthrough":
            sub = convert(trans, len(indices), f"{path} / {name}", problems)
            if any(isinstance(op, Select) for op in sub):
                reason = "a ColumnTransformer nested in a ColumnTransformer is not supported"
                problems.append(Problem(f"{path} / {name}", type(trans).__name__, reason, "step"))
                continue
            blocks.append((offset, sub))
    ops: list[ColumnOp] = [Select(f"{path} (columns)", tuple(layout), n)]
    for offset, sub in blocks:
        ops += [replace(op, columns=tuple(offset + c for c in op.columns)) for op in sub]
    return ops


def convert(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    """Column ops of one (possibly composite) transformer taking ``n`` columns; problems are collected."""
    cls = type(est).__name__
    mapping = TRANSFORMERS.get(cls) if type(est).__module__.startswith("sklearn.") else None
    if mapping is None:
        problems.append(Problem(path, cls, "this transformer is not supported", "step"))
        return []
    expected = getattr(est, "n_features_in_", n)
    if expected != n:
        problems.append(Problem(path, cls, f"fitted on {expected} columns, but receives {n}", "step"))
        return []
    try:
        ops = mapping(est, n, path, problems)
    except Unsupported as err:
        problems.append(Problem(path, cls, str(err), "step"))
        return []
    refusals = [reason for op in ops if (reason := op.refusal())]
    if refusals:
        problems.append(Problem(path, cls, refusals[0], "step"))
        return []
    return ops


def transformer_stage(est: Any, name: str, n_inputs: int | None = None) -> ColumnStage:
    """The column stage of a fitted transformer named ``name`` (its file's stem) for ``n_inputs`` columns."""
    n = int(getattr(est, "n_features_in_", 0)) if n_inputs is None else n_inputs
    problems: list[Problem] = []
    ops = convert(est, n, name, problems)
    if problems:
        raise UnsupportedModelError(name, problems)
    return ColumnStage(n, ops)
