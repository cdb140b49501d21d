"""An ONNX file read with onnx's own loader and made ready to walk, nothing in it run.

The file is parsed as protobuf (whatever its suffix), its tensors must all be stored inside it (external
data is refused by name: it would make the model read other files), model-local functions are inlined,
onnx's checker validates it, its standard opset must lie between 13 and the newest onnx knows, and its
inputs are given their shapes: the first dimension is the batch (dynamic, or 1), every other one must be
known, or fixed by ``input_shape``. ONNX's shape inference (with data propagation, so that shapes computed
from ``Shape`` reach the reshapes) then gives every tensor's shape. A file that cannot be read so is an
``ExportError`` naming it; what stands in the way of an export (a dynamic dimension, a second output) is
a ``Problem`` of the walk, listed with every refused node at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.common.errors import ExportError, InputError
from exporter.common.escaping import terminal_line
from exporter.frontends.onnx.declare import BATCH

MIN_OPSET = 13
INSTALL = "pip install 'lamarr-export[onnx]'"
MAX_BYTES = 2**31 - 1  # protobuf's own limit for one message
FLOAT, BOOL = 1, 9  # onnx.TensorProto's element types an input may have


def _one_line(err: Exception) -> str:
    """onnx's message on one line (its context follows on lines of its own), escaped and cut short."""
    return terminal_line(" ".join(str(err).split()))[:300]


def require_onnx(what: str) -> Any:
    """The ``onnx`` package, or an ``ExportError`` saying how to install it (and ONNX Runtime)."""
    try:
        import onnx
        import onnxruntime  # noqa: F401 - the reference every export is checked against
    except ImportError as err:
        raise ExportError(f"{what} needs onnx and onnxruntime: {INSTALL} ({err})") from None
    return onnx


@dataclass
class Input:
    """A graph input: its name, its dimensions after the batch (None: dynamic), and what is wrong with it."""

    name: str
    dims: tuple[int | None, ...]
    problems: list[str] = field(default_factory=list)
    bool: bool = False  # a bool tensor (a padding mask): the C reads it as 0/1 floats

    @property
    def fixed(self) -> tuple[int, ...]:
        return tuple(d or 1 for d in self.dims)  # a refused input still gets a width, so the walk goes on


@dataclass
class Prepared:
    """A model ready to walk: ``inferred`` carries every shape; ``runnable`` is what the references run."""

    inferred: Any  # onnx.ModelProto
    runnable: Any  # onnx.ModelProto: the file's model, its inputs' dimensions fixed as the walk reads them
    opsets: dict[str, int]
    inputs: list[Input]
    batch_one: bool  # the batch dimension is 1: the references run one row at a time
    problems: list[str]  # about the model as a whole (its outputs)


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor a graph stores: initializers, sparse ones, node attributes, in its subgraphs too."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        if attribute.HasField("sparse_tensor"):
            yield attribute.sparse_tensor.values
        for graph in [attribute.g, *attribute.graphs] if attribute.HasField("g") else attribute.graphs:
            yield from _tensors(graph)


def _external(model: Any) -> list[str]:
    from onnx.external_data_helper import uses_external_data

    tensors = [*_tensors(model.graph), *(t for f in model.functions for n in f.node for t in _node_tensors(n))]
    return [terminal_line(t.name or "(unnamed)") for t in tensors if uses_external_data(t)]


def parse(model: Any, label: str) -> Any:
    """The ``ModelProto`` of a file (or of an in-memory one, serialized and read back), checked;
    ``ExportError`` naming ``label`` for anything that is not a valid ONNX model."""
    onnx = require_onnx(f"{label}: reading an ONNX model")
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise ExportError(f"{path}: no such ONNX file")
        if path.stat().st_size > MAX_BYTES:
            raise ExportError(f"{path}: larger than 2 GiB, which only external data allows (refused)")
        data = path.read_bytes()
    else:
        data = model.SerializeToString()
    try:
        model = onnx.load_model_from_string(data, format="protobuf")
    except Exception as err:  # protobuf's DecodeError and others, for a truncated or foreign file
        why = f"{type(err).__name__}: {_one_line(err)}"
        raise ExportError(f"{label}: not an ONNX model ({why})") from None
    external = _external(model)
    if external:
        names = ", ".join(external[:5]) + (f" and {len(external) - 5} more" if len(external) > 5 else "")
        raise ExportError(
            f"{label}: tensors stored outside the file (external data: {names}) are refused; "
            "save the model with every tensor inside it (onnx.save(model, path, save_as_external_data=False))"
        )
    if model.functions:
        try:
            import onnx.inliner

            model = onnx.inliner.inline_local_functions(model)
        except Exception as err:
            why = _one_line(err)
            raise ExportError(f"{label}: its local functions cannot be inlined ({why})") from None
    try:
        onnx.checker.check_model(model)
    except Exception as err:  # ValidationError, and the checker's C++ errors
        raise ExportError(f"{label}: onnx's checker refuses it: {_one_line(err)}") from None
    return model


def opsets_of(label: str, model: Any) -> dict[str, int]:
    """The opsets the model imports, by domain (the standard one as ""), its standard one checked."""
    import onnx

    opsets = {("" if imp.domain == "ai.onnx" else imp.domain): int(imp.version) for imp in model.opset_import}
    newest = onnx.defs.onnx_opset_version()
    standard = opsets.get("")
    if standard is None:
        raise ExportError(f"{label}: imports no standard ONNX opset (domain ai.onnx)")
    if not MIN_OPSET <= standard <= newest:
        hint = f"convert it first: onnx.version_converter.convert_version(model, {MIN_OPSET})"
        raise ExportError(
            f"{label}: opset {standard}; opsets {MIN_OPSET} to {newest} are read"
            + (f" ({hint})" if standard < MIN_OPSET else f" (onnx {onnx.__version__} knows up to {newest})")
        )
    return opsets


def _given(shapes: Mapping[str, tuple[int, ...]], names: list[str]) -> dict[str, tuple[int, ...]]:
    """``input_shape`` by input name ("" names the only input), every name checked."""
    given = dict(shapes)
    if "" in given:
        if len(names) != 1:
            why = f"the model has {len(names)} inputs: name one ({', '.join(names)})"
            raise InputError("input_shape", f"{list(given[''])}: {why}")
        given[names[0]] = given.pop("")
    for name, dims in given.items():
        if name not in names:
            raise InputError("input_shape", f"{name}: no input of that name (the inputs: {', '.join(names)})")
        if not dims or any(not isinstance(d, int) or d < 1 for d in dims):
            raise InputError("input_shape", f"{name}={list(dims)}: dimensions after the batch, each at least 1")
    return given


def _input(graph_input: Any, given: tuple[int, ...] | None) -> Input:
    """One input's shape made definite in place: the batch symbolic (or 1), the others known or given."""
    name = graph_input.name
    tensor = graph_input.type.tensor_type
    problems = []
    if graph_input.type.WhichOneof("value") != "tensor_type" or tensor.elem_type not in (FLOAT, BOOL):
        problems.append("is neither a float32 nor a bool tensor; the C function takes float rows (bools as 0/1)")
    if not tensor.HasField("shape") or not tensor.shape.dim:
        problems.append("has no shape (or rank 0); a first dimension, the batch, is needed")
        return Input(name, given or (), problems, tensor.elem_type == BOOL)
    dims = tensor.shape.dim
    batch = dims[0]
    if batch.HasField("dim_value") and batch.dim_value != 1:
        problems.append(f"has a batch dimension of {batch.dim_value}; export it with a dynamic batch, or 1")
    elif not batch.HasField("dim_value"):
        batch.dim_param = BATCH
    if given is not None:
        known = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
        if len(given) != len(known) or any(k is not None and k != g for k, g in zip(known, given, strict=False)):
            shape = ", ".join("?" if k is None else str(k) for k in known)
            raise InputError("input_shape", f"{name}={list(given)} does not fit its shape [batch, {shape}]")
        for d, value in zip(dims[1:], given, strict=True):
            d.dim_value = value
    out = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims[1:])
    dynamic = [k + 1 for k, d in enumerate(out) if d is None]
    if dynamic:
        problems.append(
            f"has dynamic dimensions {dynamic} besides the batch; fix them with --input-shape "
            f"{name}={','.join('D' if d is None else str(d) for d in out)} (a manifest's input_shape)"
        )
    return Input(name, out, problems, tensor.elem_type == BOOL)


def prepare(model: Any, input_shape: Mapping[str, tuple[int, ...]], source: str) -> Prepared:
    """Read, check and shape a file or a ``ModelProto`` (``input_shape``: the dimensions after the batch of
    inputs, by name; "" the only input)."""
    import onnx

    label = str(model) if isinstance(model, (str, os.PathLike)) else source
    model = parse(model, label)
    opsets = opsets_of(label, model)
    initialized = {t.name for t in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initialized]
    given = _given(input_shape, [i.name for i in graph_inputs])
    inputs = [_input(i, given.get(i.name)) for i in graph_inputs]
    problems = []
    if len(model.graph.output) != 1:
        problems.append(f"{len(model.graph.output)} outputs; exactly one is supported")
    elif model.graph.output[0].type.tensor_type.elem_type != 1:
        problems.append("its output is not a float32 tensor")
    shapes = [i.type.tensor_type.shape.dim for i in graph_inputs]
    batch_one = any(dims and dims[0].HasField("dim_value") for dims in shapes)  # 1, or refused
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]  # the file's own shapes are hints at best: every one inferred afresh
    try:
        inferred = onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=False, data_prop=True)
    except Exception as err:  # InferenceError: shapes or types that contradict each other
        raise ExportError(f"{label}: ONNX's shape inference fails: {_one_line(err)}") from None
    return Prepared(inferred, model, opsets, inputs, batch_one, problems)
