"""Issue 24's done-when: a replica of Lamarr's chained generators (QuantileTransformer targets, stages that
read upstream outputs) exports with exit 0 on the numpy, JAX and TensorFlow Keras backends, and each
deliberate mistake in its C exits 1 naming the stage at fault; manifests set the rule per entry."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from exporter.spec import ModelSpec

from helpers import ROOT, assert_user_error, change_4th_digit, randomize, run_cli, saved

MODELS = """
[models.rich]
model = "rich.keras"
preprocess = ["tX.pkl"]
target_transform = "rich_tY.pkl"

[models.muon]
model = "muon.keras"
preprocess = ["tX.pkl"]
target_transform = "muon_tY.pkl"

[models.ismuon]
model = "ismuon.keras"
output_activation = "sigmoid"

[models.gpid]
model = "gpid.keras"
target_transform = "gpid_tY.pkl"
"""

PIPELINE = """
[pipelines.muon_pipe]
n_inputs = 3
stages = [
    { model = "rich", reads = ["input"] },
    { model = "muon", reads = ["input"] },
    { model = "ismuon", reads = ["input[0:2]", "muon"] },
    { model = "gpid", reads = ["input", "rich", "muon", "ismuon"] },
]
"""


@pytest.fixture(scope="module")
def replica(tmp_path_factory, keras):
    """Three generators with QuantileTransformer targets (rich 3 -> 2, muon 3 -> 1, gpid 7 -> 3 reading
    input, rich, muon and ismuon) and a classifier (ismuon, sigmoid), inputs like p, eta and charge."""
    from sklearn.preprocessing import QuantileTransformer

    folder = tmp_path_factory.mktemp("replica")
    layers, rng = keras.layers, np.random.default_rng(0)
    for name, (n_cond, n_noise, n_out, seed) in {
        "rich": (3, 4, 2, 1),
        "muon": (3, 3, 1, 2),
        "gpid": (7, 4, 3, 3),
    }.items():
        cond, noise = keras.Input((n_cond,)), keras.Input((n_noise,))
        h = layers.Dense(16, activation="relu")(layers.Concatenate()([cond, noise]))
        h = layers.Dense(16, activation="tanh")(h)
        saved(randomize(keras.Model([cond, noise], layers.Dense(n_out)(h)), seed), folder, f"{name}.keras")
        target = QuantileTransformer(n_quantiles=50, output_distribution="normal")
        (folder / f"{name}_tY.pkl").write_bytes(pickle.dumps(target.fit(rng.gamma(2.0, size=(500, n_out)) * 100)))
    x = keras.Input((3,))
    saved(randomize(keras.Model(x, layers.Dense(1)(layers.Dense(8, activation="relu")(x))), 4), folder, "ismuon.keras")
    raw = np.c_[rng.uniform(2, 100, 500), rng.uniform(1.5, 5, 500), rng.choice([-1.0, 1.0], 500)]
    tx = QuantileTransformer(n_quantiles=50, output_distribution="normal").fit(raw)
    (folder / "tX.pkl").write_bytes(pickle.dumps(tx))
    (folder / "pid.toml").write_text(MODELS + PIPELINE)
    return folder


def test_the_replica_passes_on_tensorflow(capsys, replica, tmp_path):
    code, out, err = run_cli(capsys, replica / "pid.toml", "-o", tmp_path / "pid.c", "--samples", 300)
    assert code == 0, out + err
    pipeline = next(line for line in out.splitlines() if "parity: passed end to end" in line)
    assert "rule float32" in pipeline and "(float64 and float32)" in pipeline
    assert "extrapolation rows apart" in out  # charge-like and edge rows beyond tX's quantiles
    assert "rule float32" in (tmp_path / "pid.c").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_the_replica_passes_on_other_backends(replica, tmp_path, backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "exporter", replica / "pid.toml", "-o", tmp_path / "pid.c", "--samples", 300]
    done = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("parity: passed") == 5 and "rule fixed" not in done.stdout  # float64 on this backend


BREAKS = {
    "a weight's 4th digit": (lambda c: change_4th_digit(c, "rich_dnn_1_kernel"), "stage rich"),
    "swapped columns": (
        lambda c: c.replace("rich_preprocess_0_cols[3] = { 0, 1, 2 }", "rich_preprocess_0_cols[3] = { 1, 0, 2 }"),
        "stage rich",
    ),
    "a wrong inverse": (  # the inverse of another transformer: tX's quantiles for muon's target
        lambda c: c.replace("*q = muon_postprocess_0_q + c * 50", "*q = muon_preprocess_0_q + c * 50"),
        "stage muon",
    ),
    "a missing activation": (
        lambda c: re.sub(  # in every instruction-set variant's copy of the sigmoid helper
            r"return ismuon(_v\d)?_pick\(x >= 0\.0f, 1\.0f, e\) / \(1\.0f \+ e\);", "return x + 0.0f * e;", c
        ),
        "stage ismuon",
    ),
    "a route off by one": (
        lambda c: c.replace("muon_pipe_in[0 + k] = input[0 + k];\n", "muon_pipe_in[0 + k] = input[1 + k];\n", 1),
        "routing",
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_broken_c_exits_1_naming_the_stage(capsys, replica, tmp_path, monkeypatch, name):
    edit, named = BREAKS[name]
    build = ModelSpec.build

    def changed(c: str) -> str:
        assert edit(c) != c or "muon_pipe" not in c, f"{name}: the edit changes nothing"
        return edit(c)

    def broken(self):  # the set's library is compiled through its first export's hook
        ex = build(self)
        ex.c_edit = changed
        return ex

    monkeypatch.setattr(ModelSpec, "build", broken)
    code, out, err = run_cli(capsys, replica / "pid.toml", "-o", tmp_path / "pid.c", "--samples", 300)
    assert code == 1, out + err
    diagnosis = next(line for line in out.splitlines() if "diagnosis:" in line)
    assert named in diagnosis and ("wrong translation" in diagnosis or named == "routing"), diagnosis


def test_manifest_keys_set_the_rule_per_entry(capsys, replica, tmp_path):
    manifest = replica / "keys.toml"
    fixed_zero = 'criterion = "fixed"\natol = 0\nrtol = 0\n'
    implied = "atol = 0\nrtol = 0\n"  # tolerances alone choose the fixed rule
    manifest.write_text(MODELS.replace('output_activation = "sigmoid"\n', 'output_activation = "sigmoid"\n' + implied))
    code, out, _ = run_cli(capsys, manifest, "-o", tmp_path / "keys.c", "--samples", 300)
    assert code == 1
    lines = [line for line in out.splitlines() if "parity:" in line]
    assert [("FAILED" in line, "|c - ref| <= 0 + 0" in line) for line in lines] == [
        (False, False),
        (False, False),
        (True, True),  # ismuon: its own keys
        (False, False),
    ]
    manifest.write_text(
        "[defaults]\n" + fixed_zero + MODELS + PIPELINE.replace("n_inputs = 3", 'n_inputs = 3\ncriterion = "float32"')
    )
    code, out, _ = run_cli(capsys, manifest, "-o", tmp_path / "keys.c", "--samples", 300)
    lines = [line for line in out.splitlines() if "parity:" in line]
    assert code == 1 and all("rule float32" not in line for line in lines[:4]) and "rule float32" in lines[4]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[defaults]\ncriterion = "loose"\n', "[defaults] criterion: 'loose': expected one of float32, fixed"),
        ("[defaults]\natol = -1\n", "[defaults] atol: -1: expected a number >= 0"),
        (
            "[defaults]\nk = 2\n",
            "[defaults] k: unknown key (the keys are math, dtype, dispatch, trees, criterion, atol, rtol)",
        ),
        ("defaults = 3\n", "defaults: expected a table"),
        ('[models.rich]\nmodel = "rich.keras"\nrtol = "small"\n', "[models.rich] rtol: expected a number >= 0"),
        (
            '[models.rich]\nmodel = "rich.keras"\ncriterion = "float32"\natol = 1e-3\n',
            "[models.rich] criterion: 'float32' with atol or rtol: atol and rtol are the fixed rule's tolerances",
        ),
    ],
)
def test_parity_keys_are_validated(capsys, replica, tmp_path, text, fragment):
    manifest = replica / "bad.toml"
    manifest.write_text(text + ("" if "[models" in text else '[models.rich]\nmodel = "rich.keras"\n'))
    assert_user_error(capsys, tmp_path, [manifest, "-o", tmp_path / "x.c"], "bad.toml", fragment)
    bad_pipeline = textwrap.dedent(MODELS + PIPELINE).replace("n_inputs = 3", 'n_inputs = 3\natol = "x"')
    manifest.write_text(bad_pipeline)
    assert_user_error(capsys, tmp_path, [manifest, "-o", tmp_path / "x.c"], "[pipelines.muon_pipe] atol")


def test_tolerance_flags_choose_the_fixed_rule(capsys, replica, tmp_path):
    """--atol alone chooses the fixed rule; with --criterion float32 it is refused."""
    model = replica / "ismuon.keras"
    code, out, _ = run_cli(capsys, model, "-o", tmp_path / "m.c", "--samples", 100, "--atol", 0, "--rtol", 0)
    assert code == 1 and "|c - ref| <= 0 + 0 * |ref|" in out
    args = [model, "-o", tmp_path / "x.c", "--criterion", "float32", "--rtol", 1e-3]
    assert_user_error(
        capsys, tmp_path, args, "--criterion 'float32' with --atol or --rtol: --atol and --rtol are the fixed"
    )


def test_a_generator_s_json_states_the_rule_and_its_gates(capsys, replica, tmp_path):
    import json

    import jsonschema

    args = [replica / "rich.keras", "--preprocess", replica / "tX.pkl", "--target-transform", replica / "rich_tY.pkl"]
    code, out, _ = run_cli(capsys, *args, "-o", tmp_path / "rich.c", "--samples", 300, "--json")
    document = json.loads(out)
    jsonschema.validate(document, json.loads((ROOT / "exporter/check/report/schema.json").read_text()))
    parity = document["parity"]
    assert code == 0 and parity["criterion"] == "float32" and parity["fallback"] is None
    judgement = parity["judgement"]
    assert judgement["generator"] and judgement["extrapolation_rows"] > 0
    assert all(c["gate"] is not None and c["floor"] == 8 + 4 for c in judgement["columns"])  # widest value: 16
