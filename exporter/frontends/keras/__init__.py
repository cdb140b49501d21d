"""Keras frontend: ``.keras`` (Keras 3) and legacy ``.h5`` files, or a live ``keras.Model``.

Files are screened from their stored configuration first, without importing Keras:
a model with custom or unsupported layers (which Keras itself may refuse to load, e.g.
a ``Lambda`` under safe mode) is reported layer by layer, and fast.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import sys
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from exporter.common import interrupt
from exporter.common.errors import ExportError, Problem, UnsupportedModelError
from exporter.frontends.builder import Unsupported
from exporter.frontends.keras import keras2
from exporter.frontends.keras.activations import keras_activation
from exporter.frontends.keras.backend import INSTALL, OPTIONAL, choose_backend, require_keras
from exporter.frontends.keras.declared import check_declared
from exporter.frontends.keras.float64 import keras_reference64
from exporter.frontends.keras.intermediates import KerasIntermediates
from exporter.frontends.keras.keras2 import TF_OP_LAMBDAS, tf_function_reason
from exporter.frontends.keras.layers import CUSTOM, LAYERS
from exporter.frontends.keras.operations import operation_reason
from exporter.frontends.keras.quiet import brief, quiet_stderr
from exporter.frontends.keras.stored import NotStored, walk_stored
from exporter.frontends.keras.walk import refusal_reason, walk_keras
from exporter.frontends.lean_imports import without_optional_imports
from exporter.frontends.loaded import LoadedModel

MODEL_CLASSES = {"Functional", "Sequential", "Model"}
SUFFIXES = (".keras", ".h5", ".hdf5")


def _stored_config(path: Path) -> dict[str, Any]:
    """The model configuration as saved in the file, read without Keras."""
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        try:
            import h5py
        except ImportError:
            raise ExportError(f"{path}: reading an HDF5 file needs h5py: pip install h5py") from None

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                raise ExportError(f"{path}: HDF5 file holds weights only, no model configuration")
            return json.loads(raw)
    except ExportError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise ExportError(f"{path}: not a readable Keras model file ({err})") from None


@dataclass(frozen=True)
class StoredLayer:
    """One layer as the file's stored configuration names it, and why it is refused (if it is).

    ``by_class``: refused for its class alone, which Keras itself may be unable to load; such a file
    is refused from its configuration, before Keras is imported. The model itself is a row too when
    its number of inputs or outputs is refused, so that every problem is listed at once.
    """

    name: str
    cls: str
    problem: Problem | None
    by_class: bool = False


def _activation_problem(entry: dict[str, Any]) -> str | None:
    """An activation the configuration names and the exporter has no mapping for (a string or a custom function)."""
    stored = entry.get("config", {}).get("activation")
    if stored is None:
        return None
    name = stored.get("config") if isinstance(stored, dict) else stored  # a function stored with its module
    if isinstance(stored, dict) and not str(stored.get("module", "")).startswith("keras"):
        return f"activation {name!r} is not supported"
    try:
        keras_activation(str(name))
    except Unsupported as err:
        return str(err)
    return None


def _count(refs: Any) -> int:
    """How many tensors ``input_layers`` / ``output_layers`` name: one ``[name, 0, 0]`` or a list of them."""
    return 1 if not refs or isinstance(refs[0], str) else len(refs)


def _model_problems(config: dict[str, Any]) -> list[StoredLayer]:
    """The model's own refusals, with the walk's wording: more than two inputs, or not one output."""
    cls, inner = config.get("class_name", "?"), config.get("config", {})
    name = inner.get("name", "model")
    n_in, n_out = _count(inner.get("input_layers")), _count(inner.get("output_layers"))
    reasons = [f"{n_in} inputs; one, or two for a generator (conditions, noise)"] if n_in > 2 else []
    reasons += [f"{n_out} outputs; exactly one is supported"] if n_out != 1 else []
    return [StoredLayer(name, cls, Problem(name, cls, reason)) for reason in reasons]


def stored_layers(config: dict[str, Any], prefix: str = "") -> list[StoredLayer]:
    """Every stored layer, nested models' layers included (named ``outer/inner``), each screened by its
    class and its activation, after the model's own problems."""
    layers: list[StoredLayer] = [] if prefix else _model_problems(config)
    for entry in config.get("config", {}).get("layers", []):
        cls = entry.get("class_name", "?")
        name = entry.get("config", {}).get("name", entry.get("name", "?"))
        if cls in MODEL_CLASSES:
            layers += stored_layers(entry, f"{prefix}{name}/")
        elif cls in TF_OP_LAMBDAS:
            label = f"{cls} tf.{entry.get('config', {}).get('function', '?')}"
            layers.append(_stored(prefix, name, label, _screen(entry, name, cls), entry))
        elif cls != "InputLayer":
            layers.append(_stored(prefix, name, cls, _screen(entry, name, cls), entry))
    return layers


def _stored(prefix: str, name: str, cls: str, refused: Problem | None, entry: dict[str, Any]) -> StoredLayer:
    """A stored layer with every reason it is refused: its class's (``by_class``) and its activation's."""
    activation = _activation_problem(entry)
    problem = refused
    if activation is not None and refused is not None:
        problem = replace(refused, reason=f"{refused.reason}; {activation}")
    elif activation is not None:
        problem = Problem(name, cls, activation)
    return StoredLayer(prefix + name, cls, problem, refused is not None)


def refused_from_config(layers: list[StoredLayer]) -> bool:
    """Whether the configuration alone refuses the model (a layer refused by its class): Keras is not loaded."""
    return any(layer.by_class for layer in layers)


def _screen(entry: dict[str, Any], name: str, cls: str) -> Problem | None:
    """Why a stored layer or operation node is refused by its class alone, or None."""
    module = entry.get("module") or "keras.layers"
    if module.startswith("keras.src.ops."):
        reason = operation_reason(cls)
        return Problem(name, cls, reason, "operation") if reason else None
    if cls in TF_OP_LAMBDAS:
        function = entry.get("config", {}).get("function", "?")
        reason = tf_function_reason(function)
        return Problem(name, f"{cls} tf.{function}", reason, "operation") if reason else None
    builtin = module.startswith("keras") and not entry.get("registered_name")
    known = (builtin or cls in CUSTOM) and cls in LAYERS  # CUSTOM: register_layer
    return None if known else Problem(name, cls, refusal_reason(cls, builtin))


def _import_keras() -> Any:
    """Keras, imported on the backend ``choose_backend`` names, without its unused integrations."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if "keras" in sys.modules:
            import keras
        else:
            choose_backend()
            with interrupt.deferred(), quiet_stderr(), without_optional_imports(OPTIONAL):
                import keras

                keras.ops.convert_to_tensor(0.0)  # the backend logs once more on first use
    except ImportError as err:
        raise ExportError(f"reading Keras models needs Keras 3 and a backend: {INSTALL} ({err})") from None
    return keras


def read_stored_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The stored configuration of a model file (or Keras 2 SavedModel folder), after checking it is one;
    no Keras import (a SavedModel's metadata needs TensorFlow's protobuf classes)."""
    path = Path(path)
    if path.is_dir():
        if not keras2.is_saved_model(path):
            raise ExportError(f"{path}: a folder, but not a SavedModel (no saved_model.pb)")
        config = keras2.saved_model_config(path)
    elif not path.is_file():
        raise ExportError(f"{path}: no such model file")
    elif path.suffix not in SUFFIXES:
        raise ExportError(f"{path}: expected a Keras model file ({', '.join(SUFFIXES)}) or SavedModel folder")
    else:
        config = _stored_config(path)
    if config.get("class_name") not in MODEL_CLASSES:
        raise ExportError(f"{path}: stores a {config.get('class_name')!r}, not a Keras model")
    return config


def saved_version(path: Path, config: dict[str, Any]) -> str:
    """The Keras version that saved a model file (``.keras`` metadata.json, ``.h5`` attributes, a SavedModel's
    Keras metadata), else the installed one, saying which; "" when neither is known. Reads no weights."""
    version = config.get("keras_version")  # a SavedModel's, read with its configuration
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                version = json.loads(archive.read("metadata.json")).get("keras_version")
        elif path.is_file():
            import h5py

            with h5py.File(path, "r") as f:
                version = f.attrs.get("keras_version")
    except (OSError, KeyError, ValueError, ImportError, zipfile.BadZipFile):
        version = None
    if version:
        return f"{version.decode() if isinstance(version, bytes) else version} (saved the file)"
    try:
        return f"{importlib.metadata.version('keras')} (installed; the file does not say)"
    except importlib.metadata.PackageNotFoundError:
        return ""


def load_keras_file(path: str | os.PathLike[str]) -> Any:
    """Load a model file with Keras (``compile=False``, safe mode) after screening its layers.

    A Keras 2 model that Keras 3 cannot load (``TFOpLambda`` nodes, a SavedModel folder) is rebuilt
    from its translated configuration and given its stored weights (see ``keras2``).
    """
    path = Path(path)
    config = read_stored_config(path)
    layers = stored_layers(config)
    if refused_from_config(layers):
        raise UnsupportedModelError(path.name, [layer.problem for layer in layers if layer.problem])
    check_declared(path, config)  # Keras allocates what the configuration declares before it reads the weights
    keras = _import_keras()
    try:
        if keras2.is_saved_model(path):
            model = keras2.build_keras3(keras, config, path.name)
            keras2.load_saved_model_weights(model, path)
            return model
        if keras2.has_tf_op_lambda(config):
            model = keras2.build_keras3(keras, config, path.name)
            model.load_weights(path)
            return model
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ExportError:
        raise
    except Exception as err:  # Keras raises many types for a damaged file
        raise ExportError(f"{path}: Keras could not load it: {brief(err)}") from None


def file_reference(path: Path, model: Any) -> tuple[Any, str] | None:
    """The forward pass of what was saved and its label, when Keras 3 did not load the file itself:
    the serving signature of a SavedModel folder, TF 2 Keras for an ``.h5`` file with TFOpLambda nodes."""
    if keras2.is_saved_model(path):
        import tensorflow as tf

        names = [layer.name for layer in getattr(model, "_input_layers", [])] or [t.name for t in model.inputs]
        return keras2.saved_model_reference(path, names), f"SavedModel serving signature, TensorFlow {tf.__version__}"
    if path.suffix != ".keras" and keras2.has_tf_op_lambda(read_stored_config(path)):
        return keras2.tf_keras_reference(path)
    return None


def keras_reference(model: Any) -> Any:
    """The model's own float32 forward pass, in inference mode, on numpy rows.

    A generator also takes its noise rows: as its second input, or appended to the conditions
    when it has one input.
    """
    import keras

    as_list = isinstance(getattr(model, "_inputs_struct", None), (list, tuple))  # Model(inputs=[x], ...)

    def reference(x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        rows: Any = np.asarray(x, dtype=np.float32)
        if noise is not None:
            noise = np.asarray(noise, dtype=np.float32)
            rows = [rows, noise] if len(model.inputs) == 2 else np.concatenate([rows, noise], axis=1)
        with np.errstate(all="ignore"):  # numpy backend: exp overflows on edge rows, to inf as the C does
            out = model([rows] if as_list and not isinstance(rows, list) else rows, training=False)
        if isinstance(out, (list, tuple)):
            (out,) = out
        return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)

    return reference


def source_name(model: Any) -> str:
    """How generated files and messages name a model: the file's name (never its path), or the live model's."""
    return Path(model).name if isinstance(model, (str, os.PathLike)) else f"{model.name} (in memory)"


def load_keras(model: Any, noise: int = 0) -> LoadedModel:
    """A Keras model (file path or live ``keras.Model``) as IR plus its reference forward pass.

    ``noise`` > 0: a generator whose one input ends with that many noise entries (see ``walk_keras``).
    A ``.keras`` file is walked from what it stores, when it can be (``stored``): Keras is then
    imported only when the reference is first computed, while the C compiles.
    """
    source = source_name(model)
    saved = None
    if isinstance(model, (str, os.PathLike)):
        # refused before any reading: Keras computes the reference and the reference rows, even with --no-check
        require_keras(f"{source}: exporting a Keras model (Keras computes the reference the C is checked against)")
        path = Path(model)
        try:
            return _load_stored(path, source, noise)
        except NotStored:
            pass
        model = load_keras_file(path)
        saved = file_reference(path, model)
    _import_keras()  # imported already for a live model or a loaded file: on the backend _version_label names
    walked = walk_keras(model, source, noise)
    return LoadedModel(
        graph=walked.graph(),
        reference=saved[0] if saved else keras_reference(model),
        framework="Keras",
        framework_version=saved[1] if saved else _version_label(),
        intermediates=KerasIntermediates(walked.input, walked.origins, walked.noise, walked.joined),
        # what was saved (a SavedModel's signature, TF 2 Keras) has no float64 twin: judged by the fixed rule
        reference64=None if saved else keras_reference64(model),
    )


def stored_walk(path: Path, source: str, noise: int = 0, config: dict[str, Any] | None = None) -> Any:
    """The walk of a ``.keras`` file from its stored configuration (``config``, when read already) and weights;
    ``NotStored`` when Keras must load it (another format, a refused layer: the loaded model's walk words the
    refusals)."""
    if path.suffix != ".keras" or not path.is_file():
        raise NotStored("not a .keras file")
    config = read_stored_config(path) if config is None else config
    if any(layer.problem for layer in stored_layers(config)):
        raise NotStored("refused layers")
    check_declared(path, config)  # what Keras will build later (the reference) must be what the walk reads
    return walk_stored(path, config, source, noise)


def _load_stored(path: Path, source: str, noise: int) -> LoadedModel:
    graph = stored_walk(path, source, noise).graph()
    later = KerasLater(path, source, noise, graph)
    return LoadedModel(
        graph, later.reference, "Keras", _version_label(), intermediates=later, reference64=later.reference64
    )


def _version_label() -> str:
    """``3.15.1 (numpy backend)``, as the loaded Keras would say it, without importing Keras."""
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        return f"{keras.__version__} ({keras.backend.backend()} backend)"
    try:
        version = importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:  # importable without its metadata (a source checkout)
        version = "?"
    return f"{version} ({choose_backend()} backend)"


class KerasLater:
    """The Keras side of a model walked from its file: loaded on first use (the reference rows, the
    trace), which comes while the C compiles. Its intermediates are those of the loaded model's
    walk, which must name the IR values as the stored walk did."""

    def __init__(self, path: Path, source: str, noise: int, graph: Any):
        self.path, self.source, self.noise, self.graph = path, source, noise, graph

    @functools.cached_property
    def model(self) -> Any:
        return load_keras_file(self.path)

    @functools.cached_property
    def _reference(self) -> Any:
        return keras_reference(self.model)

    def reference(self, x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        return self._reference(x, noise)

    @functools.cached_property
    def _reference64(self) -> Any:
        return keras_reference64(self.model, read_stored_config(self.path))

    def reference64(self, x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        return self._reference64(x, noise)

    @functools.cached_property
    def _intermediates(self) -> KerasIntermediates:
        walked = walk_keras(self.model, self.source, self.noise)
        if not walked.graph().same_as(self.graph):
            raise ExportError(f"{self.source}: the loaded model walks into other IR than its stored configuration")
        return KerasIntermediates(walked.input, walked.origins, walked.noise, walked.joined)

    def knows(self, value: str) -> bool:
        return self._intermediates.knows(value)

    def __call__(self, values: list[str], rows: np.ndarray, *noise: np.ndarray) -> dict[str, np.ndarray]:
        return self._intermediates(values, rows, *noise)
