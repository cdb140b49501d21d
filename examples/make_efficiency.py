"""Build and briefly train Lamarr's tracking-efficiency classifier with its preprocessing.

The network is the one Lamarr's efficiency model uses: Dense(128, tanh),
five residual blocks (Dense(128, tanh) then Add), Dense(4, linear) and a separate Softmax
layer, classifying a generated particle as long, upstream, downstream or unreconstructed.
Its 12 inputs are synthetic stand-ins for Lamarr's physical quantities (origin vertex,
log10 p, eta, phi, slopes, transverse momentum and three flags), preprocessed the Lamarr
way: a ColumnTransformer with a QuantileTransformer (normal output) on the real-valued
columns and the flags passed through. Writes examples/efficiency.keras and
examples/efficiency_tX.pkl: no real data is needed, only trained, non-trivial weights.

    python examples/make_efficiency.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

N_FEATURES = 12
CLASSES = ("long", "upstream", "downstream", "unreconstructed")


REAL_COLUMNS = [0, 1, 2, 3, 4, 5, 6, 7, 11]  # vertex x y z [mm], log10 p [MeV], eta, phi, tx, ty, pT [MeV]
FLAG_COLUMNS = [8, 9, 10]  # charge, is_electron, is_muon


def synthetic_tracks(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Physical features and one-hot classes drawn from smooth, physics-flavoured probabilities."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, N_FEATURES))
    x[:, 0:2] = rng.normal(0.0, 0.05, (n, 2))
    x[:, 2] = rng.normal(0.0, 50.0, n)
    log_p = x[:, 3] = rng.uniform(3.0, 5.5, n)
    eta = x[:, 4] = rng.uniform(1.8, 5.2, n)
    phi = x[:, 5] = rng.uniform(-np.pi, np.pi, n)
    x[:, 6:8] = rng.normal(0.0, 0.2, (n, 2))
    x[:, 8] = rng.choice([-1.0, 1.0], n)
    x[:, 9] = rng.random(n) < 0.1
    x[:, 10] = rng.random(n) < 0.1
    x[:, 11] = 10**log_p / np.cosh(eta)
    z = (log_p - 4.0) / 0.7
    logits = np.stack(
        [
            1.5 * z - 0.8 * (eta - 3.5) ** 2 + 0.2 * np.cos(3 * phi),  # long: needs momentum, central eta
            -0.5 * z + 0.3 * (eta - 3.5) - 0.5,  # upstream: low momentum tracks curl out
            0.008 * x[:, 2] + 0.2 * z - 0.8,  # downstream: displaced origin
            -0.6 * z + 0.6 * np.abs(eta - 3.5) + 0.3 * x[:, 10],  # unreconstructed
        ],
        axis=1,
    )
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in p])
    return x, np.eye(4, dtype=np.float32)[labels]


def build_model(softmax_layer: bool = True):
    """The architecture; ``softmax_layer=False`` puts softmax in the last Dense instead."""
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


def preprocessing():
    """Lamarr's tracking preprocessing: normal quantiles for real values, flags untouched."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import QuantileTransformer

    quantile = QuantileTransformer(n_quantiles=100, output_distribution="normal", random_state=0)
    return ColumnTransformer([("quantile", quantile, REAL_COLUMNS)], remainder="passthrough")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    here = Path(__file__).parent

    import keras

    keras.utils.set_random_seed(0)
    raw, y = synthetic_tracks(20_000)
    tx = preprocessing().fit(raw)
    with open(here / "efficiency_tX.pkl", "wb") as f:
        pickle.dump(tx, f)
    x = tx.transform(raw).astype(np.float32)
    model = build_model()
    model.compile(loss=keras.losses.CategoricalCrossentropy(), optimizer=keras.optimizers.RMSprop(1e-3))
    model.fit(x, y, batch_size=500, epochs=args.epochs, validation_split=0.1, verbose=2)
    deployed = build_model()  # uncompiled twin: the file then carries no optimizer state
    deployed.set_weights(model.get_weights())
    deployed.save(here / "efficiency.keras")
    print(f"saved {here / 'efficiency.keras'} and {here / 'efficiency_tX.pkl'}")


if __name__ == "__main__":
    main()
