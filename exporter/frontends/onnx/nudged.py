"""The ONNX float64 twin nudged after every node: the float32 rule's envelope, as Keras' and Flax's twins.

ONNX Runtime rounds what every node writes to float32, and the nodes after it amplify that rounding (a chain
of products and tanh whose gain is above 1, a normalization after a sum that cancels). So the twin
(``reference.float64_twin``) gets a ``Nudge`` node after each node: its float output moved by one float32 ULP
(``exporter/frontends/nudge.py``), a sum of n terms (a product's, a convolution's fan-in, a reduction's or an
average pool's) by sqrt(n). Each op type's declaration says how many terms (``declare.handles(terms=...)``,
read from the shapes ONNX infers; 1 where it cannot); an op float32 computes exactly (moving, selecting,
comparing, a ReLU, a maximum) is not moved; a node of an op no declaration names (a constant's computation
folded by the walk) is moved by one ULP; non-float outputs (a shape, an index) pass the nudge unchanged. A
recurrent node is moved at its outputs only, not at each step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.frontends.nudge import nudge_array, sum_ulps
from exporter.frontends.onnx.declare import OPS, Sizes

DOMAIN = "lamarr_export.nudge"  # the Nudge node's own domain: no standard op is shadowed


def nudge_op() -> type:
    """The ``Nudge`` op for onnx's reference evaluator: its input moved by ``ulps`` float32 ULPs."""
    from onnx.reference.op_run import OpRun

    class Nudge(OpRun):
        op_domain = DOMAIN

        def _run(self, x: np.ndarray, ulps: float = 1.0) -> tuple[np.ndarray]:
            return (nudge_array(np.asarray(x), ulps),)

    return Nudge


def sizes_of(model: Any) -> Sizes:
    """Each tensor's dimensions as ONNX infers them in ``model`` (the float32 file), and its initializers."""
    import onnx
    from onnx import numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes = {
        v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
        for v in [*graph.input, *graph.value_info, *graph.output]
    }
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return Sizes({**shapes, **{name: value.shape for name, value in constants.items()}}, constants)


def nudged_twin(twin: Any, model: Any) -> Any:
    """``twin`` (the float64 model, changed in place) with a ``Nudge`` node after every node that rounds in
    float32; ``model``: the float32 model, whose inferred shapes give each sum's number of terms."""
    import onnx

    sizes = sizes_of(model)
    graph = twin.graph
    taken = {name for node in graph.node for name in [*node.input, *node.output]} | {i.name for i in graph.input}
    nodes = []
    for node in graph.node:
        nodes.append(node)
        declared = OPS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        terms = declared.terms(node, sizes) if declared else 1
        if not terms:
            continue
        for k, name in enumerate(node.output):
            if not name:
                continue
            exact = f"{name}.exact"
            while exact in taken:
                exact += "_"
            taken.add(exact)
            node.output[k] = exact
            nodes.append(onnx.helper.make_node("Nudge", [exact], [name], domain=DOMAIN, ulps=sum_ulps(terms)))
    del graph.node[:]
    graph.node.extend(nodes)
    twin.opset_import.append(onnx.helper.make_opsetid(DOMAIN, 1))
    return twin
