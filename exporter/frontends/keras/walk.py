"""Walk a built Keras model (Sequential, Functional, nested models) into IR, node by node."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras import attention as _attention  # noqa: F401  (registers MultiHeadAttention)
from exporter.frontends.keras import axes as _axes  # noqa: F401  (declares BatchNormalization, Dot...)
from exporter.frontends.keras import convolution as _convolution  # noqa: F401  (declares the convolution family)
from exporter.frontends.keras import normalization as _normalization  # noqa: F401  (registers its layers)
from exporter.frontends.keras import recurrent as _recurrent  # noqa: F401  (declares the recurrent layers)
from exporter.frontends.keras import resizing as _resizing  # noqa: F401  (declares Resizing)
from exporter.frontends.keras import scored_attention as _scored  # noqa: F401  (Attention, AdditiveAttention)
from exporter.frontends.keras.inputs import (
    input_parts,
    is_several,
    row_shape,
    several_inputs,
    split_values,
)
from exporter.frontends.keras.layers import layer_mapping, takes_call
from exporter.frontends.keras.operations import Tensor, is_operation, map_operation
from exporter.ir import Graph
from exporter.ir.graph import InputPart
from exporter.ir.layout import Concatenate

# What to tell a user whose layer has no mapping, by family of class names.
REFUSALS = {
    "Lambda": "runs arbitrary Python code, which cannot be translated to C",
    "ConvLSTM": "convolutional recurrent layers (ConvLSTM) are not supported",
    "Transpose": "3-D transposed convolutions are not supported (Conv1DTranspose and Conv2DTranspose are)",
    "Adaptive": "adaptive pooling is not supported (MaxPooling, AveragePooling and global pooling in 1-D to 3-D are)",
    "Masking": "masking (the Masking layer) is not supported: a recurrent layer here runs over every step",
    "LSTM": "recurrent layers other than SimpleRNN, GRU, LSTM, RNN of their cells and Bidirectional are not supported",
    "GRU": "recurrent layers other than SimpleRNN, GRU, LSTM, RNN of their cells and Bidirectional are not supported",
    "RNN": "recurrent layers other than SimpleRNN, GRU, LSTM, RNN of their cells and Bidirectional are not supported",
    "Cell": "a recurrent cell called on its own is not supported (wrap it in keras.layers.RNN)",
    "Attention": "attention layers other than MultiHeadAttention, Attention and AdditiveAttention are not supported",
}


def refusal_reason(cls: str, builtin: bool) -> str:
    """Why a layer class has no mapping: the most specific reason we know."""
    if not builtin:
        return "custom layer: only built-in Keras layers, and those given to exporter.register_layer, can be exported"
    for fragment, reason in REFUSALS.items():
        if fragment in cls:
            return reason
    return "this layer type is not supported"


def is_model(obj: Any) -> bool:
    return hasattr(obj, "_nodes_by_depth") or hasattr(obj, "_functional")


def _is_builtin(layer: Any) -> bool:
    return type(layer).__module__.startswith("keras.")


def _rank_problem(shape: Any) -> str | None:
    if len(shape) < 2 or any(n is None for n in shape[1:]):
        fixed = "only (batch, features) tensors, or (batch, d1, d2...) of fixed sizes, are supported"
        return f"tensor shape {tuple(shape)}: {fixed}"
    return None


@dataclass(frozen=True)
class Origin:
    """Where Keras computes an IR value: ``tensor`` of the (possibly nested) functional ``graph``,
    whose inputs are fed by the IR values ``feeds``. The trace rebuilds Keras' own intermediate
    outputs from this, one ``keras.Model(graph.inputs, tensor)`` per value."""

    graph: Any
    tensor: Any
    feeds: tuple[str, ...]


class KerasWalker:
    """Maps every node of the model to IR, recording (not raising) each refused layer.

    ``origins`` maps each IR value to the first Keras tensor that carries it.
    """

    def __init__(self, builder: Builder):
        self.b = builder
        self.origins: dict[str, Origin] = {}

    def apply(self, layer: Any, inputs: list[str], out_shapes: list[Any], call: Any = None) -> list[str]:
        """A layer node; ``call``: its arguments, for a mapping that tells its tensors apart by them."""
        if is_model(layer):
            return self.walk(layer, inputs)
        cls = type(layer).__name__
        width = math.prod(row_shape(out_shapes[0])) if out_shapes else 1
        problems = [p for p in map(_rank_problem, out_shapes) if p]
        if len(out_shapes) != 1:
            problems.append(f"{len(out_shapes)} outputs; layers with one output are supported")
        mapping = layer_mapping(cls, _is_builtin(layer))
        if mapping is None:
            problems.insert(0, refusal_reason(cls, _is_builtin(layer)))
        shape = row_shape(out_shapes[0]) if out_shapes else None
        if problems:  # each further output a value of its own, so the walk goes on to the next problems
            others = [self.b.value(math.prod(row_shape(s)), row_shape(s)) for s in out_shapes[1:]]
            return [self.b.refuse(layer.name, cls, "; ".join(problems), width, tuple(inputs), shape=shape), *others]
        try:
            if takes_call(cls, _is_builtin(layer)):
                return [mapping(layer, self.b, inputs, call)]  # type: ignore[call-arg]
            return [mapping(layer, self.b, inputs)]
        except Unsupported as err:
            return [self.b.refuse(layer.name, cls, str(err), width, tuple(inputs), shape=shape)]

    def operation(self, node: Any, values: dict[int, str], inputs: list[str], out_shapes: list[Any]) -> list[str]:
        """An operation node (``x + x_``, ``keras.ops.tanh``...): mapped from its call arguments."""
        op = node.operation
        cls = type(op).__name__
        width = math.prod(row_shape(out_shapes[0])) if out_shapes else 1
        problems = [p for p in map(_rank_problem, out_shapes) if p]
        if len(out_shapes) != 1:
            problems.append(f"{len(out_shapes)} outputs; operations with one output are supported")
        try:
            if problems:
                raise Unsupported("; ".join(problems))
            args = _with_tensors(tuple(node.arguments.args), values)
            return [map_operation(op, self.b, args, _with_tensors(dict(node.arguments.kwargs), values))]
        except Unsupported as err:
            shape = row_shape(out_shapes[0]) if out_shapes else None
            return [self.b.refuse(op.name, cls, str(err), width, tuple(inputs), kind="operation", shape=shape)]

    def walk(self, model: Any, inputs: list[str]) -> list[str]:
        graph = getattr(model, "_functional", None) or model
        if not hasattr(graph, "_nodes_by_depth"):
            reason = "model is not built (no input shape)"
            return [self.b.refuse(model.name, type(model).__name__, reason, 1, tuple(inputs))]
        values = {id(t): v for t, v in zip(graph.inputs, inputs, strict=True)}
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                if node.is_input or not node.operation:
                    continue
                ins = [values[id(t)] for t in node.input_tensors]
                shapes = [t.shape for t in node.outputs]
                if is_operation(node.operation):
                    outs = self.operation(node, values, ins, shapes)
                else:
                    call = _with_tensors((tuple(node.arguments.args), dict(node.arguments.kwargs)), values)
                    outs = self.apply(node.operation, ins, shapes, call)
                for t, v in zip(node.outputs, outs, strict=True):
                    values[id(t)] = v
                    self.origins.setdefault(v, Origin(graph, t, tuple(inputs)))
        return [values[id(t)] for t in graph.outputs]


def _with_tensors(structure: Any, values: dict[int, str]) -> Any:
    """A node's call arguments with each Keras tensor replaced by the ``Tensor`` of its IR value."""
    if id(structure) in values:
        return Tensor(values[id(structure)])
    if isinstance(structure, (list, tuple)):
        return type(structure)(_with_tensors(item, values) for item in structure)
    if isinstance(structure, dict):
        return {key: _with_tensors(item, values) for key, item in structure.items()}
    return structure


@dataclass
class Walked:
    """A walked model: the builder (ops, refusals, problems), its input and output values, and the
    Keras tensor behind each value. ``graph()`` finishes it, or raises listing every problem."""

    builder: Builder
    input: str = ""
    output: str = ""
    origins: dict[str, Origin] = field(default_factory=dict)
    noise: str | None = None
    joined: str | None = None  # a one-input generator: the value (conditions, then noise) fed to the model
    parts: tuple[InputPart, ...] = ()  # several inputs: each one's place in the input row
    split: tuple[tuple[str, int, int], ...] = ()  # the values holding one input as is: (value, offset, width)

    def graph(self) -> Graph:
        return self.builder.finish(self.input, self.output, self.noise, self.parts)


def generator_inputs(b: Builder, model: Any, widths: list[int], noise: int) -> tuple[str, str | None, list[str]]:
    """The IR inputs (conditions, noise or None) and the values fed to the model's Keras inputs.

    A generator either has two inputs, (conditions, noise), or one whose last ``noise`` entries are
    the noise; then the IR concatenates the two in front of the model, so that the C takes conditions
    and noise apart, as a generator with two inputs does.
    """
    cls = type(model).__name__
    if len(widths) == 2:
        if noise and widths[1] != noise:
            b.refuse(model.name, cls, f"noise = {noise}, but the model's second input (the noise) has {widths[1]}", 1)
        x, r = b.value(widths[0]), b.value(widths[1])
        return x, r, [x, r]
    if len(widths) != 1:  # each input still gets its own value, so the walk finds the layers' real problems
        b.refuse(model.name, cls, f"{len(widths)} inputs; one, or two for a generator (conditions, noise)", 1)
        feeds = [b.value(w) for w in widths]
        return feeds[0], None, feeds
    if not noise:
        x = b.value(widths[0])
        return x, None, [x]
    if noise >= widths[0]:
        b.refuse(model.name, cls, f"noise = {noise}, but the model's input has only {widths[0]} entries", 1)
        x = b.value(widths[0])
        return x, None, [x]
    x, r = b.value(widths[0] - noise), b.value(noise)
    return x, r, [b.add(Concatenate, "conditions+noise", [x, r], widths[0])]


def walk_keras(model: Any, source: str, noise: int = 0) -> Walked:
    """Walk a loaded Keras model into IR ops, recording every refused layer in place.

    ``noise`` > 0 makes it a generator whose input ends with that many noise entries; a model with
    two row inputs is a generator (conditions, noise) anyway. Any other model of several inputs takes them
    side by side in one row (``inputs.several_inputs``).
    """
    b = Builder(source)
    walker = KerasWalker(b)
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        b.refuse(model.name, type(model).__name__, "model is not built: give it an Input shape", 1)
        return Walked(b)
    if len(model.outputs) != 1:
        b.refuse(model.name, type(model).__name__, f"{len(model.outputs)} outputs; exactly one is supported", 1)
    for shape in [t.shape for t in model.inputs]:
        problem = _rank_problem(shape)
        if problem:
            b.refuse(model.name, "InputLayer", problem, 1)
    shapes = [row_shape(t.shape) for t in model.inputs]
    if is_several(shapes, bool(noise)):  # one row holding every input side by side
        x, feeds, layout = several_inputs(b, model)
        outputs = walker.walk(model, feeds)
        parts, split = input_parts(b, feeds, layout), split_values(b, feeds, layout)
        return Walked(b, x, outputs[0], walker.origins, parts=parts, split=split)
    if len(shapes) == 1 and len(shapes[0]) > 1 and not noise:  # a tensor: one input, no noise
        x, r = b.value(math.prod(shapes[0]), shapes[0]), None
        feeds = [x]
    else:
        if any(len(shape) > 1 for shape in shapes):
            reason = "a generator takes rows (batch, features), not tensors"
            b.refuse(model.name, "InputLayer", reason, 1)
        x, r, feeds = generator_inputs(b, model, [math.prod(shape) for shape in shapes], noise)
    outputs = walker.walk(model, feeds)
    joined = feeds[0] if r is not None and len(feeds) == 1 else None
    return Walked(b, x, outputs[0], walker.origins, r, joined)
