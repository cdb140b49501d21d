"""``.keras`` files walked from what they store (exporter/frontends/keras/stored.py): the same IR as the
walk of the model Keras loads, value names included, with no Keras import; and a fall-back to Keras
for everything that path does not read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.frontends.keras.layers import LAYERS, handles
from exporter.frontends.keras.load import load_keras, load_keras_file, stored_walk
from exporter.frontends.keras.stored import NotStored, keras_order, snake_case
from exporter.frontends.keras.walk import walk_keras
from exporter.ir import Dense

from helpers import ROOT, custom_layer, randomize, saved


def _functional(keras: Any) -> Any:
    """Branches of unequal depth, a shared layer called twice, every merge, operations, two paths to one add."""
    L = keras.layers
    x = keras.Input((6,), name="x")
    a = L.Dense(8, activation="tanh", name="a")(x)
    b = L.Dense(8, use_bias=False, name="b")(L.Dense(5, activation="relu", name="b0")(x))
    shared = L.Dense(8, activation=keras.activations.leaky_relu, name="shared")
    s1, s2 = shared(a), shared(b)
    merged = [cls(name=f"m{k}")([s1, s2]) for k, cls in enumerate([L.Add, L.Subtract, L.Multiply, L.Average])]
    merged += [L.Maximum(name="max")([a, b]), L.Minimum(name="min")([a, b])]
    y = L.Concatenate(name="cat")(merged)
    y = y + keras.ops.tanh(y) * 2.0 - 1.0
    y = -keras.ops.square(y)
    y = L.Dense(3, name="head")(y)
    return keras.Model(x, L.Softmax(name="probabilities")(y + y))


def _layers_chain(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((7,)),
            L.Dense(9, activation="elu"),
            L.BatchNormalization(),
            L.BatchNormalization(center=False, scale=False, epsilon=0.01),
            L.ReLU(max_value=4.0, negative_slope=0.1),
            L.LeakyReLU(negative_slope=0.3),
            L.ELU(alpha=0.7),
            L.PReLU(),
            L.Rescaling(scale=0.5, offset=0.25),
            L.Dropout(0.3),
            L.GaussianNoise(0.1),
            L.Flatten(),
            L.Activation("softplus"),
            L.Dense(4, activation="gelu"),
            L.Activation("sigmoid"),
        ]
    )


def _generator(keras: Any) -> Any:
    L = keras.layers
    conditions, noise = keras.Input((4,), name="conditions"), keras.Input((3,), name="noise")
    h = L.Dense(16, activation="tanh")(L.Concatenate()([conditions, noise]))
    return keras.Model([conditions, noise], L.Dense(2)(h + L.Dense(16)(h)))


def test_a_layer_is_read_from_a_file_by_its_declaration_alone(keras, tmp_path):
    """The declaration is what the stored reader knows of a layer: declared here with its stored variables,
    a class the exporter does not map is walked from the file, its variables placed by the declared names
    (``bias`` kept: ``bias_axes`` is set); undeclared, the file is left to Keras."""
    L = keras.layers
    model = keras.Sequential([keras.Input((5,)), L.Dense(5), L.EinsumDense("ab,bc->ac", 4, bias_axes="c", name="norm")])
    path = saved(randomize(model), tmp_path)
    with pytest.raises(NotStored, match="refused layers"):
        stored_walk(path, path.name)
    with LAYERS.restored():

        @handles(
            "EinsumDense",
            variables=("kernel", ("bias", "bias_axes")),
            shapes=lambda *_: {"kernel": (5, 4), "bias": (4,)},
        )
        def as_dense(layer: Any, b: Any, inputs: list[str]) -> str:  # what the file holds, placed by name
            return b.add(Dense, layer.name, inputs, 4, kernel=layer.kernel, bias=layer.bias)

        walked = stored_walk(path, path.name)
    dense = [op for op in walked.builder.ops if isinstance(op, Dense)][-1]
    np.testing.assert_array_equal(dense.bias, keras.ops.convert_to_numpy(model.get_layer("norm").bias))


MODELS = {"functional": (_functional, 0), "sequential": (_layers_chain, 0), "generator": (_generator, 0),
          "trailing noise": (_layers_chain, 3)}  # fmt: skip


@pytest.mark.parametrize("kind", MODELS)
def test_stored_walk_is_the_loaded_models_walk(keras, tmp_path, kind):
    make, noise = MODELS[kind]
    path = saved(randomize(make(keras)), tmp_path)
    stored = stored_walk(path, path.name, noise).graph()
    loaded = walk_keras(load_keras_file(path), path.name, noise).graph()
    assert stored.same_as(loaded)
    assert len(stored.ops) >= 3


def test_the_examples_are_read_from_what_they_store():
    """Every shipped Keras example of rows takes the fast path and gives the IR of the loaded model; one over
    tensors (the set transformer) is left to Keras by design: the fast path reads rows only."""
    examples = sorted(ROOT.glob("examples/**/*.keras"))
    assert len(examples) >= 20
    for path in examples:
        noise = 128 if path.stem in ("lamarr_covariance", "lamarr_resolution") else 0
        if path.stem == "calo_set":
            with pytest.raises(NotStored, match="of shape"):
                stored_walk(path, path.name, noise)
            continue
        stored = stored_walk(path, path.name, noise).graph()
        assert stored.same_as(walk_keras(load_keras_file(path), path.name, noise).graph()), path


def _nested(keras: Any) -> Any:
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="inner")
    x = keras.Input((5,))
    return keras.Model(x, inner(keras.layers.Dense(4)(x)))


def _normalization(keras: Any) -> Any:
    layer = keras.layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0])
    return keras.Sequential([keras.Input((2,)), layer, keras.layers.Dense(1)])


def _custom(keras: Any) -> Any:
    return keras.Sequential([keras.Input((3,)), custom_layer(keras)(), keras.layers.Dense(2)])


def _slice(keras: Any) -> Any:
    x = keras.Input((6,))
    return keras.Model(x, keras.layers.Dense(2)(x[:, 1:4]))


LEFT_TO_KERAS = {"nested model": _nested, "Normalization": _normalization, "custom layer": _custom, "slice": _slice}


@pytest.mark.parametrize("kind", LEFT_TO_KERAS)
def test_what_it_does_not_read_is_left_to_keras(keras, tmp_path, kind):
    path = saved(randomize(LEFT_TO_KERAS[kind](keras)), tmp_path)
    with pytest.raises(NotStored):
        stored_walk(path, path.name)
    if kind != "custom layer":  # Keras loads the others, and the exporter maps them
        loaded = load_keras(path)
        rows = np.random.default_rng(0).normal(size=(5, loaded.graph.n_inputs)).astype(np.float32)
        assert loaded.reference(rows).shape == (5, loaded.graph.widths[loaded.graph.output])


def test_a_stored_model_imports_keras_only_for_its_reference(tmp_path, keras):
    path = saved(randomize(_functional(keras)), tmp_path)
    script = f"""
import sys, numpy as np
from exporter.frontends.keras.load import load_keras
loaded = load_keras({str(path)!r})
assert "keras" not in sys.modules and "tensorflow" not in sys.modules and "jax" not in sys.modules, "imported early"
out = loaded.reference(np.ones((3, 6), np.float32))
assert "keras" in sys.modules and out.shape == (3, 3)
print(loaded.framework_version)
"""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "KERAS_BACKEND": "numpy", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("(numpy backend)")
    reference = load_keras_file(path)(np.ones((3, 6), np.float32), training=False)
    assert np.allclose(keras.ops.convert_to_numpy(reference).sum(axis=1), 1.0)


def test_keras_order_is_keras_map_graph_order():
    """Depth-first from the output, then by decreasing depth: a long branch first, shared calls at their depth."""
    parents = {("a", 0): [], ("b0", 0): [], ("b", 0): [("b0", 0)], ("add", 0): [("a", 0), ("b", 0)]}
    assert keras_order(parents, [("add", 0)]) == [("b0", 0), ("a", 0), ("b", 0), ("add", 0)]


@pytest.mark.parametrize(
    ("name", "snake"), [("Dense", "dense"), ("BatchNormalization", "batch_normalization"), ("PReLU", "p_re_lu")]
)
def test_weights_file_names(name, snake):
    assert snake_case(name) == snake


def test_inspect_needs_no_framework(tmp_path, keras):
    path = saved(randomize(_functional(keras)), tmp_path)
    script = f"""
import sys
from exporter.cli import main
sys.argv = ["lamarr-export", "inspect", {str(path)!r}, "--quiet"]
code = main()
loaded = sorted(m for m in ("keras", "tensorflow", "jax", "sklearn", "scipy") if m in sys.modules)
print("imported:", loaded)
sys.exit(code)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "imported: []" in done.stdout
    assert "exportable: yes" in done.stdout


def test_a_stored_model_is_traced_through_the_loaded_model(tmp_path, keras, capsys):
    from helpers import run_cli

    path = saved(randomize(_functional(keras)), tmp_path)
    code, out, err = run_cli(capsys, path, "-o", tmp_path / "f.c", "--trace", "--samples", 200)
    assert code == 0, err
    assert "trace: every step agrees within tolerance" in out, out
    assert Path(tmp_path / "f.c").is_file()


def test_a_file_laid_out_otherwise_is_left_to_keras(tmp_path, keras):
    """Keras 2's `.keras` files list a call's inputs as lists, and keep their weights elsewhere."""
    import json
    import zipfile

    path = saved(randomize(_layers_chain(keras)), tmp_path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    for entry in config["config"]["layers"]:
        entry["inbound_nodes"] = [[["previous", 0, 0, {}]]]
    config["class_name"] = "Functional"
    config["config"].update(input_layers=[["input", 0, 0]], output_layers=[["output", 0, 0]])
    with pytest.raises(NotStored, match="layout"):
        stored_walk_of(config, path)
    files["model.weights.h5"] = b"not an HDF5 file"
    with pytest.raises(NotStored):
        stored_walk_of(json.loads(files["config.json"]), _rewritten(tmp_path / "w.keras", files))


def stored_walk_of(config: dict, path: Path) -> None:
    from exporter.frontends.keras.stored import walk_stored

    walk_stored(path, config, path.name)


def _rewritten(path: Path, files: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path
