"""The arrays of the complete and bitvector layouts (exporter/backend/trees.py), computed from an ensemble's
``Shape``: every node by tree, level and path.

``complete`` pads each tree to the ensemble's depth and ranks a row's values among each feature's thresholds;
``bitvector`` (QuickScorer) gives each tree a word of leaf bits and each node the mask of the leaves its
failed test keeps. A categorical split becomes a ``Tests`` entry, decided once per row before the trees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exporter.ir.trees import TreeEnsemble

GROUP = 8  # trees the complete layout walks at once: enough independent loads to hide the caches' latency


@dataclass
class Shape:
    """Every node of an ensemble by tree, level and path: what the layouts and the rule are computed from.
    ``node`` is an internal node or ``~leaf``, ``path`` its branch bits from the root (1: right)."""

    tree: np.ndarray
    node: np.ndarray
    level: np.ndarray
    path: np.ndarray

    @classmethod
    def of(cls, op: TreeEnsemble) -> Shape:
        """Level by level from the roots, all trees at once."""
        tree, node = np.arange(op.n_trees), op.roots.astype(np.int64)
        level, path = np.zeros(op.n_trees, np.int64), np.zeros(op.n_trees, np.int64)
        parts = []
        while tree.size:
            parts.append((tree, node, level, path))
            inner = node >= 0
            tree, level, path, node = tree[inner], level[inner] + 1, path[inner], node[inner]
            tree, level = np.repeat(tree, 2), np.repeat(level, 2)
            path = (np.repeat(path, 2) << 1) + np.tile([0, 1], node.size)
            node = op.children[np.repeat(2 * node, 2) + np.tile([0, 1], node.size)].astype(np.int64)
        return cls(*(np.concatenate(column) for column in zip(*parts, strict=True)))

    @property
    def is_leaf(self) -> np.ndarray:
        return self.node < 0

    def leaves_per_tree(self, n_trees: int) -> np.ndarray:
        return np.bincount(self.tree[self.is_leaf], minlength=n_trees)


@dataclass
class Tests:
    """Categorical splits as decisions made before the trees are walked: per test (a node, or for ``complete``
    each distinct one) its feature, its set, whether NaN goes left; for ``bitvector`` each node's tree and mask."""

    feature: np.ndarray
    set: np.ndarray
    missing_left: np.ndarray
    tree: np.ndarray | None = None
    mask: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.feature.size)


def category_tests(op: TreeEnsemble, nodes: np.ndarray) -> tuple[Tests, np.ndarray]:
    """The distinct (feature, set, NaN way) among the categorical ``nodes``, and the test of each node."""
    keys = np.stack([op.feature[nodes], op.category_set[nodes], op.missing_left[nodes]], axis=1).astype(np.int64)
    unique, index = np.unique(keys.reshape(-1, 3), axis=0, return_inverse=True)
    return Tests(*(np.ascontiguousarray(c) for c in unique.reshape(-1, 3).T)), index.reshape(-1)


@dataclass
class Complete:
    """The complete layout's arrays: ``cuts`` (each feature's thresholds, ascending, from ``cut_at[f]``), the
    nodes (``rank << shift | feature``, ``feature + n_features`` where NaN goes left, ``2 n_features + k`` for
    categorical test ``k``, rank 0), the leaf slots' values."""

    depth: int
    n_features: int
    shift: int
    cuts: np.ndarray
    cut_at: np.ndarray
    nodes: np.ndarray
    slots: np.ndarray
    tests: Tests
    group: int = GROUP

    @property
    def per_tree(self) -> int:
        return (1 << self.depth) - 1


@dataclass
class Bitvector:
    """QuickScorer's arrays: per feature from ``at[f]`` its nodes by ascending threshold, each with its tree,
    the mask of the leaves it keeps when its test fails, and whether NaN goes left; the leaves, in bit order."""

    bits: int  # 32 or 64: the word per tree
    n_features: int
    at: np.ndarray
    threshold: np.ndarray
    tree: np.ndarray
    mask: np.ndarray
    missing_left: np.ndarray
    first_leaf: np.ndarray  # per tree, where its leaves start in ``leaves``
    leaves: np.ndarray  # the leaves' values, tree by tree, left to right
    tests: Tests  # the categorical nodes, one test each, with their trees and masks

    @property
    def debruijn(self) -> int:
        """A de Bruijn sequence of the word's width: its top bits, times a single bit, are all different."""
        return 0x03F79D71B4CB0A89 if self.bits == 64 else 0x077CB531

    @property
    def top(self) -> int:
        """The shift that leaves a word's top log2(bits) bits."""
        return self.bits - (self.bits.bit_length() - 1)

    @property
    def debruijn_table(self) -> np.ndarray:
        """The index of the lowest bit of a word, by the top bits of that bit times ``debruijn``."""
        table = np.zeros(self.bits, np.int64)
        for k in range(self.bits):
            table[((self.debruijn << k) & ((1 << self.bits) - 1)) >> self.top] = k
        return table


def complete_arrays(op: TreeEnsemble, shape: Shape) -> Complete:
    depth = int(shape.level.max())
    per_tree = (1 << depth) - 1
    n_features = int(op.feature.max(initial=0)) + 1
    inner = ~shape.is_leaf
    nodes = shape.node[inner]
    cat = op.category_set[nodes] >= 0
    tests, test = category_tests(op, nodes[cat])
    shift = node_shift(n_features, tests.size)
    feature = op.feature[nodes].astype(np.int64)
    keys = (feature << 32) | _ordered(op.threshold[nodes])
    unique = np.unique(keys[~cat])
    cut_at = np.searchsorted(unique >> 32, np.arange(n_features + 1))
    rank = np.searchsorted(unique, keys) - cut_at[feature]  # thresholds of its feature below its own
    rank[cat] = 0
    feature = feature + n_features * op.missing_left[nodes].astype(np.int64)
    feature[cat] = 2 * n_features + test
    cuts = (unique & 0xFFFFFFFF).astype(np.uint32)
    cuts = np.where(cuts >= 1 << 31, cuts ^ (1 << 31), ~cuts).astype(np.uint32).view(np.float32)
    word = np.zeros(op.n_trees * per_tree, np.int64)
    slot = shape.tree[inner] * per_tree + (1 << shape.level[inner]) - 1 + shape.path[inner]
    word[slot] = (rank << shift) | feature
    leaves = shape.is_leaf
    below = depth - shape.level[leaves]
    first = shape.tree[leaves] * (per_tree + 1) + (shape.path[leaves] << below)
    leaf_of = np.zeros(op.n_trees * (per_tree + 1), np.int64)
    leaf_of[np.repeat(first, 1 << below) + _ramps(1 << below)] = np.repeat(~shape.node[leaves], 1 << below)
    slots = op.leaf_values[leaf_of]
    return Complete(depth, n_features, shift, cuts, cut_at, word.astype(np.uint32), slots, tests)


def node_shift(n_features: int, n_tests: int = 0) -> int:
    """The bits of a complete node's word that hold its feature (and whether NaN goes left there) or its
    categorical test."""
    return max(1, (2 * n_features + n_tests - 1).bit_length())


def _ordered(threshold: np.ndarray) -> np.ndarray:
    """Float32 values as integers in the same order (negative values' bits flipped, positive ones' sign set)."""
    bits = np.ascontiguousarray(threshold, dtype=np.float32).view(np.uint32).astype(np.int64)
    return np.where(bits >= 1 << 31, ~bits & 0xFFFFFFFF, bits | (1 << 31))


def _ramps(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ..., n - 1 for each n of ``lengths``, concatenated."""
    total = int(lengths.sum())
    return np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def bitvector_arrays(op: TreeEnsemble, max_leaves: int) -> Bitvector:
    bits = 32 if max_leaves <= 32 else 64
    spans: list[tuple[int, int, int, int]] = []  # node, its tree, the first and end leaf of its left subtree
    order: list[int] = []  # every leaf, tree by tree, left to right (whatever their numbering)
    first_leaf = []
    for t, root in enumerate(op.roots.tolist()):
        first_leaf.append(len(order))
        _visit(op, root, t, order, spans)
    spans.sort(key=lambda s: (int(op.category_set[s[0]] >= 0), int(op.feature[s[0]]), float(op.threshold[s[0]])))
    node, tree, lo, end = (
        np.asarray(c, dtype=np.int64).reshape(-1) for c in (zip(*spans, strict=True) if spans else [()] * 4)
    )
    first = np.asarray(first_leaf, dtype=np.int64)
    lo, end = lo - first[tree], end - first[tree]
    width = (end - lo).astype(np.uint64)
    left = ((np.uint64(1) << width) - np.uint64(1)) << lo.astype(np.uint64)  # 64 leaves on the left: never
    mask = ~left & np.uint64((1 << bits) - 1)
    n_features = int(op.feature.max(initial=0)) + 1
    cat = op.category_set[node] >= 0  # the categorical nodes: sorted last
    n = int(np.count_nonzero(~cat))
    tests = Tests(op.feature[node[cat]], op.category_set[node[cat]], op.missing_left[node[cat]], tree[cat], mask[cat])
    return Bitvector(
        bits,
        n_features,
        np.searchsorted(op.feature[node[:n]], np.arange(n_features + 1)),
        op.threshold[node[:n]],
        tree[:n],
        mask[:n],
        op.missing_left[node[:n]],
        first,
        op.leaf_values[np.asarray(order, dtype=np.int64)],
        tests,
    )


def _visit(op: TreeEnsemble, n: int, tree: int, order: list[int], spans: list[tuple[int, int, int, int]]) -> None:
    """Leaves of node ``n``'s subtree onto ``order``, left to right; per internal node its left subtree's leaves."""
    if n < 0:
        order.append(~n)
        return
    lo = len(order)
    _visit(op, int(op.children[2 * n]), tree, order, spans)
    spans.append((n, tree, lo, len(order)))
    _visit(op, int(op.children[2 * n + 1]), tree, order, spans)
