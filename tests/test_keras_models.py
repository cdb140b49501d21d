"""Whole models: Sequential, Functional DAGs, nested models, legacy .h5, and the efficiency example's network."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from exporter import export_keras

from helpers import ROOT, export_and_check, randomize, saved


def load_example():
    spec = importlib.util.spec_from_file_location("make_efficiency", ROOT / "examples" / "make_efficiency.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("softmax_layer", [True, False], ids=["Softmax layer", "Dense(softmax)"])
def test_seed_efficiency_model(keras, tmp_path, softmax_layer):
    """The efficiency example's network in both softmax forms (scikinC handles only the first)."""
    model = randomize(load_example().build_model(softmax_layer=softmax_layer), seed=3)
    ex = export_keras(saved(model, tmp_path), dispatch="none")  # the dispatch: tests/test_dispatch.py
    compiled = ex.compile(tmp_path, one_row=True)
    report = ex.check(compiled)
    assert report.passed, report.table()
    assert ex.graph.ops[-1].activation.kind == "softmax"  # fused into the last Dense either way
    probabilities = compiled(np.random.default_rng(0).standard_normal((100, 12)))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_sequential_deep(keras, tmp_path):
    L = keras.layers
    layers = [
        L.Dense(32, activation="relu"),
        L.BatchNormalization(),
        L.Dense(32, activation="selu"),
        L.Dropout(0.2),
        L.Dense(16, activation="gelu"),
        L.Dense(2, activation="sigmoid"),
    ]
    model = randomize(keras.Sequential([keras.Input((9,)), *layers]))
    assert export_and_check(model, tmp_path).passed


def test_functional_tensor_used_twice_and_skip(keras, tmp_path):
    L = keras.layers
    x = keras.Input((4,))
    h = L.Dense(8, activation="tanh")(x)
    sq = L.Multiply()([h, h])  # the same tensor twice
    skip = L.Add()([h, L.Dense(8)(sq), h])
    out = L.Dense(3, activation="softmax")(L.Concatenate()([skip, x]))
    assert export_and_check(randomize(keras.Model(x, out)), tmp_path).passed


def test_nested_models(keras, tmp_path):
    L = keras.layers
    inner = keras.Sequential([keras.Input((6,)), L.Dense(6, activation="relu"), L.Dense(6)], name="block")
    x = keras.Input((6,))
    y = L.Add()([x, inner(x)])
    y = inner(y)  # the same nested model applied twice, sharing weights
    model = randomize(keras.Model(x, L.Dense(2)(y)))
    assert export_and_check(model, tmp_path).passed


def test_legacy_h5(keras, tmp_path):
    model = randomize(
        keras.Sequential([keras.Input((3,)), keras.layers.Dense(5, activation="elu"), keras.layers.Dense(2)])
    )
    path = tmp_path / "legacy.h5"
    model.save(path)
    ex = export_keras(path)
    assert ex.symbol == "legacy"
    assert ex.check(ex.compile(tmp_path, one_row=True)).passed


def test_identity_model(keras, tmp_path):
    """No op at all: the function copies its input, also in place."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5)])
    ex = export_keras(model, name="ident")
    compiled = ex.compile(tmp_path, one_row=True)
    rows = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    np.testing.assert_array_equal(compiled(rows), rows)
    np.testing.assert_array_equal(compiled.call_in_place(rows), rows)


def test_inputs_and_outputs_given_as_lists(keras, tmp_path):
    """Lamarr's training code builds keras.Model(inputs=[input], outputs=[x])."""
    x = keras.Input((5,))
    model = randomize(keras.Model(inputs=[x], outputs=[keras.layers.Dense(4, activation="softmax")(x)]))
    assert export_and_check(model, tmp_path).passed
