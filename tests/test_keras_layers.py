"""Parity of every supported Keras layer and activation: compiled C against Keras itself.

Each case is a small model saved to a .keras file, exported from that file, compiled
with Lamarr's flags and checked on 10,000 random rows plus the edge rows (zeros,
constants up to 30, one-hot spikes up to 100) at the default tolerance |c - ref| <= 1e-5 + 1e-4 |ref|.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from helpers import export_and_check, randomize

N_IN = 5

ACTIVATIONS = [
    "linear",
    "relu",
    "tanh",
    "sigmoid",
    "softmax",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "softplus",
    "softsign",
    "hard_sigmoid",
    "exponential",
    "relu6",
    "mish",
    "hard_silu",
    "hard_swish",
    "log_sigmoid",
    "log_softmax",
    "celu",
    "hard_tanh",
]


def sequential(keras, layers, n_in=N_IN, seed=0):
    return randomize(keras.Sequential([keras.Input((n_in,)), *layers]), seed)


def assert_parity(model, tmp_path):
    report = export_and_check(model, tmp_path)
    assert report.rows >= 10_000
    assert report.passed, report.table()
    return report


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_activation_string(keras, tmp_path, activation):
    assert_parity(sequential(keras, [keras.layers.Dense(7, activation=activation)]), tmp_path)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_layer(keras, tmp_path, activation):
    model = sequential(keras, [keras.layers.Dense(6), keras.layers.Activation(activation), keras.layers.Dense(3)])
    assert_parity(model, tmp_path)


@pytest.mark.parametrize("dtype", ["float", "double"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu", "mish", "softplus", "selu", "log_softmax", "relu6"])
def test_math_libm_and_double(keras, tmp_path, activation, dtype):
    """--math libm keeps libm's functions, --dtype double computes in double: parity holds for both."""
    from exporter import export_keras

    model = sequential(keras, [keras.layers.Dense(7, activation=activation), keras.layers.Dense(3)])
    ex = export_keras(model, name="libm_model", math="libm", dtype=dtype)
    report = ex.check(ex.compile(tmp_path, one_row=True))
    assert report.passed, report.table()


@pytest.mark.parametrize(
    "fn, kwargs",
    [
        ("gelu", {"approximate": True}),
        ("gelu", {"approximate": False}),
        ("leaky_relu", {"negative_slope": 0.01}),
        ("elu", {"alpha": 0.5}),
        ("relu", {"negative_slope": 0.1, "max_value": 2.0, "threshold": 0.3}),
    ],
)
def test_parametrised_activation_in_memory(keras, tmp_path, fn, kwargs):
    """Keras cannot save a functools.partial activation, but a live model can hold one."""
    from exporter import export_keras

    act = functools.partial(getattr(keras.activations, fn), **kwargs)
    model = sequential(keras, [keras.layers.Dense(7, activation=act)])
    ex = export_keras(model, name="live")
    report = ex.check(ex.compile(tmp_path, one_row=True))
    assert report.passed, report.table()


LAYERS = {
    "dense_no_bias": lambda L: [L.Dense(7, use_bias=False)],
    "softmax_layer": lambda L: [L.Dense(7), L.Softmax()],
    "relu_layer": lambda L: [L.Dense(7), L.ReLU()],
    "relu_max": lambda L: [L.Dense(7), L.ReLU(max_value=0.8)],
    "relu_slope": lambda L: [L.Dense(7), L.ReLU(negative_slope=0.1)],
    "relu_threshold": lambda L: [L.Dense(7), L.ReLU(threshold=0.4)],
    "relu_all": lambda L: [L.Dense(7), L.ReLU(negative_slope=0.2, max_value=1.5, threshold=0.3)],
    "leaky_relu_layer": lambda L: [L.Dense(7), L.LeakyReLU()],
    "leaky_relu_slope": lambda L: [L.Dense(7), L.LeakyReLU(negative_slope=0.05)],
    "elu_layer": lambda L: [L.Dense(7), L.ELU(alpha=0.7)],
    "prelu": lambda L: [L.Dense(7), L.PReLU()],
    "prelu_shared": lambda L: [L.Dense(7), L.PReLU(shared_axes=[1])],
    "dropouts": lambda L: [
        L.Dropout(0.5),
        L.Dense(7),
        L.GaussianNoise(0.3),
        L.GaussianDropout(0.3),
        L.AlphaDropout(0.3),
        L.Identity(),
    ],
    "batchnorm_folded": lambda L: [L.Dense(7), L.BatchNormalization(), L.Activation("tanh")],
    "batchnorm_standalone": lambda L: [L.BatchNormalization(), L.Dense(4)],
    "batchnorm_plain": lambda L: [L.Dense(7, activation="relu"), L.BatchNormalization(center=False, scale=False)],
    "rescaling": lambda L: [L.Rescaling(scale=0.5, offset=-1.0), L.Dense(3)],
    "normalization_invert": lambda L: [
        L.Dense(3),
        L.Normalization(mean=[1.0, 2.0, -3.0], variance=[4.0, 0.5, 2.0], invert=True),
    ],
    "flatten": lambda L: [L.Flatten(), L.Dense(3)],
}


@pytest.mark.parametrize("case", sorted(LAYERS))
def test_layer(keras, tmp_path, case):
    assert_parity(sequential(keras, LAYERS[case](keras.layers)), tmp_path)


def test_normalization_adapted(keras, tmp_path):
    data = np.random.default_rng(1).normal(loc=[0, 5, -2, 100, 0.01], scale=[1, 3, 0.1, 50, 0.001], size=(500, N_IN))
    norm = keras.layers.Normalization()
    norm.adapt(data)
    model = keras.Sequential([keras.Input((N_IN,)), norm, keras.layers.Dense(3, activation="tanh")])
    randomize(model.layers[-1], 2)
    assert_parity(model, tmp_path)


MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]


@pytest.mark.parametrize("merge", MERGES)
def test_merge(keras, tmp_path, merge):
    L = keras.layers
    x = keras.Input((N_IN,))
    a = L.Dense(6, activation="tanh")(x)
    b = L.Dense(6)(x)
    branches = [a, b] if merge == "Subtract" else [a, b, L.Dense(6, activation="sigmoid")(a)]
    y = getattr(L, merge)()(branches)
    model = randomize(keras.Model(x, L.Dense(3)(y)))
    assert_parity(model, tmp_path)


def test_concatenate_with_raw_input(keras, tmp_path):
    L = keras.layers
    x = keras.Input((N_IN,))
    y = L.Concatenate()([x, L.Dense(4, activation="relu")(x), x])
    assert_parity(randomize(keras.Model(x, L.Dense(2)(y))), tmp_path)
