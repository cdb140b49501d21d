"""Keras frontend: ``.keras`` (Keras 3) and legacy ``.h5`` files, or a live ``keras.Model``.

Files are screened from their stored configuration first, without importing Keras:
a model with custom or unsupported layers (which Keras itself may refuse to load, e.g.
a ``Lambda`` under safe mode) is reported layer by layer, and fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exporter.errors import ExportError, Problem, UnsupportedModelError
from exporter.frontends.keras.intermediates import KerasIntermediates
from exporter.frontends.keras.layers import CUSTOM, LAYERS
from exporter.frontends.keras.walk import refusal_reason, walk_keras
from exporter.frontends.loaded import LoadedModel

MODEL_CLASSES = {"Functional", "Sequential", "Model"}
SUFFIXES = (".keras", ".h5", ".hdf5")


def _stored_config(path: Path) -> dict[str, Any]:
    """The model configuration as saved in the file, read without Keras."""
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

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
    """One layer as the file's stored configuration names it, and why it is refused (if it is)."""

    name: str
    cls: str
    problem: Problem | None


def stored_layers(config: dict[str, Any], prefix: str = "") -> list[StoredLayer]:
    """Every stored layer, nested models' layers included (named ``outer/inner``), each screened
    by its class alone: a class with no mapping is refused before Keras is even imported."""
    layers: list[StoredLayer] = []
    for entry in config.get("config", {}).get("layers", []):
        cls = entry.get("class_name", "?")
        name = entry.get("config", {}).get("name", entry.get("name", "?"))
        if cls in MODEL_CLASSES:
            layers += stored_layers(entry, f"{prefix}{name}/")
        elif cls != "InputLayer":
            module = entry.get("module") or "keras.layers"
            builtin = module.startswith("keras") and not entry.get("registered_name")
            refused = not (builtin or cls in CUSTOM) or cls not in LAYERS
            layers.append(
                StoredLayer(prefix + name, cls, Problem(name, cls, refusal_reason(cls, builtin)) if refused else None)
            )
    return layers


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C++ log lines TensorFlow prints while it loads (they bypass TF_CPP_MIN_LOG_LEVEL)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _import_keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if "keras" in sys.modules:
            import keras
        else:
            with _quiet_stderr():
                import keras

                keras.ops.convert_to_tensor(0.0)  # the backend logs once more on first use
    except ImportError as err:
        raise ExportError(
            f"reading Keras models needs Keras 3 and a backend: pip install 'lamarr-export[keras]' ({err})"
        ) from None
    return keras


def read_stored_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The stored configuration of a model file, after checking the file is one; no Keras import."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such model file")
    if path.suffix not in SUFFIXES:
        raise ExportError(f"{path}: expected a Keras model file ({', '.join(SUFFIXES)})")
    config = _stored_config(path)
    if config.get("class_name") not in MODEL_CLASSES:
        raise ExportError(f"{path}: stores a {config.get('class_name')!r}, not a Keras model")
    return config


def load_keras_file(path: str | os.PathLike[str]) -> Any:
    """Load a model file with Keras (``compile=False``, safe mode) after screening its layers."""
    path = Path(path)
    problems = [layer.problem for layer in stored_layers(read_stored_config(path)) if layer.problem]
    if problems:
        raise UnsupportedModelError(path.name, problems)
    keras = _import_keras()
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a damaged file
        raise ExportError(f"{path}: Keras could not load it: {err}") from None


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
    """
    source = source_name(model)
    if isinstance(model, (str, os.PathLike)):
        model = load_keras_file(model)
    keras = _import_keras()
    walked = walk_keras(model, source, noise)
    return LoadedModel(
        graph=walked.graph(),
        reference=keras_reference(model),
        framework="Keras",
        framework_version=f"{keras.__version__} ({keras.backend.backend()} backend)",
        intermediates=KerasIntermediates(walked.input, walked.origins, walked.noise, walked.joined),
    )
