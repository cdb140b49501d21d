"""The ONNX float64 twin nudged after every node: the float32 rule's envelope, as Keras' and Flax's twins.

ONNX Runtime rounds what every node writes to float32, and the nodes after it amplify that rounding (a chain
of ``Gemm`` and ``Tanh`` whose gain is above 1, a ``LayerNormalization`` after a sum that cancels). So the
twin (``reference.float64_twin``) gets a ``Nudge`` node after each node: its float output moved by one
float32 ULP (``exporter/frontends/nudge.py``), a sum of n terms (``Gemm``, ``MatMul``, ``Conv`` and
``ConvTranspose``'s fan-in, the reductions and average pools) by sqrt(n), n read from the shapes ONNX infers
(1 where it cannot). Nodes float32 computes exactly (moving, selecting, comparing, ``Relu``, ``Max``) are left
as they are; non-float outputs (a ``Shape``, an ``ArgMax``) pass the nudge unchanged. A recurrent node
(``RNN``, ``GRU``, ``LSTM``) is moved at its outputs only, not at each step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from exporter.frontends.nudge import nudge_array, sum_ulps

DOMAIN = "lamarr_export.nudge"  # the Nudge node's own domain: no standard op is shadowed
EXACT = frozenset(
    "Identity Reshape Flatten Squeeze Unsqueeze Transpose Concat Split Slice Gather GatherElements GatherND "
    "Expand Tile Pad Where Cast CastLike Shape Size Constant ConstantOfShape Relu Max Min Abs Neg Sign Floor "
    "Ceil Round Clip MaxPool GlobalMaxPool ReduceMax ReduceMin ArgMax ArgMin Equal Less LessOrEqual Greater "
    "GreaterOrEqual Not And Or Xor IsNaN IsInf Dropout DepthToSpace SpaceToDepth Range TopK Trilu".split()
)
REDUCTIONS = frozenset("ReduceSum ReduceMean ReduceSumSquare ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp".split())


def nudge_op() -> type:
    """The ``Nudge`` op for onnx's reference evaluator: its input moved by ``ulps`` float32 ULPs."""
    from onnx.reference.op_run import OpRun

    class Nudge(OpRun):
        op_domain = DOMAIN

        def _run(self, x: np.ndarray, ulps: float = 1.0) -> tuple[np.ndarray]:
            return (nudge_array(np.asarray(x), ulps),)

    return Nudge


def _terms(node: Any, shapes: dict[str, tuple[int, ...]], constants: dict[str, np.ndarray]) -> int:
    """How many terms each output value of ``node`` sums; 1 for no sum or shapes ONNX did not infer."""
    attrs = {a.name: a for a in node.attribute}
    first = shapes.get(node.input[0], ()) if node.input else ()
    weight = shapes.get(node.input[1], ()) if len(node.input) > 1 else ()
    if node.op_type == "Gemm" and len(first) == 2:  # the bias too: the C's sum starts from it
        return (first[0] if "transA" in attrs and attrs["transA"].i else first[1]) + (len(node.input) > 2)
    if node.op_type == "MatMul" and first:
        return first[-1]
    if node.op_type == "Conv" and len(weight) > 2:
        return math.prod(weight[1:])
    if node.op_type == "ConvTranspose" and len(weight) > 2:
        groups = attrs["group"].i if "group" in attrs else 1
        return weight[0] // max(groups, 1) * math.prod(weight[2:])
    if node.op_type in ("GlobalAveragePool", "GlobalLpPool") and len(first) > 2:
        return math.prod(first[2:])
    if node.op_type == "AveragePool" and "kernel_shape" in attrs:
        return math.prod(attrs["kernel_shape"].ints)
    if node.op_type in REDUCTIONS and first:
        if "axes" in attrs:
            axes = list(attrs["axes"].ints)
        elif len(node.input) > 1 and node.input[1] in constants:
            axes = [int(a) for a in constants[node.input[1]].ravel()]
        else:
            axes = list(range(len(first)))
        return math.prod(first[a] for a in axes) if axes else 1
    return 1


def nudged_twin(twin: Any, model: Any) -> Any:
    """``twin`` (the float64 model) with a ``Nudge`` node after every node that rounds in float32; ``model``:
    the float32 model whose inferred shapes give each sum's number of terms."""
    import onnx
    from onnx import numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
        for v in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    }
    constants = {t.name: numpy_helper.to_array(t) for t in inferred.graph.initializer}
    shapes.update({name: value.shape for name, value in constants.items()})
    graph = twin.graph
    taken = {name for node in graph.node for name in [*node.input, *node.output]} | {i.name for i in graph.input}
    nodes = []
    for node in graph.node:
        nodes.append(node)
        if node.op_type in EXACT or node.domain not in ("", "ai.onnx"):
            continue
        ulps = sum_ulps(_terms(node, shapes, constants))
        for k, name in enumerate(node.output):
            if not name:
                continue
            exact = f"{name}.exact"
            while exact in taken:
                exact += "_"
            taken.add(exact)
            node.output[k] = exact
            nodes.append(onnx.helper.make_node("Nudge", [exact], [name], domain=DOMAIN, ulps=ulps))
    del graph.node[:]
    graph.node.extend(nodes)
    twin.opset_import.append(onnx.helper.make_opsetid(DOMAIN, 1))
    return twin
