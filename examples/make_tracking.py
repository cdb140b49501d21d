"""The Flax example's tracking-efficiency regression, in Keras: log(pT) + StandardScaler -> MLP -> sigmoid.

Like ``flax_tracking.py``, it predicts the LHCb tracking efficiency in bins of
(eta, pT, phi): pT goes through log(pT) and, with eta and phi, a StandardScaler; an MLP
(Dense 128 ReLU x 3, Dense 1) gives a logit; the efficiency is its sigmoid. Here the
counts are synthetic (a smooth efficiency rising with pT, falling at the eta edges,
modulated in phi), and the network is trained on Bernoulli draws with a logistic loss.
Writes examples/tracking.keras and examples/tracking_scaler.pkl; exported with

    lamarr-export examples/tracking.keras --log-columns 1 --preprocess examples/tracking_scaler.pkl \\
        --output-activation sigmoid
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def true_efficiency(eta: np.ndarray, pt: np.ndarray, phi: np.ndarray) -> np.ndarray:
    turn_on = 1.0 / (1.0 + np.exp(-(np.log(pt) - np.log(300.0)) / 0.35))
    acceptance = np.exp(-(((eta - 3.5) / 1.6) ** 8))
    return 0.97 * turn_on * acceptance * (1.0 - 0.04 * np.cos(4 * phi))


def synthetic_particles(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(eta, pT [MeV], phi) with a falling pT spectrum, and whether each particle was reconstructed."""
    rng = np.random.default_rng(seed)
    eta = rng.uniform(2.0, 5.0, n)
    pt = np.exp(rng.uniform(np.log(10.0), np.log(10_000.0), n))
    phi = rng.uniform(-np.pi, np.pi, n)
    reconstructed = rng.random(n) < true_efficiency(eta, pt, phi)
    return np.stack([eta, pt, phi], axis=1), reconstructed.astype(np.float32)[:, None]


def build_model():
    import keras

    inputs = keras.Input((3,), name="eta_logpt_phi")
    x = inputs
    for i in range(3):
        x = keras.layers.Dense(128, activation="relu", name=f"hidden_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="logit")(x), name="tracking")


def main() -> None:
    import keras
    from sklearn.preprocessing import StandardScaler

    here = Path(__file__).parent
    keras.utils.set_random_seed(0)
    raw, reconstructed = synthetic_particles(40_000)
    features = raw.copy()
    features[:, 1] = np.log(features[:, 1])  # log(pT), as in flax_tracking.py
    scaler = StandardScaler().fit(features)
    with open(here / "tracking_scaler.pkl", "wb") as f:
        pickle.dump(scaler, f)
    model = build_model()
    model.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True), optimizer=keras.optimizers.Adam(3e-3))
    model.fit(scaler.transform(features), reconstructed, batch_size=1000, epochs=5, verbose=2)
    deployed = build_model()
    deployed.set_weights(model.get_weights())
    deployed.save(here / "tracking.keras")
    print(f"saved {here / 'tracking.keras'} and {here / 'tracking_scaler.pkl'}")


if __name__ == "__main__":
    main()
