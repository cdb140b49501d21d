"""Keras 2 files: ``.h5`` with TFOpLambda nodes (made here with tf-keras) and SavedModel folders
(tests/fixtures/keras2/, made by tests/fixtures/make_keras2.py), checked against what was saved."""

from __future__ import annotations

import functools
import re
import shutil
import sys

import numpy as np
import pytest

from exporter import export_chain, export_keras
from exporter.frontends.keras.operations import TF_FUNCTIONS

from helpers import ROOT, assert_user_error, export_through_cli_and_manifest, perturb_weight, run_cli

FIXTURES = ROOT / "tests" / "fixtures" / "keras2"


@pytest.fixture(scope="module")
def tf():
    import tensorflow
    import tf_keras  # in the test extra

    return tensorflow, tf_keras


def tf_model(tf, fn, width: int = 6, seed: int = 0):
    """Input(4) -> Dense(width, elu) -> fn -> Dense(2), built and saved with TF 2 Keras, random weights."""
    tensorflow, tf_keras = tf
    L = tf_keras.layers
    inputs = tf_keras.Input((4,))
    h = L.Dense(width, activation="elu")(inputs)
    model = tf_keras.Model(inputs, L.Dense(2)(fn(tensorflow, h)))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.7 for w in model.weights])
    return model


def saved_h5(model, tmp_path, name: str = "model.h5"):
    path = tmp_path / name
    model.save(path)
    return path


# TFOpLambda function (as stored) -> a use of it on a symbolic tensor
H5_CASES = {
    "__operators__.add": lambda t, x: x + t.math.tanh(x),
    "math.add": lambda t, x: t.math.add(x, 0.5),
    "math.subtract": lambda t, x: 1.5 - x,
    "math.multiply": lambda t, x: t.math.multiply(x, x) * 2.0,
    "math.truediv": lambda t, x: x / 4.0,
    "math.negative": lambda t, x: -x,
    "math.maximum": lambda t, x: t.math.maximum(x, t.math.sigmoid(x)),
    "concat": lambda t, x: t.concat([x, t.nn.relu(x)], axis=-1),
    "nn.leaky_relu": lambda t, x: t.nn.leaky_relu(x, alpha=0.1),
    "nn.softmax": lambda t, x: t.nn.softmax(x),
    "math.exp": lambda t, x: t.math.exp(t.math.tanh(x)),
    "math.log": lambda t, x: t.math.log(t.math.sigmoid(x)),
    "nn.elu": lambda t, x: t.nn.elu(x),
    "nn.silu": lambda t, x: t.nn.silu(x),
    "math.softplus": lambda t, x: t.math.softplus(x),
    "__operators__.getitem": lambda t, x: x[:, 1:4],
}


@pytest.mark.parametrize("function", list(H5_CASES))
def test_tf_op_lambda_h5_passes_parity_against_tf_keras(tf, tmp_path, function):
    model = tf_model(tf, H5_CASES[function], seed=len(function))
    path = saved_h5(model, tmp_path)
    assert f'"function": "{function}"' in path.read_bytes().decode("latin-1")  # the file stores the node
    ex = export_keras(path)
    assert "tf-keras" in ex.framework_version  # checked against TF 2 Keras, not against our translation
    rows = np.random.default_rng(1).standard_normal((500, 4)) * 2
    report = ex.check(ex.compile(tmp_path, one_row=True), rows)
    assert report.passed, report.table()


def test_every_documented_function_is_mapped():
    """docs/keras-models.md lists exactly the mapped TFOpLambda functions."""
    text = (ROOT / "docs" / "keras-models.md").read_text()
    listed = set(re.findall(r"`tf\.([\w.]+)`", text))
    assert listed == set(TF_FUNCTIONS.names())


def test_tf_op_lambda_twin_gives_the_c_of_the_keras3_model(tf, keras, tmp_path):
    """``x = x + x_`` saved by TF 2 Keras and by Keras 3, same weights: the same C, comments aside."""
    model = tf_model(tf, lambda t, x: x + t.math.tanh(x))
    ex2 = export_keras(saved_h5(model, tmp_path), name="model")
    inputs = keras.Input((4,))
    h = keras.layers.Dense(6, activation="elu")(inputs)
    twin = keras.Model(inputs, keras.layers.Dense(2)(h + keras.ops.tanh(h)))
    twin.set_weights(model.get_weights())
    ex3 = export_keras(twin, name="model")
    strip = functools.partial(re.sub, r"/\*.*?\*/", "", flags=re.DOTALL)
    assert strip(ex2.source.c) == strip(ex3.source.c)


def test_unmapped_tf_function_is_refused_by_name(capsys, tf, tmp_path):
    model = tf_model(tf, lambda t, x: t.math.sin(x) + x)
    path = saved_h5(model, tmp_path)
    fragments = ["operation 'tf.math.sin' (TFOpLambda tf.math.sin)", "TensorFlow function tf.math.sin has no C"]
    assert_user_error(capsys, tmp_path, [path, "-o", tmp_path / "m.c"], *fragments)
    code, out, _ = run_cli(capsys, "inspect", path)
    assert code == 2
    assert re.search(
        r"tf\.math\.sin(_\d+)?\s+TFOpLambda tf\.math\.sin\s.*REFUSED: TensorFlow function tf\.math\.sin", out
    )
    assert re.search(r"tf\.__operators__\.add(_\d+)?\s+TFOpLambda tf\.__operators__\.add\s.*ok$", out, re.MULTILINE)


def test_untranslatable_call_is_refused_by_name(capsys, tf, tmp_path):
    model = tf_model(tf, lambda t, x: t.concat([x, x], axis=-1, name=None)[:, ::2])
    path = saved_h5(model, tmp_path)
    assert_user_error(
        capsys, tmp_path, [path, "-o", tmp_path / "m.c"], "tf.__operators__.getitem", "step 1 is supported"
    )


def test_inspect_shows_tf_op_lambda_rows(capsys, tf, tmp_path):
    path = saved_h5(tf_model(tf, lambda t, x: t.nn.relu(x[:, :3] * 2.0)), tmp_path)
    code, out, _ = run_cli(capsys, "inspect", path)
    assert code == 0, out
    assert re.search(r"tf\.__operators__\.getitem(_\d+)?\s+Slice 0:3\s.*ok$", out, re.MULTILINE)
    assert re.search(r"tf\.nn\.relu(_\d+)?\s+Activation relu\s.*ok$", out, re.MULTILINE)


def test_h5_residual_generator_cli_and_manifest(capsys, tf, tmp_path):
    """A Lamarr 2023-style generator: conditions then 6 noise values in one input, ``x = x + x_``."""
    _, tf_keras = tf
    L = tf_keras.layers
    inputs = tf_keras.Input((9,))
    x = L.LeakyReLU(alpha=0.1)(L.Dense(16)(inputs))
    x = x + L.LeakyReLU(alpha=0.1)(L.Dense(16)(x))
    model = tf_keras.Model(inputs, L.Dense(2)(x))
    path = saved_h5(model, tmp_path, "gen.h5")
    out = export_through_cli_and_manifest(capsys, tmp_path, path, noise=6)
    assert "3 inputs + 6 noise -> 2 outputs" in out and "tf-keras" in out


@pytest.mark.parametrize(
    ("folder", "keys", "shape"),
    [("generator", {"noise": 8}, "4 inputs + 8 noise -> 3 outputs"), ("classifier", {}, "5 inputs -> 1 output,")],
)
def test_saved_model_folder_cli_and_manifest(capsys, tmp_path, folder, keys, shape):
    path = tmp_path / folder
    shutil.copytree(FIXTURES / folder, path)
    out = export_through_cli_and_manifest(capsys, tmp_path, path, **keys)
    assert shape in out and "SavedModel serving signature" in out


def test_saved_model_reference_is_its_serving_signature(tf, tmp_path):
    """Parity is against TensorFlow running the saved graph: a C with one weight off fails it."""
    ex = export_chain(FIXTURES / "generator", noise=8)
    assert ex.framework_version.startswith("Keras SavedModel serving signature")
    rows = ex.inputs(samples=300)
    noise = ex.noise(len(rows))
    tensorflow, _ = tf
    serve = tensorflow.saved_model.load(str(FIXTURES / "generator")).signatures["serving_default"]
    expected = serve(conditions=rows.astype("float32"), noise=noise.astype("float32"))["dense_2"].numpy()
    np.testing.assert_array_equal(ex.reference(rows, noise), expected)
    assert ex.check(ex.compile(tmp_path, one_row=True), rows, noise=noise).passed
    ex.c_edit = functools.partial(perturb_weight, op_name="dense_2")
    (tmp_path / "broken").mkdir()
    assert not ex.check(ex.compile(tmp_path / "broken", one_row=True), rows, noise=noise).passed


def test_saved_model_errors(capsys, tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert_user_error(capsys, tmp_path, [plain, "-o", tmp_path / "m.c"], "plain", "not a SavedModel")
    no_metadata = tmp_path / "bare"
    shutil.copytree(FIXTURES / "classifier", no_metadata)
    (no_metadata / "keras_metadata.pb").unlink()
    assert_user_error(capsys, tmp_path, [no_metadata, "-o", tmp_path / "m.c"], "without keras_metadata.pb")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if TensorFlow were not installed
    assert_user_error(
        capsys, tmp_path, [FIXTURES / "classifier", "-o", tmp_path / "m.c"], "needs TensorFlow", "pip install"
    )
