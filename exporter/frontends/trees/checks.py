"""A tree's node arrays (from a pickle or a model file) checked before anything walks them.

The node arrays come from the file: scikit-learn's own ``predict`` walks them unchecked (a negative
or out-of-range child reads outside the array and crashes the process; a cycle loops forever in
code that ignores Ctrl-C), and the exporter's flattening indexes with them. Every tree scikit-learn
fits numbers a node's children after the node (a tree from a model file is numbered so first:
``ensemble.reachable_order``), so a tree is accepted when: the root is node 0,
every internal node has two children numbered after it and inside the tree, every other node is
the child of exactly one node (then each node is reached once from the root and nothing cycles),
a leaf is a leaf on both sides (scikit-learn: both children -1), splits read existing features
with thresholds that are numbers or infinite, and the leaf values have one row per node. The
checks are vectorized: forests of millions of nodes cost milliseconds.
"""

from __future__ import annotations

import numpy as np


def _first(mask: np.ndarray, nodes: np.ndarray) -> int:
    return int(nodes[np.flatnonzero(mask)[0]])


def tree_problem(tree: object, n_features: int, sklearn_leaves: bool) -> str | None:
    """What is wrong with one tree's arrays (``left``, ``right``, ``feature``, ``threshold``,
    ``is_leaf``, ``values``, ``missing_left`` of ``ensemble.Tree``), or None. ``sklearn_leaves``: leaves
    carry -1 as both children (scikit-learn's ``Tree``; Hist* predictors flag their leaves)."""
    left, right, is_leaf = (np.asarray(getattr(tree, k)) for k in ("left", "right", "is_leaf"))
    n = left.size
    sizes = {k: np.asarray(getattr(tree, k)).shape[:1] for k in ("right", "feature", "threshold", "missing_left")}
    if n == 0 or left.ndim != 1 or any(s != (n,) for s in (*sizes.values(), is_leaf.shape)):
        return f"its node arrays are empty or of different lengths ({n} left children, {sizes})"
    if np.asarray(tree.values).shape[0] != n:  # type: ignore[attr-defined]
        return f"{np.asarray(tree.values).shape[0]} rows of leaf values for {n} nodes"  # type: ignore[attr-defined]
    nodes = np.arange(n)
    if sklearn_leaves and np.any(is_leaf & (right != -1)):
        return f"node {_first(is_leaf & (right != -1), nodes)} has a left child -1 (a leaf) but a right child"
    parents = nodes[~is_leaf]
    for side, children in (("left", left[~is_leaf]), ("right", right[~is_leaf])):
        outside = (children <= parents) | (children >= n)
        if np.any(outside):
            node = _first(outside, parents)
            return f"node {node}: {side} child {int(children[outside][0])} is not a later node of the tree (0..{n - 1})"
    reached = np.bincount(np.concatenate([left[~is_leaf], right[~is_leaf]]).astype(np.int64), minlength=n)
    if n > 1 and (reached[0] != 0 or np.any(reached[1:] != 1)):
        node = _first(reached[1:] != 1, nodes[1:]) if np.any(reached[1:] != 1) else 0
        return f"node {node} is the child of {reached[node]} nodes (a tree's nodes have one parent, the root none)"
    feature = np.asarray(tree.feature)[~is_leaf]  # type: ignore[attr-defined]
    bad = (feature < 0) | (feature >= n_features)
    if np.any(bad):
        return f"node {_first(bad, parents)} splits on feature {int(feature[bad][0])}, but the model has {n_features}"
    category = getattr(tree, "category", None)
    category = np.full(n, -1) if category is None else np.asarray(category)
    bad = ~is_leaf & ((category < -1) | (category >= len(getattr(tree, "sets", []))))
    if np.any(bad):
        return f"node {_first(bad[~is_leaf], parents)} tests category set {int(category[bad][0])}, which is not there"
    nan = np.isnan(np.asarray(tree.threshold, dtype=np.float64)[~is_leaf]) & (category[~is_leaf] < 0)  # type: ignore[attr-defined]
    if np.any(nan):
        return f"node {_first(nan, parents)} has the threshold NaN"
    return None


def tree_depth(left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray) -> int:
    """The levels below the root of a checked tree, one vectorized step per level."""
    depth, level = 0, np.array([0])
    while True:
        level = level[~is_leaf[level]]
        if level.size == 0:
            return depth
        level, depth = np.concatenate([left[level], right[level]]), depth + 1
