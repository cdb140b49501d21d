"""Model shapes from Lamarr's training repositories: pidgan's ResGenerator, the isMuon classifier's tY."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from exporter import export_chain

from helpers import assert_user_error, export_through_cli_and_manifest, randomize, saved

N_COND, N_LATENT = 6, 64


def res_generator(keras, n_hidden: int = 4, units: int = 32, n_out: int = 3):
    """Built as pidgan's ``ResGenerator`` builds its network: one input (conditions, then the latent
    values), hidden blocks Dense -> LeakyReLU layer -> Dropout, each block after the first added to
    the previous block's output, a linear Dense head. No pidgan needed."""
    L = keras.layers
    inputs = keras.Input((N_COND + N_LATENT,))
    blocks = [[L.Dense(units), L.LeakyReLU(negative_slope=0.1), L.Dropout(0.1)] for _ in range(n_hidden)]
    in_ = inputs
    for layer in blocks[0]:
        in_ = layer(in_)
    for block in blocks[1:]:
        out = in_
        for layer in block:
            out = layer(out)
        in_ = L.Add()([in_, out])
    return randomize(keras.Model(inputs, L.Dense(n_out)(in_)), seed=7)


def test_res_generator_with_trailing_noise(capsys, keras, tmp_path):
    path = saved(res_generator(keras), tmp_path, "res_generator.keras")
    out = export_through_cli_and_manifest(capsys, tmp_path, path, noise=N_LATENT)
    assert f"{N_COND} inputs + {N_LATENT} noise -> 3 outputs" in out
    assert out.count("+ skip") == 3  # every Add fused into the Dense that feeds it
    ex = export_chain(path, noise=N_LATENT)
    compiled = ex.compile(tmp_path, one_row=True)
    rows = ex.inputs(samples=300)
    noise = ex.noise(len(rows))
    assert ex.check(compiled, rows, noise=noise).passed
    assert not np.allclose(compiled(rows, noise), compiled(rows, ex.noise(len(rows), seed=5)))  # noise is read


def is_muon_classifier(keras, n_in: int = 4):
    L = keras.layers
    inputs = keras.Input((n_in,))
    h = L.Dense(16, activation="relu")(inputs)
    return randomize(keras.Model(inputs, L.Dense(1, activation="sigmoid")(L.Dense(16, activation="relu")(h))))


@pytest.fixture
def is_muon_files(keras, tmp_path):
    """The isMuon classifier as Lamarr stores it: a fitted tX and an unfitted FunctionTransformer(None) as tY."""
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.default_rng(0)
    (tmp_path / "tX.pkl").write_bytes(pickle.dumps(StandardScaler().fit(rng.normal(2.0, 3.0, (300, 4)))))
    tY = FunctionTransformer(None)
    assert not hasattr(tY, "n_features_in_")  # unfitted: it records no width
    (tmp_path / "tY.pkl").write_bytes(pickle.dumps(tY))
    return saved(is_muon_classifier(keras), tmp_path, "isMuon.keras"), tmp_path / "tX.pkl", tmp_path / "tY.pkl"


def test_unfitted_identity_target_transform(capsys, tmp_path, is_muon_files):
    model, tx, ty = is_muon_files
    out = export_through_cli_and_manifest(capsys, tmp_path, model, preprocess=[tx], target_transform=ty)
    assert "4 inputs -> 1 output," in out
    ex = export_chain(model, preprocess=[tx], target_transform=ty)
    assert ex.chain.post is not None and ex.chain.post.n_inputs == 1 and not ex.chain.post.ops


def test_width_mismatch_names_file_and_step(capsys, keras, tmp_path, is_muon_files):
    from sklearn.preprocessing import QuantileTransformer

    model, tx, _ = is_muon_files
    ty = tmp_path / "tY3.pkl"
    ty.write_bytes(pickle.dumps(QuantileTransformer(n_quantiles=20).fit(np.random.default_rng(1).random((50, 3)))))
    assert_user_error(
        capsys,
        tmp_path,
        [model, "--preprocess", tx, "--target-transform", ty, "-o", tmp_path / "m.c"],
        "the network (isMuon.keras) gives 1 values but the target transform (tY3.pkl: QuantileTransformer) takes 3",
    )
