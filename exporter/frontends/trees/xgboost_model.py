"""An XGBoost model file (JSON or UBJSON, as ``Booster.save_model`` writes it) read without XGBoost.

What XGBoost computes, and so the C: a row starts from the base margin, every tree adds its leaf
in float32 in tree order to its output group (``tree_info``), then the objective's transform in
float32 (``TreeEnsemble(precision="float")``: its sigmoid, softmax and exp formulas). A split sends
a row left when ``x < split_condition`` in float32 (stated here as ``x <= `` the float32 below it),
a NaN the node's ``default_left`` way. ``base_score`` is stored as the objective's output (a
probability for the logistic objectives, a mean count for Poisson): XGBoost turns it into the
margin with ``ProbToMargin`` in float32 (``-logf(1/p - 1)``, ``logf(p)``), done here the same way.
From XGBoost 3.1 it is a vector (one per class); older files hold one number.

A categorical split (``split_type`` 1, from ``enable_categorical``: one-hot or partition) lists the
categories it sends right (``categories`` from ``categories_segments[k]``, ``categories_sizes[k]`` of them,
for node ``categories_nodes[k]``); every other value goes left: a category not listed or beyond the
largest, a negative value (XGBoost's ``InvalidCat``: not a category), above ``2^24 - 1``; NaN goes the
``default_left`` way. A float is the category its truncation names (2.9 is 2). The IR sends listed
categories left, so these nodes' children are swapped and their NaN way turned round.

Supported: the ``gbtree`` booster and ``dart`` (each tree's weight applied to its leaves, as
XGBoost multiplies them in float32); ``gblinear`` is refused by name.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from exporter.frontends.builder import Unsupported
from exporter.frontends.trees.ensemble import Ensemble, Tree, bitset, checked, file_tree, set_budget

# objective: (the link of its predict, how base_score becomes the margin)
OBJECTIVES = {
    "reg:squarederror": ("identity", "identity"),
    "reg:linear": ("identity", "identity"),
    "reg:pseudohubererror": ("identity", "identity"),
    "reg:absoluteerror": ("identity", "identity"),
    "reg:logistic": ("sigmoid", "logit"),
    "binary:logistic": ("sigmoid", "logit"),
    "binary:logitraw": ("identity", "identity"),  # its base_score is a margin already (XGBoost 3)
    "count:poisson": ("exp", "log"),
    "reg:gamma": ("exp", "log"),
    "reg:tweedie": ("exp", "log"),
    "multi:softprob": ("softmax", "identity"),
    "multi:softmax": ("softmax", "identity"),  # exported as its probabilities: the class is their argmax
}


class FileError(ValueError):
    """The document is not an XGBoost model as XGBoost writes one: what is wrong, and where."""


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind):
        raise FileError(f"{where}.{key} is {type(value).__name__}, not what XGBoost writes")
    return value


def _count(text: Any, where: str, limit: int) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise FileError(f"{where} is {str(text)[:40]!r}, not a count") from None
    if not 0 <= value <= limit:
        raise FileError(f"{where} is {value}, outside 0..{limit}")
    return value


def _array(tree: dict[str, Any], key: str, n: int | None, where: str, dtype: type = np.float64) -> np.ndarray:
    """``tree[key]``: ``n`` numbers (any number for None; a JSON list or a UBJSON typed array)."""
    raw = _get(tree, key, (list, np.ndarray), where)
    if n is not None and len(raw) != n:
        raise FileError(f"{where}.{key} holds {len(raw)} values for {n} nodes")
    try:
        values = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise FileError(f"{where}.{key} holds something other than numbers") from None
    integral = np.issubdtype(dtype, np.integer)
    if integral and not (np.array_equal(values, np.round(values)) and np.all(np.abs(values) < 2**53)):
        raise FileError(f"{where}.{key} holds numbers that are not integers (or beyond 2^53)")
    if dtype is np.float32 and np.any(np.isfinite(values) & (np.abs(values) > np.finfo(np.float32).max)):
        raise FileError(f"{where}.{key} holds numbers beyond float32's range, which XGBoost does not write")
    return values.astype(dtype) if dtype is not np.float64 else values


def _categories(tree: dict[str, Any], t: int, categorical: np.ndarray, budget: list[int]) -> tuple[np.ndarray, list]:
    """Per node the set its categorical split tests (-1: a threshold), and the sets as bitsets."""
    where = f"trees[{t}]"
    category = np.full(categorical.size, -1)
    if not categorical.any():
        return category, []
    nodes = _array(tree, "categories_nodes", None, where, np.int64)
    keys = ("categories_segments", "categories_sizes")
    segments, sizes = (_array(tree, k, nodes.size, where, np.int64) for k in keys)
    listed = _array(tree, "categories", None, where, np.int64)
    if not np.array_equal(np.sort(nodes), np.flatnonzero(categorical)):
        raise FileError(f"{where}.categories_nodes does not name its categorical splits (split_type 1) once each")
    if np.any((segments < 0) | (sizes < 0) | (segments + sizes > listed.size)):
        raise FileError(f"{where}.categories_segments and _sizes point outside its {listed.size} categories")
    category[nodes] = np.arange(nodes.size)
    try:
        return category, [bitset(listed[a : a + k], budget) for a, k in zip(segments, sizes, strict=True)]
    except Unsupported as err:
        raise Unsupported(f"tree {t}: {err}") from None


def _tree(tree: Any, t: int, width: int, budget: list[int]) -> Tree:
    where = f"trees[{t}]"
    if not isinstance(tree, dict):
        raise FileError(f"{where} is {type(tree).__name__}, not an object")
    param = _get(tree, "tree_param", dict, where)
    if _count(param.get("size_leaf_vector", "1"), f"{where}.tree_param.size_leaf_vector", 1 << 20) > 1:
        raise Unsupported(f"tree {t} has vector leaves (multi_strategy='multi_output_tree'): not supported")
    n = len(_get(tree, "left_children", (list, np.ndarray), where))
    if n == 0:
        raise FileError(f"{where} has no nodes")
    left, right = (_array(tree, k, n, where, np.int64) for k in ("left_children", "right_children"))
    split_type = _array(tree, "split_type", n, where, np.int64) if "split_type" in tree else np.zeros(n)
    is_leaf = left == -1
    if np.any((split_type != 0) & (split_type != 1) & ~is_leaf):
        node = int(np.flatnonzero((split_type != 0) & (split_type != 1) & ~is_leaf)[0])
        raise FileError(f"{where} node {node} has split_type {split_type[node]}, neither 0 (numerical) nor 1")
    categorical = (split_type == 1) & ~is_leaf
    category, sets = _categories(tree, t, categorical, budget)
    condition = _array(tree, "split_conditions", n, where, np.float32)  # a leaf's value, too
    bad = ~is_leaf & ~categorical & ~(condition > -np.inf)
    if np.any(bad):
        node = int(np.flatnonzero(bad)[0])
        raise FileError(f"{where} node {node} splits at {condition[node]}, not a number above -inf")
    below = np.nextafter(condition, np.float32(-np.inf)).astype(np.float64)  # x < s: x <= the float below s
    per_node = {
        "feature": _array(tree, "split_indices", n, where, np.int64),
        "threshold": np.where(categorical, 0.0, below),
        "missing_left": (_array(tree, "default_left", n, where, np.int64) != 0) ^ categorical,  # swapped below
        "category": category,
    }
    left, right = np.where(categorical, right, left), np.where(categorical, left, right)  # listed ones go left
    values = condition.astype(np.float64).reshape(n, width)
    return file_tree(f"tree {t}", left, right, is_leaf, per_node, values, sets)


def _base_margin(text: Any, how: str, n_groups: int) -> np.ndarray:
    """``base_score`` (``"5E-1"`` or, from XGBoost 3.1, ``"[5E-1,...]"``) -> the float32 margin per group."""
    try:
        value = json.loads(str(text)) if str(text).startswith("[") else float(str(text))
        base = np.atleast_1d(np.asarray(value, dtype=np.float64)).astype(np.float32)
    except (TypeError, ValueError):
        raise FileError(f"learner_model_param.base_score is {str(text)[:40]!r}, not numbers") from None
    if base.ndim != 1 or base.size not in (1, n_groups) or not np.all(np.isfinite(base)):
        raise FileError(f"base_score {str(text)[:40]!r}: one finite number, or one per class ({n_groups})")
    base = np.broadcast_to(base, (n_groups,)).astype(np.float32)
    if how == "logit":  # -logf(1.0f / p - 1.0f): the division and subtraction in float, logf's rounding
        if not np.all((base > 0) & (base < 1)):
            raise FileError(f"base_score {base.tolist()} must lie in (0, 1) for a logistic objective")
        base = -np.log((np.float32(1) / base - np.float32(1)).astype(np.float64)).astype(np.float32)
    elif how == "log":
        if not np.all(base > 0):
            raise FileError(f"base_score {base.tolist()} must be positive for a log-link objective")
        base = np.log(base.astype(np.float64)).astype(np.float32)
    return base.astype(np.float64)


def read_xgboost(doc: Any) -> tuple[Ensemble, int, str]:
    """The ensemble of an XGBoost model document, its number of features and its objective."""
    learner = _get(doc, "learner", dict, "model")
    param = _get(learner, "learner_model_param", dict, "learner")
    objective = _get(_get(learner, "objective", dict, "learner"), "name", str, "learner.objective")
    booster = _get(learner, "gradient_booster", dict, "learner")
    name = _get(booster, "name", str, "learner.gradient_booster")
    if name not in ("gbtree", "dart"):
        raise Unsupported(f"booster {name!r}: only tree boosters (gbtree, dart) are supported")
    if objective not in OBJECTIVES:
        raise Unsupported(f"objective {objective!r}: supported are {', '.join(OBJECTIVES)}")
    if _count(param.get("num_target", "1"), "learner_model_param.num_target", 1 << 20) > 1:
        raise Unsupported("several targets (num_target > 1): not supported")
    n_features = _count(param.get("num_feature"), "learner_model_param.num_feature", 1 << 24)
    n_groups = max(1, _count(param.get("num_class", "0"), "learner_model_param.num_class", 1 << 16))
    model = _get(booster, "gbtree" if name == "dart" else "model", dict, "gradient_booster")
    model = _get(model, "model", dict, "gradient_booster.gbtree") if name == "dart" else model
    trees = _get(model, "trees", list, "gradient_booster.model")
    if not trees:
        raise Unsupported("the model has no trees")
    groups = _array(model, "tree_info", len(trees), "gradient_booster.model", np.int64)
    if np.any((groups < 0) | (groups >= n_groups)):
        raise FileError(f"tree_info names output groups outside 0..{n_groups - 1}")
    link, base = OBJECTIVES[objective]
    budget = set_budget()
    read = [_tree(tree, t, 1, budget) for t, tree in enumerate(trees)]
    if name == "dart":
        weights = _array(booster, "weight_drop", len(trees), "gradient_booster", np.float32)
        for tree, w in zip(read, weights, strict=True):
            tree.values = (tree.values.astype(np.float32) * w).astype(np.float64)  # as XGBoost scales, in float
    ensemble = Ensemble(read, groups.tolist(), _base_margin(param.get("base_score"), base, n_groups), link)
    ensemble.missing, ensemble.op_fields = True, {"precision": "float", "category_min": 0.0}
    return checked(ensemble, n_features, "the trees", sklearn_leaves=False), n_features, objective
