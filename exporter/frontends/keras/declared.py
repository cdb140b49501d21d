"""The shapes a model file's configuration declares, checked against its stored weights before Keras builds it.

Why: Keras allocates every variable from the configuration (``units``, the ``build_config`` input
shape) before it reads the stored weights, and only then finds they do not fit. A file saying
``units: 1e9`` makes Keras allocate 22 GiB and then print kilobytes of configuration. So, before Keras
is imported: every shape-like value of every layer must be a whole number in a sane range
(``MAX_WIDTH``), and each layer whose variables the exporter knows (declared with its mapping in
``layers.py``) must declare the shapes its stored variables have. Only the weights' shapes are read
(HDF5 metadata), not their values.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from exporter.common.errors import ExportError
from exporter.frontends.keras.layers import LAYERS, MODEL_CLASSES, Shape, stored_variables
from exporter.frontends.keras.stored import NotStored, as_functional, weights_names

MAX_WIDTH = 1 << 16  # a width far beyond any network a C function holds, and small enough to allocate
# Configuration keys whose values Keras makes into shapes (ints, lists of them, None for the batch).
SHAPE_KEYS = (
    "units", "batch_shape", "batch_input_shape", "input_shape", "input_dim", "output_dim", "target_shape",
    "n", "dims", "filters", "kernel_size", "num_heads", "key_dim", "value_dim", "max_tokens",
)  # fmt: skip


def _layers(config: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every stored layer entry, nested models' too (named ``outer/inner``), the models themselves included."""
    for entry in config.get("config", {}).get("layers", []) if isinstance(config.get("config"), dict) else []:
        if not isinstance(entry, dict):
            continue
        name = f"{prefix}{entry.get('name') or entry.get('config', {}).get('name', '?')}"
        yield name, entry
        if entry.get("class_name") in MODEL_CLASSES:
            yield from _layers(entry, f"{name}/")


def _bad_dimension(value: Any, key: str) -> str | None:
    """Why one declared dimension is refused, or None (``None`` is the batch or an unknown size)."""
    if value is None or (value == -1 and key == "target_shape" and type(value) is int):
        return None
    if type(value) is not int:
        return "not a whole number"
    if not 1 <= value <= MAX_WIDTH:
        return f"outside 1 to {MAX_WIDTH:,}"
    return None


def _dimensions(value: Any) -> Iterator[Any]:
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _dimensions(item)
    elif isinstance(value, dict) and value.get("class_name") == "__tuple__":
        yield from _dimensions(value.get("config", {}).get("value", value.get("items", [])))
    else:
        yield value


def _check_values(source: str, name: str, entry: dict[str, Any]) -> None:
    for where in (entry.get("config"), entry.get("build_config")):
        for key in SHAPE_KEYS if isinstance(where, dict) else ():
            for value in _dimensions(where.get(key)) if key in where else ():
                why = _bad_dimension(value, key)
                if why:
                    shown = repr(where[key]) if len(repr(where[key])) <= 40 else f"{repr(where[key])[:40]}..."
                    raise ExportError(f"{source}: layer {name!r}: {key}={shown}: {why}; refused before Keras builds it")


def _expected(entry: dict[str, Any]) -> dict[str, Shape] | None:
    """The shape of each variable Keras would build for a layer of a known class (None: a dimension not declared)."""
    declared = LAYERS.get(str(entry.get("class_name")))
    if declared is None or declared.variables is None:
        return None
    shape = (entry.get("build_config") or {}).get("input_shape")
    if isinstance(shape, list) and len(shape) > 2 and not isinstance(shape[-1], list):
        return None  # a tensor's layer: its variables' ranks follow the tensor's (PReLU); Keras checks them on loading
    flat = isinstance(shape, list) and len(shape) == 2 and not isinstance(shape[-1], list)  # (batch, features)
    return declared.declared_shapes(entry.get("config", {}), shape[-1] if flat else None)


def _stored_keras(source: str, archive: zipfile.ZipFile, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each top-level layer's stored variable shapes in a ``.keras`` file, named as its declaration names them."""
    import h5py

    try:
        _, entries = as_functional(config)
        names = weights_names(entries)
    except (NotStored, KeyError, IndexError, TypeError):
        return {}
    out = {}
    with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as f:
        for entry in entries:
            group = f.get(f"layers/{names[entry['name']]}/vars")
            variables = stored_variables(entry["class_name"], entry.get("config", {}))
            if group is not None and variables:
                shapes = [tuple(group[str(i)].shape) for i in range(len(group))]
                if len(shapes) != len(variables):
                    raise ExportError(
                        f"{source}: layer {entry['name']!r} ({entry['class_name']}): the file stores {len(shapes)} "
                        f"variables, its configuration declares {len(variables)}; refused before Keras builds it"
                    )
                out[entry["name"]] = dict(zip(variables, shapes, strict=True))
    return out


def _stored_h5(path: Path) -> dict[str, dict[str, Any]]:
    """Each layer's stored variable shapes in a legacy ``.h5`` file (``model_weights/<layer>/...``)."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        weights = f.get("model_weights")
        for layer, group in weights.items() if weights is not None else ():
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
            out[layer] = {n.rsplit("/", 1)[-1].split(":")[0]: tuple(group[n].shape) for n in names if n in group}
    return out


def check_declared(path: Path, config: dict[str, Any]) -> None:
    """Raise ``ExportError`` naming the file, the layer and the mismatch, when the configuration declares
    a shape that is not a sane whole number or not that of the stored weights (see the module's docstring)."""
    source = path.name
    layers = list(_layers(config))
    for name, entry in layers:
        _check_values(source, name, entry)
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                stored = _stored_keras(source, archive, config)
        else:
            stored = _stored_h5(path)
    except (OSError, KeyError, ValueError, ImportError, zipfile.BadZipFile):
        return  # unreadable weights: Keras says so, after building shapes already checked above
    for name, entry in layers:
        expected = _expected(entry)
        if expected is None or name not in stored:
            continue
        for variable, shape in stored[name].items():
            want = expected.get(variable)
            if not _fits(want, shape):
                declared = "x".join("?" if w is None else str(w) for w in want) if want else "no such variable"
                raise ExportError(
                    f"{source}: layer {name!r} ({entry.get('class_name')}): its configuration declares {variable} "
                    f"{declared}, the file stores {'x'.join(map(str, shape))}; refused before Keras builds it"
                )


def _fits(want: tuple[int | None, ...] | None, shape: tuple[int, ...]) -> bool:
    """A stored shape is the declared one (a dimension not declared fits any)."""
    if want is None or len(want) != len(shape):
        return False
    return all(w is None or w == s for w, s in zip(want, shape, strict=True))
