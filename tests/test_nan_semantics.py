"""NaN and infinities through every activation and merge, and every tree layout: the C keeps them where Keras
and scikit-learn keep them.

One functional model applies each supported activation (strings, ReLU configurations, the
activation layers) and each elementwise merge to the same inputs, side by side; rows full of
NaN, infinities, signed zeros and huge values go through the compiled C (both --math modes) and
through Keras on TensorFlow. Elementwise results must agree under the parity rule, where NaN on
both sides is agreement and NaN on one side a failure.

A tree ensemble sends NaN where the fitted model does (``missing_left``), and infinities, signed zeros and
huge values where ``(float)x <= threshold`` does, in each layout of exporter/backend/trees.py: the same bits
as scikit-learn's predictions, one library holding every layout.

Softmax is the one documented difference (docs/speed.md): a row holding NaN or +inf becomes NaN
in every column in C, as in Keras on JAX and on TensorFlow without oneDNN; TensorFlow's default
oneDNN kernel leaves some of that row's columns 0, depending on the CPU's vector width.
"""

from __future__ import annotations

import numpy as np
import pytest

from exporter import export_keras
from exporter.check.compare import errors

from helpers import randomize

WIDTH = 12
SPECIAL = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1.0, -1.0, 7.0, 0.25, -3.0, 1e30, -1e30]

ACTIVATION_STRINGS = [
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "sigmoid",
    "hard_sigmoid",
    "hard_silu",
    "log_sigmoid",
    "tanh",
    "hard_tanh",
    "softplus",
    "softsign",
    "mish",
    "exponential",
    "log_softmax",
]


def rows() -> np.ndarray:
    """Every special value in every column (rotations), and rows mixing them with ordinary values."""
    base = np.array(SPECIAL, dtype=np.float32)
    rotations = [np.roll(base, k) for k in range(WIDTH)]
    rng = np.random.default_rng(3)
    mixed = rng.standard_normal((64, WIDTH)).astype(np.float32)
    spots = rng.integers(0, WIDTH, (64, 2))
    mixed[np.arange(64)[:, None], spots] = rng.choice(base, (64, 2))
    return np.concatenate([np.stack(rotations), mixed])


def branches(keras):
    """(name, layer) of every activation and activation layer, each applied to the input alone."""
    L = keras.layers
    out = [(name, L.Activation(name, name=f"act_{name}")) for name in ACTIVATION_STRINGS]
    relus = {
        "threshold": {"threshold": 0.5},
        "capped": {"max_value": 2.5},
        "general": {"threshold": 0.5, "max_value": 6.0, "negative_slope": 0.1},
        "sloped": {"max_value": 6.0, "negative_slope": 0.1},
    }
    out += [(f"ReLU_{k}", L.ReLU(**kw, name=f"relu_{k}")) for k, kw in relus.items()]
    out += [("LeakyReLU", L.LeakyReLU(0.3, name="leaky")), ("ELU", L.ELU(0.7, name="elu_layer"))]
    out += [("PReLU", L.PReLU(name="prelu"))]
    return out


@pytest.fixture(scope="module")
def model(keras):
    L = keras.layers
    x = keras.Input((WIDTH,))
    reversed_x = L.Dense(WIDTH, use_bias=False, name="reverse", trainable=False)(x)
    outs = [layer(x) for _, layer in branches(keras)]
    merges = [L.Maximum(name="maximum"), L.Minimum(name="minimum"), L.Add(name="add"), L.Multiply(name="multiply")]
    outs += [merge([x, reversed_x]) for merge in merges]
    model = randomize(keras.Model(x, L.Concatenate(name="all")(outs)), seed=1)
    model.get_layer("reverse").set_weights([np.eye(WIDTH, dtype=np.float32)[::-1]])
    return model


@pytest.mark.parametrize("math", ["fast", "libm"])
def test_elementwise_nan_and_infinities_match_keras(keras, model, tmp_path, math):
    names = [name for name, _ in branches(keras)] + ["maximum", "minimum", "add", "multiply"]
    x = rows()
    ex = export_keras(model, math=math)
    c_out = ex.compile(tmp_path, one_row=True)(x)
    ref = ex.reference(x)
    failing = errors(c_out, ref, 1e-5, 1e-4).failing.reshape(len(x), len(names), WIDTH)
    bad = {names[j]: int(failing[:, j].sum()) for j in range(len(names)) if failing[:, j].any()}
    assert not bad, str(bad)


def test_softmax_row_with_nan_or_inf_is_nan_in_c(keras, tmp_path):
    """The documented difference: C makes the whole row NaN; TensorFlow agrees on the columns it makes NaN."""
    model = keras.Sequential([keras.Input((WIDTH,)), keras.layers.Softmax()])
    ex = export_keras(model)
    x = rows()
    c_out, ref = ex.compile(tmp_path, one_row=True)(x), ex.reference(x)
    special = ~np.isfinite(x).all(axis=1) & (np.isnan(x) | (x == np.inf)).any(axis=1)
    assert special.any() and (~special).any()
    assert np.isnan(c_out[special]).all()
    assert np.isnan(ref[special]).any(axis=1).all()  # TensorFlow too has NaN in each such row
    assert not errors(c_out[special], ref[special], 1e-5, 1e-4).failing[np.isnan(ref[special])].any()
    assert not errors(c_out[~special], ref[~special], 1e-5, 1e-4).failing.any()


@pytest.mark.parametrize("family", ["hist", "gb"])
def test_trees_route_nan_and_infinities_as_fitted_in_every_layout(tmp_path, family):
    """Hist* learns where NaN goes (left at some nodes); GradientBoosting refuses NaN and infinities, so its rows
    hold the largest floats, signed zeros and huge values instead."""
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

    from exporter import export_chain
    from exporter.backend import render_set
    from exporter.backend.trees import CAPS
    from exporter.build.toolchain import CompiledModel, compile_shared

    rng = np.random.default_rng(5)
    x = rng.standard_normal((500, WIDTH)) * 3.0
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    if family == "hist":
        x[rng.random(x.shape) < 0.15] = np.nan
        model = HistGradientBoostingClassifier(max_iter=25, max_depth=5).fit(x, y)
    else:
        model = GradientBoostingClassifier(n_estimators=25, max_depth=3).fit(x, y)
    top = float(np.finfo(np.float32).max)
    special = rows() if family == "hist" else np.nan_to_num(rows(), nan=-0.0, posinf=top, neginf=-top)
    parts = [export_chain(model, name=f"bdt_{layout}", trees=layout) for layout in CAPS]
    library = compile_shared(render_set("layouts", "test", [ex.source for ex in parts]), tmp_path, True, True)
    expected = model.predict_proba(special).astype(np.float32)
    for ex in parts:
        got = CompiledModel(ex.symbol, library, WIDTH, 2)(special)
        np.testing.assert_array_equal(got, expected, err_msg=ex.symbol)
