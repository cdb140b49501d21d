"""Generators: SYMBOL(output, input, random), fed the same noise as Keras; two inputs or trailing noise."""

from __future__ import annotations

import functools
import pickle
import re

import numpy as np
import pytest

from exporter import export_chain
from exporter.check.trace import trace
from exporter.common.errors import ExportError, UnsupportedModelError

from helpers import assert_user_error, perturb_weight, randomize, run_cli, saved, strict_compile


def two_input_generator(keras, n_cond=3, n_noise=5, n_out=2):
    """Conditions and noise concatenated inside the model, then a residual block: a Lamarr GAN generator."""
    L = keras.layers
    cond, noise = keras.Input((n_cond,), name="conditions"), keras.Input((n_noise,), name="noise")
    h = L.Dense(16, activation="tanh")(L.Concatenate()([cond, noise]))
    h = L.Add()([h, L.Dense(16, activation="tanh")(h)])
    return randomize(keras.Model([cond, noise], L.Dense(n_out)(h)))


def one_input_generator(keras, width=8):
    L = keras.layers
    x = keras.Input((width,))
    return randomize(keras.Model(x, L.Dense(2)(L.Dense(16, activation="relu")(x))))


def fitted(rng, n_cond=3, n_out=2):
    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    x = rng.normal(size=(400, n_cond)) * 2 + 1
    y = rng.gamma(2.0, size=(400, n_out))
    return StandardScaler().fit(x), QuantileTransformer(n_quantiles=50, output_distribution="normal").fit(y)


def test_two_input_generator_chain(keras, tmp_path):
    """Preprocess the conditions, append the caller's noise, run the generator, invert the target transform."""
    scaler, target = fitted(np.random.default_rng(0))
    ex = export_chain(saved(two_input_generator(keras), tmp_path), preprocess=[scaler], target_transform=target)
    assert ex.chain.n_noise == 5 and ex.chain.n_inputs == 3
    assert "float *model(float *output, const float *input, const float *random);" in ex.source.h
    assert "float *model_preprocess(float *output, const float *input);" in ex.source.h
    assert "float *model_dnn(float *output, const float *input, const float *random);" in ex.source.h
    assert "float *model_postprocess(float *output, const float *input);" in ex.source.h
    assert "#define model_N_NOISE 5" in ex.source.h
    compiled = ex.compile(tmp_path)
    report = ex.check(compiled, ex.inputs(samples=2000))
    assert report.passed, report.table()
    assert report.arrays.noise.shape == (len(report.arrays.inputs), 5)

    rows = ex.inputs(samples=200)
    noise = ex.noise(len(rows))
    out = compiled(rows, noise)
    np.testing.assert_array_equal(compiled.call_in_place(rows, noise), out)
    dnn = compiled.sibling("model_dnn", 3, 2, n_noise=5)
    pre = compiled.sibling("model_preprocess", 3, 3)
    post = compiled.sibling("model_postprocess", 2, 2)
    np.testing.assert_array_equal(post(dnn(pre(rows), noise)), out)
    for n in (0, 1, 3, 200):  # the batch forms take the noise rows too, with the same bits
        np.testing.assert_array_equal(compiled.batch(rows[:n], noise[:n]), out[:n])
        np.testing.assert_array_equal(dnn.batch(pre(rows[:n]), noise[:n]), dnn(pre(rows[:n]), noise[:n]))
    (tmp_path / "gen.c").write_text(ex.source.c)
    strict_compile(tmp_path / "gen.c", tmp_path)


def test_noise_reaches_both_sides(keras, tmp_path):
    """Other noise gives other outputs: a C that ignored `random` could not pass."""
    ex = export_chain(saved(two_input_generator(keras), tmp_path))
    compiled = ex.compile(tmp_path, one_row=True)
    rows = ex.inputs(samples=300)
    noise = ex.noise(len(rows))
    assert ex.check(compiled, rows, noise=noise).passed
    assert ex.check(compiled, rows, noise=ex.noise(len(rows), seed=99)).passed  # any noise, as long as both get it
    from exporter.check.compare import check_parity

    def c_with_other_noise(x, z):
        return compiled(x, np.roll(z, 1, axis=1))

    assert not check_parity(c_with_other_noise, ex.reference, rows, noise=noise).passed


def test_one_input_with_trailing_noise(keras, tmp_path):
    ex = export_chain(saved(one_input_generator(keras), tmp_path), noise=5, name="gen1")
    assert (ex.chain.n_inputs, ex.chain.n_noise) == (3, 5)
    compiled = ex.compile(tmp_path, one_row=True)
    report = ex.check(compiled, ex.inputs(samples=2000))
    assert report.passed, report.table()
    rows = ex.inputs(samples=50)
    noise = ex.noise(len(rows))
    np.testing.assert_array_equal(compiled.call_in_place(rows, noise), compiled(rows, noise))
    keras_out = one_input_generator(keras)(np.concatenate([rows, noise], axis=1)).numpy()  # same seed, same weights
    np.testing.assert_allclose(compiled(rows, noise), keras_out, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("noise", "fragment"),
    [(4, "noise = 4, but the model's second input (the noise) has 5"), (0, None)],
)
def test_two_inputs_noise_must_match(keras, tmp_path, noise, fragment):
    path = saved(two_input_generator(keras), tmp_path)
    if fragment is None:
        assert export_chain(path, noise=noise).chain.n_noise == 5
        return
    with pytest.raises(UnsupportedModelError, match=re.escape(fragment)):
        export_chain(path, noise=noise)


def test_refusals(keras, tmp_path):
    L = keras.layers
    a, b, c = (keras.Input((2,)) for _ in range(3))
    three = keras.Model([a, b, c], L.Dense(1)(L.Concatenate()([a, b, c])))
    with pytest.raises(UnsupportedModelError, match="3 inputs; one, or two for a generator"):
        export_chain(saved(three, tmp_path, "three.keras"), noise=2)  # without noise: three inputs side by side
    with pytest.raises(UnsupportedModelError, match="noise = 8, but the model's input has only 8 entries"):
        export_chain(saved(one_input_generator(keras), tmp_path), noise=8)
    with pytest.raises(ExportError, match="a generator needs a network"):
        export_chain(noise=3, preprocess=[fitted(np.random.default_rng(0))[0]])


def test_cli_noise(capsys, keras, tmp_path):
    path = saved(one_input_generator(keras), tmp_path, "gen.keras")
    code, out, _ = run_cli(capsys, path, "--noise", 5, "-o", tmp_path / "out" / "gen.c", "--samples", 500, "--trace")
    assert code == 0, out
    assert "3 inputs + 5 noise -> 2 outputs" in out and "parity: passed" in out
    assert "trace: every step agrees" in out
    code, out, _ = run_cli(capsys, "inspect", saved(two_input_generator(keras), tmp_path, "two.keras"))
    assert code == 0 and "3 inputs + 5 noise -> 2 outputs" in out
    text = (tmp_path / "out" / "gen.ref.txt").read_text()
    assert "symbol gen 3 2 5 8" in text and "\nrandom " in text
    scaler = tmp_path / "scaler.pkl"
    scaler.write_bytes(pickle.dumps(fitted(np.random.default_rng(1))[0]))
    assert_user_error(capsys, tmp_path, [scaler, "--noise", 2, "-o", tmp_path / "x.c"], "--noise goes with a generator")
    assert_user_error(
        capsys, tmp_path, [path, "--noise", 9, "-o", tmp_path / "y.c"], "noise = 9, but the model's input has only 8"
    )
    assert_user_error(capsys, tmp_path, [path, "--noise", 5, "--pt-column", 0, "--report", tmp_path / "r"], "generator")


@pytest.mark.parametrize("kind", ["two inputs", "trailing noise"])
def test_trace_finds_a_broken_step_of_a_generator(keras, tmp_path, kind):
    """The trace feeds each step the parity check's noise rows, in C and in Keras."""
    L = keras.layers
    if kind == "two inputs":
        cond, noise = keras.Input((3,)), keras.Input((5,))
        h = L.Dense(16, activation="tanh", name="first")(L.Concatenate(name="join")([cond, noise]))
        model = keras.Model([cond, noise], L.Dense(2, name="head")(L.Dense(16, activation="tanh", name="mid")(h)))
        ex = export_chain(saved(randomize(model), tmp_path))
    else:
        x = keras.Input((8,))
        h = L.Dense(16, activation="tanh", name="first")(x)
        model = keras.Model(x, L.Dense(2, name="head")(L.Dense(16, activation="tanh", name="mid")(h)))
        ex = export_chain(saved(randomize(model), tmp_path), noise=5)
    ex.c_edit = functools.partial(perturb_weight, op_name="mid")
    report = ex.check(inputs=ex.inputs(300))
    assert not report.passed
    rows = [int(r) for r in report.worst_rows(5)]
    result = trace(ex, report.arrays.inputs, rows, report.atol, report.rtol, report.arrays.noise)
    assert result.first_drift is not None and result.first_drift.name == "mid"
    assert all(not s.drifts for s in result.steps if s.name == "first")


def test_a_generator_that_ignores_its_noise_compiles_strictly(keras, tmp_path):
    """Keras accepts a noise input that nothing reads; the C keeps the 3-argument signature without a warning."""
    L = keras.layers
    cond, noise = keras.Input((3,)), keras.Input((4,))
    ex = export_chain(saved(randomize(keras.Model([cond, noise], L.Dense(2)(cond))), tmp_path))
    assert ex.chain.n_noise == 4 and "(void)random;" in ex.source.c
    (tmp_path / "g.c").write_text(ex.source.c)
    strict_compile(tmp_path / "g.c", tmp_path)
    assert ex.check(ex.compile(tmp_path, one_row=True), ex.inputs(200)).passed
