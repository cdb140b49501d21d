"""MultiHeadAttention, Transformer encoder blocks and sets with masks: compiled C against Keras.

Each model is saved, exported from its file, compiled and checked against Keras on 10,000 random rows plus
the edge rows under the default parity rule. A model of several inputs takes them side by side in one row
(docs/c-contract.md#several-inputs); an input read only as an attention mask is drawn as 0/1 masks keeping
every count of items from none to all, so fully masked queries are checked too, on both of Keras' paths
(uniform weights without dropout, zeros with it).
"""

from __future__ import annotations

import numpy as np
import pytest

from exporter import export_keras
from exporter.check.batch_bits import build_and_run
from exporter.common.errors import UnsupportedModelError
from exporter.ir import Attention

from helpers import export_and_check, header_values, randomize, saved

N = 6  # items of a set


def _self_attention(keras):
    """Odd head count and dims, no bias, a residual around it."""
    L = keras.layers
    x = keras.Input((5, 7))
    a = L.MultiHeadAttention(num_heads=3, key_dim=5, value_dim=3, use_bias=False)(x, x)
    return keras.Model(x, L.Add()([x, a]))


def _cross_attention(keras):
    """Queries of one sequence over keys and values of two others, each its own width; a 2-D output shape."""
    L = keras.layers
    q, v, k = keras.Input((4, 6)), keras.Input((7, 5)), keras.Input((7, 3))
    a = L.MultiHeadAttention(num_heads=1, key_dim=2, value_dim=5, output_shape=(2, 3))(q, v, key=k)
    return keras.Model([q, v, k], L.Dense(2)(a))


def set_transformer(keras, dropout=0.0, causal=False, items=N):
    """Particles (items, 4) and their mask (items,): an encoder block (attention + Add + LayerNormalization +
    Dense feed-forward + Add + LayerNormalization) and a Dense head per particle."""
    L = keras.layers
    x, mask = keras.Input((items, 4), name="particles"), keras.Input((items,), name="mask")
    h = L.Dense(8)(x)
    a = L.MultiHeadAttention(num_heads=2, key_dim=3, dropout=dropout)(
        h, h, attention_mask=L.Reshape((1, items))(mask), use_causal_mask=causal
    )
    h = L.LayerNormalization()(L.Add()([h, a]))
    h = L.LayerNormalization()(L.Add()([h, L.Dense(8)(L.Dense(16, activation="gelu")(h))]))
    return keras.Model([x, mask], L.Dense(2)(h))


@pytest.mark.parametrize("build", [_self_attention, _cross_attention], ids=["self", "cross"])
def test_attention_matches_keras(keras, tmp_path, build):
    report = export_and_check(randomize(build(keras)), tmp_path)
    assert report.rows >= 10_000
    assert report.passed, report.table()


@pytest.mark.parametrize("dropout, causal", [(0.0, False), (0.25, True)], ids=["fused path", "dropout, causal"])
def test_a_masked_set_matches_keras_for_every_count(keras, tmp_path, dropout, causal):
    ex = export_keras(saved(randomize(set_transformer(keras, dropout, causal)), tmp_path))
    rows = ex.inputs(samples=2_000)
    counts = rows[:, 4 * N :].sum(axis=1)
    assert set(np.unique(rows[:, 4 * N :])) == {0.0, 1.0} and set(counts) == set(range(N + 1))
    report = ex.check(ex.compile(tmp_path, one_row=True), inputs=rows)
    assert report.passed, report.table()
    (op,) = [op for op in ex.chain.net.ops if isinstance(op, Attention)]
    assert op.empty == ("zero" if dropout else "uniform") and op.causal == causal


def _masked_attention(keras, dropout):
    L = keras.layers
    x, mask = keras.Input((N, 4)), keras.Input((N,))
    a = L.MultiHeadAttention(num_heads=2, key_dim=3, dropout=dropout)(x, x, attention_mask=L.Reshape((1, N))(mask))
    return keras.Model([x, mask], a)


@pytest.mark.parametrize("dropout", [0.0, 0.25], ids=["fused path", "dropout"])
def test_fully_masked_queries_follow_keras_path(keras, tmp_path, dropout):
    """The rule for a query whose keys are all masked is checked: the other path's rule fails parity there,
    under the default float32 rule (the float64 reference's nudge leaves the 0/1 mask columns alone: moved
    by one ULP, a masked key is kept, and the envelope grows until nothing fails)."""
    ex = export_keras(saved(randomize(_masked_attention(keras, dropout)), tmp_path))
    rows = ex.inputs(samples=500)
    assert ex.check(ex.compile(tmp_path, one_row=True), inputs=rows).passed
    (op,) = [op for op in ex.chain.net.ops if isinstance(op, Attention)]
    op.empty = "uniform" if dropout else "zero"
    ex.source = ex.render()
    (tmp_path / "wrong").mkdir()
    wrong = ex.check(ex.compile(tmp_path / "wrong", one_row=True), inputs=rows)
    assert not wrong.passed


def test_every_instruction_set_and_the_batch_give_the_same_bits(keras, tmp_path):
    ex = export_keras(randomize(set_transformer(keras, items=3)), name="bits", math="fast")
    check = build_and_run(ex.source, tmp_path)
    assert check.passed and check.results, check.verdict()


def test_the_header_states_each_input(keras, tmp_path):
    ex = export_keras(saved(randomize(set_transformer(keras)), tmp_path), name="set")
    ex.write(tmp_path / "set.c")
    assert "input 1: mask, shape (6) from input[24]: an attention mask" in (tmp_path / "set.h").read_text()
    arrays = "p[] = set_INPUT_0_SHAPE, m[] = set_INPUT_1_SHAPE, out[] = set_OUTPUT_SHAPE"
    values = "set_N_INPUT_PARTS, p[0] * p[1], set_INPUT_1_OFFSET, m[0], out[0] * out[1], set_N_INPUTS"
    shown = header_values(tmp_path, "set.h", arrays, values)
    assert shown == ["2", str(4 * N), str(4 * N), str(N), str(2 * N), str(5 * N)]


def test_what_attention_does_not_compute_is_refused_by_name(keras):
    L = keras.layers
    x = keras.Input((2, 3, 4))
    axes = keras.Model(x, L.MultiHeadAttention(num_heads=2, key_dim=2, attention_axes=(1, 2))(x, x))
    s = keras.Input((3, 4))
    scores = keras.Model(s, L.MultiHeadAttention(1, 2)(s, s, return_attention_scores=True)[0])
    for model, fragment in ((axes, "attention_axes"), (scores, "MultiHeadAttention.*2 outputs")):
        with pytest.raises(UnsupportedModelError, match=fragment):
            export_keras(model)
