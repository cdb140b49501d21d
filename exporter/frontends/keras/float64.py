"""The same Keras model computed in float64: the reference the float32 parity criterion measures errors from.

The model is rebuilt from its own configuration with every dtype policy set to float64 and given its
float32 weights cast to float64 (exactly), so Keras itself evaluates every layer of the loaded model,
only in float64. A float64 evaluation of the exporter's IR would not do: it would repeat a frontend's
mistake (a misread layer option) instead of catching it.

Backends: TensorFlow runs float64 natively; JAX (also used by the numpy backend for a few functions)
only with x64 enabled, which is switched on for the rebuild and each call; Keras' numpy backend
narrows every float64 result type to float32 (``BIT64_TO_BIT32_DTYPE``, to mimic JAX), which is lifted
for the duration of the call. Every call checks that float64 came out; when it cannot (a layer
Keras will not rebuild, a backend that narrows anyway) ``Float64Unavailable`` says why and the check
falls back to the fixed rule, saying so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from exporter.common.errors import Float64Unavailable
from exporter.frontends.keras.inputs import model_rows

_NARROW = ("float32", "float16", "bfloat16")


def float64_config(config: Any) -> Any:
    """``config`` with every dtype (a policy or a plain name) of a narrower float set to float64."""
    if isinstance(config, list):
        return [float64_config(v) for v in config]
    if not isinstance(config, dict):
        return config
    out = {}
    for key, value in config.items():
        if key == "dtype" and isinstance(value, dict) and isinstance(value.get("config"), dict):
            value = {**value, "config": {**value["config"], "name": "float64"}}
        elif key == "dtype" and value in _NARROW:
            value = "float64"
        else:
            value = float64_config(value)
        out[key] = value
    return out


@contextlib.contextmanager
def float64_backend(keras: Any) -> Iterator[None]:
    """Keras computing in float64 for the duration: floatx, JAX's x64 and the numpy backend's result types."""
    from keras.src.backend.common import dtypes

    backend = keras.backend.backend()
    floatx = keras.config.floatx()
    narrowing = dtypes.BIT64_TO_BIT32_DTYPE.get("float64")
    with contextlib.ExitStack() as stack:
        if backend in ("jax", "numpy"):
            import jax

            stack.enter_context(jax.enable_x64(True))
        keras.config.set_floatx("float64")
        dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"
        try:
            yield
        finally:
            keras.config.set_floatx(floatx)
            dtypes.BIT64_TO_BIT32_DTYPE["float64"] = narrowing


def float64_model(model: Any, stored: dict[str, Any] | None = None) -> Any:
    """``model`` rebuilt in float64 with its weights cast; ``Float64Unavailable`` if Keras refuses.

    ``stored``: the configuration a ``.keras`` file stores, rebuilt as is; a live model's own
    ``get_config()`` otherwise (which imports TensorFlow when it is installed, for its type checks).
    """
    import keras

    with float64_backend(keras):
        try:
            if stored is not None:
                twin = keras.saving.deserialize_keras_object(float64_config(stored))
            else:
                with keras.saving.custom_object_scope({}):  # the model was loaded (safely) already
                    twin = type(model).from_config(float64_config(model.get_config()))
            weights = model.get_weights()
            twin.set_weights([w.astype(np.float64) if np.issubdtype(w.dtype, np.floating) else w for w in weights])
        except Exception as err:  # Keras raises many types for a layer it cannot rebuild
            why = f"{type(err).__name__}: {err}"
            raise Float64Unavailable(f"Keras could not rebuild the model in float64 ({why})") from None
    return twin


def keras_reference64(model: Any, stored: dict[str, Any] | None = None) -> Callable[..., np.ndarray]:
    """The model's forward pass in float64, inference mode, like ``keras_reference`` (rebuilt on first call;
    ``stored``: its file's configuration)."""
    import keras

    twin: list[Any] = []

    def reference(x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        if not twin:
            twin.append(float64_model(model, stored))
        rows = model_rows(model, x, noise, np.float64)
        with float64_backend(keras), np.errstate(all="ignore"):  # as the float32 reference: edge rows overflow
            try:
                out = twin[0](rows, training=False)
            except Exception as err:  # no float64 kernel: TensorFlow's MaxPool3D, dilated ConvTranspose
                why = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
                raise Float64Unavailable(f"Keras could not compute the model in float64 ({why})") from None
            if isinstance(out, (list, tuple)):
                (out,) = out
            out = keras.ops.convert_to_numpy(out)
        if out.dtype != np.float64:
            raise Float64Unavailable(f"Keras' {keras.backend.backend()} backend computed {out.dtype}, not float64")
        return np.asarray(out).reshape(len(out), -1)

    return reference
