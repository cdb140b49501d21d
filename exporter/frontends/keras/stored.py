"""A Keras 3 ``.keras`` file walked into IR from its stored configuration and weights, without Keras.

Why: importing Keras and its backend takes about a second, and the IR needs only what the file
stores. With the IR known at once, the C compiles while Keras loads for the reference, and
``inspect`` needs no framework. Stored layers go through the very mappings live layers do
(``layers.py``, ``operations.py``), behind a stand-in answering the attribute reads they make from
the layer's configuration and its stored variables (placed by the names the layer's declaration
gives them), and in the order Keras' own walk visits them (``keras_order``), so both give the same
IR, value names included.

This is a fast path, not a second frontend: whatever it is not sure of (nested or subclassed
models, custom layers, a layer whose variables it cannot place, a constant it cannot read, any
refusal) makes ``walk_stored`` raise ``NotStored``, and the caller loads the model with Keras, whose walk
gives the authoritative IR and messages. The parity check then compares the C with Keras anyway.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.layers import MODEL_CLASSES, Mapping, layer_mapping, stored_variables
from exporter.frontends.keras.operations import Tensor, map_operation
from exporter.frontends.keras.walk import Walked, generator_inputs

Key = tuple[str, int]  # (layer name, index of its call in the configuration)

# a subclassed Model has no configuration of its layers to walk: Keras builds it
WALKABLE = MODEL_CLASSES - {"Model"}


class NotStored(Exception):
    """The stored file holds something this fast path does not read: Keras loads the model instead."""


class StoredStandIn:
    """A stored layer or operation as the mappings see a live one: its variables, then its configuration,
    as attributes. ``stored_class`` gives it the class name and module Keras would."""

    def __init__(self, name: str, config: dict[str, Any], variables: dict[str, np.ndarray]):
        self.name = name
        self._config = config
        self._variables = variables

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        if attribute in self._variables:
            return self._variables[attribute]
        if attribute in self._config:
            return self._config[attribute]
        raise AttributeError(f"{type(self).__name__} {self.name!r} stores no {attribute!r}")


_CLASSES: dict[tuple[str, str], type[StoredStandIn]] = {}


def stored_class(module: str, name: str) -> type[StoredStandIn]:
    """A subclass named and placed like the Keras class, since mappings and refusals go by class and module."""
    key = (module, name)
    if key not in _CLASSES:
        _CLASSES[key] = type(name, (StoredStandIn,), {"__module__": module})
    return _CLASSES[key]


def snake_case(name: str) -> str:
    """Keras' name for a class in the weights file (``BatchNormalization`` -> ``batch_normalization``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def read_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """Every top-level layer's stored variables, by its name in the weights file."""
    try:
        import h5py
    except ImportError:
        raise NotStored("its weights are read with h5py, which is not installed (pip install h5py)") from None

    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(data), "r") as f:
        layers = f.get("layers")
        if layers is None:
            raise NotStored("no layers group in model.weights.h5")
        out: dict[str, list[np.ndarray]] = {}
        for name, group in layers.items():
            variables = group.get("vars", {})
            out[name] = [np.asarray(variables[str(i)]) for i in range(len(variables))]
            if "layers" in group:
                raise NotStored(f"{name} holds layers of its own")
    return out


def _is_operation(entry: dict[str, Any]) -> bool:
    return str(entry.get("module", "")).startswith("keras.src.ops.")


def weights_names(entries: list[dict[str, Any]]) -> dict[str, str]:
    """Each layer's name in the weights file: its class in snake case, numbered by order (as Keras saves)."""
    used: dict[str, int] = {}
    names: dict[str, str] = {}
    for entry in entries:
        base = snake_case(entry["class_name"])
        used[base] = used.get(base, -1) + 1
        names[entry["name"]] = base if used[base] == 0 else f"{base}_{used[base]}"
    return names


def _layer(entry: dict[str, Any], stored: list[np.ndarray]) -> StoredStandIn:
    cls, config = entry["class_name"], entry.get("config", {})
    names = stored_variables(cls, config)
    if len(names) != len(stored):
        raise NotStored(f"{entry['name']}: {len(stored)} stored variables, expected {len(names)}")
    return stored_class(entry.get("module", ""), cls)(entry["name"], config, dict(zip(names, stored, strict=True)))


Ref = tuple[str, int, int]  # a stored tensor: (layer name, call, output)


def _arguments(structure: Any, values: dict[Ref, str], widths: dict[str, int], refs: list[Ref]) -> Any:
    """A call's stored arguments with each tensor replaced by the ``Tensor`` of its IR value (its
    reference appended to ``refs``, in Keras' flattening order); plain JSON constants stay as they are.
    A tensor's stored shape must be (batch, width), and that width the IR value's."""
    if isinstance(structure, dict):
        if structure.get("class_name") == "__keras_tensor__":
            stored = structure["config"]
            name, call, output = stored["keras_history"]
            ref, shape = (str(name), int(call), int(output)), stored.get("shape")
            if output != 0 or (shape is not None and (len(shape) != 2 or shape[-1] is None)):
                raise NotStored(f"tensor {ref} of shape {shape}")
            refs.append(ref)
            if ref not in values:
                return None
            if shape is not None and widths[values[ref]] != shape[-1]:
                raise NotStored(f"tensor {ref}: stored width {shape[-1]}, IR width {widths[values[ref]]}")
            return Tensor(values[ref])
        if "class_name" in structure:
            raise NotStored(f"stored object {structure['class_name']!r} in a call")
        return {key: _arguments(structure[key], values, widths, refs) for key in sorted(structure)}
    if isinstance(structure, list):
        return [_arguments(item, values, widths, refs) for item in structure]
    if structure is None or isinstance(structure, (bool, int, float, str)):
        return structure
    raise NotStored(f"argument {structure!r}")


def keras_order(parents: dict[Key, list[Key]], outputs: list[Key]) -> list[Key]:
    """The calls in the order Keras' walk visits them: its ``map_graph`` (a depth-first topological sort
    from the outputs, then by decreasing depth, equal depths in discovery order), so that the stored
    walk names IR values as the walk of the loaded model does."""
    order: list[Key] = []
    finished: set[Key] = set()

    def visit(key: Key) -> None:
        if key in finished:
            return
        for parent in parents[key]:
            visit(parent)
        finished.add(key)
        order.append(key)

    for key in outputs:
        visit(key)
    depths: dict[Key, int] = {}
    layer_depths: dict[str, int] = {}
    for key in reversed(order):
        depth = max(depths.setdefault(key, 0), layer_depths.get(key[0], 0))
        layer_depths[key[0]] = depths[key] = depth
        for parent in parents[key]:
            depths[parent] = max(depth + 1, depths.get(parent, 0))
    by_depth: dict[int, list[Key]] = defaultdict(list)
    for key, depth in depths.items():
        by_depth[depth].append(key)
    return [key for depth in sorted(by_depth, reverse=True) for key in by_depth[depth]]


def _refs(stored: Any) -> list[Ref]:
    """``input_layers`` / ``output_layers``: one ``[name, call, output]`` or a list of them."""
    listed = [stored] if stored and isinstance(stored[0], str) else stored
    return [(str(name), int(call), int(output)) for name, call, output in listed]


def as_functional(config: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The model's configuration as a Functional one (a Sequential calls each layer on the previous
    one), and the layers the weights file holds, in its order (a Sequential's without its input)."""
    inner = config["config"]
    if config["class_name"] == "Functional":
        return inner, [entry for entry in inner["layers"] if not _is_operation(entry)]
    layers = [{**entry, "name": entry.get("name") or entry["config"]["name"]} for entry in inner["layers"]]
    if layers and layers[0]["class_name"] == "InputLayer":
        first, layers = layers[0], layers[1:]
        shape = first["config"].get("batch_shape")
    else:
        first, shape = {"class_name": "InputLayer", "name": "input_layer", "config": {}}, inner.get("build_input_shape")
    if not layers or not shape:
        raise NotStored("a Sequential without layers or without an input shape")
    first = {**first, "config": {**first["config"], "batch_shape": shape}, "inbound_nodes": []}
    previous = [first["name"], 0, 0]
    for entry in layers:  # widths past the input are checked by the mappings (a Dense's kernel...)
        entry["inbound_nodes"] = [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": previous}}]}]
        previous = [entry["name"], 0, 0]
    functional = {**inner, "layers": [first, *layers], "input_layers": [first["name"], 0, 0], "output_layers": previous}
    return functional, layers


def walk_stored(path: Path, config: dict[str, Any], source: str, noise: int = 0) -> Walked:
    """The IR of a stored ``.keras`` model, as ``walk_keras`` gives it for the loaded model; raises
    ``NotStored`` when Keras must load the model instead (see the module's docstring), also for a
    configuration or weights file laid out otherwise (another Keras version's format)."""
    try:
        return _walk(path, config, source, noise)
    except (KeyError, IndexError, AttributeError, TypeError, ValueError, OSError, ImportError) as err:
        raise NotStored(f"stored in a layout this reader does not know ({type(err).__name__}: {err})") from None


def _walk(path: Path, config: dict[str, Any], source: str, noise: int) -> Walked:
    if config.get("class_name") not in WALKABLE:
        raise NotStored(f"a {config.get('class_name')!r} model")
    inner, in_weights = as_functional(config)
    entries = {entry["name"]: entry for entry in inner["layers"]}
    custom = [e for e in entries.values() if e.get("registered_name") and not _is_operation(e)]
    if custom or any(entry["class_name"] in WALKABLE for entry in entries.values()):
        raise NotStored("a nested model or a registered (custom) class")
    names = weights_names(in_weights)
    weights = read_weights(path)
    if set(weights) - set(names.values()):
        raise NotStored("stored weights of layers the configuration does not name")
    inputs = _refs(inner["input_layers"])
    widths = []
    for name, _, _ in inputs:
        shape = entries[name]["config"].get("batch_shape") or []
        if len(shape) != 2 or shape[-1] is None:
            raise NotStored(f"input {name} of shape {shape}")
        widths.append(int(shape[-1]))

    b = Builder(source)
    x, r, feeds = generator_inputs(b, SimpleNamespace(name=inner.get("name", "model")), widths, noise)
    values: dict[Ref, str] = dict(zip(inputs, feeds, strict=True))
    parents: dict[Key, list[Key]] = {}
    for name, entry in entries.items():
        for k, node in enumerate(entry.get("inbound_nodes", [])):
            refs: list[Ref] = []
            _arguments([node.get("args", []), node.get("kwargs", {})], {}, {}, refs)
            parents[(name, k)] = [(ref[0], ref[1]) for ref in refs if ref not in values]
    outputs = _refs(inner["output_layers"])
    if b.problems or len(outputs) != 1 or any(p not in parents for ps in parents.values() for p in ps):
        raise NotStored("refused inputs, not one output, or a call the configuration does not hold")
    for name, k in keras_order(parents, [(name, k) for name, k, _ in outputs if (name, k, 0) not in values]):
        stored = weights.get(names.get(name, ""), [])
        _call(b, entries[name], entries[name]["inbound_nodes"][k], (name, k), values, stored)
    if outputs[0] not in values or b.problems:
        raise NotStored("the output is not computed")
    joined = feeds[0] if r is not None and len(feeds) == 1 else None
    return Walked(b, x, values[outputs[0]], {}, r, joined)


def _call(b: Builder, entry: dict[str, Any], node: dict[str, Any], key: Key, values: dict[Ref, str],
          stored: list[np.ndarray]) -> None:  # fmt: skip
    """One call of a stored layer or operation, through the mapping of its class."""
    refs: list[Ref] = []
    args, kwargs = _arguments([node.get("args", []), node.get("kwargs", {})], values, b.widths, refs)
    if any(ref not in values for ref in refs):
        raise NotStored(f"{entry['name']}: called before its inputs are computed")
    layer = _layer(entry, stored)
    try:
        if _is_operation(entry):
            out = map_operation(layer, b, tuple(args), kwargs)
        elif (mapping := _builtin_mapping(entry)) is None:
            raise NotStored(f"{entry['name']}: not a built-in layer with a mapping")
        else:
            out = mapping(layer, b, [values[ref] for ref in refs])  # as the live walk: every tensor
    except (Unsupported, AttributeError, TypeError, ValueError) as err:
        raise NotStored(f"{entry['name']}: {err}") from None
    values[(key[0], key[1], 0)] = out


def _builtin_mapping(entry: dict[str, Any]) -> Mapping | None:
    """The mapping of a stored layer of Keras' own: the walk of the loaded model words a custom one's refusal."""
    builtin = str(entry.get("module", "")).startswith("keras")
    return layer_mapping(entry["class_name"], builtin) if builtin else None
