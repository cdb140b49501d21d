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

The nudged twin (``nudged=True``, the float32 rule's envelope): a float32 evaluation rounds every value
a layer writes, and the next layers amplify that rounding (a LayerNorm or a tanh near 0 after a wide
sum, a recurrence over many steps, a GRU's ``1 - z`` where its gate ``z`` is near 1); so every layer of
the twin (RNN cells, every step, and the layers inside wrappers included) moves its output, and each
activation its input and its output, by one float32 ULP, as the check moves the network's inputs; an
activation's input by sqrt(n) ULPs where it is a sum of n terms (a Dense's, a convolution's, a cell's
kernel fan-in): the C sums in row order, about sqrt(n) roundings, the floor's reasoning applied where
the sum is, so that what later layers amplify of it (an Add cancelling it) is in the envelope. The
sign is drawn from the value's own float32 mantissa (a Weyl sequence), so it needs no random state
inside a scan or a graph; whole numbers stay (an Embedding's index, a 0/1 mask, a ReLU's zeros: float32
holds them exactly).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from exporter.common.errors import Float64Unavailable
from exporter.frontends.keras.inputs import model_rows
from exporter.frontends.nudge import LAYOUTS, jax_nudge, nudge_array, nudge_with, sum_ulps

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


def nudge_ulp(x: Any, ulps: float = 1.0) -> Any:
    """A float tensor moved by ``ulps`` float32 ULPs (keras.ops, any backend, inside a scan too), the sign
    drawn from its float32 mantissa; whole numbers and non-finite values unchanged; other tensors as they are."""
    import keras

    if getattr(x, "dtype", None) is None or not keras.backend.standardize_dtype(x.dtype).startswith("float"):
        return x
    if keras.backend.backend() == "jax":  # eager JAX compiles each op for each new shape: the nudge compiled once
        return jax_nudge()(x, ulps)
    if keras.backend.backend() == "numpy":  # its tensors are numpy arrays (and its int64 narrows to int32)
        return nudge_array(x, ulps)
    ops, dtype = keras.ops, keras.backend.standardize_dtype(x.dtype)
    wide = x if dtype in LAYOUTS else ops.cast(x, "float32")
    return ops.cast(nudge_with(ops, ops.view, ops.cast, wide, ulps, keras.backend.standardize_dtype(wide.dtype)), dtype)


def _terms(layer: Any) -> int:
    """How many terms each of ``layer``'s sums adds: its kernel's fan-in (a recurrent cell's input and state)."""
    kernels = [getattr(layer, name, None) for name in ("kernel", "recurrent_kernel")]
    return sum(int(np.prod(k.shape[:-1])) for k in kernels if getattr(k, "shape", None) is not None) or 1


def _nudging(twin: Any, active: list[bool]) -> None:
    """Every layer inside ``twin`` moves its outputs, and each of its activations its input and output, by
    one float32 ULP while ``active[0]`` (see the module's docstring)."""
    import keras

    def outputs(call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        def nudged(*args: Any, **kwargs: Any) -> Any:
            out = call(*args, **kwargs)
            return keras.tree.map_structure(nudge_ulp, out) if active[0] else out

        return nudged

    def inputs(activation: Callable[..., Any], ulps: float) -> Callable[..., Any]:
        @functools.wraps(activation)
        def nudged(x: Any, *args: Any, **kwargs: Any) -> Any:
            if not active[0]:
                return activation(x, *args, **kwargs)
            return nudge_ulp(activation(nudge_ulp(x, ulps), *args, **kwargs))

        return nudged

    for layer in twin._flatten_layers(include_self=False, recursive=True):
        layer.call = outputs(layer.call)
        for name in ("activation", "recurrent_activation"):  # an RNN's own are its cell's (properties)
            if callable(getattr(layer, name, None)) and not isinstance(getattr(type(layer), name, None), property):
                setattr(layer, name, inputs(getattr(layer, name), sum_ulps(_terms(layer))))


def keras_reference64(model: Any, stored: dict[str, Any] | None = None) -> Callable[..., np.ndarray]:
    """The model's forward pass in float64, inference mode, like ``keras_reference`` (rebuilt on first call;
    ``stored``: its file's configuration); ``nudged=True``: each layer's output moved by one float32 ULP."""
    import keras

    twin: list[Any] = []
    active = [False]

    def reference(x: np.ndarray, noise: np.ndarray | None = None, nudged: bool = False) -> np.ndarray:
        if not twin:
            twin.append(float64_model(model, stored))
            _nudging(twin[0], active)
        rows = model_rows(model, x, noise, np.float64)
        active[0] = nudged
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
