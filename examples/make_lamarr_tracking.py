"""A synthetic Lamarr tracking set: acceptance, efficiency, resolution and covariance, for one manifest.

Lamarr's tracking is four models loaded from one shared library by symbol (see
``examples/lamarr_tracking.toml`` and ``generated/lamarr_tracking.c``):

- ``acceptance`` (12 -> 1): Dense(32, tanh), 10 residual blocks (Dense(32, tanh) then Add), Dense(1, sigmoid).
- ``efficiency`` (12 -> 4): the seed's model, ``examples/efficiency.keras`` (``make_efficiency.py``).
- ``resolution`` (12 conditions + 128 noise -> 9): a GAN generator with two inputs, conditions and noise,
  joined by a Concatenate inside the model, then Dense(32, tanh) and 4 residual blocks written
  ``x = x + x_`` as Lamarr's Keras 3 notebooks write them (operation nodes, not Add layers); its targets
  are QuantileTransformer-ed, so the export applies the inverse.
- ``covariance`` (15 conditions + 128 noise -> 15): the same, with Lamarr's own target transform: a
  Pipeline of a StandardScaler named "minmax", Lamarr's ``DecorrTransformer`` (from the user module
  ``examples/lamarr_utils.py``, so the manifest trusts it) and a QuantileTransformer to a normal.

Widths are 32, not Lamarr's 128, to keep the committed files small (the exporter does not care). The
conditions of all four are preprocessed with the efficiency model's ``efficiency_tX.pkl`` (covariance:
a StandardScaler of its own, as it takes 15). Each model is trained for a few seconds on synthetic data;
the generators are fitted to their targets with a mean squared error on random noise, not adversarially:
the point is trained, non-trivial weights, not a physics-grade GAN.

    python examples/make_lamarr_tracking.py && python examples/regenerate.py
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

EXAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLES))
WIDTH, NOISE, ROWS = 32, 128, 20_000


def residual(keras, x, width: int, blocks: int, operator: bool = False):
    """Dense(width, tanh), then ``blocks`` residual blocks: Dense(width, tanh) added to its input,
    by an ``Add`` layer or, with ``operator``, by ``x = x + x_`` (a Keras 3 operation node)."""
    h = keras.layers.Dense(width, activation="tanh")(x)
    for _ in range(blocks):
        h_ = keras.layers.Dense(width, activation="tanh")(h)
        h = h + h_ if operator else keras.layers.Add()([h, h_])
    return h


def generator(keras, n_cond: int, n_out: int, name: str):
    conditions, noise = keras.Input((n_cond,), name="conditions"), keras.Input((NOISE,), name="noise")
    h = residual(keras, keras.layers.Concatenate()([conditions, noise]), WIDTH, 4, operator=True)
    return keras.Model([conditions, noise], keras.layers.Dense(n_out)(h), name=name)


def targets(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Acceptance flags, 9 resolution quantities (skewed), 15 covariance entries, smooth in the conditions."""
    log_p, eta = x[:, 3], x[:, 4]
    z = (log_p - 4.0) / 0.7
    accepted = (rng.random(len(x)) < 1 / (1 + np.exp(-(2.0 - 1.2 * (eta - 3.5) ** 2 + 0.5 * z)))).astype(np.float32)
    scale = np.exp(-0.5 * z)[:, None] * (1 + 0.1 * np.arange(9))
    resolution = rng.gamma(2.0, 1.0, (len(x), 9)) * scale - 2.0 * scale
    covariance = np.abs(rng.normal(size=(len(x), 15))) * np.exp(-z)[:, None] + 0.01 * np.arange(15)
    return accepted, resolution, covariance


def main() -> None:
    import keras
    from lamarr_utils import DecorrTransformer
    from make_efficiency import synthetic_tracks
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    from exporter.frontends.sklearn import load_transformer_file

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(5)
    x, _ = synthetic_tracks(ROWS, seed=5)
    accepted, resolution, covariance = targets(x, rng)
    tx = load_transformer_file(EXAMPLES / "efficiency_tX.pkl")
    xs = tx.transform(x).astype(np.float32)

    inputs = keras.Input((12,))
    acceptance = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(residual(keras, inputs, WIDTH, 10)))
    acceptance.compile("adam", "binary_crossentropy")
    acceptance.fit(xs, accepted, epochs=2, batch_size=256, verbose=0)
    acceptance.save(EXAMPLES / "lamarr_acceptance.keras")

    ty_resolution = QuantileTransformer(n_quantiles=100, output_distribution="normal").fit(resolution)
    cov_conditions = np.c_[x, resolution[:, :3]]
    tx_covariance = StandardScaler().fit(cov_conditions)
    ty_covariance = Pipeline(
        [
            ("minmax", StandardScaler()),  # Lamarr's name for it
            ("decorr", DecorrTransformer()),
            ("quantile", QuantileTransformer(n_quantiles=100, output_distribution="normal")),
        ]
    ).fit(covariance)
    for name, conditions, y, ty in (
        ("resolution", xs, resolution, ty_resolution),
        ("covariance", tx_covariance.transform(cov_conditions).astype(np.float32), covariance, ty_covariance),
    ):
        model = generator(keras, conditions.shape[1], y.shape[1], name)
        model.compile("adam", "mse")
        noise = rng.standard_normal((ROWS, NOISE)).astype(np.float32)
        model.fit([conditions, noise], ty.transform(y).astype(np.float32), epochs=2, batch_size=256, verbose=0)
        model.save(EXAMPLES / f"lamarr_{name}.keras")
        (EXAMPLES / f"lamarr_{name}_tY.pkl").write_bytes(pickle.dumps(ty))
    (EXAMPLES / "lamarr_covariance_tX.pkl").write_bytes(pickle.dumps(tx_covariance))
    print("wrote examples/lamarr_{acceptance,resolution,covariance}.keras and their transformers")


if __name__ == "__main__":
    main()
