"""The order of a Dense's sums is the IR's (exporter/ir/sums.py), and the activations a Dense applies for the one
before it (exporter/backend/steps.py) change when it is computed, not what: exact comparisons, no tolerance."""

from __future__ import annotations

import numpy as np

from exporter import export_keras
from exporter.check.batch_bits import build_and_run
from exporter.ir.ops import Dense
from exporter.ir.sums import partial_sums

from helpers import randomize


def declared_sum(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, k: int) -> np.ndarray:
    """The IR's order in float32, one rounding per step: input i into partial i % k (partial 0 from the bias, each
    in input order), then partial q += partial q + h for h = k/2, ..., 1."""
    part = [np.broadcast_to(bias if q == 0 else np.float32(0), (len(x), kernel.shape[1])).copy() for q in range(k)]
    for i in range(kernel.shape[0]):
        part[i % k] = (part[i % k] + x[:, i : i + 1] * kernel[i]).astype(np.float32)
    h = k // 2
    while h:
        part[:h] = [(part[q] + part[q + h]).astype(np.float32) for q in range(h)]
        h //= 2
    return part[0]


def test_the_partials_of_narrow_layers():
    kernel = {n: np.zeros((128, n), np.float32) for n in (1, 2, 3, 4, 5, 8, 9)}
    k = {n: partial_sums(Dense("d", ("x",), "y", n, kernel=w)) for n, w in kernel.items()}
    assert k == {1: 16, 2: 8, 3: 4, 4: 4, 5: 2, 8: 2, 9: 1}
    few = Dense("d", ("x",), "y", 4, kernel=np.zeros((15, 4), np.float32))
    assert partial_sums(few) == 1  # fewer than 4 runs of k inputs: in input order


def test_a_narrow_layer_gives_the_bits_of_the_declared_order(keras, tmp_path):
    """66 inputs into 3 outputs (k = 4, two inputs past the last whole run), no activation: the C's outputs are
    those of the declared order bit for bit, in one call per row and in a batch; the plain in-order sum differs."""
    x_in = keras.Input((66,))
    model = randomize(keras.Model(x_in, keras.layers.Dense(3)(x_in)), 3)
    kernel, bias = (np.asarray(w, np.float32) for w in model.get_weights())
    rows = np.random.default_rng(0).standard_normal((500, 66)).astype(np.float32)
    compiled = export_keras(model, name="narrow").compile(tmp_path)
    expected = declared_sum(rows, kernel, bias, 4)
    assert np.array_equal(compiled(rows), expected) and np.array_equal(compiled.batch(rows), expected)
    assert not np.array_equal(declared_sum(rows, kernel, bias, 1), expected)  # the test can tell the orders apart


def test_deferred_activations_keep_the_bits_of_every_variant(keras, tmp_path):
    """Residual tanh blocks of 64 and 96 (AVX-512's one call per row applies each activation in the next Dense's
    loop) and a narrow head: every variant, one row or a batch, gives the baseline's one-row bits."""
    L = keras.layers
    x = keras.Input((12,))
    h = L.Dense(64, activation="tanh")(x)
    h = L.Add()([h, L.Dense(64, activation="tanh")(h)])
    h = L.Dense(96, activation="relu")(h)
    h = L.Add()([h, L.Dense(96, activation="sigmoid")(h)])
    ex = export_keras(randomize(keras.Model(x, L.Dense(2, activation="softmax")(h)), 4), name="deferred")
    assert ex.source.c.count("activated by the next Dense") == 3 and "part0[8][2]" in ex.source.c
    check = build_and_run(ex.source, tmp_path)
    assert check.passed and check.results, check.verdict()
