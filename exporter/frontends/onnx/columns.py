"""An ONNX graph of preprocessing (sklearn-onnx's scalers, and pipelines of them) read as column ops, for
``--preprocess file.onnx``.

sklearn-onnx writes scikit-learn's standard, robust and max-abs scalers as one ``Scaler`` of the
``ai.onnx.ml`` domain, ``y = (x - offset) * scale``, and its min-max scaler as plain ops (``Cast``, ``Mul``,
``Add``); a Pipeline is its steps one after the other. Each node becomes the column op scikit-learn's own
class would (``Standardize``, ``MulAdd``), so the preprocessing compiles into the same function as from the
pickle. The graph must be a chain: one float input [batch, n], each node reading the tensor the one before
wrote (and constants), one output. Every node that cannot be read is listed at once, with its op type,
domain and opset: the other ``ai.onnx.ml`` ops (``Normalizer``, ``Imputer``, ``OneHotEncoder``...), a
``ColumnTransformer``'s ``Slice`` and ``Concat``. The reference is ONNX Runtime running the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exporter.common.errors import ExportError, Problem, UnsupportedModelError
from exporter.frontends.builder import Unsupported
from exporter.frontends.sklearn.transformers import register_transformer
from exporter.ir.columns import ColumnOp, MulAdd, Standardize

PLAIN = "Scaler (ai.onnx.ml), Mul, Add, Sub, Div and Clip by constants, Cast to float, Identity"
FLOAT, DOUBLE = 1, 11  # ONNX's element types


@dataclass
class Step:
    """One node read: ``y = x * mul + add`` (clipped), or ``(x - center) / scale``."""

    name: str
    mul: np.ndarray | None = None
    add: np.ndarray | None = None
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    clip: tuple[float, float] | None = None

    def op(self, path: str, n: int) -> ColumnOp:
        columns = tuple(range(n))
        if self.center is not None and self.scale is not None:
            return Standardize(f"{path} / {self.name}", columns, self.center, self.scale)
        mul = np.ones(n) if self.mul is None else self.mul
        add = np.zeros(n) if self.add is None else self.add
        return MulAdd(f"{path} / {self.name}", columns, mul, add, self.clip)


@dataclass
class OnnxPreprocessing:
    """A preprocessing ONNX file as a transformer: its steps, its width, ONNX Runtime's forward pass."""

    source: str
    n_features_in_: int
    steps: list[Step] = field(default_factory=list)
    model: bytes = b""
    input_name: str = "X"
    input_type: int = FLOAT
    session: Any = None

    def transform(self, x: np.ndarray) -> np.ndarray:
        """ONNX Runtime's outputs for rows ``x`` (fed as the graph's input type), as float64."""
        if self.session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            self.session = onnxruntime.InferenceSession(self.model, options, providers=["CPUExecutionProvider"])
        dtype = np.float64 if self.input_type == DOUBLE else np.float32
        out = self.session.run(None, {self.input_name: np.asarray(x, dtype=dtype)})[0]
        return np.asarray(out, dtype=np.float64)

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        """The steps undone in float64, as scikit-learn's scalers undo themselves (a clip is not undone): the
        reference of a target transform, which ONNX Runtime cannot give (a graph has no inverse)."""
        y = np.array(y, dtype=np.float64)
        for step in reversed(self.steps):
            if step.center is not None and step.scale is not None:
                y = y * step.scale + step.center
            else:
                y = (y - (0.0 if step.add is None else step.add)) / (1.0 if step.mul is None else step.mul)
        return y


@register_transformer(OnnxPreprocessing)
def column_ops(est: OnnxPreprocessing, n: int, path: str, problems: list[Problem]) -> list[ColumnOp]:
    return [step.op(path, n) for step in est.steps]


def _per_column(array: np.ndarray, n: int, what: str) -> np.ndarray:
    """A constant broadcast to one value per column: shape (), (1,), (n,), (1, n) or (1, 1)."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim > 2 or (array.ndim == 2 and array.shape[0] != 1) or array.size not in (1, n):
        raise Unsupported(f"{what} of shape {list(array.shape)} is not one value per column of {n}")
    return np.broadcast_to(array.reshape(-1), (n,)).copy()


def _step(node: Any, attrs: dict[str, Any], row: str, const: dict[str, np.ndarray], n: int) -> Step | None:
    """The step of one node whose row input is ``row`` (None: it passes the row on unchanged)."""
    name, op = node.name or node.op_type, node.op_type
    if node.domain == "ai.onnx.ml":
        if op != "Scaler":
            raise Unsupported(f"an ai.onnx.ml op not read as preprocessing (read: {PLAIN})")
        scale = _per_column(attrs.get("scale", [1.0]), n, "scale")
        if not np.all(scale != 0):
            raise Unsupported("a scale of 0 maps its column to a constant")
        return Step(name, center=_per_column(attrs.get("offset", [0.0]), n, "offset"), scale=1.0 / scale)
    if op == "Identity":
        return None
    if op == "Cast":
        if attrs.get("to") != FLOAT:
            raise Unsupported(f"a cast to element type {attrs.get('to')}; to float only")
        return None
    ins = list(node.input)
    others = [i for i in ins if i != row]
    if op == "Clip":
        given = [*ins[1:3], "", ""][:2]  # min and max, each omitted (unbounded) or a constant
        if ins[0] != row or any(i and i not in const for i in given):
            raise Unsupported("min and max must be constants")
        low, high = (
            float(np.asarray(const[i]).reshape(-1)[0]) if i else d
            for i, d in zip(given, (-np.inf, np.inf), strict=True)
        )
        return Step(name, clip=(low, high))
    if op not in ("Mul", "Add", "Sub", "Div") or len(ins) != 2 or len(others) != 1 or others[0] not in const:
        raise Unsupported(f"no column op for it in a preprocessing graph (read: {PLAIN})")
    c = _per_column(const[others[0]], n, "the constant")
    first = ins[0] == row
    if op == "Mul":
        return Step(name, mul=c)
    if op == "Add":
        return Step(name, add=c)
    if op == "Sub":
        return Step(name, add=-c) if first else Step(name, mul=-np.ones(n), add=c)
    if not first:
        raise Unsupported("a constant divided by the column")
    return Step(name, center=np.zeros(n), scale=c)


def _fused(steps: list[Step]) -> list[Step]:
    """A ``Mul`` followed by an ``Add`` as one ``x * mul + add`` (a min-max scaler, as scikit-learn computes it)."""
    out: list[Step] = []
    for step in steps:
        last = out[-1] if out else None
        plain = step.center is None and step.clip is None and step.mul is None
        if last is not None and plain and last.mul is not None and last.add is None and last.clip is None:
            out[-1] = Step(f"{last.name}+{step.name}", mul=last.mul, add=step.add)
        else:
            out.append(step)
    return out


def load_preprocessing(model: Any) -> OnnxPreprocessing:
    """A preprocessing ONNX file (or ``ModelProto``) read into steps, every node that cannot be read listed."""
    from onnx import helper, numpy_helper

    from exporter.frontends.onnx import source_name
    from exporter.frontends.onnx.read import opsets_of, parse

    source = source_name(model)
    label = str(model) if isinstance(model, (str, os.PathLike)) else source
    proto = parse(model, label)
    opsets = opsets_of(label, proto)
    graph = proto.graph
    initialized = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialized]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ExportError(f"{label}: a preprocessing graph has one input and one output")
    tensor = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if tensor.elem_type not in (FLOAT, DOUBLE) or len(dims) != 2 or not dims[1]:
        raise ExportError(f"{label}: its input must be float rows of a known width ([batch, n]), not {dims}")
    n = int(dims[1])
    const = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    row, steps, problems = inputs[0].name, [], []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant" and "value" in attrs:
            const[node.output[0]] = numpy_helper.to_array(attrs["value"])
            continue
        try:
            if row not in node.input:
                raise Unsupported("it does not read the tensor the step before wrote: only a chain of steps is read")
            step = _step(node, attrs, row, const, n)
        except Unsupported as err:
            domain = node.domain or "ai.onnx"
            cls = f"{node.op_type}, {domain}, opset {opsets.get('' if domain == 'ai.onnx' else domain, '?')}"
            problems.append(Problem(node.name or node.op_type, cls, str(err), "node"))
            step = None
        steps += [step] if step is not None else []
        row = node.output[0]
    if row != graph.output[0].name and not problems:
        problems.append(Problem(graph.output[0].name, "output", "is not the tensor the last step writes", "output"))
    if problems:
        raise UnsupportedModelError(source, problems)
    data = proto.SerializeToString()
    return OnnxPreprocessing(Path(source).name, n, _fused(steps), data, inputs[0].name, tensor.elem_type)
