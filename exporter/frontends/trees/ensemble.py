"""What every tree reader hands on: trees as node arrays, the ensemble around them, one ``TreeEnsemble`` op.

A reader (scikit-learn's fitted attributes, an XGBoost model file, a LightGBM text file) fills one
``Tree`` per tree and an ``Ensemble`` (where each tree adds, the baseline, the link); every tree is
checked by ``tree_checks`` before anything walks it, then ``ensemble_graph`` numbers the nodes
across all trees and makes the op, so nothing of the backend knows where a tree came from.

A ``Tree``'s ``threshold`` is the float64 ``t`` of the decision "left when ``x <= t``" (the C compares
float32 ``x`` with the largest float32 not above it, ``float32_floor``): a reader whose library
decides otherwise (XGBoost's ``x < s`` in float32) states its decision in that form. A categorical split
(``category``) lists the categories it sends left as a bitset (``bitset``); a reader whose library sends
them right (XGBoost) swaps the node's children.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.trees.checks import tree_depth, tree_problem
from exporter.ir import Graph
from exporter.ir.trees import MAX_CATEGORY, TreeEnsemble, float32_floor

MAX_SET_WORDS = 1 << 22  # the bitset words of all of a model's categorical splits (16 MiB): a bound on the C


@dataclass
class Tree:
    """One tree's nodes as arrays (``left``/``right`` meaningless at leaves), leaf values (n_nodes, width)."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray  # float64: left when x <= threshold
    missing_left: np.ndarray
    is_leaf: np.ndarray
    values: np.ndarray
    depth: int
    zero_missing: np.ndarray | None = None  # per node: a band around zero counts as missing (LightGBM)
    category: np.ndarray | None = None  # per node: -1, or the set of ``sets`` its categorical split lists
    sets: list[np.ndarray] = field(default_factory=list)  # uint32 bitsets: a split sends its listed ones left


@dataclass
class Ensemble:
    """A family's reading: the trees, where each adds, and what comes before and after the sums."""

    trees: list[Tree]
    offsets: list[int]
    baseline: np.ndarray
    link: str = "identity"
    raw_scale: float = 1.0
    divisor: float = 1.0
    missing: bool = False  # the model predicts rows with NaN (the C routes them as it does)
    n_features: int = 0  # the row the trees read: set once checked
    op_fields: dict[str, Any] = field(default_factory=dict)  # precision, zero_band: as the library computes


def bitset(categories: np.ndarray, budget: list[int]) -> np.ndarray:
    """The uint32 words whose bits are ``categories`` (0 to ``MAX_CATEGORY``), one word at least, taken from
    ``budget`` (the words a model's sets may still take: a file listing one large category per split cannot
    make gigabytes of bitsets)."""
    categories = np.asarray(categories, dtype=np.int64)
    if np.any((categories < 0) | (categories > MAX_CATEGORY)):
        raise Unsupported(f"category {int(categories.max())}: categories are 0 to {MAX_CATEGORY}")
    taken(int(categories.max(initial=0)) // 32 + 1, budget)
    words = np.zeros(int(categories.max(initial=0)) // 32 + 1, dtype=np.uint32)
    np.bitwise_or.at(words, categories // 32, (np.uint32(1) << (categories % 32).astype(np.uint32)))
    return words


def set_budget() -> list[int]:
    """What ``bitset`` and ``taken`` draw on while one model file is read: ``MAX_SET_WORDS`` words in all."""
    return [MAX_SET_WORDS]


def taken(words: int, budget: list[int]) -> None:
    """``words`` more of the model's bitset words, refused past ``MAX_SET_WORDS`` in all."""
    budget[0] -= words
    if budget[0] < 0:
        raise Unsupported(f"the categorical splits' sets take over {MAX_SET_WORDS:,} words of 32 bits in all")


def reachable_order(left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray) -> np.ndarray:
    """The nodes reached from node 0, level by level (children after parents), for trees in files, whose
    numbering is the writer's: a child outside the tree or a node reached twice (a cycle, a shared
    subtree) is refused; nodes no path reaches (XGBoost's deleted ones) are left out."""
    n = left.size
    seen = np.zeros(n, dtype=bool)
    seen[0] = True
    order, level = [np.array([0])], np.array([0])
    while level.size:  # each node joins one level at most: at most n levels
        inner = level[~is_leaf[level]]
        kids = np.stack([left[inner], right[inner]], axis=1).reshape(-1)
        if kids.size and (kids.min() < 0 or kids.max() >= n):
            bad = int(inner[np.flatnonzero((kids < 0) | (kids >= n))[0] // 2])
            raise Unsupported(f"node {bad} has a child outside the tree (0..{n - 1})")
        if np.unique(kids).size != kids.size or seen[kids].any():
            raise Unsupported("a node is the child of two nodes (a cycle or a shared subtree)")
        seen[kids] = True
        order.append(kids)
        level = kids
    return np.concatenate(order)


def file_tree(
    name: str,
    left: np.ndarray,
    right: np.ndarray,
    is_leaf: np.ndarray,
    per_node: dict[str, np.ndarray],
    values: np.ndarray,
    sets: list[np.ndarray] | None = None,
) -> Tree:
    """A tree read from a file (``name``: the tree, for messages), renumbered from its root
    (``reachable_order``); ``per_node`` holds ``feature``, ``threshold``, ``missing_left`` and optionally
    ``zero_missing`` and ``category`` (an index into ``sets``), one entry per node."""
    try:
        order = reachable_order(left, right, is_leaf)
    except Unsupported as err:
        raise Unsupported(f"{name}: {err}") from None
    new = np.full(left.size, -1, dtype=np.int64)
    new[order] = np.arange(order.size)
    leaf = is_leaf[order]
    kids = [np.where(leaf, -1, new[np.where(leaf, 0, side[order])]) for side in (left, right)]
    taken = {k: np.asarray(v)[order] for k, v in per_node.items()}
    return Tree(
        kids[0],
        kids[1],
        taken["feature"],
        taken["threshold"],
        taken["missing_left"],
        leaf,
        values[order],
        0,
        taken.get("zero_missing"),
        taken.get("category"),
        sets or [],
    )


def checked(ensemble: Ensemble, n_features: int, where: str, sklearn_leaves: bool = True) -> Ensemble:
    """Every tree's arrays checked (``tree_checks``) before anything walks them; each tree's depth is
    measured, not taken from the file. ``where`` names the trees in a message (``estimators_``)."""
    for t, (tree, offset) in enumerate(zip(ensemble.trees, ensemble.offsets, strict=True)):
        problem = tree_problem(tree, n_features, sklearn_leaves)
        if problem is None and offset + tree.values.shape[1] > ensemble.baseline.size:
            problem = f"{tree.values.shape[1]} values per leaf, for {ensemble.baseline.size} outputs"
        if problem is not None:
            raise Unsupported(f"tree {t} (of {where}): {problem}")
        tree.depth = tree_depth(tree.left, tree.right, tree.is_leaf)
    ensemble.n_features = n_features
    return ensemble


def flatten(ensemble: Ensemble) -> dict[str, Any]:
    """The trees' internal nodes numbered across all trees, their leaves likewise (a child ``~leaf``)."""
    roots, feature, threshold, children, missing, zero, leaves = [], [], [], [], [], [], []
    category, sets = [], []
    n_internal = n_leaves = 0
    for tree in ensemble.trees:
        internal, leaf = np.flatnonzero(~tree.is_leaf), np.flatnonzero(tree.is_leaf)
        index = np.empty(tree.is_leaf.size, dtype=np.int64)
        index[internal] = n_internal + np.arange(internal.size)
        index[leaf] = ~(n_leaves + np.arange(leaf.size))
        roots.append(index[0])
        feature.append(tree.feature[internal])
        threshold.append(tree.threshold[internal])
        children.append(np.stack([index[tree.left[internal]], index[tree.right[internal]]], axis=1).reshape(-1))
        missing.append(tree.missing_left[internal])
        zero.append(np.zeros(internal.size) if tree.zero_missing is None else tree.zero_missing[internal])
        leaves.append(tree.values[leaf])
        own = np.full(internal.size, -1) if tree.category is None else tree.category[internal]
        category.append(np.where(own >= 0, own + len(sets), -1))
        sets += tree.sets
        n_internal, n_leaves = n_internal + internal.size, n_leaves + leaf.size
    return {
        "roots": np.asarray(roots),
        "feature": np.concatenate(feature),
        "threshold": float32_floor(np.concatenate(threshold)),
        "children": np.concatenate(children),
        "missing_left": np.concatenate(missing),
        "zero_missing": np.concatenate(zero),
        "leaf_values": np.concatenate(leaves),
        "offsets": np.asarray(ensemble.offsets),
        "category_set": np.concatenate(category),
        "category_words": np.concatenate([np.zeros(0, np.uint32), *sets]),
        "category_at": np.cumsum([0, *(s.size for s in sets)]),
        "depth": max(t.depth for t in ensemble.trees),
    }


def ensemble_graph(source: str, cls: str, read: Callable[[], Ensemble]) -> Graph:
    """The network of a tree model: one ``TreeEnsemble`` from its input row to its outputs. ``read`` gives
    the ensemble, ``checked``; a model it refuses (``Unsupported``) is reported as any frontend reports a refused
    layer (``Builder.refuse``)."""
    b = Builder(source)
    try:
        ensemble = read()
        x = b.value(ensemble.n_features)
        y = b.add(
            TreeEnsemble,
            cls,
            [x],
            2 if ensemble.link == "logistic" else ensemble.baseline.size,
            baseline=ensemble.baseline,
            divisor=ensemble.divisor,
            link=ensemble.link,
            raw_scale=ensemble.raw_scale,
            missing=ensemble.missing,
            **ensemble.op_fields,
            **flatten(ensemble),
        )
    except Unsupported as err:
        x = y = b.refuse(source, cls, str(err), 1, kind="model")  # finish raises, listing it
    return b.finish(x, y)
