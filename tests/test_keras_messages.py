"""What a Keras user is told (issue 27, items 12 and 16): a configuration whose shapes are not those of its
stored weights is refused before Keras builds it, in one line; Keras' own error texts are quoted briefly;
numpy's overflow warnings from the reference stay out of stderr; an output activation the network
already ends in is warned about."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from exporter.frontends.keras.quiet import brief

from helpers import ROOT, assert_user_error, randomize, run_cli, saved


@pytest.fixture(scope="module")
def softmax_file(keras, tmp_path_factory):
    x = keras.Input((3,))
    h = keras.layers.Dense(4, name="hidden")(x)
    model = keras.Model(x, keras.layers.Dense(3, activation="softmax", name="head")(h))
    return saved(randomize(model), tmp_path_factory.mktemp("models"), "soft.keras")


def edited(path, folder, layer: str, **changes):
    """A copy of the ``.keras`` file ``path`` with keys of one layer's stored configuration changed."""

    def edit(config) -> None:
        for entry in config["config"]["layers"]:
            if entry["name"] == layer:
                for key, value in changes.items():
                    where = entry["build_config"] if key == "input_shape" else entry["config"]
                    where[key] = value

    return rewritten(path, folder / f"edited_{layer}.keras", edit)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"units": 1e9}, "units=1000000000.0: not a whole number"),
        ({"units": 10**9}, "units=1000000000: outside 1 to 65,536"),
        ({"units": -3}, "units=-3: outside"),
        ({"units": 2.5}, "units=2.5: not a whole number"),
        ({"units": 5}, "'head' (Dense): its configuration declares kernel 4x5, the file stores 4x3"),
        ({"input_shape": [None, 7]}, "declares kernel 7x3, the file stores 4x3"),
    ],
)
@pytest.mark.parametrize("command", [[], ["inspect"]])
def test_declared_shapes_are_those_of_the_stored_weights(capsys, softmax_file, tmp_path, changes, fragment, command):
    path = edited(softmax_file, tmp_path.parent, "head", **changes)
    args = [*command, path] if command else [path, "-o", tmp_path / "m.c"]
    assert_user_error(capsys, tmp_path, args, path.name, fragment, "refused before Keras builds it")
    assert capsys.readouterr().err.count("\n") <= 2


def test_keras_error_texts_are_quoted_briefly(capsys, softmax_file, tmp_path):
    """Keras quotes every enclosing configuration in its error (kilobytes here): the message keeps the reason."""
    identifier = {"module": "keras.initializers", "class_name": "NoSuchInit", "config": {"x": "y" * 3000}}
    path = edited(softmax_file, tmp_path.parent, "head", kernel_initializer=identifier)
    code, _, err = run_cli(capsys, path, "-o", tmp_path / "m.c")
    assert code == 2
    (message,) = [line for line in err.splitlines() if "error:" in line]
    assert "Could not interpret initializer identifier" in message and "characters cut" in message
    assert len(message) < 500, len(message)


def test_brief_keeps_short_texts_and_cuts_long_ones():
    assert brief(ValueError("short\n  reason")) == "short reason"
    cut = brief(ValueError("a" * 5000 + " the reason"))
    assert len(cut) < 300 and cut.endswith("the reason") and "4,771 characters cut" in cut


def test_numpy_overflow_warnings_stay_out_of_stderr(keras, tmp_path):
    """Keras on its numpy backend computes exp(big) on the edge rows: inf, as the C does, without a warning."""
    x = keras.Input((3,))
    h = keras.layers.Dense(8, activation="elu")(x)
    model = randomize(keras.Model(x, keras.layers.Dense(2, activation="sigmoid")(h)))
    for w in model.weights:
        w.assign(w.numpy() * 20)
    path = saved(model, tmp_path / "models")
    env = {**os.environ, "KERAS_BACKEND": "numpy", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "exporter", path, "-o", tmp_path / "m.c", "--json", "--trace"]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["passed"]
    assert run.stderr == ""


@pytest.mark.parametrize("flags", [[], ["--json"]])
def test_output_activation_the_network_ends_in_is_warned_about(capsys, softmax_file, tmp_path, flags):
    code, _, err = run_cli(capsys, softmax_file, "-o", tmp_path / "m.c", "--output-activation", "softmax", *flags)
    assert code == 0
    assert "warning: output activation softmax: the network already ends in softmax (its step 'head')" in err
    assert "not a probability of the model's classes" in err
    code, _, err = run_cli(capsys, softmax_file, "-o", tmp_path / "m.c", "--output-activation", "sigmoid", *flags)
    assert code == 0 and "warning" not in err


def test_a_trace_that_fails_is_told_in_a_line(capsys, softmax_file, tmp_path, monkeypatch):
    import exporter.check.trace

    def failing(*args, **kwargs):
        raise ValueError("config=" + "{...}" * 1000 + " Exception encountered: the reason")

    monkeypatch.setattr(exporter.check.trace, "trace", failing)
    code, out, _ = run_cli(capsys, softmax_file, "-o", tmp_path / "m.c", "--trace")
    assert code == 0
    (line,) = [line for line in out.splitlines() if "trace: could not run" in line]
    assert line.endswith("the reason)") and len(line) < 100, line


def rewritten(path, copy, edit):
    """A copy (at ``copy``) of the ``.keras`` file ``path`` whose stored configuration ``edit`` changed in place."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    edit(config)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(copy, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return copy


def _layer(index: int, key: str, value, inner: bool = False):
    def edit(config) -> None:
        entry = config["config"]["layers"][index]
        (entry["config"] if inner else entry)[key] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_layer(1, "class_name", 1000000), "layer #1: 'class_name' is 1000000, expected text"),
        (_layer(2, "class_name", ["Dense"]), "layer #2: 'class_name' is ['Dense'], expected text"),
        (_layer(1, "name", -1, inner=True), "layer #1 (Dense): 'name' is -1, expected text"),
        (_layer(2, "config", [], inner=False), "layer #2 (Dense): 'config' is list, expected an object"),
        (_layer(1, "module", 7), "layer #1: 'module' is 7, expected text"),
        (lambda c: c["config"].update(layers={"a": 1}), "'layers' is dict, expected a list"),
        (lambda c: c["config"]["layers"].append("Dense"), "layer #3 is str, expected an object"),
    ],
)
def test_a_malformed_configuration_is_refused_naming_the_field(capsys, softmax_file, tmp_path, edit, fragment):
    """Types the screening reads before Keras (a crafted file's class names, layer names, lists) are checked first:
    found by a fuzz of config.json, which crashed the screening with TypeErrors (exit 3)."""
    bad = rewritten(softmax_file, tmp_path / "rewritten.keras", edit)
    assert_user_error(capsys, tmp_path, [bad, "-o", tmp_path / "m.c"], "malformed model configuration", fragment)


def test_a_model_keras_loads_but_cannot_run_is_the_files_error(capsys, softmax_file, tmp_path, monkeypatch):
    """A crafted configuration Keras builds but then fails to run (``keepdims=[]`` on the JAX backend: a TypeError
    inside the layer's call) is the file's error, exit 2 naming the file, not an internal error (exit 3). The
    backends differ in what they reject, so Keras' failure is made here, the rest is the real command."""
    import exporter.frontends.keras.load as load

    def failing(model):
        def reference(*_):
            raise TypeError("Exception encountered when calling GlobalMaxPooling1D.call().\n\nmore")

        return reference

    monkeypatch.setattr(load, "keras_reference", failing)
    fragments = ("soft.keras: Keras cannot run this model", "TypeError: Exception encountered when calling")
    assert_user_error(capsys, tmp_path, [softmax_file, "-o", tmp_path / "m.c"], *fragments)
