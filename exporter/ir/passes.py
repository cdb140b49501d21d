"""Rewrites of the IR that every frontend gets for free.

They make the generated C look the same whichever way a network was written
(``Dense(activation="relu")``, ``Dense`` + ``Activation("relu")``, ``nn.Dense`` +
``nn.relu``), and remove passes over the row that cost time per call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from exporter.ir.graph import Graph
from exporter.ir.ops import Activate, Affine, Dense, Merge, Op


def _fuse_into_dense(graph: Graph, follower: type[Op], merge: Callable[[Dense, Op], Dense]) -> None:
    """Merge each ``follower`` op into the linear Dense that alone feeds it."""
    producers = {op.output: op for op in graph.ops}
    fused: list[Op] = []
    for op in graph.ops:
        if isinstance(op, follower):
            source = producers.get(op.inputs[0])
            if (
                isinstance(source, Dense)
                and _per_step_alike(source, op)
                and source.activation.is_linear
                and source.output != graph.output
                and len(graph.consumers(source.output)) == 1
            ):
                merged = merge(source, op)
                idx = next(i for i, kept in enumerate(fused) if kept is source)
                fused[idx] = merged
                producers[op.output] = merged
                graph.drop(source.output)
                continue
        fused.append(op)
    graph.ops = fused


def _per_step_alike(dense: Dense, follower: Op) -> bool:
    """Whether ``follower`` can act inside each step of ``dense``: the same rows, or elementwise without weights."""
    same_rows = (follower.steps, follower.width) == (dense.steps, dense.width)
    per_column = not (isinstance(follower, Affine) and follower.inner > 1)  # one value per Dense output
    return (same_rows and per_column) or (isinstance(follower, Activate) and follower.elementwise)


def _joined(first: str, second: str) -> str:
    """The name of two fused ops: both, unless the second repeats the first (a traced bias add)."""
    return first if second in first.split("+") else f"{first}+{second}"


def _with_activation(dense: Dense, act: Op) -> Dense:
    assert isinstance(act, Activate)
    return replace(dense, output=act.output, activation=act.activation, name=_joined(dense.name, act.name))


def _with_affine(dense: Dense, affine: Op) -> Dense:
    """Inference BatchNorm after a Dense: scale the kernel's columns, shift the bias (computed in float64)."""
    assert isinstance(affine, Affine)
    scale = affine.scale.astype(np.float64)
    bias = np.zeros(dense.width) if dense.bias is None else dense.bias.astype(np.float64)
    return replace(
        dense,
        output=affine.output,
        kernel=dense.kernel.astype(np.float64) * scale,
        bias=bias * scale + affine.shift,
        name=_joined(dense.name, affine.name),
    )


def _fuse_residual_adds(graph: Graph) -> None:
    """``Add(a, dense_out)`` -> the Dense adds ``a`` itself after its activation.

    Only a two-input Add whose Dense operand feeds nothing else is fused; float addition is
    commutative, so which operand the Dense was does not change a bit of the result. The
    fused op takes the Add's place in the order, where both its inputs are computed.
    """
    producers = {op.output: op for op in graph.ops}
    replaced: dict[int, Op] = {}  # id of an Add -> the fused Dense standing in for it
    dropped: set[int] = set()  # ids of Dense ops folded into a later Add
    for op in graph.ops:
        if not (isinstance(op, Merge) and op.kind == "add" and len(op.inputs) == 2):
            continue
        for k in (1, 0):
            dense = producers.get(op.inputs[k])
            skip = op.inputs[1 - k]
            if (
                isinstance(dense, Dense)
                and not dense.residual
                and id(dense) not in dropped
                and skip != dense.output
                and len(graph.consumers(dense.output)) == 1
            ):
                fused = replace(
                    dense, inputs=(*dense.inputs, skip), output=op.output, residual=True, name=f"{dense.name}+{op.name}"
                )
                replaced[id(op)] = fused
                dropped.add(id(dense))
                producers[op.output] = fused
                graph.drop(dense.output)
                break
    graph.ops = [replaced.get(id(op), op) for op in graph.ops if id(op) not in dropped]


def prune(graph: Graph) -> None:
    """Drop ops whose results never reach the output, so the output op is the last one."""
    needed = {graph.output}
    kept: list[Op] = []
    for op in reversed(graph.ops):
        if op.output in needed:
            kept.append(op)
            needed.update(op.inputs)
        else:
            graph.drop(op.output)
    graph.ops = kept[::-1]


def _merge_affines(graph: Graph) -> None:
    """Compose consecutive per-feature affine maps (traced code writes ``(x - m) * s + b`` as three)."""
    producers = {op.output: op for op in graph.ops}
    kept: list[Op] = []
    for op in graph.ops:
        source = producers.get(op.inputs[0]) if isinstance(op, Affine) else None
        if (
            isinstance(source, Affine)
            and (source.steps, source.width, source.inner) == (op.steps, op.width, op.inner)
            and source.output != graph.output
            and len(graph.consumers(source.output)) == 1
        ):
            scale = source.scale.astype(np.float64) * op.scale
            shift = source.shift.astype(np.float64) * op.scale + op.shift
            merged = replace(source, output=op.output, scale=scale, shift=shift, name=_joined(source.name, op.name))
            kept[next(i for i, k in enumerate(kept) if k is source)] = merged
            producers[op.output] = merged
            graph.drop(source.output)
            continue
        kept.append(op)
    graph.ops = kept


def optimize(graph: Graph) -> Graph:
    """Prune dead ops; fold affine maps, standalone activations and residual adds into the Dense before them."""
    prune(graph)
    _merge_affines(graph)
    _fuse_into_dense(graph, Affine, _with_affine)
    _fuse_into_dense(graph, Activate, _with_activation)
    _fuse_residual_adds(graph)
    graph.validate()
    return graph
