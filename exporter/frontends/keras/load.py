"""Load a Keras model (a ``.keras``/``.h5`` file, a Keras 2 SavedModel folder, or a live ``keras.Model``) as IR
plus its reference forward pass.

A file is screened from its stored configuration first (``screen``), without importing Keras. A
``.keras`` file is then walked from what it stores (``stored``) when it can be, so Keras is imported
only for the reference, while the C compiles; otherwise Keras loads it and its walk gives the IR.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from exporter.common import interrupt
from exporter.common.errors import ExportError, UnsupportedModelError
from exporter.frontends.keras import keras2
from exporter.frontends.keras.backend import INSTALL, OPTIONAL, choose_backend, require_keras
from exporter.frontends.keras.declared import check_declared
from exporter.frontends.keras.float64 import keras_reference64
from exporter.frontends.keras.inputs import model_rows
from exporter.frontends.keras.intermediates import KerasIntermediates
from exporter.frontends.keras.quiet import brief, quiet_stderr
from exporter.frontends.keras.screen import read_stored_config, refused_from_config, stored_layers
from exporter.frontends.keras.stored import NotStored, walk_stored
from exporter.frontends.keras.walk import walk_keras
from exporter.frontends.lean_imports import without_optional_imports
from exporter.frontends.loaded import LoadedModel


def import_keras() -> Any:
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
    keras = import_keras()
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
    when it has one input. A model of several inputs takes each from its place in the row (``model_rows``).
    """
    import keras

    def reference(x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        rows = model_rows(model, x, noise, np.float32)
        with np.errstate(all="ignore"):  # numpy backend: exp overflows on edge rows, to inf as the C does
            out = model(rows, training=False)
        if isinstance(out, (list, tuple)):
            (out,) = out
        out = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)
        return out.reshape(len(out), -1)  # a tensor, flat as the C writes it

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
    import_keras()  # imported already for a live model or a loaded file: on the backend _version_label names
    walked = walk_keras(model, source, noise)
    reference64 = None if saved else keras_reference64(model)
    return LoadedModel(
        graph=walked.graph(),
        reference=saved[0] if saved else keras_reference(model),
        framework="Keras",
        framework_version=saved[1] if saved else _version_label(),
        intermediates=KerasIntermediates(walked.input, walked.origins, walked.noise, walked.joined, walked.split),
        # what was saved (a SavedModel's signature, TF 2 Keras) has no float64 twin: judged by the fixed rule
        reference64=reference64,
        reference64_nudged=functools.partial(reference64, nudged=True) if reference64 else None,
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
        graph,
        later.reference,
        "Keras",
        _version_label(),
        intermediates=later,
        reference64=later.reference64,
        reference64_nudged=later.reference64_nudged,
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

    def reference64_nudged(self, x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        return self._reference64(x, noise, nudged=True)

    @functools.cached_property
    def _intermediates(self) -> KerasIntermediates:
        walked = walk_keras(self.model, self.source, self.noise)
        if not walked.graph().same_as(self.graph):
            raise ExportError(f"{self.source}: the loaded model walks into other IR than its stored configuration")
        return KerasIntermediates(walked.input, walked.origins, walked.noise, walked.joined, walked.split)

    def knows(self, value: str) -> bool:
        return self._intermediates.knows(value)

    def __call__(self, values: list[str], rows: np.ndarray, *noise: np.ndarray) -> dict[str, np.ndarray]:
        return self._intermediates(values, rows, *noise)
