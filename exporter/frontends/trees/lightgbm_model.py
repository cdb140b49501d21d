"""A LightGBM text model file (``Booster.save_model``) read without LightGBM.

What LightGBM computes, and so the C: every tree adds its leaf in double in tree order, tree ``i``
to class ``i % num_tree_per_iteration`` (the starting value is folded into the first trees), then
``average_output`` (random-forest mode) divides by the iterations, then the objective's transform
in double (``binary``: ``1 / (1 + exp(-sigmoid * raw))``; ``multiclass``: softmax; ``poisson``,
``gamma``, ``tweedie``: exp). Leaf values are stored already shrunk.

A split compares the feature as a double with its double threshold (``x <= t`` goes left), after
LightGBM's prediction has set every input within ``kZeroThreshold`` (1e-35f) of zero to exactly 0.
Its ``decision_type`` holds the missing type: ``None`` (NaN is read as 0), ``NaN`` (NaN goes the
default way), ``Zero`` (NaN and the band around zero go the default way). With the band read as 0
a None or NaN split still has one cut: where the threshold lies inside the band, the cut moves to
the band's edge on the side 0 goes; a Zero split flags the band as missing
(``TreeEnsemble.zero_missing``).

A categorical split (``decision_type`` bit 0, from ``categorical_feature``) holds in ``threshold`` the
index of its bitset: ``cat_threshold[cat_boundaries[i]:cat_boundaries[i + 1]]``, 32-bit words whose bits
are the categories it sends left. LightGBM reads the double ``x`` as the category ``(int)x`` (truncated:
-0.5 is 0); NaN, a negative category, one beyond the bitset (or beyond ``int``) go right, whatever the
node's missing type and default side. Linear trees are refused by name.
"""

from __future__ import annotations

import itertools

import numpy as np

from exporter.frontends.builder import Unsupported
from exporter.frontends.trees.ensemble import Ensemble, Tree, checked, file_tree, set_budget, taken
from exporter.frontends.trees.xgboost_model import FileError
from exporter.ir.trees import MAX_CATEGORY

K_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float literal held in a double)
CATEGORY_MIN = float(np.nextafter(np.float32(-1), np.float32(0)))  # (int)x >= 0 from here on: -0.99... is 0
IDENTITY = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
EXP = ("poisson", "gamma", "tweedie")
MAX_TREES = 1 << 24


def _fields(lines: list[str]) -> dict[str, str]:
    fields = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
        elif line.strip():
            fields[line.strip()] = ""  # a flag line: average_output
    return fields


def _numbers(fields: dict[str, str], key: str, n: int, where: str, dtype: type = np.float64) -> np.ndarray:
    if key not in fields:
        raise FileError(f"{where} has no {key}")
    tokens = fields[key].split()
    if len(tokens) != n:
        raise FileError(f"{where}: {key} holds {len(tokens)} values, not {n}")
    try:
        return np.asarray(tokens, dtype=dtype)
    except (ValueError, OverflowError):
        kind = "integers" if dtype is not np.float64 else "numbers"
        raise FileError(f"{where}: {key} holds something other than {kind}") from None


def _cuts(threshold: np.ndarray, zero_goes_left: np.ndarray) -> np.ndarray:
    """Each split's threshold as one cut for float32 inputs, the band around zero deciding as 0 does."""
    cut = threshold.copy()
    inside = (threshold >= -K_ZERO) & (threshold < K_ZERO)
    below_band = float(np.nextafter(np.float32(-K_ZERO), np.float32(-np.inf)))
    cut[inside] = np.where(zero_goes_left[inside], K_ZERO, below_band)
    return cut


def _categories(fields: dict[str, str], t: int, index: np.ndarray, budget: list[int]) -> list[np.ndarray]:
    """The tree's bitsets (one word at least each), checked against the indices its categorical splits hold."""
    where = f"Tree={t}"
    try:
        n_sets = int(fields.get("num_cat", ""))
    except ValueError:
        raise FileError(f"{where}: num_cat is {fields.get('num_cat', '')[:40]!r}, not a count") from None
    if not 1 <= n_sets <= len(index) or np.any((index < 0) | (index >= n_sets) | (index != np.round(index))):
        raise FileError(f"{where}: its categorical splits name bitsets outside 0..{n_sets - 1} (num_cat {n_sets})")
    bounds = _numbers(fields, "cat_boundaries", n_sets + 1, where, np.int64)
    if bounds[0] != 0 or np.any(np.diff(bounds) < 0) or bounds[-1] > 1 << 26:
        raise FileError(f"{where}: cat_boundaries is not an ascending list from 0")
    words = _numbers(fields, "cat_threshold", int(bounds[-1]), where, np.int64)
    if np.any((words < 0) | (words >= 1 << 32)):
        raise FileError(f"{where}: cat_threshold holds something other than 32-bit words")
    if np.any(np.diff(bounds) > (MAX_CATEGORY + 1) // 32):
        raise Unsupported(f"tree {t}: a categorical split lists categories above {MAX_CATEGORY}")
    taken(int(bounds[-1]) + n_sets, budget)
    return [np.append(words[a:b], 0)[: max(b - a, 1)].astype(np.uint32) for a, b in itertools.pairwise(bounds)]


def _tree(fields: dict[str, str], t: int, budget: list[int]) -> Tree:
    where = f"Tree={t}"
    if fields.get("is_linear", "0") != "0":
        raise Unsupported(f"tree {t} is a linear tree (linear_tree=true): not supported")
    try:
        n_leaves = int(fields.get("num_leaves", ""))
    except ValueError:
        raise FileError(f"{where}: num_leaves is {fields.get('num_leaves', '')[:40]!r}, not a count") from None
    if not 1 <= n_leaves <= 1 << 26:
        raise FileError(f"{where}: num_leaves is {n_leaves}")
    values = _numbers(fields, "leaf_value", n_leaves, where)
    n = n_leaves - 1
    if n == 0:
        one = np.zeros(1)
        return file_tree(f"tree {t}", one.astype(np.int64) - 1, one.astype(np.int64) - 1, np.ones(1, dtype=bool),
                         {"feature": one, "threshold": one, "missing_left": one}, values.reshape(1, 1))  # fmt: skip
    decision = _numbers(fields, "decision_type", n, where, np.int64)
    categorical = (decision & 1) != 0
    kids = [_numbers(fields, k, n, where, np.int64) for k in ("left_child", "right_child")]
    kids = [np.where(k >= 0, k, n + ~k) for k in kids]  # a leaf ~l becomes node n + l
    threshold = _numbers(fields, "threshold", n, where)
    sets = _categories(fields, t, threshold[categorical], budget) if categorical.any() else []
    category = np.where(categorical, threshold, -1).astype(np.int64)
    threshold = np.where(categorical, 0.0, threshold)
    default_left, missing = (decision & 2) != 0, (decision >> 2) & 3
    zero = (missing == 1) & ~categorical
    zero_left = np.where(zero, default_left, threshold >= 0.0)  # where 0 (the band) goes
    nan_left = np.where(missing == 0, threshold >= 0.0, default_left)  # None reads NaN as 0
    pad = np.zeros(n_leaves)
    per_node = {
        "feature": np.concatenate([_numbers(fields, "split_feature", n, where, np.int64), pad]),
        "threshold": np.concatenate([np.where(zero, threshold, _cuts(threshold, zero_left)), pad]),
        "missing_left": np.concatenate([nan_left & ~categorical, pad]),  # a categorical split: NaN goes right
        "zero_missing": np.concatenate([zero, pad]),
        "category": np.concatenate([category, pad - 1]),
    }
    left, right = (np.concatenate([k, np.full(n_leaves, -1)]) for k in kids)
    is_leaf = np.arange(n + n_leaves) >= n
    values = np.concatenate([np.zeros(n), values]).reshape(-1, 1)
    return file_tree(f"tree {t}", left, right, is_leaf, per_node, values, sets)


def _link(objective: str, n_class: int) -> tuple[str, float]:
    name, *options = objective.split()
    params = dict(o.partition(":")[::2] for o in options)
    if name in IDENTITY and "sqrt" not in options:
        return "identity", 1.0
    if name in EXP:
        return "exp", 1.0
    if name == "binary" or name == "cross_entropy":
        try:
            scale = float(params.get("sigmoid", "1"))
        except ValueError:
            raise FileError(f"objective {objective[:60]!r}: its sigmoid is not a number") from None
        return "sigmoid", scale
    if name == "multiclass" and n_class > 1:
        return "softmax", 1.0
    supported = ", ".join((*IDENTITY, *EXP, "binary", "cross_entropy", "multiclass"))
    raise Unsupported(f"objective {objective[:60]!r}: supported are {supported} (regression without reg_sqrt)")


def read_lightgbm(text: str) -> tuple[Ensemble, int, str]:
    """The ensemble of a LightGBM text model, its number of features and its objective."""
    lines = text.split("\n")
    if lines[0].strip() != "tree":
        raise FileError("the first line is not 'tree'")
    blocks, header_end = [], next((i for i, line in enumerate(lines) if line.startswith("Tree=")), len(lines))
    header = _fields(lines[:header_end])
    start = None
    for i in range(header_end, len(lines)):
        line = lines[i]
        if line.startswith("Tree=") or line.startswith("end of trees") or (start is not None and not line):
            if start is not None:
                blocks.append(lines[start:i])
            start = i + 1 if line.startswith("Tree=") else None
            if line.startswith("end of trees") or len(blocks) > MAX_TREES:
                break
    try:
        n_class = int(header.get("num_tree_per_iteration", "1"))
        n_features = int(header.get("max_feature_idx", "")) + 1
    except ValueError:
        raise FileError("num_tree_per_iteration or max_feature_idx is not a count") from None
    if not 1 <= n_class <= 1 << 16 or not 1 <= n_features <= 1 << 24:
        raise FileError(f"{n_class} trees per iteration, {n_features} features")
    if not blocks or len(blocks) % n_class:
        raise FileError(f"{len(blocks)} trees, not a (non-zero) multiple of {n_class} per iteration")
    link, scale = _link(header.get("objective", ""), n_class)
    budget = set_budget()
    trees = [_tree(_fields(block), t, budget) for t, block in enumerate(blocks)]
    ensemble = Ensemble(trees, [t % n_class for t in range(len(trees))], np.zeros(n_class), link, scale)
    if "average_output" in header:
        ensemble.divisor = float(len(trees) // n_class)
    ensemble.missing, ensemble.op_fields = True, {"zero_band": float(np.float32(K_ZERO)), "category_min": CATEGORY_MIN}
    return checked(ensemble, n_features, "the trees", sklearn_leaves=False), n_features, header.get("objective", "")
