"""What every frontend uses to grow an IR graph while collecting every problem it meets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.common.errors import Problem, UnsupportedModelError
from exporter.ir import Graph, Op, optimize
from exporter.ir.graph import InputPart
from exporter.ir.ops import Shape, size


class Unsupported(Exception):
    """Raised by a layer mapping: this layer, as configured, has no C translation."""


@dataclass(frozen=True)
class Refusal:
    """A refused layer, kept in the chain where its op would have been, so `inspect` can show it in place."""

    problem: Problem
    inputs: tuple[str, ...]
    output: str
    width: int


class Builder:
    """Accumulates IR ops; a refused layer becomes a placeholder so the walk can go on.

    ``chain`` holds the ops and refusals in walk order: the partial model that ``inspect``
    shows when ``finish`` would refuse it, without walking the model a second time.
    """

    def __init__(self, source: str):
        self.source = source
        self.widths: dict[str, int] = {}
        self.shapes: dict[str, Shape] = {}  # of the values that are tensors, not rows
        self.ops: list[Op] = []
        self.problems: list[Problem] = []
        self.chain: list[Op | Refusal] = []

    def value(self, width: int, shape: Shape | None = None) -> str:
        """A new value of ``width`` floats; of ``shape`` per row when it is a tensor."""
        name = f"v{len(self.widths)}"
        self.widths[name] = int(width) if shape is None else size(shape)
        if shape is not None and len(shape) > 1:
            self.shapes[name] = tuple(int(n) for n in shape)
        return name

    def shape(self, value: str) -> Shape:
        return self.shapes.get(value, (self.widths[value],))

    def add(self, cls: type[Op], name: str, inputs: list[str], width: int, **fields: Any) -> str:
        """Add an op writing ``width`` floats per step; its output's shape follows from its inputs' (``out_shape``)."""
        op = cls(name=name, inputs=tuple(inputs), output="", width=int(width), **fields)
        reason = op.refusal()
        if reason is not None:
            raise Unsupported(reason)
        in_shapes = [self.shape(v) for v in inputs]
        shape = op.out_shape(in_shapes)
        if shape is None:
            shown = ", ".join(str(s) for s in in_shapes)
            raise Unsupported(f"{op.describe()} does not take inputs of shape {shown}")
        op.output = self.value(width, shape)
        self.ops.append(op)
        self.chain.append(op)
        return op.output

    def refuse(
        self,
        layer: str,
        cls: str,
        reason: str,
        width: int,
        inputs: tuple[str, ...] = (),
        kind: str = "layer",
        shape: Shape | None = None,
    ) -> str:
        """Record a refused layer; its output, of ``shape`` when known, lets the walk go on to the next problems."""
        problem = Problem(layer, cls, reason, kind)
        self.problems.append(problem)
        output = self.value(width, shape)
        self.chain.append(Refusal(problem, tuple(inputs), output, int(width)))
        return output

    def finish(
        self, input_name: str, output_name: str, noise: str | None = None, parts: tuple[InputPart, ...] = ()
    ) -> Graph:
        if self.problems:
            raise UnsupportedModelError(self.source, self.problems)
        graph = Graph(input_name, output_name, self.widths, self.ops, self.source, noise, self.shapes, parts)
        graph.validate()
        return optimize(graph)
