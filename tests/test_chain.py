"""Whole Lamarr chains: log columns -> transformers -> Keras -> activation -> inverse target transform."""

from __future__ import annotations

import os
import pickle

import joblib
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import MinMaxScaler, PowerTransformer, QuantileTransformer, StandardScaler

from exporter.api import export_chain
from exporter.check.inputs import chain_inputs

import helpers
from helpers import assert_user_error, exported_symbols, randomize, run_cli, saved, strict_compile

rng = np.random.default_rng(0)
RAW = np.stack(
    [
        rng.uniform(2.0, 5.0, 2000),  # eta
        np.exp(rng.uniform(np.log(10.0), np.log(1e4), 2000)),  # pT: logged first
        rng.uniform(-np.pi, np.pi, 2000),  # phi
        rng.choice([-1.0, 1.0], 2000),  # charge: a flag, passed through
    ],
    axis=1,
)
LOGGED = RAW.copy()
LOGGED[:, 1] = np.log(LOGGED[:, 1])


def lamarr_tx():
    quantile = QuantileTransformer(n_quantiles=100, output_distribution="normal")
    return ColumnTransformer([("quantile", quantile, [0, 1, 2])], remainder="passthrough").fit(LOGGED)


def network(keras, n_in, n_out, activation=None):
    L = keras.layers
    x = keras.Input((n_in,))
    h = L.Dense(32, activation="tanh")(x)
    return randomize(keras.Model(x, L.Dense(n_out, activation=activation)(L.Add()([h, L.Dense(32)(h)]))))


def test_classifier_chain_from_files(keras, tmp_path, capsys):
    """The tracking-efficiency shape: log(pT), Lamarr's ColumnTransformer, a logit, a sigmoid."""
    joblib.dump(lamarr_tx(), tmp_path / "tX.joblib")
    model = saved(network(keras, 4, 1), tmp_path, "eff.keras")
    code, out, _ = run_cli(
        capsys,
        model,
        "--log-columns",
        "1",
        "--preprocess",
        tmp_path / "tX.joblib",
        "--output-activation",
        "sigmoid",
        "-o",
        tmp_path / "eff.c",
        "--so",
        tmp_path / "eff.so",
    )
    assert code == 0, out
    assert "parity: passed against Keras + scikit-learn" in out
    symbols = exported_symbols(tmp_path / "eff.so")
    assert {"eff", "eff_preprocess", "eff_dnn", "eff_preprocess_inverse"} <= set(symbols)
    assert "eff_postprocess" not in symbols
    header = (tmp_path / "eff.h").read_text()
    assert (
        "#define eff_preprocess_N_OUTPUTS 4" in header
        and "float *eff_dnn(float *output, const float *input);" in header
    )


def test_generator_chain_with_target_transform(keras, tmp_path, capsys):
    """A regression/generative shape: the network predicts transformed targets, the C returns physical ones."""
    targets = np.stack([rng.lognormal(0.0, 1.0, 2000), rng.normal(5.0, 2.0, 2000), rng.uniform(0, 1, 2000)], axis=1)
    ty = QuantileTransformer(n_quantiles=64, output_distribution="normal").fit(targets)
    with open(tmp_path / "tY.pkl", "wb") as f:
        pickle.dump(ty, f)
    tx = StandardScaler().fit(LOGGED)
    import skops.io as sio

    sio.dump(tx, tmp_path / "tX.skops")
    model = saved(network(keras, 4, 3), tmp_path, "gen.keras")
    code, out, _ = run_cli(
        capsys,
        model,
        "--log-columns",
        "1",
        "--preprocess",
        tmp_path / "tX.skops",
        "--target-transform",
        tmp_path / "tY.pkl",
        "-o",
        tmp_path / "gen.c",
    )
    assert code == 0, out
    ex = export_chain(model, log_columns=[1], preprocess=[tx], target_transform=ty, name="gen")
    compiled = ex.compile(tmp_path, one_row=True)
    rows = ex.inputs(500)
    parts = {
        name: compiled.sibling(f"gen_{name}", w_in, w_out)
        for name, w_in, w_out in (("preprocess", 4, 4), ("dnn", 4, 3), ("postprocess", 3, 3))
    }
    composed = parts["postprocess"](parts["dnn"](parts["preprocess"](rows)))
    np.testing.assert_array_equal(compiled(rows), composed)
    np.testing.assert_array_equal(compiled.call_in_place(rows), composed)
    inside = targets.min(axis=0) <= compiled(rows)
    assert inside.all(), "the inverse quantile transform keeps outputs within the fitted target range"


def test_preprocess_inverse_round_trip(keras, tmp_path):
    ex = export_chain(network(keras, 4, 2), log_columns=[1], preprocess=[lamarr_tx()], name="chain")
    compiled = ex.compile(tmp_path, one_row=True)
    forward = compiled.sibling("chain_preprocess", 4, 4)
    backward = compiled.sibling("chain_preprocess_inverse", 4, 4)
    rows = RAW[:300].astype(np.float32)
    np.testing.assert_allclose(backward(forward(rows)), rows, rtol=2e-5)


def test_log_of_non_positive_is_numpy_s(keras, tmp_path):
    """log(0) = -inf and log(-1) = nan in C as in numpy; the rest of the chain decides what follows."""
    ex = export_chain(network(keras, 3, 1), log_columns=[0, 2], name="logs")
    pre = ex.compile(tmp_path, one_row=True).sibling("logs_preprocess", 3, 3)
    rows = np.array([[0.0, 1.0, -1.0], [-0.0, 2.0, 1e-30], [np.inf, -5.0, 3.0]], dtype=np.float32)
    with np.errstate(all="ignore"):
        expected = rows.astype(np.float64)
        expected[:, [0, 2]] = np.log(expected[:, [0, 2]])
    np.testing.assert_array_equal(pre(rows), expected.astype(np.float32))


def test_chain_compiles_with_strict_flags(keras, tmp_path):
    tx = ColumnTransformer(
        [
            ("q", QuantileTransformer(n_quantiles=20, output_distribution="normal"), [0, 1]),
            ("p", PowerTransformer(method="box-cox"), [2]),
            ("m", MinMaxScaler(clip=True), [3]),
        ]
    ).fit(np.abs(LOGGED) + 0.1)
    ty = QuantileTransformer(n_quantiles=20, output_distribution="normal").fit(rng.normal(size=(300, 2)))
    ex = export_chain(network(keras, 4, 2), preprocess=[tx], target_transform=ty, name="strict_chain")
    c_file, _ = ex.write(tmp_path / "strict_chain.c")
    strict_compile(c_file, tmp_path)
    assert ex.check(ex.compile(tmp_path, one_row=True)).passed


def test_inputs_sample_the_fitted_range():
    """Rows reach every quantile exactly (plateaus and bounds included), and a little beyond."""
    tx = lamarr_tx()
    ex = export_chain(preprocess=[tx], log_columns=[1], name="tx")
    rows = chain_inputs(ex.chain, 3000).astype(np.float64)
    quantiles = tx.named_transformers_["quantile"].quantiles_
    for column in (0, 2):
        values = rows[:, column]
        assert np.isin(quantiles[:, column].astype(np.float32), values.astype(np.float32)).mean() > 0.9
        assert values.min() < quantiles[0, column] and values.max() > quantiles[-1, column]
    pt = rows[:, 1]  # sampled in log space, then exponentiated back to physical pT
    assert pt.min() > 0 and pt.max() > 1000


def test_transformer_alone_from_cli(tmp_path, capsys):
    with open(tmp_path / "tX.pkl", "wb") as f:
        pickle.dump(lamarr_tx(), f)
    code, out, _ = run_cli(
        capsys, tmp_path / "tX.pkl", "--name", "tX", "-o", tmp_path / "tX.c", "--so", tmp_path / "tX.so"
    )
    assert code == 0, out
    assert {"tX", "tX_inverse"} <= set(exported_symbols(tmp_path / "tX.so"))


class Exploit:
    """A pickle that runs a shell command when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted_module"])
@pytest.mark.parametrize("suffix", [".pkl", ".joblib"])
def test_malicious_pickle_is_refused_without_running(capsys, tmp_path, monkeypatch, suffix, trusted, keras):
    """Also when the user trusts a module of theirs that imports os.system: only what it defines loads."""
    marker = tmp_path / "pwned"
    bad = tmp_path / f"tX{suffix}"
    with open(bad, "wb") as f:
        pickle.dump(Exploit(marker), f)
    model = saved(network(keras, 4, 1), tmp_path, "m.keras")
    trust = []
    if trusted:
        module = helpers.user_module(tmp_path, monkeypatch, "from os import system\n")
        trust = ["--trust", helpers.forget_module(monkeypatch, module)]
    assert_user_error(
        capsys,
        tmp_path,
        [model, "--preprocess", bad, "-o", tmp_path / "m.c", *trust],
        f"tX{suffix}",
        "refusing to load",
        "system",
    )
    assert not marker.exists()


def test_width_mismatches(capsys, tmp_path, keras):
    with open(tmp_path / "tX.pkl", "wb") as f:
        pickle.dump(StandardScaler().fit(RAW[:, :3]), f)
    with open(tmp_path / "tY.pkl", "wb") as f:
        pickle.dump(StandardScaler().fit(RAW[:, :2]), f)
    model = saved(network(keras, 4, 3), tmp_path, "m.keras")
    assert_user_error(
        capsys,
        tmp_path,
        [model, "--preprocess", tmp_path / "tX.pkl", "-o", tmp_path / "m.c"],
        "preprocessing (tX.pkl: StandardScaler) gives 3 values but the network (m.keras) takes 4",
    )
    assert_user_error(
        capsys,
        tmp_path,
        [model, "--target-transform", tmp_path / "tY.pkl", "-o", tmp_path / "m.c"],
        "network (m.keras) gives 3 values but the target transform (tY.pkl: StandardScaler) takes 2",
    )
    assert_user_error(capsys, tmp_path, [model, "--log-columns", "7", "-o", tmp_path / "m.c"], "--log-columns [7]")


def test_unsupported_transformer_names_its_path(capsys, tmp_path, keras):
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline

    tx = ColumnTransformer(
        [("colcnv", Pipeline([("quantile", QuantileTransformer(n_quantiles=10)), ("pca", PCA(2))]), [0, 1, 2])],
        remainder="passthrough",
    )
    with open(tmp_path / "tX.pkl", "wb") as f:
        pickle.dump(tx.fit(LOGGED), f)
    model = saved(network(keras, 3, 1), tmp_path, "m.keras")
    assert_user_error(
        capsys,
        tmp_path,
        [model, "--preprocess", tmp_path / "tX.pkl", "-o", tmp_path / "m.c"],
        "tX / colcnv / pca",
        "PCA",
    )


def test_several_preprocess_files_apply_in_order(keras, tmp_path, capsys):
    first = StandardScaler().fit(LOGGED)
    second = MinMaxScaler(feature_range=(-1, 1)).fit(first.transform(LOGGED))
    for name, est in (("a.pkl", first), ("b.pkl", second)):
        with open(tmp_path / name, "wb") as f:
            pickle.dump(est, f)
    model = saved(network(keras, 4, 2), tmp_path, "m.keras")
    code, out, _ = run_cli(
        capsys,
        model,
        "--log-columns",
        "1",
        "--preprocess",
        tmp_path / "a.pkl",
        "--preprocess",
        tmp_path / "b.pkl",
        "-o",
        tmp_path / "m.c",
    )
    assert code == 0, out
    assert out.index("  a: Standardize") < out.index("  b: MulAdd")  # the order of the flags
    ex = export_chain(model, log_columns=[1], preprocess=[first, second], name="two")
    pre = ex.compile(tmp_path, one_row=True).sibling("two_preprocess", 4, 4)
    rows = RAW[:100].astype(np.float32)
    logged = rows.astype(np.float64)
    logged[:, 1] = np.log(logged[:, 1])
    np.testing.assert_array_equal(pre(rows), second.transform(first.transform(logged)).astype(np.float32))


def test_transformer_with_a_random_state_object_loads(tmp_path):
    """random_state=np.random.RandomState(...) is pickled with the transformer: numpy's own, allowed."""
    from exporter.frontends.sklearn import load_transformer_file

    est = QuantileTransformer(n_quantiles=10, random_state=np.random.RandomState(3)).fit(LOGGED)
    with open(tmp_path / "q.pkl", "wb") as f:
        pickle.dump(est, f)
    np.testing.assert_array_equal(load_transformer_file(tmp_path / "q.pkl").quantiles_, est.quantiles_)


def test_trace_covers_the_preprocessing(keras, tmp_path):
    """The trace compares SYMBOL_preprocess with scikit-learn first; a broken centre is named there."""
    from exporter.check.trace import trace

    ex = export_chain(
        network(keras, 4, 2), log_columns=[1], preprocess=[StandardScaler().fit(LOGGED)], name="tr", dispatch="none"
    )
    report = ex.check(ex.compile(one_row=True))
    clean = trace(ex, report.arrays.inputs, list(report.worst_rows(5)), report.atol, report.rtol)
    assert clean.first_drift is None and clean.steps[0].name == "preprocessing" and clean.steps[0].index == 1
    marker = "tr_preprocess_1_center[4] = {\n    "
    assert marker in ex.source.c
    ex.c_edit = lambda c: c.replace(marker, marker + "1.0 + ")
    report = ex.check(ex.compile(one_row=True))
    assert not report.passed
    broken = trace(ex, report.arrays.inputs, list(report.worst_rows(5)), report.atol, report.rtol)
    assert broken.first_drift is not None and broken.first_drift.name == "preprocessing"
