"""Keras 2 (TF 2 Keras) models that Keras 3 cannot load: ``TFOpLambda`` nodes and SavedModel folders.

TF 2 Keras saves ``x + x_`` on symbolic tensors as a ``TFOpLambda`` layer that names a TensorFlow
function (``tf.__operators__.add``) and stores its call arguments as data. Keras 3 refuses such a
configuration. This module rewrites each accepted ``TFOpLambda`` entry into the Keras 3 operation
node of the same meaning (``tf.math.add`` -> ``keras.src.ops.numpy.Add``, as each operation's
declaration in ``operations.py`` names its TensorFlow functions) - a translation of the stored data,
no stored code runs - so Keras 3 builds the model, the walk maps the nodes like any
operation node, and the generated C is that of the Keras 3 twin.

The parity reference stays with what was saved: TF 2 Keras (``tf_keras``) loading the ``.h5`` file,
or the SavedModel's own serving signature run by TensorFlow.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from exporter.common.errors import ExportError, Problem, UnsupportedModelError
from exporter.frontends.builder import Unsupported
from exporter.frontends.keras.layers import MODEL_CLASSES
from exporter.frontends.keras.operations import BINARY, CONCAT, SLICE, TF_FUNCTIONS, TFFunction
from exporter.frontends.keras.quiet import brief, quiet_stderr
from exporter.frontends.keras.tfscreen import screen_saved_model

TF_OP_LAMBDAS = ("TFOpLambda", "SlicingOpLambda")


def tf_function_reason(function: str) -> str | None:
    """Why a TFOpLambda's function is refused, or None when it has a mapping."""
    if function in TF_FUNCTIONS:
        return None
    return f"TensorFlow function tf.{function} has no C translation (see docs/keras-models.md)"


def _tensor(ref: list[Any]) -> dict[str, Any]:
    """A Keras 3 serialized reference to output ``ref[2]`` of node ``ref[1]`` of layer ``ref[0]``."""
    history = [ref[0], int(ref[1]), int(ref[2])]
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, None], "dtype": "float32", "keras_history": history},
    }


def _argument(value: Any, layers: set[str]) -> Any:
    """A stored argument: a reference ``[layer, node, tensor]`` to a known layer becomes a tensor."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and value[0] in layers:
        return _tensor(value)
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return [_argument(v, layers) for v in value]
    return value


def _slice(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or set(spec) != {"start", "stop", "step"}:
        raise Unsupported(f"index {spec!r}: only slices of the feature axis (x[:, a:b]) are supported")
    return {"class_name": "__slice__", "config": spec}


def _call(node: list[Any], layers: set[str]) -> tuple[Any, dict[str, Any]]:
    """The first positional argument and the keyword arguments of a stored TFOpLambda call: one entry
    ``[layer, node, tensor, kwargs]``, or a list of them when the first argument is a list of tensors."""
    firsts = []
    kwargs: dict[str, Any] = {}
    for name, _node, index_or_value, *rest in [node] if isinstance(node[0], str) else node:
        firsts.append(index_or_value if name == "_CONSTANT_VALUE" else _tensor([name, _node, index_or_value]))
        kwargs = rest[0] if rest else {}
    first = firsts[0] if len(firsts) == 1 else firsts
    kwargs = {k: _argument(v, layers) for k, v in kwargs.items() if not (k == "name" and v is None)}
    return first, kwargs


def _translate_call(fn: TFFunction, node: list[Any], layers: set[str]) -> tuple[list[Any], dict[str, Any]]:
    """The Keras 3 operation's arguments and attributes for one stored call."""
    first, kwargs = _call(node, layers)
    attributes = {attr: kwargs.pop(tf_name, default) for tf_name, attr, default in fn.keras2.keywords}
    form = fn.keras2.form
    if form == CONCAT:
        args = [first if isinstance(first, list) else [first]]
    elif form == SLICE:
        spec = kwargs.pop("slice_spec", None)
        args = [first, [_slice(s) for s in spec] if isinstance(spec, list) else _slice(spec)]
    elif form == BINARY:
        if "y" not in kwargs:
            raise Unsupported("called without its second operand y")
        args = [first, kwargs.pop("y")]
    else:
        args = [first]
    if kwargs:
        raise Unsupported(f"arguments {sorted(kwargs)} are not supported")
    if fn.cls == "Concatenate" and attributes["axis"] is None:
        raise Unsupported("no axis given")
    return args, {k: v for k, v in attributes.items() if v is not None}


def translate_config(config: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """A Keras 2 model configuration with every TFOpLambda entry rewritten as a Keras 3 operation node.

    Nested models are rewritten too. A call that cannot be translated is added to ``problems``.
    """
    inner = config.get("config", {})
    if not isinstance(inner, dict) or "layers" not in inner:
        return config
    layers = {entry.get("name", entry.get("config", {}).get("name")) for entry in inner["layers"]}
    rewritten = []
    for entry in inner["layers"]:
        cls = entry.get("class_name")
        if cls in MODEL_CLASSES:
            entry = translate_config(entry, problems)
        elif cls in TF_OP_LAMBDAS:
            entry = _operation_entry(entry, layers, problems)
        rewritten.append(entry)
    return {**config, "config": {**inner, "layers": rewritten}}


def _operation_entry(entry: dict[str, Any], layers: set[str], problems: list[Problem]) -> dict[str, Any]:
    name = entry.get("name") or entry["config"]["name"]
    function = entry.get("config", {}).get("function", "?")
    fn = TF_FUNCTIONS.get(function)
    if fn is None:  # screened before; kept so a direct call still names it
        problems.append(
            Problem(name, f"{entry['class_name']} tf.{function}", str(tf_function_reason(function)), "operation")
        )
        return entry
    nodes = []
    for node in entry.get("inbound_nodes", []):
        try:
            args, attributes = _translate_call(fn, node, layers)
        except (Unsupported, TypeError, ValueError, KeyError) as err:
            problems.append(Problem(name, f"{entry['class_name']} tf.{function}", str(err), "operation"))
            return entry
        nodes.append({"args": args, "kwargs": {}})
    return {
        "module": f"keras.src.ops.{fn.keras2.module}",
        "class_name": fn.cls,
        "config": {"name": name, **attributes},
        "registered_name": fn.cls,
        "name": name,
        "inbound_nodes": nodes,
    }


def plain_config(value: Any) -> Any:
    """A configuration as SavedModel metadata stores it, with its ``__tuple__`` objects made lists."""
    if isinstance(value, dict):
        if value.get("class_name") == "__tuple__" and "items" in value:
            return [plain_config(v) for v in value["items"]]
        return {k: plain_config(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_config(v) for v in value]
    return value


def has_tf_op_lambda(config: dict[str, Any]) -> bool:
    return any(
        entry.get("class_name") in TF_OP_LAMBDAS
        or (entry.get("class_name") in MODEL_CLASSES and has_tf_op_lambda(entry))
        for entry in config.get("config", {}).get("layers", [])
    )


def build_keras3(keras: Any, config: dict[str, Any], source: str) -> Any:
    """The Keras 3 model of a (translated) Keras 2 configuration, weights not loaded yet."""
    problems: list[Problem] = []
    translated = translate_config(config, problems)
    if problems:
        raise UnsupportedModelError(source, problems)
    cls = keras.Sequential if translated.get("class_name") == "Sequential" else keras.Model
    try:
        with warnings.catch_warnings(), quiet_stderr():  # TensorFlow logs its devices on first use
            warnings.simplefilter("ignore")  # Keras 3 warns about Keras 2 argument names (LeakyReLU's alpha)
            return cls.from_config(translated["config"])
    except Exception as err:  # Keras raises many types for a configuration it cannot rebuild
        raise ExportError(f"{source}: Keras 3 could not rebuild the Keras 2 model: {brief(err)}") from None


# -- SavedModel folders --------------------------------------------------------------------------


def _tensorflow(folder: Path) -> Any:
    try:
        with quiet_stderr():
            import tensorflow as tf
    except ImportError:
        raise ExportError(
            f"{folder}: reading a Keras 2 SavedModel folder needs TensorFlow: pip install tensorflow-cpu "
            "(or pip install 'lamarr-export[tensorflow]')"
        ) from None
    return tf


def is_saved_model(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def saved_model_config(folder: Path) -> dict[str, Any]:
    """The model configuration Keras stored in ``keras_metadata.pb`` (the root object's metadata)."""
    metadata = folder / "keras_metadata.pb"
    if not metadata.is_file():
        raise ExportError(f"{folder}: a SavedModel folder without keras_metadata.pb (not saved by Keras)")
    _tensorflow(folder)
    screen_saved_model(folder)  # before anything else of the folder is read with TensorFlow
    from tensorflow.python.keras.protobuf import saved_metadata_pb2

    saved = saved_metadata_pb2.SavedMetadata()
    try:
        saved.ParseFromString(metadata.read_bytes())
        root = next(json.loads(node.metadata) for node in saved.nodes if node.node_path == "root")
    except (StopIteration, ValueError) as err:
        raise ExportError(f"{folder}: keras_metadata.pb is not readable ({err or 'no root object'})") from None
    config = plain_config(root.get("config", {}))
    return {"class_name": root.get("class_name"), "config": config, "keras_version": root.get("keras_version")}


def load_saved_model_weights(model: Any, folder: Path) -> None:
    """Each layer's weights from ``variables/``, found as TF 2 Keras checkpoints them:
    ``layer_with_weights-<i>/<weight>`` for the i-th layer that has weights."""
    tf = _tensorflow(folder)
    try:
        reader = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
    except (ValueError, tf.errors.OpError) as err:
        raise ExportError(f"{folder}: variables/ is not readable ({brief(err)})") from None
    for i, layer in enumerate(layer for layer in model.layers if layer.weights):
        values = []
        for weight in layer.weights:
            key = f"layer_with_weights-{i}/{weight.name}/.ATTRIBUTES/VARIABLE_VALUE"
            if not reader.has_tensor(key):
                raise ExportError(f"{folder}: variables/ has no {key} for layer {layer.name!r}")
            values.append(reader.get_tensor(key))
        layer.set_weights(values)


def saved_model_reference(folder: Path, input_names: list[str]) -> Callable[..., np.ndarray]:
    """The SavedModel's own serving signature, run by TensorFlow, on float32 rows (and noise rows)."""
    tf = _tensorflow(folder)
    screen_saved_model(folder)  # again, right before TensorFlow loads it: whatever the caller screened
    try:
        with quiet_stderr():
            serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    except (KeyError, ValueError, OSError, tf.errors.OpError) as err:
        raise ExportError(f"{folder}: TensorFlow could not load its serving signature ({brief(err)})") from None
    (output,) = serve.structured_outputs

    def reference(x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        rows = np.asarray(x, dtype=np.float32)
        if noise is not None:
            noise = np.asarray(noise, dtype=np.float32)
            feeds = [rows, noise] if len(input_names) == 2 else [np.concatenate([rows, noise], axis=1)]
        else:
            feeds = [rows]
        result = serve(**{name: tf.constant(v) for name, v in zip(input_names, feeds, strict=True)})
        return np.asarray(result[output].numpy(), dtype=np.float32)

    return reference


def tf_keras_reference(path: Path) -> tuple[Callable[..., np.ndarray], str]:
    """TF 2 Keras' own forward pass of an ``.h5`` file with TFOpLambda nodes."""
    try:
        with quiet_stderr():
            import tf_keras
    except ImportError:
        raise ExportError(
            f"{path}: checking a Keras 2 model with TFOpLambda nodes against TF 2 Keras needs tf-keras: "
            "pip install tf-keras"
        ) from None
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    try:  # safe mode: TF 2 Keras loads an .h5 file's Lambda bytecode unless a scope says otherwise
        with quiet_stderr(), SafeModeScope(True):
            model = tf_keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # TF 2 Keras raises many types for a file it cannot rebuild
        raise ExportError(f"{path}: TF 2 Keras could not load it: {brief(err)}") from None

    def reference(x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        rows: Any = np.asarray(x, dtype=np.float32)
        if noise is not None:
            noise = np.asarray(noise, dtype=np.float32)
            rows = [rows, noise] if len(model.inputs) == 2 else np.concatenate([rows, noise], axis=1)
        return np.asarray(model(rows, training=False).numpy(), dtype=np.float32)

    return reference, f"tf-keras {tf_keras.__version__} (TF 2 Keras, as the file was saved)"
