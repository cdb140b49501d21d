"""Build and briefly train a calorimeter-like set Transformer over particles, with a mask.

A shower is a set of up to 16 particles, each with 4 features (log energy, eta, phi, charge); a 0/1 mask says
which of the 16 slots hold a particle (the rest is padding). Two Transformer encoder blocks (MultiHeadAttention
with the mask, Add, LayerNormalization, a Dense feed-forward, Add, LayerNormalization) let every particle see
the others; a Dense head predicts, per particle, the fraction of its energy deposited in the calorimeter and
a log deposit time. The target is a smooth function of a particle and its neighbours in (eta, phi), so the
weights are trained and non-trivial; no real data is needed. Writes examples/calo_set.keras; the export takes
the two inputs side by side in one row (docs/sets.md).

    python examples/make_calo_set.py [--epochs 4]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ITEMS, FEATURES, WIDTH = 16, 4, 16


def synthetic_showers(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Particles, masks (a random count of particles first, then padding) and per-particle targets."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, ITEMS, FEATURES), dtype=np.float32)
    counts = rng.integers(1, ITEMS + 1, n)
    mask = (np.arange(ITEMS) < counts[:, None]).astype(np.float32)
    x[..., 0] = rng.normal(1.0, 0.8, (n, ITEMS))  # log10 E [GeV]
    x[..., 1] = rng.normal(0.0, 0.3, (n, ITEMS))  # eta, relative to the shower axis
    x[..., 2] = rng.normal(0.0, 0.3, (n, ITEMS))  # phi, relative to the shower axis
    x[..., 3] = rng.choice([-1.0, 0.0, 1.0], (n, ITEMS))  # charge
    x *= mask[..., None]
    distance = np.hypot(x[:, :, None, 1] - x[:, None, :, 1], x[:, :, None, 2] - x[:, None, :, 2])
    near = (np.exp(-distance / 0.2) * mask[:, None, :] * 10 ** x[:, None, :, 0]).sum(-1)
    fraction = 1 / (1 + np.exp(-(x[..., 0] - 0.3 * np.abs(x[..., 3]))))
    y = np.stack([fraction, np.log1p(near) - 0.5 * x[..., 0]], axis=-1).astype(np.float32)
    return x, mask, y * mask[..., None]


def build(keras):
    L = keras.layers
    particles = keras.Input((ITEMS, FEATURES), name="particles")
    mask = keras.Input((ITEMS,), name="mask")
    keys = L.Reshape((1, ITEMS), name="keys_mask")(mask)  # every particle attends to the kept ones
    h = L.Dense(WIDTH, name="embed")(particles)
    for block in range(2):
        a = L.MultiHeadAttention(num_heads=2, key_dim=8, name=f"attention_{block}")(h, h, attention_mask=keys)
        h = L.LayerNormalization(name=f"norm_a{block}")(L.Add(name=f"skip_a{block}")([h, a]))
        f = L.Dense(2 * WIDTH, activation="relu", name=f"ff_in{block}")(h)
        f = L.Dense(WIDTH, name=f"ff_out{block}")(f)
        h = L.LayerNormalization(name=f"norm_f{block}")(L.Add(name=f"skip_f{block}")([h, f]))
    out = L.Dense(2, name="deposit")(h)
    return keras.Model([particles, mask], out, name="calo_set")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "calo_set.keras")
    args = parser.parse_args()

    import keras

    keras.utils.set_random_seed(0)
    x, mask, y = synthetic_showers(4000)
    model = build(keras)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    model.fit([x, mask], y, epochs=args.epochs, batch_size=64, verbose=0)
    model.save(args.out)
    print(f"wrote {args.out}: loss {model.evaluate([x, mask], y, verbose=0):.4f}")


if __name__ == "__main__":
    main()
