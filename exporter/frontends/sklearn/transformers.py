"""Fitted scikit-learn transformers -> IR column stages, one mapping per class.

Pipelines compose column ops and a ColumnTransformer is a ``Select`` (its output layout: transformed
columns in transformer order, then the remainder) followed by each transformer's ops moved to its
block of output columns. scikit-learn's classes are found by name (``handles``); other classes by
class, or by name in any module (Lamarr's ``DecorrTransformer``, scikinC's ``FastQuantileLayer``),
ahead of them, in the registry that ``register_transformer`` (the extension API for the user's own
transformers) also fills. Problems are collected with the step path (``tX / colcnv / quantile``) so
that the user sees all of them at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from exporter.common.errors import Problem, UnsupportedModelError
from exporter.frontends.builder import Unsupported
from exporter.frontends.registry import Registry
from exporter.frontends.sklearn.symbolic import Untraceable, trace
from exporter.ir.column_formulas import Expression, Mix
from exporter.ir.columns import (
    FUNCTIONS,
    ColumnOp,
    ColumnStage,
    FixedBin,
    Function,
    MulAdd,
    Polynomial,
    Power,
    Quantile,
    Select,
    Standardize,
)
from exporter.ir.expression import Expr, ExpressionError, X, parse

Mapping = Callable[[Any, int, str, list[Problem]], list[ColumnOp]]
TRANSFORMERS: Registry[str, Mapping] = Registry("scikit-learn transformer")  # scikit-learn's classes, by name
IMPORT_PATHS: list[str] = []  # each class where scikit-learn exports it: the safe loader's allow-list
# A class, or a class name from any module (whose package is never imported), ahead of scikit-learn's.
REGISTERED: Registry[type | str, Mapping] = Registry("registered transformer")


def handles(*paths: str) -> Callable[[Mapping], Mapping]:
    """Register a mapping for the classes at ``paths`` (``sklearn.preprocessing.StandardScaler``)."""

    def register(fn: Mapping) -> Mapping:
        for path in paths:
            TRANSFORMERS.add(path.rpartition(".")[2], fn)
            IMPORT_PATHS.append(path)
        return fn

    return register


def register_transformer(cls_or_name: type | str) -> Callable[[Mapping], Mapping]:
    """Decorator: ``mapping(est, n, path, problems) -> [ColumnOp, ...]`` translates instances of
    ``cls_or_name`` (the class itself, or any class of that name) taking ``n`` columns, ahead of
    the built-in mappings. It raises ``Unsupported`` with the reason for a fit it cannot translate.
    Registering a class again replaces its mapping."""
    if not isinstance(cls_or_name, (type, str)) or not cls_or_name:
        raise TypeError(f"register_transformer takes a class or a class name, not {cls_or_name!r}")

    def register(fn: Mapping) -> Mapping:
        REGISTERED.add(cls_or_name, fn, replace=True)
        return fn

    return register


def mapping_for(est: Any) -> Mapping | None:
    """The mapping of ``est``: registered for its class, for its class name, or scikit-learn's own."""
    cls = type(est)
    found = REGISTERED.get(cls) or REGISTERED.get(cls.__name__)
    if found is None and cls.__module__.startswith("sklearn."):
        found = TRANSFORMERS.get(cls.__name__)
    return found


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


@REGISTERED.register("WeightedQuantileTransformer")  # scikinC's, read as the quantiles it holds
@handles("sklearn.preprocessing.QuantileTransformer")
def quantile_transformer(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    _fitted(est, "quantiles_", "references_")
    return [Quantile(path, _all(n), est.quantiles_, est.references_, est.output_distribution == "normal")]


def _grid(interpolators: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, values) of FastQuantileLayer's per-column interpolators (FixedBinInterpolator)."""
    if any(not hasattr(t, a) for t in interpolators for a in ("x_min", "x_max", "y_values")):
        raise Unsupported("an interpolator has no x_min, x_max or y_values")
    values = [np.asarray(t.y_values, dtype=np.float32).reshape(-1) for t in interpolators]
    if len({v.size for v in values}) != 1:
        raise Unsupported("the columns' grids have different lengths")
    return np.array([t.x_min for t in interpolators]), np.array([t.x_max for t in interpolators]), np.stack(values)


@REGISTERED.register("FastQuantileLayer")
def fast_quantile_layer(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    """scikinC's FastQuantileLayer (fastquantilelayer package), read by name and attributes."""
    _fitted(est, "fwdTransforms_", "bwdTransforms_")
    if getattr(est, "decorrelate", False):
        raise Unsupported("decorrelate=True (a linear decorrelation after the quantiles) is not supported")
    forward, backward = _grid(est.fwdTransforms_), _grid(est.bwdTransforms_)
    if getattr(est, "default_to_inverse", False):
        forward, backward = backward, forward
    if forward[2].shape[0] != n or backward[2].shape[0] != n:
        raise Unsupported(f"{forward[2].shape[0]} interpolators for {n} columns")
    return [FixedBin(path, _all(n), *forward, back=backward)]


def polynomial_columns(
    n: int, degrees: tuple[int, int], interaction_only: bool, include_bias: bool, n_out: int
) -> tuple[list[int], list[int], list[int]]:
    """(source, feature, keep) of ``Polynomial``: scikit-learn's dense expansion, one product per column.

    Each degree's columns are the previous degree's columns from feature ``f``'s first term on
    (past it with ``interaction_only``) times feature ``f``, for f = 0, 1, ...; a minimum degree
    then keeps the last ``n_out`` columns (and the bias).
    """
    low, high = degrees
    source, feature = ([-2], [0]) if include_bias else ([], [])
    if high > 0:
        first = len(source)
        source += [-1] * n
        feature += list(range(n))
        index = [*range(first, first + n), first + n]
        for _ in range(2, high + 1):
            current, end, next_index = len(source), index[-1], []
            for f in range(n):
                next_index.append(current)
                start = index[f + 1] if interaction_only else index[f]
                if end <= start:
                    break
                source += list(range(start, end))
                feature += [f] * (end - start)
                current = len(source)
            index = [*next_index, current]
    full = len(source)
    keep = list(range(full)) if low <= 1 else [0] * include_bias + list(range(full - n_out + include_bias, full))
    return source, feature, keep


@handles("sklearn.preprocessing.PolynomialFeatures")
def polynomial_features(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    _fitted(est, "n_output_features_", "_max_degree", "_min_degree")
    degrees = (int(est._min_degree), int(est._max_degree))
    recipe = polynomial_columns(n, degrees, bool(est.interaction_only), bool(est.include_bias), est.n_output_features_)
    if len(recipe[2]) != est.n_output_features_:
        raise Unsupported(f"expected {est.n_output_features_} output columns, the expansion gives {len(recipe[2])}")
    return [Polynomial(path, _all(n), *recipe)]


@handles("sklearn.preprocessing.PowerTransformer")
def power_transformer(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    _fitted(est, "lambdas_")
    ops: list[ColumnOp] = [Power(path, _all(n), est.method, est.lambdas_)]
    if est.standardize:
        ops.append(Standardize(f"{path} (standardize)", _all(n), est._scaler.mean_, est._scaler.scale_))
    return ops


def _function_kind(fn: Any) -> str | None:
    """The name of a numpy function the exporter knows as a column function (None: not one)."""
    return next((kind for kind in FUNCTIONS if fn is getattr(np, kind)), None)


def _formula(est: Any, role: str) -> Expr | None:
    """``func`` or ``inverse_func`` as an expression: the transformer's ``func_inC`` / ``inverse_func_inC``,
    else the function's ``inC`` (scikinC's conventions, C expressions of ``{x}``), else traced."""
    fn = getattr(est, role)
    text = getattr(est, f"{role}_inC", None)
    where = f"{role}_inC"
    if text is None and fn is not None:
        text, where = getattr(fn, "inC", None), f"{role}.inC"
    if text is not None:
        try:
            return parse(text)
        except ExpressionError as err:
            shown = repr(text) if len(str(text)) <= 60 else f"{str(text)[:40]!r}..."  # one line, not the whole text
            raise Unsupported(f"{where} {shown}: {err}") from None
    if fn is None:
        return None
    try:
        return trace(fn)
    except Untraceable as err:
        name = getattr(fn, "__qualname__", None) or repr(fn)
        raise Unsupported(
            f"{role} {name!r} cannot be translated to C ({err}): attach a C expression of {{x}} as its inC "
            f'attribute (scikinC\'s convention, e.g. {name}.inC = "log({{x}} / (1 - {{x}}))") or as the '
            f"transformer's {role}_inC"
        ) from None


@handles("sklearn.preprocessing.FunctionTransformer")
def function_transformer(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    if est.kw_args or est.inv_kw_args:
        raise Unsupported("kw_args / inv_kw_args are not supported")
    custom = any(hasattr(est, f"{role}_inC") for role in ("func", "inverse_func"))
    kind, inverse = _function_kind(est.func), _function_kind(est.inverse_func)
    if not custom and kind and (inverse or est.inverse_func is None):
        return [Function(path, _all(n), kind, inverse)]  # numpy's own functions: a column op with its inverse
    forward, backward = _formula(est, "func"), _formula(est, "inverse_func")
    if forward is None and backward is None:
        return []
    label = getattr(est.func, "__name__", None) or "identity"
    return [Expression(path, _all(n), forward or X, backward, label)]


def _eig(est: Any) -> np.ndarray:
    """Lamarr's DecorrTransformer's fitted matrix, ``eig`` (or ``eig_``): real and square."""
    found = next((getattr(est, a) for a in ("eig", "eig_") if getattr(est, a, None) is not None), None)
    if found is None:
        raise Unsupported("DecorrTransformer is not fitted (no eig or eig_ matrix)")
    eig = np.asarray(found)
    if np.iscomplexobj(eig):
        if np.any(eig.imag != 0):
            raise Unsupported("eig is complex (not eigenvectors of a covariance matrix)")
        eig = eig.real
    if eig.ndim != 2 or eig.shape[0] != eig.shape[1] or not np.issubdtype(eig.dtype, np.number):
        raise Unsupported(f"eig must be a square matrix of numbers, got {eig.dtype} {eig.shape}")
    return eig.astype(np.float64)  # NaN or infinity: refused by the Mix op


@REGISTERED.register("DecorrTransformer")
def decorr_transformer(est: Any, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    """Lamarr's decorrelation, read from its matrix, its code never run: ``transform`` is
    ``X.dot(eig)``, ``inverse_transform`` ``X.dot(eig.T)`` (exact only for orthogonal eig: as Lamarr)."""
    eig = _eig(est)
    if len(eig) != n:
        raise Unsupported(f"eig is {eig.shape[0]}x{eig.shape[1]}, but the step receives {n} columns")
    return [Mix(path, _all(n), eig, 0.0, 0.0, eig.T)]


def n_columns(est: Any) -> int:
    """The columns a fitted transformer takes: ``n_features_in_``, else (a DecorrTransformer, which
    need not record it, maybe first in a Pipeline) its matrix size; 0 if unknown."""
    if hasattr(est, "n_features_in_"):
        return int(est.n_features_in_)
    if type(est).__name__ == "Pipeline":
        steps = [step for _, step in getattr(est, "steps", []) if step is not None and step != "passthrough"]
        return n_columns(steps[0]) if steps else 0
    try:
        return len(_eig(est)) if type(est).__name__ == "DecorrTransformer" else 0
    except Unsupported:
        return 0


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
            if any(isinstance(op, Select) for op in sub) or ColumnStage(len(indices), sub).n_outputs != len(indices):
                reason = (
                    "a step that changes the number of columns (a ColumnTransformer, PolynomialFeatures) "
                    "is not supported inside a ColumnTransformer"
                )
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
    mapping = mapping_for(est)
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
    n = n_columns(est) if n_inputs is None else n_inputs
    problems: list[Problem] = []
    ops = convert(est, n, name, problems)
    if problems:
        raise UnsupportedModelError(name, problems)
    return ColumnStage(n, ops)
