"""The screen a SavedModel folder passes before TensorFlow loads or runs any of it.

Why: the parity reference of a SavedModel is its own serving signature, run by TensorFlow, and
loading a SavedModel may run functions of its own (restore functions, resource initializers). A
downloaded SavedModel is a program: a ``WriteFile`` or ``py_function`` op in its graph does what
its author wants. So ``saved_model.pb`` is read as data first (protobuf parsing runs nothing), and
every op type in it is checked against an allow-list of ops that compute with tensors and the
model's own variables in memory: no file, network, process or Python access, no op of a library
the allow-list does not name (custom op libraries included). Anything else is refused by op name.

What TensorFlow 2 loads: one MetaGraph with an object graph (``tf.saved_model.load``'s TF 2
path; a TF 1 SavedModel would run its graph's restore and init ops, so it is refused). Every
function of its library may be called (the object graph can name any of them as a restore
function or initializer), so every one is screened, and every node of the graph itself. The one
exception is the checkpoint pair the saver writes into every SavedModel (``saver_def``:
``__inference__traced_save``/``_restore``, with ``SaveV2``, ``RestoreV2``...): TensorFlow 2's
loader never runs it (it restores variables with ops of its own, from ``variables/``), so it is
admitted when it holds checkpoint ops only and nothing else in the file refers to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from exporter.common.errors import ExportError

# Ops that compute tensors from tensors and the model's own variables, in memory. Deliberately
# small: what TF 2 Keras writes for the layers and TFOpLambda functions the exporter supports, in
# inference and training branches (Dropout's random mask, BatchNormalization's moving averages),
# plus their close relatives. Principle: an op belongs here only if it can touch nothing outside
# the process's tensors (no strings, files, queues, datasets, devices, Python or custom kernels).
ALLOWED = frozenset(
    """
    Const Identity IdentityN NoOp Placeholder PlaceholderWithDefault StopGradient PreventGradient
    PartitionedCall StatefulPartitionedCall
    VarHandleOp ReadVariableOp AssignVariableOp AssignAddVariableOp AssignSubVariableOp VarIsInitializedOp
    Abs Add AddV2 AddN Sub Mul MulNoNan RealDiv Div DivNoNan FloorDiv FloorMod Neg Reciprocal Inv Sign
    Maximum Minimum ClipByValue Exp Expm1 Log Log1p Sqrt Rsqrt Square SquaredDifference Pow
    Tanh Sigmoid Erf Erfc Floor Ceil Round Rint Sin Cos
    Relu Relu6 Elu Selu LeakyRelu Softplus Softsign Softmax LogSoftmax BiasAdd MatMul BatchMatMulV2
    FusedBatchNormV3
    Greater GreaterEqual Less LessEqual Equal NotEqual LogicalAnd LogicalOr LogicalNot IsNan IsFinite IsInf
    Select SelectV2 Cast
    Mean Sum Max Min Prod ArgMax ArgMin
    ConcatV2 Concat Reshape Shape ShapeN Size Rank Squeeze ExpandDims StridedSlice Slice Pack Unpack
    Fill ZerosLike OnesLike Tile Transpose GatherV2 Range BroadcastTo BroadcastArgs Split SplitV
    RandomUniform RandomStandardNormal StatelessRandomUniformV2 StatelessRandomGetKeyCounter
    """.split()
)
# The saver's own checkpoint functions (see the module's docstring): admitted there only.
CHECKPOINT = ALLOWED | {
    "SaveV2",
    "RestoreV2",
    "MergeV2Checkpoints",
    "ShardedFilename",
    "StringJoin",
    "StaticRegexFullMatch",
    "DisableCopyOnRead",
}
# Why some refused ops are refused, for the message (any op not in ALLOWED is refused).
KINDS = {
    "calls Python (tf.py_function / tf.numpy_function)": ("PyFunc", "PyFuncStateless", "EagerPyFunc"),
    "reads or writes files": tuple(
        """WriteFile ReadFile MatchingFiles SaveV2 Save SaveSlices RestoreV2 Restore RestoreSlice MergeV2Checkpoints
        ShardedFilename DeleteFile WriteSummary InitializeTableFromTextFileV2 ImmutableConst""".split()
    ),
}


def _why(op: str) -> str:
    for reason, ops in KINDS.items():
        if op in ops:
            return reason
    return "not on the exporter's allow-list of pure tensor math"


def _functions_named(attrs: Any) -> Iterator[str]:
    """The functions a node's attributes name (``f`` of a call, branches and bodies of control flow), and
    those named in their own attributes in turn."""
    for value in attrs.values():
        functions = [value.func] if value.HasField("func") else []
        functions += list(value.list.func) if value.HasField("list") else []
        for function in functions:
            yield function.name
            yield from _functions_named(function.attr)


def _object_graph_functions(object_graph: Any) -> set[str]:
    """Every function the object graph hands to the loader (methods, restore functions, initializers)."""
    names = set(object_graph.concrete_functions)
    for node in object_graph.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            names.update(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            names.add(node.bare_concrete_function.concrete_function_name)
    return names


def _node_name(tensor: str) -> str:
    return tensor.split(":", 1)[0].lstrip("^")


def _checkpoint_functions(meta_graph: Any) -> tuple[set[str], set[str]]:
    """The saver's nodes in the graph and the functions they call (the checkpoint pair)."""
    saver = meta_graph.saver_def
    nodes = {_node_name(name) for name in (saver.save_tensor_name, saver.restore_op_name) if name}
    functions = {f for node in meta_graph.graph_def.node if node.name in nodes for f in _functions_named(node.attr)}
    return nodes, functions


def _refusals(where: str, nodes: Iterable[Any], allowed: frozenset[str] | set[str], library: set[str],
              forbidden: set[str]) -> Iterator[tuple[str, str, str]]:  # fmt: skip
    """(op, where, why) for each node whose op is not allowed, or that calls a function it may not."""
    for node in nodes:
        calls = set(_functions_named(node.attr))
        if node.op in library:  # a function called as an op type
            calls.add(node.op)
        elif node.op not in allowed:
            yield node.op, where, _why(node.op)
        for name in calls - library:
            yield name, where, "a function the SavedModel does not define"
        for name in calls & forbidden:
            yield name, where, "the saver's checkpoint function, called from the model's graph"


def screen_meta_graphs(saved_model: Any, source: str) -> None:
    """Raise ``ExportError`` naming every refused op (and the function holding it) of a parsed SavedModel."""
    graphs = list(saved_model.meta_graphs)
    if len(graphs) != 1 or not graphs[0].HasField("object_graph_def"):
        raise ExportError(
            f"{source}: not a TensorFlow 2 SavedModel (one MetaGraph with an object graph, as TF 2 Keras saves): "
            "loading another would run ops of its graph"
        )
    (meta_graph,) = graphs
    library = {f.signature.name: f for f in meta_graph.graph_def.library.function}
    saver_nodes, checkpoint = _checkpoint_functions(meta_graph)
    names = set(library)
    found = list(_refusals("the graph", (n for n in meta_graph.graph_def.node if n.name not in saver_nodes),
                           ALLOWED, names, checkpoint))  # fmt: skip
    for name, function in library.items():
        allowed = CHECKPOINT if name in checkpoint else ALLOWED
        found += _refusals(f"function {name}", function.node_def, allowed, names, checkpoint - {name})
    for name in checkpoint & _object_graph_functions(meta_graph.object_graph_def):
        found.append((name, "the object graph", "the saver's checkpoint function, named for the loader to call"))
    if found:
        ops = sorted({op for op, _, _ in found})
        op, where, why = found[0]
        more = f" (refused ops: {', '.join(ops[:8])}{' ...' if len(ops) > 8 else ''})" if len(ops) > 1 else ""
        raise ExportError(
            f"{source}: refused before TensorFlow loads it: {where} runs {op} ({why}){more}; "
            "a SavedModel may hold pure tensor math only"
        )


def screen_saved_model(folder: Path) -> None:
    """Screen ``folder/saved_model.pb`` (see the module's docstring); TensorFlow's protobuf classes parse it,
    which imports TensorFlow (the SavedModel path needs it anyway) but runs nothing of the file."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    parsed = saved_model_pb2.SavedModel()
    try:
        parsed.ParseFromString((folder / "saved_model.pb").read_bytes())
    except (OSError, DecodeError) as err:
        raise ExportError(f"{folder}: saved_model.pb is not readable ({err.__class__.__name__})") from None
    screen_meta_graphs(parsed, str(folder))
