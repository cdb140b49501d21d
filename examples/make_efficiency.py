"""Build and briefly train the seed's Lamarr tracking-efficiency model; save examples/efficiency.keras.

The network is the one of the seed notebook (``shared/seeds/002_...``): Dense(128, tanh),
five residual blocks (Dense(128, tanh) then Add), Dense(4, linear) and a separate Softmax
layer, classifying a generated particle as long, upstream, downstream or unreconstructed.
The 12 inputs are synthetic stand-ins for Lamarr's (origin vertex, log10 p, eta, phi, slopes,
charge, flags): no real data is needed, only a model with trained, non-trivial weights.

    python examples/make_efficiency.py [--epochs 3] [--output examples/efficiency.keras]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

N_FEATURES = 12
CLASSES = ("long", "upstream", "downstream", "unreconstructed")


def synthetic_tracks(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standardised features and one-hot classes drawn from smooth, physics-flavoured probabilities."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES)).astype(np.float32)
    x[:, 8] = rng.choice([-1.0, 1.0], n)  # charge
    log_p, eta, phi = x[:, 3], x[:, 4], x[:, 5]
    logits = np.stack(
        [
            1.5 * log_p - 0.8 * eta**2 + 0.2 * np.cos(3 * phi),  # long: needs momentum, central eta
            -0.5 * log_p + 0.3 * eta - 0.5,  # upstream: low momentum tracks curl out
            0.4 * x[:, 2] + 0.2 * log_p - 0.8,  # downstream: displaced origin
            -0.6 * log_p + 0.6 * np.abs(eta),  # unreconstructed
        ],
        axis=1,
    )
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in p])
    return x, np.eye(4, dtype=np.float32)[labels]


def build_model(softmax_layer: bool = True):
    """The seed's architecture; ``softmax_layer=False`` puts softmax in the last Dense instead."""
    import keras

    dense = {"units": 128, "activation": "tanh", "kernel_initializer": "he_normal"}
    inputs = keras.Input(shape=(N_FEATURES,), name="conditions")
    x = keras.layers.Dense(**dense, name="hidden")(inputs)
    for i in range(5):
        r = keras.layers.Dense(**dense, name=f"residual_{i}")(x)
        x = keras.layers.Add(name=f"skip_{i}")([x, r])
    if softmax_layer:
        x = keras.layers.Dense(len(CLASSES), activation="linear", kernel_initializer="he_normal", name="logits")(x)
        x = keras.layers.Softmax(name="probabilities")(x)  # scikinC needs this separate layer; we do not
    else:
        x = keras.layers.Dense(len(CLASSES), activation="softmax", kernel_initializer="he_normal", name="logits")(x)
    return keras.Model(inputs=inputs, outputs=x, name="efficiency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--output", default=str(Path(__file__).with_name("efficiency.keras")))
    args = parser.parse_args()

    import keras

    keras.utils.set_random_seed(0)
    x, y = synthetic_tracks(20_000)
    model = build_model()
    model.compile(loss=keras.losses.CategoricalCrossentropy(), optimizer=keras.optimizers.RMSprop(1e-3))
    model.fit(x, y, batch_size=500, epochs=args.epochs, validation_split=0.1, verbose=2)
    deployed = build_model()  # uncompiled twin: the file then carries no optimizer state
    deployed.set_weights(model.get_weights())
    deployed.save(args.output)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
