"""An ONNX graph walked node by node into IR, every refused node recorded in place (all listed at once).

Nodes come in the graph's order (ONNX requires it topological). A node whose inputs are all constants is
folded: computed once by onnx's reference evaluator (onnx's own numpy implementation of the standard
ops), its outputs constants. A node reading a tensor computed from the batch size (``Meta``) and no row
gives such tensors again. Any other node is translated by the declaration of its op type (``declare.OPS``,
filled by ``elementwise``, ``linear``, ``shapes``, ``convolution`` and ``recurrent``), and its rows' shapes
are checked against those ONNX infers. A node that cannot be translated is refused with its name, op type
and the model's opset; a node whose translation fails on an input that came from a refused node adds no
problem of its own.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

import exporter.frontends.onnx.convolution
import exporter.frontends.onnx.elementwise
import exporter.frontends.onnx.linear
import exporter.frontends.onnx.products
import exporter.frontends.onnx.recurrent
import exporter.frontends.onnx.shapes  # noqa: F401 - the six declare the op types
from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.inputs import is_several
from exporter.frontends.onnx.declare import OPS, SENTINELS, Const, Meta, Node, Row, Shape, Value, concrete, entry
from exporter.frontends.onnx.patterns import Gelu, find_gelus
from exporter.frontends.onnx.read import Prepared
from exporter.ir import Activate, Activation, Concatenate, Graph, Slice
from exporter.ir.expression import ExpressionError
from exporter.ir.graph import InputPart

SHAPED = "a shaped op not read yet (docs/onnx.md lists the shaped ops read)"
# Why an op type without a declaration is refused, by family
REFUSALS = {
    **dict.fromkeys(
        "ConvTranspose ConvInteger QLinearConv LpPool GlobalLpPool MaxUnpool MaxRoiPool RoiAlign "
        "InstanceNormalization GroupNormalization LRN Resize Upsample DepthToSpace SpaceToDepth Col2Im DeformConv "
        "Attention".split(),
        SHAPED,
    ),
    **dict.fromkeys("If Loop Scan".split(), "control flow (subgraphs) is not supported"),
    **dict.fromkeys(
        "RandomNormal RandomUniform RandomNormalLike RandomUniformLike Multinomial Bernoulli".split(),
        "draws random numbers: a generator takes its noise as an input (noise)",
    ),
}
BOOL_NOTE = "a bool tensor, 0 (false) or 1 (true) per item, as the model reads it"
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
    parts: tuple[InputPart, ...] = ()  # several inputs side by side in the C's input row
    bools: frozenset[str] = frozenset()  # the inputs of bool tensors, read as 0/1 floats

    def graph(self) -> Graph:
        return self.builder.finish(self.input, self.output, self.noise, self.parts)


def _dim(d: Any) -> int | str | None:
    return d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None


def _shapes(model: Any) -> dict[str, Shape]:
    """Every tensor's inferred shape: sizes, symbols (the batch's is ``BATCH``), None where inference left it."""
    out: dict[str, Shape] = {}
    graph = model.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor = info.type.tensor_type
        if info.type.WhichOneof("value") == "tensor_type" and tensor.HasField("shape"):
            out[info.name] = tuple(_dim(d) for d in tensor.shape.dim)
    return out


class OnnxWalker:
    """Maps every node of a prepared model to IR, recording (not raising) each refused node."""

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
        self.gelus = {k: gelu for gelu in find_gelus(graph) for k in gelu.nodes}  # by each of its nodes
        from onnx import numpy_helper

        for tensor in graph.initializer:
            self.values[tensor.name] = Const(numpy_helper.to_array(tensor))

    def refuse(self, node: Any, name: str, reason: str, inputs: list[Value | None], own: bool) -> list[Value]:
        """Placeholders for the node's outputs, and a problem: the node's ``own``, or one its translation met
        (unless an input came from a refused node, whose placeholder may be what the translation met)."""
        rows = [v.value for v in inputs if isinstance(v, Row)]
        outs = []
        for k, output in enumerate(node.output):
            shape = self.shapes.get(output)
            dims = tuple(d if isinstance(d, int) and d > 0 else 1 for d in shape[1:]) if shape else (1,)
            if k == 0 and (own or not any(v in self.poisoned for v in rows)):
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
            known = shape is not None and all(isinstance(d, int) for d in shape)
            if (known and math.prod(shape) > MAX_FOLDED) or (node.op_type in GROWING and not known):  # type: ignore[arg-type]
                raise Unsupported(f"folding it would make a constant of shape {shape} (more than {MAX_FOLDED} values)")
        feeds = {n: v.array for n, v in zip(node.input, inputs, strict=True) if isinstance(v, Const)}
        try:
            results = ReferenceEvaluator(node, opsets=self.prepared.opsets).run(None, feeds)
        except Exception as err:  # the evaluator's own errors for inputs that do not fit the op
            raise Unsupported(f"its constant inputs cannot be folded ({type(err).__name__}: {err})") from None
        return [Const(np.asarray(r)) for r in results]

    def symbolic(self, node: Any, inputs: list[Value | None]) -> list[Value]:
        """A node of shapes computed from the batch size: folded twice, with the batch size one sentinel and
        then the other; an entry that follows the sentinels is the batch size, one that stays is a constant."""
        unknown = [Meta() for _ in node.output]
        zeros = node.op_type == "Expand" and isinstance(inputs[0], Const) and not np.any(inputs[0].array)
        if zeros or (node.op_type == "ConstantOfShape" and not np.any(self._attr_value(node))):
            return [Meta(zero=True)]  # zeros of a shape read from the rows (``torch.zeros_like`` of a mask)
        if node.op_type in GROWING or any(isinstance(v, Meta) and v.values is None for v in inputs):
            return unknown
        runs = []
        for batch in SENTINELS:
            feeds = [
                Const(np.asarray([concrete(d, batch) for d in v.values], dtype=np.int64).reshape(v.shape))
                if isinstance(v, Meta) and v.values is not None and None not in v.values
                else v
                for v in inputs
            ]
            if any(isinstance(v, Meta) for v in feeds):
                return unknown
            runs.append([v.array for v in self.fold(node, feeds) if isinstance(v, Const)])
        out: list[Value] = []
        for first, second in zip(*runs, strict=True):
            if first.shape != second.shape:
                out.append(Meta())
            elif np.array_equal(first, second):
                out.append(Const(first))
            elif first.ndim <= 1 and first.dtype.kind in "iu":
                pairs = zip(first.reshape(-1).tolist(), second.reshape(-1).tolist(), strict=True)
                values = tuple(entry(a, b) for a, b in pairs)
                out.append(Meta(values, first.shape))
            else:
                out.append(Meta())
        return out

    @staticmethod
    def _attr_value(node: Any) -> np.ndarray:
        """A ``ConstantOfShape``'s value (0 when omitted)."""
        from onnx import numpy_helper

        tensors = [numpy_helper.to_array(a.t) for a in node.attribute if a.name == "value"]
        return tensors[0] if tensors else np.zeros(1)

    def refusal(self, node: Any, inputs: list[Value | None]) -> str | None:
        """Why a node is refused whatever its inputs hold: its domain, its op type, the version of its schema."""
        import onnx

        if node.domain not in ("", "ai.onnx"):
            return "a custom domain: only the standard ONNX operators (domain ai.onnx) are read"
        reason = REFUSALS.get(node.op_type)
        if reason is not None or any(a.HasField("g") or a.graphs for a in node.attribute):
            return reason or "control flow (subgraphs) is not supported"
        if not any(isinstance(v, Row) for v in inputs):
            return None  # folded, whatever its op type
        declared = OPS.get(node.op_type)
        if declared is None:
            return "no C translation of this op (docs/onnx.md lists the ops read)"
        since = onnx.defs.get_schema(node.op_type, self.opset).since_version
        if since not in declared.since:
            return f"version {since} of {node.op_type} is not read yet (versions {sorted(declared.since)})"
        return None

    def translate(self, node: Any, name: str, inputs: list[Value | None]) -> list[Value]:
        """The node's values: folded, computed from the batch size, or mapped by its declaration."""
        import onnx

        if not any(isinstance(v, (Row, Meta)) for v in inputs):
            return self.fold(node, inputs)
        if not any(isinstance(v, Row) for v in inputs):
            return self.symbolic(node, inputs)
        declared = OPS[node.op_type]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        out_shapes = [self.shapes.get(o) for o in node.output]
        used = [bool(o) and o in self.consumed for o in node.output]
        read = Node(name, node.op_type, self.opset, attrs, inputs, out_shapes, used, self.prepared.batch_one)
        mapped = declared.mapping(read, self.b)
        for value, shape, is_used in zip(mapped, out_shapes, used, strict=False):
            if not (isinstance(value, Row) and is_used and shape):
                continue
            ours = value.onnx_dims()
            if len(ours) != len(shape) or any(
                isinstance(d, int) and o is not None and d != o for o, d in zip(ours, shape, strict=False)
            ):
                raise Unsupported(f"it computes [batch, {value.dims}] where ONNX infers {list(shape)}")
        if len(mapped) < sum(used):
            raise Unsupported(f"{len(node.output)} outputs; the first {len(mapped)} are computed")
        return mapped

    def gelu(self, index: int) -> Gelu | None:
        """The written-out GELU node ``index`` belongs to, while it is read as one (its input is rows)."""
        gelu = self.gelus.get(index)
        if gelu is not None and index == gelu.nodes[0] and not isinstance(self.values.get(gelu.x), Row):
            for k in gelu.nodes:  # of constants, or of a refused node: walked as written
                del self.gelus[k]
            return None
        return gelu

    def node(self, index: int, node: Any) -> None:
        name = node.name or f"#{index} {node.op_type}"
        gelu = self.gelu(index)
        if gelu is not None and index != gelu.last:
            return  # its output feeds only the pattern's next node: the last node computes the whole
        inputs: list[Value | None] = [self.values.get(n) if n else None for n in node.input]
        reason = None if gelu is not None else self.refusal(node, inputs)
        if reason is not None:
            outs = self.refuse(node, name, reason, inputs, own=True)
        else:
            try:
                if gelu is not None:
                    row = self.values[gelu.x]
                    assert isinstance(row, Row)
                    act = Activation("gelu_erf", {})
                    outs = [replace(row, value=self.b.add(Activate, name, [row.value], row.width, activation=act))]
                else:
                    outs = self.translate(node, name, inputs)
            except (Unsupported, ExpressionError) as err:
                outs = self.refuse(node, name, str(err), inputs, own=False)
        for output, value in zip(node.output, outs, strict=False):
            if output:
                self.values[output] = value
                if isinstance(value, Row) and not (value.batch or value.groups):  # the trace reads the batch first
                    self.walked.origins.setdefault(value.value, output)

    def inputs(self, noise: int) -> None:
        """The IR inputs: conditions (and noise), as the model's one or two inputs read them; each input refused
        (a dynamic dimension...) is listed, and what its rows feed adds no problem of its own."""
        b, inputs, walked = self.b, self.prepared.inputs, self.walked
        for graph_input in inputs:
            for problem in graph_input.problems:
                b.refuse(graph_input.name, "input", problem, 1, kind="input")
        walked.feeds = [(i.name, i.fixed) for i in inputs]
        walked.bools = frozenset(i.name for i in inputs if i.bool)
        widths = [math.prod(i.fixed) for i in inputs]
        if is_several([i.fixed for i in inputs], noise > 0) or (walked.bools and len(inputs) > 1):
            self.several(widths)
            return
        split = len(inputs) == 1 and noise > 0
        if split and (noise >= widths[0] or len(inputs[0].fixed) != 1):
            b.refuse(
                inputs[0].name, "input", f"noise = {noise}, but the input has {widths[0]} entries", 1, kind="input"
            )
            split = False
        if split:  # conditions and noise side by side, as the model reads them
            walked.input, walked.noise = b.value(widths[0] - noise), b.value(noise)
            joined = b.add(Concatenate, "conditions+noise", [walked.input, walked.noise], widths[0])
            rows = [Row(joined, inputs[0].fixed)]
        else:
            rows = [Row(b.value(w), i.fixed) for w, i in zip(widths, inputs, strict=True)]
            walked.input = rows[0].value if rows else b.value(1)
        if len(inputs) == 2:  # a generator: (conditions, noise)
            walked.noise = rows[1].value
            if noise and widths[1] != noise:
                why = f"noise = {noise}, but this input (the noise) has {widths[1]}"
                b.refuse(inputs[1].name, "input", why, 1, kind="input")
        elif len(inputs) != 1:
            why = f"{len(inputs)} inputs; one, or two for a generator (conditions, noise)"
            b.refuse(b.source, "model", why, 1, kind="model")
        self.poisoned.update(row.value for row, i in zip(rows, inputs, strict=True) if i.problems)
        for graph_input, row in zip(inputs, rows, strict=True):
            self.values[graph_input.name] = row

    def several(self, widths: list[int]) -> None:
        """Several inputs (not a generator's conditions and noise), side by side in the C's one input row, as
        a Keras model's (docs/c-contract.md#several-inputs): each a slice of it; a bool input a 0/1 mask."""
        inputs, walked = self.prepared.inputs, self.walked
        walked.input = self.b.value(sum(widths))
        offsets = [0, *itertools.accumulate(widths)]
        parts = []
        for graph_input, width, offset in zip(inputs, widths, offsets, strict=False):
            value = self.b.add(Slice, f"input {graph_input.name}", [walked.input], width, start=offset)
            self.values[graph_input.name] = Row(value, graph_input.fixed)
            note = BOOL_NOTE if graph_input.bool else ""
            parts.append(InputPart(graph_input.name, offset, graph_input.fixed, graph_input.bool, note))
            if graph_input.problems:
                self.poisoned.add(value)
        walked.parts = tuple(parts)

    def walk(self, noise: int) -> Walked:
        self.inputs(noise)
        for problem in self.prepared.problems:
            self.b.refuse(self.b.source, "model", problem, 1, kind="model")
        for index, node in enumerate(self.prepared.inferred.graph.node):
            self.node(index, node)
        output = self.prepared.inferred.graph.output[0].name if self.prepared.inferred.graph.output else ""
        value = self.values.get(output)
        if isinstance(value, Row) and value.batch:
            why = f"has the batch as axis {value.batch}: the C writes one row per batch entry, the batch first"
            self.walked.output = self.b.refuse(output, "output", why, 1, kind="output")
        elif isinstance(value, Row):
            self.walked.output = value.value
        else:
            what = "a constant" if isinstance(value, Const) else "computed from the batch size alone"
            why = f"is {what}, not computed from the input"
            self.walked.output = self.b.refuse(output, "output", why, 1, kind="output")
        return self.walked


def walk_onnx(prepared: Prepared, source: str, noise: int = 0) -> Walked:
    """Walk a prepared model into IR (``noise`` > 0: a generator whose one input ends with that many entries)."""
    return OnnxWalker(prepared, source).walk(noise)
