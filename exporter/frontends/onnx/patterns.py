"""Patterns of several ONNX nodes that mean one IR op, found before the walk: GELU written out.

Before opset 20 ONNX had no ``Gelu``, and PyTorch's exporters write ``nn.GELU()`` as
``0.5 x (1 + erf(x / sqrt 2))``: ``Div`` (or ``Mul`` by 1/sqrt 2), ``Erf``, ``Add`` 1, and two ``Mul``
(by ``x`` and by 0.5, in either order: the TorchScript exporter multiplies by ``x`` first, ``torch.export``'s
by 0.5). Walked node by node that is five ops and libm's ``erff`` per feature; as one ``gelu_erf`` it is
the IR's GELU, whose ``--math fast`` form is branch-free inline code (the normal CDF) like Keras' GELU.
Every intermediate tensor must feed only the next node of the pattern (and be no graph output): otherwise
the nodes are walked one by one, as they are written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

SQRT2 = float(np.sqrt(2.0))


@dataclass(frozen=True)
class Gelu:
    """The nodes (indices in the graph) of one written-out GELU of tensor ``x``; ``last`` writes its output."""

    x: str
    nodes: tuple[int, ...]

    @property
    def last(self) -> int:
        return max(self.nodes)


def constants(graph: Any) -> Callable[[str], np.ndarray | None]:
    """A tensor's value when the file states it: an initializer, or a ``Constant`` node's tensor or float."""
    from onnx import helper, numpy_helper

    known = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and len(node.attribute) == 1:
            value = helper.get_attribute_value(node.attribute[0])
            if node.attribute[0].name == "value":
                known[node.output[0]] = numpy_helper.to_array(value)
            elif node.attribute[0].name == "value_float":
                known[node.output[0]] = np.float32(value)
    return known.get


def _is(value: np.ndarray | None, target: float) -> bool:
    """A constant of one value (any shape that broadcasts as a scalar would: all its entries equal) near ``target``."""
    if value is None or value.size == 0 or value.dtype.kind != "f":
        return False
    flat = np.asarray(value, dtype=np.float64).reshape(-1)
    return bool(np.all(flat == flat[0]) and abs(flat[0] - target) <= 1e-6 * abs(target))


def find_gelus(graph: Any) -> list[Gelu]:
    """Every written-out GELU of the graph (see the module's docstring), its nodes disjoint from the others'."""
    const = constants(graph)
    nodes = list(graph.node)
    producer = {name: k for k, node in enumerate(nodes) for name in node.output if name}
    consumers: dict[str, list[int]] = {}
    for k, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(k)
    outputs = {o.name for o in graph.output}

    def sole(name: str, op_type: str) -> int | None:
        """The one node reading ``name`` when it is of ``op_type`` (and ``name`` is no graph output)."""
        readers = consumers.get(name, [])
        ok = len(readers) == 1 and name not in outputs and nodes[readers[0]].op_type == op_type
        return readers[0] if ok and nodes[readers[0]].domain in ("", "ai.onnx") else None

    def other(k: int, name: str) -> str | None:
        """The input of binary node ``k`` besides ``name``."""
        ins = list(nodes[k].input)
        return ins[1 - ins.index(name)] if len(ins) == 2 and name in ins else None

    found = []
    for e, erf in enumerate(nodes):
        if erf.op_type != "Erf" or erf.input[0] not in producer:
            continue
        d = producer[erf.input[0]]
        scaled = nodes[d]
        if sole(scaled.output[0], "Erf") != e or len(scaled.input) != 2:
            continue
        if scaled.op_type == "Div" and _is(const(scaled.input[1]), SQRT2):
            x = scaled.input[0]
        elif scaled.op_type == "Mul" and any(_is(const(i), 1 / SQRT2) for i in scaled.input):
            x = scaled.input[1] if _is(const(scaled.input[0]), 1 / SQRT2) else scaled.input[0]
        else:
            continue
        a = sole(erf.output[0], "Add")
        if a is None or not _is(const(other(a, erf.output[0]) or ""), 1.0):
            continue
        first = sole(nodes[a].output[0], "Mul")
        if first is None:
            continue
        by = other(first, nodes[a].output[0])
        second = sole(nodes[first].output[0], "Mul")
        last = None if second is None else other(second, nodes[first].output[0])
        if by is None or last is None:
            continue
        if (by == x and _is(const(last), 0.5)) or (_is(const(by), 0.5) and last == x):
            found.append(Gelu(x, (d, e, a, first, second)))  # type: ignore[arg-type]
    return found
