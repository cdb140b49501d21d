"""A synthetic Lamarr particle-identification set: for muon, pion, kaon and proton, four chained generators
and an isMuon classifier, exported as ``full_<species>_pipe`` and ``isMuon_<species>_pipe`` pipelines.

Each species has (see ``examples/lamarr_pid.toml`` and ``generated/lamarr_pid.c``):

- ``rich_<species>``: conditions (p, eta, nTracks, charge, isMuon) + 64 noise -> 4 RICH DLLs;
- ``muon_<species>``: conditions + 64 noise -> 2 Muon likelihoods;
- ``gpidmu_<species>``: conditions + the RICH and Muon outputs (11) + 64 noise -> 5 GlobalPID values
  (2 combined DLLs, 3 ProbNN-like probabilities);
- ``gpidh_<species>``: the same 11 + 64 noise -> 4 (2 combined DLLs, 2 probabilities);
- ``ismuon_<species>``: p, eta, nTracks, charge -> the probability that the track is a muon (sigmoid).

The generators are shaped like pidgan's ``ResGenerator``: the conditions and the noise concatenated,
Dense -> LeakyReLU -> Dropout, then residual blocks (Dense -> LeakyReLU -> Dropout, added to their
input), then a linear Dense. Widths are 64, not pidgan's 128, with 2 residual blocks, so that the 16
generators stay a few MB of C and the tests that regenerate and build them stay fast (the exporter
does not care about the width). Preprocessing, as in Lamarr:

- tX: ColumnTransformer[QuantileTransformer(normal) on p, eta, nTracks; StandardScaler on charge;
  passthrough isMuon] (the GlobalPID generators: and a StandardScaler on the 6 RICH and Muon values);
- RICH and Muon tY: QuantileTransformer(normal);
- GlobalPID tY: ColumnTransformer[StandardScaler on the DLLs; a logit on the probabilities]. The logit
  is written with numpy functions the exporter knows, ``logit(q) = 2 arctanh(2q - 1)``: a MinMaxScaler
  fitted on [0, 1] to (-1, 1), then FunctionTransformer(np.arctanh, inverse_func=np.tanh) (so its
  inverse is the sigmoid, up to the factor 2 the network learns).

Each model is trained for a few seconds on synthetic data, the generators with a mean squared error on
random noise, not adversarially: the point is trained, non-trivial weights chained as Lamarr chains them.

    python examples/make_lamarr_pid.py && python examples/regenerate.py
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

EXAMPLES = Path(__file__).resolve().parent
OUT = EXAMPLES / "lamarr_pid"
SPECIES = ("muon", "pion", "kaon", "proton")
WIDTH, BLOCKS, LATENT, ROWS = 64, 2, 64, 20_000
MASS = {"muon": 105.7, "pion": 139.6, "kaon": 493.7, "proton": 938.3}


def res_generator(keras, n_cond: int, n_out: int, name: str):
    """pidgan's ResGenerator, small: Dense -> LeakyReLU -> Dropout, residual blocks, a linear output."""
    L = keras.layers
    conditions, noise = keras.Input((n_cond,), name="conditions"), keras.Input((LATENT,), name="noise")
    h = L.Dropout(0.1)(L.LeakyReLU(negative_slope=0.1)(L.Dense(WIDTH)(L.Concatenate()([conditions, noise]))))
    for _ in range(BLOCKS):
        block = L.Dropout(0.1)(L.LeakyReLU(negative_slope=0.1)(L.Dense(WIDTH)(h)))
        h = L.Add()([h, block])
    return keras.Model([conditions, noise], L.Dense(n_out)(h), name=name)


def classifier(keras, name: str):
    L = keras.layers
    x = keras.Input((4,))
    h = L.Dropout(0.1)(L.LeakyReLU(negative_slope=0.1)(L.Dense(32)(x)))
    return keras.Model(x, L.Dense(1, activation="sigmoid")(h), name=name)


def conditions(n: int, rng: np.random.Generator) -> np.ndarray:
    """p (MeV), eta, nTracks, charge, isMuon (filled in per species)."""
    return np.c_[
        np.exp(rng.normal(np.log(2.0e4), 0.9, n)),
        rng.uniform(1.8, 5.5, n),
        rng.gamma(4.0, 40.0, n).round(),
        rng.choice([-1.0, 1.0], n),
        np.zeros(n),
    ]


def responses(x: np.ndarray, species: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """isMuon, RICH DLLs, Muon likelihoods and GlobalPID values, smooth in the conditions, by species."""
    n = len(x)
    beta_gamma = x[:, 0] / MASS[species]
    z = np.log(beta_gamma) - 4.0
    is_mu = float(species == "muon")
    x[:, 4] = rng.random(n) < 1 / (1 + np.exp(-(4.0 * is_mu - 2.0 + 0.3 * z)))
    shift = {"muon": (1.0, 3.0, -2.0, -3.0), "pion": (0.0, 0.5, -4.0, -5.0), "kaon": (-3.0, -2.0, 6.0, 2.0)}
    rich_mean = np.array(shift.get(species, (-4.0, -3.0, 3.0, 8.0)))
    rich = rich_mean * np.tanh(0.5 * z + 1.0)[:, None] + rng.gamma(2.0, 1.5, (n, 4)) - 3.0
    muon = np.c_[-0.5 + 1.5 * x[:, 4] * (1 + is_mu), -1.0 + 0.3 * z] + rng.normal(0, 0.7, (n, 2))
    logits = np.c_[rich[:, 1] - rich[:, 0], muon[:, 0] - muon[:, 1], rich[:, 2] - rich[:, 0]]
    prob = 1 / (1 + np.exp(-(logits + rng.normal(0, 0.5, logits.shape))))
    prob = np.clip(prob, 1e-3, 1 - 1e-3)
    gpid_mu = np.c_[rich[:, 1] + muon[:, 0], rich[:, 0] - muon[:, 1], prob]
    gpid_h = np.c_[rich[:, 2] - rich[:, 1], rich[:, 3] - rich[:, 2], prob[:, [0, 2]]]
    return {"rich": rich, "muon": muon, "gpidmu": gpid_mu, "gpidh": gpid_h}


def tx(n_extra: int):
    """Lamarr's conditions preprocessing, and a StandardScaler on ``n_extra`` generated values after them."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    parts = [
        ("quantile", QuantileTransformer(n_quantiles=100, output_distribution="normal"), [0, 1, 2]),
        ("charge", StandardScaler(), [3]),
        ("ismuon", "passthrough", [4]),
    ]
    if n_extra:
        parts.append(("generated", StandardScaler(), list(range(5, 5 + n_extra))))
    return ColumnTransformer(parts)


def logit_ty(n_dll: int, y: np.ndarray):
    """GlobalPID targets: StandardScaler on the DLLs, ``arctanh(2q - 1)`` (logit / 2) on the probabilities.

    The MinMaxScaler must map [0, 1] to (-1, 1) exactly: it is fitted with two rows at 0 and 1 added
    (the DLLs of those rows at their mean, so the StandardScaler's centre is unchanged).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler

    n_prob = y.shape[1] - n_dll
    ends = np.c_[np.tile(y[:, :n_dll].mean(axis=0), (2, 1)), [[0.0] * n_prob, [1.0] * n_prob]]
    logit = Pipeline(
        [
            ("unit", MinMaxScaler(feature_range=(-1.0, 1.0))),
            ("arctanh", FunctionTransformer(np.arctanh, inverse_func=np.tanh, check_inverse=False)),
        ]
    )
    ty = ColumnTransformer(
        [("dll", StandardScaler(), list(range(n_dll))), ("prob", logit, list(range(n_dll, n_dll + n_prob)))]
    )
    with np.errstate(divide="ignore"):  # arctanh(+-1) of the two added rows, while fitting
        return ty.fit(np.r_[y, ends])


def fit_generator(keras, model, cond: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> None:
    model.compile("adam", "mse")
    noise = rng.standard_normal((len(cond), LATENT)).astype(np.float32)
    model.fit([cond.astype(np.float32), noise], target.astype(np.float32), epochs=2, batch_size=256, verbose=0)


def main() -> None:
    import keras
    from sklearn.preprocessing import QuantileTransformer

    keras.utils.set_random_seed(0)
    OUT.mkdir(exist_ok=True)
    for index, species in enumerate(SPECIES):
        rng = np.random.default_rng(10 + index)
        x = conditions(ROWS, rng)
        y = responses(x, species, rng)
        base_tx = tx(0).fit(x)
        cond = base_tx.transform(x)
        files: dict[str, object] = {f"tX_{species}": base_tx}
        for stage in ("rich", "muon"):
            ty = QuantileTransformer(n_quantiles=100, output_distribution="normal").fit(y[stage])
            model = res_generator(keras, 5, y[stage].shape[1], f"{stage}_{species}")
            fit_generator(keras, model, cond, ty.transform(y[stage]), rng)
            model.save(OUT / f"{stage}_{species}.keras")
            files[f"{stage}_{species}_tY"] = ty
        gpid_x = np.c_[x, y["rich"], y["muon"]]
        gpid_tx = tx(6).fit(gpid_x)
        files[f"gpid_{species}_tX"] = gpid_tx
        for stage, n_dll in (("gpidmu", 2), ("gpidh", 2)):
            ty = logit_ty(n_dll, y[stage])
            model = res_generator(keras, 11, y[stage].shape[1], f"{stage}_{species}")
            fit_generator(keras, model, gpid_tx.transform(gpid_x), ty.transform(y[stage]), rng)
            model.save(OUT / f"{stage}_{species}.keras")
            files[f"{stage}_{species}_tY"] = ty
        ismuon, ismuon_tx = classifier(keras, f"ismuon_{species}"), tx_ismuon(x)
        ismuon.compile("adam", "binary_crossentropy")
        ismuon.fit(ismuon_tx.transform(x[:, :4]).astype(np.float32), x[:, 4], epochs=2, batch_size=256, verbose=0)
        ismuon.save(OUT / f"ismuon_{species}.keras")
        files[f"ismuon_{species}_tX"] = ismuon_tx
        for name, transformer in files.items():
            (OUT / f"{name}.pkl").write_bytes(pickle.dumps(transformer))
    print(f"wrote {OUT.relative_to(EXAMPLES.parent)}/: 20 models and their transformers")


def tx_ismuon(x: np.ndarray):
    """The isMuon classifier's preprocessing: the conditions' without isMuon."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    return ColumnTransformer(
        [
            ("quantile", QuantileTransformer(n_quantiles=100, output_distribution="normal"), [0, 1, 2]),
            ("charge", StandardScaler(), [3]),
        ]
    ).fit(x[:, :4])


if __name__ == "__main__":
    main()
