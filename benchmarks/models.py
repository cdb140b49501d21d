"""The reference models of the benchmark, saved as .keras files.

- ``residual``: the efficiency network as shipped (examples/efficiency.keras: 12 inputs,
  Dense 128 tanh, five residual blocks, Dense 4 + Softmax, trained).
- ``sequential``: the same layers and trained weights without the skip connections, as a
  Keras Sequential model, because scikinC reads only Sequential models.
- ``wide``: about a million parameters (12 -> 5 x Dense 512 tanh -> 4 softmax) for the
  export and compile times.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from exporter.frontends.lean_imports import without_optional_imports

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "efficiency.keras"


def sequential_twin(residual: Any) -> Any:
    """The residual model's Dense layers in a Sequential, trained weights copied."""
    import keras

    layers: list[Any] = [keras.Input((residual.inputs[0].shape[-1],))]
    for layer in residual.layers:
        if isinstance(layer, keras.layers.Dense):
            twin = keras.layers.Dense(layer.units, activation=layer.activation, name=layer.name)
            layers.append(twin)
        elif isinstance(layer, keras.layers.Softmax):
            layers.append(keras.layers.Softmax(name=layer.name))
    model = keras.Sequential(layers, name="efficiency_sequential")
    for layer in model.layers:
        layer.set_weights(residual.get_layer(layer.name).get_weights())
    return model


def wide_model(width: int, depth: int, seed: int = 0) -> Any:
    import keras

    rng = np.random.default_rng(seed)
    layers = [keras.Input((12,))] + [keras.layers.Dense(width, activation="tanh") for _ in range(depth)]
    model = keras.Sequential([*layers, keras.layers.Dense(4, activation="softmax")], name="wide")
    for w in model.weights:
        scale = 1 / np.sqrt(w.shape[0]) if len(w.shape) == 2 else 0.1
        w.assign((rng.standard_normal(tuple(w.shape)) * scale).astype("float32"))
    return model


def residual_model(width: int, seed: int = 0) -> Any:
    """The efficiency network's shape (12 inputs, Dense tanh, five residual blocks, Dense 4 + Softmax)
    at another width, random weights: ``--smoke`` runs every part of the benchmark on it in seconds."""
    import keras

    rng = np.random.default_rng(seed)
    x = keras.Input((12,))
    h = keras.layers.Dense(width, activation="tanh", name="hidden")(x)
    for k in range(5):
        h = keras.layers.Add(name=f"skip_{k}")(
            [h, keras.layers.Dense(width, activation="tanh", name=f"residual_{k}")(h)]
        )
    logits = keras.layers.Dense(4, name="logits")(h)
    model = keras.Model(x, keras.layers.Softmax(name="probabilities")(logits), name="efficiency")
    for w in model.weights:
        w.assign((rng.standard_normal(tuple(w.shape)) * 0.3).astype("float32"))
    return model


def build(workdir: Path, width: int | None = None) -> dict[str, tuple[Path, Any]]:
    """{name: (.keras path, live model)} for the three reference models; ``width``: the residual
    model at that width instead of the shipped one (and the wide model as narrow), for a smoke run."""
    import keras

    residual = keras.saving.load_model(EXAMPLE, compile=False) if width is None else residual_model(width)
    models = {"residual": residual, "sequential": sequential_twin(residual)}
    models["wide"] = wide_model(width or 512, 5)
    # Keras' serializer imports TensorFlow when it is installed, whatever the backend (to check for its types)
    unused = () if keras.backend.backend() == "tensorflow" else ("tensorflow",)
    out = {}
    with without_optional_imports(unused):
        for name, model in models.items():
            path = workdir / f"{name}.keras"
            model.save(path)
            out[name] = (path, model)
    return out


def flops_per_row(model: Any) -> int:
    """Multiplies and adds of the Dense layers (2 n_in n_out each); activations not counted."""
    import keras

    return sum(2 * int(np.prod(layer.kernel.shape)) for layer in model.layers if isinstance(layer, keras.layers.Dense))
