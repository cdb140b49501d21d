"""A Keras model file's stored configuration, read and screened layer by layer without importing Keras.

Why: a model with custom or unsupported layers (which Keras itself may refuse to load, e.g. a
``Lambda`` under safe mode) is reported layer by layer, and fast, before Keras is imported; and
``inspect`` lists such a model from its configuration alone.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import reprlib
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from exporter.common.errors import ExportError, Problem
from exporter.frontends.builder import Unsupported
from exporter.frontends.keras import keras2
from exporter.frontends.keras.activations import keras_activation
from exporter.frontends.keras.keras2 import TF_OP_LAMBDAS, tf_function_reason
from exporter.frontends.keras.layers import MODEL_CLASSES, layer_mapping
from exporter.frontends.keras.operations import operation_reason
from exporter.frontends.keras.walk import refusal_reason

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
class ScreenedLayer:
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


def _model_problems(config: dict[str, Any]) -> list[ScreenedLayer]:
    """The model's own refusals, with the walk's wording: more than two inputs, or not one output."""
    cls, inner = config.get("class_name", "?"), config.get("config", {})
    name = inner.get("name", "model")
    n_in, n_out = _count(inner.get("input_layers")), _count(inner.get("output_layers"))
    reasons = [f"{n_in} inputs; one, or two for a generator (conditions, noise)"] if n_in > 2 else []
    reasons += [f"{n_out} outputs; exactly one is supported"] if n_out != 1 else []
    return [ScreenedLayer(name, cls, Problem(name, cls, reason)) for reason in reasons]


def stored_layers(config: dict[str, Any], prefix: str = "") -> list[ScreenedLayer]:
    """Every stored layer, nested models' layers included (named ``outer/inner``), each screened by its
    class and its activation, after the model's own problems."""
    layers: list[ScreenedLayer] = [] if prefix else _model_problems(config)
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


def _stored(prefix: str, name: str, cls: str, refused: Problem | None, entry: dict[str, Any]) -> ScreenedLayer:
    """A stored layer with every reason it is refused: its class's (``by_class``) and its activation's."""
    activation = _activation_problem(entry)
    problem = refused
    if activation is not None and refused is not None:
        problem = replace(refused, reason=f"{refused.reason}; {activation}")
    elif activation is not None:
        problem = Problem(name, cls, activation)
    return ScreenedLayer(prefix + name, cls, problem, refused is not None)


def refused_from_config(layers: list[ScreenedLayer]) -> bool:
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
    known = layer_mapping(cls, builtin) is not None
    return None if known else Problem(name, cls, refusal_reason(cls, builtin))


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
    if not isinstance(config, dict) or config.get("class_name") not in MODEL_CLASSES:
        what = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise ExportError(f"{path}: stores a {what!r}, not a Keras model")
    if problem := _malformed(config):
        raise ExportError(f"{path}: malformed model configuration: {problem}")
    return config


_TEXT_FIELDS = (("class_name", False), ("module", True), ("registered_name", True))


def _malformed(model: dict[str, Any], prefix: str = "") -> str | None:
    """The first field of the configuration's layer list that is not of the kind Keras writes (a layer's class and
    name as text, its config an object), or None: the screening and the walk read these before Keras does, so a
    crafted file is refused here by name rather than failing deep inside either."""
    inner = model.get("config", {})
    if not isinstance(inner, dict):
        return f"{prefix or 'the model'}: 'config' is {type(inner).__name__}, expected an object"
    layers = inner.get("layers", [])
    if not isinstance(layers, list):
        return f"{prefix or 'the model'}: 'layers' is {type(layers).__name__}, expected a list"
    for number, entry in enumerate(layers):
        where = f"{prefix}layer #{number}"
        if not isinstance(entry, dict):
            return f"{where} is {type(entry).__name__}, expected an object"
        for field, optional in _TEXT_FIELDS:
            value = entry.get(field)
            if not isinstance(value, str) and not (optional and value is None):
                return f"{where}: {field!r} is {reprlib.repr(value)}, expected text"
        config = entry.get("config", {})
        if not isinstance(config, dict):
            return f"{where} ({entry['class_name']}): 'config' is {type(config).__name__}, expected an object"
        name = config.get("name", entry.get("name", "?"))
        if not isinstance(name, str):
            return f"{where} ({entry['class_name']}): 'name' is {reprlib.repr(name)}, expected text"
        if entry["class_name"] in MODEL_CLASSES and (problem := _malformed(entry, f"{prefix}{name}/")):
            return problem
    return None


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
