"""An ONNX graph walked node by node into IR, every refused node recorded in place (all listed at once).

Nodes come in the graph's order (ONNX requires it topological). A node whose inputs are all constants is
folded: computed once by onnx's reference evaluator (onnx's own numpy implementation of the standard
ops), its outputs constants. A node reading a tensor computed from the batch size (``Meta``) and no row
gives such tensors again. Any other node is translated by the declaration of its op type (``declare.OPS``,
filled by ``elementwise``, ``linear`` and ``shapes``), and its rows' shapes are checked against those
ONNX infers. A node that cannot be translated is refused with its name, op type and the model's opset;
a node refused only because an input came from a refused node adds no problem of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.onnx import elementwise, linear, shapes  # noqa: F401 - they declare the op types
from exporter.frontends.onnx.declare import OPS, Const, Meta, Node, Row, Shape, Value
from exporter.frontends.onnx.read import Prepared
from exporter.ir import Concatenate, Graph
from exporter.ir.expression import ExpressionError

SHAPED = "needs shaped tensors (convolutions, pooling, recurrences and attention: issue 29)"
# Why an op type without a declaration is refused, by family
REFUSALS = {
    **dict.fromkeys(
        "Conv ConvTranspose ConvInteger QLinearConv MaxPool AveragePool GlobalAveragePool GlobalMaxPool LpPool "
        "GlobalLpPool MaxUnpool MaxRoiPool RoiAlign InstanceNormalization GroupNormalization LRN Resize Upsample "
        "DepthToSpace SpaceToDepth Col2Im DeformConv Einsum".split(),
        SHAPED,
    ),
    **dict.fromkeys("RNN GRU LSTM Attention".split(), SHAPED),
    **dict.fromkeys("If Loop Scan".split(), "control flow (subgraphs) is not supported"),
    **dict.fromkeys(
        "RandomNormal RandomUniform RandomNormalLike RandomUniformLike Multinomial Bernoulli".split(),
        "draws random numbers: a generator takes its noise as an input (noise)",
    ),
}
GROWING = {"ConstantOfShape", "Expand", "Tile", "Range", "Pad", "OneHot", "EyeLike", "Resize", "Upsample"}
MAX_FOLDED = 1 << 26  # values of one folded constant: a file may not make the exporter allocate without bound


@dataclass
class Walked:
    """The walked graph: the builder, the IR input and output values, and for the references and the trace
    the ONNX inputs fed (name, dimensions after the batch) and the ONNX tensor behind each IR value."""

    builder: Builder
    input: str = ""
    output: str = ""
    noise: str | None = None
    feeds: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)

    def graph(self) -> Graph:
        return self.builder.finish(self.input, self.output, self.noise)


def _shapes(model: Any) -> dict[str, Shape]:
    """Every tensor's inferred shape (None for a symbolic or unknown dimension)."""
    out: dict[str, Shape] = {}
    graph = model.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor = info.type.tensor_type
        if info.type.WhichOneof("value") == "tensor_type" and tensor.HasField("shape"):
            out[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    return out


class OnnxWalker:
    def __init__(self, prepared: Prepared, source: str):
        self.b = Builder(source)
        self.prepared = prepared
        self.opset = prepared.opsets[""]
        self.shapes = _shapes(prepared.inferred)
        self.values: dict[str, Value] = {}
        self.poisoned: set[str] = set()  # IR values of refused nodes' outputs
        self.walked = Walked(self.b)
        graph = prepared.inferred.graph
        consumed = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        self.consumed = consumed
        from onnx import numpy_helper

        for tensor in graph.initializer:
            self.values[tensor.name] = Const(numpy_helper.to_array(tensor))

    def refuse(self, node: Any, name: str, reason: str, inputs: list[Value | None]) -> list[Value]:
        """Placeholders for the node's outputs; a problem unless an input already came from a refused node."""
        rows = [v.value for v in inputs if isinstance(v, Row)]
        outs = []
        for k, output in enumerate(node.output):
            shape = self.shapes.get(output)
            dims = tuple(d or 1 for d in shape[1:]) if shape else (1,)
            if k == 0 and not any(v in self.poisoned for v in rows):
                cls = f"{node.op_type}, opset {self.opset}" + (f", domain {node.domain}" if node.domain else "")
                value = self.b.refuse(name, cls, reason, math.prod(dims), tuple(rows), kind="node")
            else:
                value = self.b.value(math.prod(dims))
            self.poisoned.add(value)
            outs.append(Row(value, dims))
        return outs

    def fold(self, node: Any, inputs: list[Value | None]) -> list[Value]:
        from onnx.reference import ReferenceEvaluator

        for output in node.output:
            shape = self.shapes.get(output)
            known = shape is not None and all(d is not None for d in shape)
            if (known and math.prod(shape) > MAX_FOLDED) or (node.op_type in GROWING and not known):  # type: ignore[arg-type]
                raise Unsupported(f"folding it would make a constant of shape {shape} (more than {MAX_FOLDED} values)")
        feeds = {n: v.array for n, v in zip(node.input, inputs, strict=True) if isinstance(v, Const)}
        try:
            results = ReferenceEvaluator(node, opsets=self.prepared.opsets).run(None, feeds)
        except Exception as err:  # the evaluator's own errors for inputs that do not fit the op
            raise Unsupported(f"its constant inputs cannot be folded ({type(err).__name__}: {err})") from None
        return [Const(np.asarray(r)) for r in results]

    def translate(self, node: Any, name: str, inputs: list[Value | None]) -> list[Value]:
        """The node's values: folded, computed from the batch size, or mapped by its declaration."""
        if node.domain not in ("", "ai.onnx"):
            raise Unsupported("a custom domain: only the standard ONNX operators (domain ai.onnx) are read")
        reason = REFUSALS.get(node.op_type)
        if reason is not None or any(a.HasField("g") or a.graphs for a in node.attribute):
            raise Unsupported(reason or "control flow (subgraphs) is not supported")
        if not any(isinstance(v, (Row, Meta)) for v in inputs):
            return self.fold(node, inputs)
        if not any(isinstance(v, Row) for v in inputs):
            return [Meta() for _ in node.output]
        declared = OPS.get(node.op_type)
        if declared is None:
            raise Unsupported("no C translation of this op (docs/onnx.md lists the ops read)")
        import onnx

        since = onnx.defs.get_schema(node.op_type, self.opset).since_version
        if since not in declared.since:
            raise Unsupported(f"version {since} of {node.op_type} is not read yet (versions {sorted(declared.since)})")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        out_shapes = [self.shapes.get(o) for o in node.output]
        used = [bool(o) and o in self.consumed for o in node.output]
        mapped = declared.mapping(Node(name, node.op_type, self.opset, attrs, inputs, out_shapes, used), self.b)
        for value, shape, is_used in zip(mapped, out_shapes, used, strict=False):
            if isinstance(value, Row) and is_used and shape and all(d is not None for d in shape[1:]):
                if tuple(shape[1:]) != value.dims:
                    raise Unsupported(f"it computes [batch, {value.dims}] where ONNX infers {list(shape)}")
        if len(mapped) < sum(used):
            raise Unsupported(f"{len(node.output)} outputs; the first {len(mapped)} are computed")
        return mapped

    def node(self, index: int, node: Any) -> None:
        name = node.name or f"#{index} {node.op_type}"
        inputs: list[Value | None] = [self.values[n] if n else None for n in node.input]
        try:
            outs = self.translate(node, name, inputs)
        except (Unsupported, ExpressionError) as err:
            outs = self.refuse(node, name, str(err), inputs)
        for output, value in zip(node.output, outs, strict=False):
            if output:
                self.values[output] = value
                if isinstance(value, Row):
                    self.walked.origins.setdefault(value.value, output)

    def inputs(self, noise: int) -> None:
        """The IR inputs: conditions (and noise), as the model's one or two inputs read them."""
        b, inputs, walked = self.b, self.prepared.inputs, self.walked
        for graph_input in inputs:
            for problem in graph_input.problems:
                b.refuse(graph_input.name, "input", problem, 1, kind="input")
        walked.feeds = [(i.name, i.fixed) for i in inputs]
        widths = [math.prod(i.fixed) for i in inputs]
        rows = [Row(b.value(w), i.fixed) for w, i in zip(widths, inputs, strict=True)]
        if len(inputs) == 2:  # a generator: (conditions, noise)
            if noise and widths[1] != noise:
                b.refuse(inputs[1].name, "input", f"noise = {noise}, but this input (the noise) has {widths[1]}", 1)
            walked.input, walked.noise = rows[0].value, rows[1].value
        elif len(inputs) != 1:
            b.refuse(self.b.source, "model", f"{len(inputs)} inputs; one, or two for a generator (conditions, noise)", 1)
            walked.input = rows[0].value if rows else b.value(1)
        elif noise:
            if not 0 < noise < widths[0] or len(inputs[0].fixed) != 1:
                b.refuse(inputs[0].name, "input", f"noise = {noise}, but the input has {widths[0]} entries", 1)
                walked.input = rows[0].value
            else:
                x, r = b.value(widths[0] - noise), b.value(noise)
                rows[0] = Row(b.add(Concatenate, "conditions+noise", [x, r], widths[0]), inputs[0].fixed)
                walked.input, walked.noise = x, r
        else:
            walked.input = rows[0].value
        for graph_input, row in zip(inputs, rows, strict=True):
            self.values[graph_input.name] = row

    def walk(self, noise: int) -> Walked:
        self.inputs(noise)
        for problem in self.prepared.problems:
            self.b.refuse(self.b.source, "model", problem, 1, kind="model")
        for index, node in enumerate(self.prepared.inferred.graph.node):
            self.node(index, node)
        output = self.prepared.inferred.graph.output[0].name if self.prepared.inferred.graph.output else ""
        value = self.values.get(output)
        if isinstance(value, Row):
            self.walked.output = value.value
        else:
            what = "a constant" if isinstance(value, Const) else "computed from the batch size alone"
            self.walked.output = self.b.refuse(output, "output", f"is {what}, not computed from the input", 1)
        return self.walked


def walk_onnx(prepared: Prepared, source: str, noise: int = 0) -> Walked:
    """Walk a prepared model into IR (``noise`` > 0: a generator whose one input ends with that many entries)."""
    return OnnxWalker(prepared, source).walk(noise)
