"""How a tree ensemble's C is laid out: four layouts, the rule that picks one, and the caps on their size.

Every layout computes what ``exporter.ir.trees.TreeEnsemble`` states: at every node the same decision
(``(float)x <= threshold``, a NaN where ``missing_left`` sends it), the leaves' values added to double sums
in tree order, then the same link; so every layout gives the same bits (tests/test_trees.py runs every family
in each). They differ in how a row finds its leaves (docs/trees.md has the measurements behind the rule):

- ``walk``: one loop per tree over node arrays until it reaches a leaf (small C, any shape);
- ``branches``: each tree a static function of ``if (...) goto`` statements with its thresholds as
  constants; where NaN goes left the comparison is turned round (``x > t`` fails for NaN), so NaN routing
  costs nothing. Fastest while the code is small; its compile time grows with it, hence its own cap;
- ``complete``: each tree padded to a complete binary tree of the ensemble's depth (a leaf above the last
  level fills every slot below it) and walked with a fixed number of steps and no branch,
  ``i = 2 i + 1 + right``, eight trees at a time. A row's values are first ranked among their feature's
  thresholds (a binary search per feature), so a node is one 32-bit word, its threshold's rank and its
  feature, compared as integers (``x <= t`` exactly when fewer than rank(t) + 1 thresholds lie below ``x``);
  a NaN ranks above every node where it goes right and below every node where it goes left. Fastest for
  big near-complete ensembles, whose node arrays outgrow the caches (Lamarr's);
- ``bitvector``: QuickScorer (Lucchese et al., SIGIR 2015): each tree's leaves are the bits of one word;
  per feature, the nodes whose test fails (those with thresholds below the value, in sorted order) clear
  the bits of the leaves on their left; each tree's leaf is its lowest bit left. Trees of at most 64 leaves.

Categorical splits (a set of categories instead of a threshold) are in every layout: ``walk`` and ``branches``
test the set where the node is; ``complete`` decides each distinct test once per row and ranks it as one
more feature (right: rank 1 above the node's 0); ``bitvector`` runs its categorical nodes after the sorted
thresholds, each clearing its left leaves when the row goes right.

``auto`` picks one by the rule of ``choose``; a layout named with ``--trees`` is used if it applies and
fits its cap, else refused with the reason and the layouts that would fit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from exporter.backend.tree_arrays import Shape, bitvector_arrays, category_tests, complete_arrays, node_shift
from exporter.common.errors import ExportError
from exporter.ir import Graph
from exporter.ir.trees import TreeEnsemble

MiB = 1 << 20
CAPS = {"walk": 64 * MiB, "branches": 4 * MiB, "complete": 64 * MiB, "bitvector": 64 * MiB}
"""The largest C of one ensemble each layout writes, in bytes (estimated before it is written). 64 MiB holds
Lamarr's largest trees (20 of depth 15, full: about 40 MiB walked) and compiles in seconds, being arrays;
the branches' code compiles at 2-6 s per MiB at -O3 (docs/trees.md), so 4 MiB bounds it by about 25 s."""
BITVECTOR_STACK = 32 * 1024  # bytes of words on the stack (bitvector: one per tree; complete: per categorical test)
# The thresholds of ``choose`` (docs/trees.md has the measurements they come from).
AUTO_BRANCHES_NODES = 1000  # branches for ensembles of at most this many nodes
AUTO_COMPLETE_PADDING = 2.0  # complete while its slots (trees x 2^depth) are at most twice the nodes
AUTO_COMPLETE_PADDING_DEEP = 5.0  # and, for trees of more than 64 leaves, at most 5 times
AUTO_BRANCHES = 2 * MiB  # branches for the rest up to this much code (compiled in 4-12 s); walk beyond


@dataclass
class Branches:
    """Per tree, its statements in order: ``("if", node)`` jumps to label ``node`` when the row goes right,
    ``("at", node)`` is that label, ``("leaf", k)`` returns leaf ``k`` (the left subtree is the fall-through)."""

    trees: list[list[tuple[str, int]]]


@dataclass
class LaidOut(TreeEnsemble):
    """A tree ensemble with the layout its C is written in (``code``: its arrays; None for ``walk``, which
    prints the ensemble's own) and why that one, which the file's banner states."""

    layout: str = "walk"
    why: str = ""
    code: Any = None

    def describe(self) -> str:
        return f"{super().describe()}; {self.layout} layout ({self.why})"


def _branches(op: TreeEnsemble) -> Branches:
    trees = []
    for root in op.roots.tolist():
        lines: list[tuple[str, int]] = []
        pending = [("node", root)]
        while pending:
            kind, n = pending.pop()
            if kind == "at":
                lines.append(("at", n))
            elif n < 0:
                lines.append(("leaf", ~n))
            else:
                lines.append(("if", n))
                pending += [("node", int(op.children[2 * n + 1])), ("at", n), ("node", int(op.children[2 * n]))]
        trees.append(lines)
    return Branches(trees)


def _digits(n: int) -> int:
    return len(str(max(n, 1)))


def estimated_bytes(op: TreeEnsemble, shape: Shape, layout: str) -> int:
    """About how many bytes of C ``layout`` writes for ``op`` (the literals and their separators): what the
    caps are checked against, before anything is written."""
    leaf = 25 * op.leaf_values.size + 13 * op.category_words.size  # a double literal; a set's word
    internal, trees = op.n_internal, op.n_trees
    if layout == "walk":  # feature, threshold, two children, the NaN flag
        return internal * (4 + 17 + 2 * (_digits(internal) + 2) + 3) + leaf
    if layout == "branches":  # "    if (!((float)x[f] <= t)) goto rN;", "rN:", "    return K;"
        return internal * (40 + 2 * _digits(internal)) + op.n_leaves * (16 + _digits(op.n_leaves)) + trees * 160 + leaf
    if layout == "complete":
        slots = trees << int(shape.level.max())
        return slots * (12 + 25 * op.leaf_width) + internal * 17
    return internal * (17 + 24 + _digits(trees) + 8) + leaf  # bitvector: threshold, mask, tree, flag


def _applies(layout: str, op: TreeEnsemble, shape: Shape) -> str | None:
    """Why ``layout`` cannot write ``op`` (None: it can)."""
    if layout in ("complete", "bitvector") and op.routes_zero:
        return "nodes that count a band around zero as missing (LightGBM's zero_as_missing) need a test of their own"
    if layout == "complete":
        depth = int(shape.level.max())
        n_features = int(op.feature.max(initial=0)) + 1
        n_tests = category_tests(op, np.flatnonzero(op.category_set >= 0))[0].size
        rank_bits = 32 - node_shift(n_features, n_tests)
        if depth > 40:
            return f"depth {depth}: a complete tree of it has 2^{depth} leaves"
        if op.n_internal >= 1 << rank_bits:
            return f"{op.n_internal:,} nodes on that many features do not fit a node's 32-bit word"
        if 4 * n_tests > BITVECTOR_STACK:
            return f"{n_tests:,} categorical tests: one word each on the stack is over {BITVECTOR_STACK // 1024} KiB"
    if layout == "bitvector":
        most = int(shape.leaves_per_tree(op.n_trees).max())
        if most > 64:
            return f"a tree of {most} leaves: QuickScorer's word per tree holds at most 64"
        if op.n_trees * (8 if most > 32 else 4) > BITVECTOR_STACK:
            return f"{op.n_trees:,} trees: one word each on the stack is over {BITVECTOR_STACK // 1024} KiB"
    size, cap = estimated_bytes(op, shape, layout), CAPS[layout]
    if size > cap:
        return f"about {size / MiB:.1f} MiB of C, over its cap of {_size(cap)}"
    return None


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n:,} bytes"


def choose(op: TreeEnsemble, shape: Shape) -> tuple[str, str]:
    """The ``auto`` layout and why: a rule read off measurements of every layout on 32 ensembles (docs/trees.md).

    Tiny ensembles: branches (the CPU predicts so few). Then complete wherever padding to the full depth
    at most doubles the nodes (boosted trees of a fixed depth, forests of a bounded one: 1.4-2.8x faster than
    the next layout, from 100 trees on). Then bitvector for trees of at most 64 leaves (Hist* boosting:
    1.6-3.1x faster than the next from 100 trees on); complete again up to 5 slots per node; else branches
    while the code is small, walk beyond. Branches that the CPU mispredicts cost more than any of these:
    past the tiny sizes the rule prefers the layouts whose speed does not depend on the data."""
    depth = int(shape.level.max())
    padding = (op.n_trees << depth) / max(op.n_nodes, 1) if depth <= 40 else float("inf")
    complete = _applies("complete", op, shape) is None
    code = estimated_bytes(op, shape, "branches")
    if op.n_nodes <= AUTO_BRANCHES_NODES and code <= CAPS["branches"]:
        return "branches", f"{op.n_nodes:,} nodes: few enough for the branch predictor"
    if complete and padding <= AUTO_COMPLETE_PADDING:
        return "complete", f"{padding:.1f} slots per node, padded to depth {depth}"
    if _applies("bitvector", op, shape) is None:
        return "bitvector", f"at most {int(shape.leaves_per_tree(op.n_trees).max())} leaves per tree"
    if complete and padding <= AUTO_COMPLETE_PADDING_DEEP:
        return "complete", f"{padding:.1f} slots per node, padded to depth {depth}"
    if code <= AUTO_BRANCHES and _applies("branches", op, shape) is None:
        return "branches", f"about {code / MiB:.1f} MiB of code"
    return "walk", "too large, too deep or too far from complete for the others"


def lay_out(op: TreeEnsemble, choice: str) -> LaidOut:
    """``op`` in the layout ``choice`` (``auto``: ``choose``'s), or an ``ExportError`` saying why it cannot be."""
    shape = Shape.of(op)
    if choice == "auto":
        layout, why = choose(op, shape)
    else:
        layout, why = choice, "as asked"
    reason = _applies(layout, op, shape)
    if reason is not None:
        fits = [name for name in CAPS if name != layout and _applies(name, op, shape) is None]
        sizes = [f"{name} (about {estimated_bytes(op, shape, name) / MiB:.1f} MiB)" for name in fits]
        hint = (
            f"choose another layout (--trees): {', '.join(sizes)}"
            if fits
            else "no layout fits it (fewer or shallower trees would)"
        )
        raise ExportError(f"{op.name}: the {layout} layout cannot write {op.describe()}: {reason}; {hint}")
    code = {"walk": lambda: None, "branches": lambda: _branches(op), "complete": lambda: complete_arrays(op, shape)}
    code["bitvector"] = lambda: bitvector_arrays(op, int(shape.leaves_per_tree(op.n_trees).max()))
    values = {f.name: getattr(op, f.name) for f in fields(op) if f.name not in ("layout", "why", "code")}
    return LaidOut(**values, layout=layout, why=why, code=code[layout]())


def with_layouts(graph: Graph, choice: str) -> Graph:
    """``graph`` with its tree ensembles laid out (the other ops as they are)."""
    if not any(isinstance(op, TreeEnsemble) for op in graph.ops):
        return graph
    ops = [lay_out(op, choice) if isinstance(op, TreeEnsemble) else op for op in graph.ops]
    return Graph(graph.input, graph.output, graph.widths, ops, graph.source, graph.noise, graph.shapes)
