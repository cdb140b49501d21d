"""Keras' Attention (dot and concat scores) and AdditiveAttention: compiled C against Keras.

Each model is saved, exported from its file, compiled and checked against Keras on 10,000 random rows plus
the edge rows under the default parity rule. Odd sizes throughout: 5 queries of 3 features over 7 keys, a
value of its own width (4) where a key is given; each model joins two layers side by side so every option
(``use_scale``, a separate key, ``use_causal_mask``, inference dropout) is checked in one compile.
"""

from __future__ import annotations

import pytest

from exporter import export_keras
from exporter.common.errors import UnsupportedModelError
from exporter.ir import Attention, MatMul

from helpers import export_and_check, randomize, saved


def _inputs(keras):
    return keras.Input((5, 3)), keras.Input((7, 3)), keras.Input((7, 4)), keras.Input((7, 3))


def _model(keras, first, second):
    """``first([q, wide value, key])`` beside ``second([q, value], use_causal_mask=True)``."""
    q, v, wide, k = _inputs(keras)
    a = first([q, wide, k])
    c = second([q, v], use_causal_mask=True)
    return keras.Model([q, v, wide, k], keras.layers.Concatenate()([a, c]))


def _dot(keras):
    L = keras.layers
    return _model(keras, L.Attention(use_scale=True), L.Attention(dropout=0.3))


def _concat(keras):
    L = keras.layers
    return _model(keras, L.Attention(score_mode="concat", use_scale=True), L.Attention(score_mode="concat"))


def _additive(keras):
    L = keras.layers
    return _model(keras, L.AdditiveAttention(), L.AdditiveAttention(use_scale=False))


@pytest.mark.parametrize("build", [_dot, _concat, _additive], ids=["dot", "concat", "additive"])
def test_attention_layers_match_keras(keras, tmp_path, build):
    model = randomize(build(keras))
    for w in model.weights:  # learned scales away from 1 (randomize draws scalars around 0)
        if not w.shape:
            w.assign(float(w.numpy()) + 1.5)
    report = export_and_check(model, tmp_path)
    assert report.rows >= 10_000
    assert report.passed, report.table()


def test_dot_scores_are_the_attention_op_and_the_others_a_product(keras, tmp_path):
    """The dot mode is one head of the IR's ``Attention`` (its scale and causality stated), the pairwise scores
    a softmax of a computed tensor times the values (``MatMul``)."""
    dot = export_keras(saved(randomize(_dot(keras)), tmp_path))
    attention = [op for op in dot.chain.net.ops if isinstance(op, Attention)]
    assert [(op.heads, op.key_dim, op.value_dim, op.keys, op.causal) for op in attention] == [
        (1, 3, 4, 7, False),
        (1, 3, 3, 7, True),
    ]
    assert attention[1].scale == 1.0 and attention[0].scale != 1.0
    additive = export_keras(saved(randomize(_additive(keras)), tmp_path))
    ops = additive.chain.net.ops
    assert not any(isinstance(op, Attention) for op in ops)
    assert [op.rows for op in ops if isinstance(op, MatMul)] == [5, 5]


def test_what_the_attention_layers_do_not_compute_is_refused_by_name(keras):
    L = keras.layers
    q, v, _, _ = _inputs(keras)
    qm, vm = keras.Input((5,), dtype="bool"), keras.Input((7,), dtype="bool")
    masked = keras.Model([q, v, qm, vm], L.Attention()([q, v], mask=[qm, vm]))
    scores = keras.Model([q, v], L.AdditiveAttention()([q, v], return_attention_scores=True)[0])
    x = keras.Input((2, 5, 3))
    grid = keras.Model(x, L.Attention()([x, x]))
    for model, fragment in (
        (masked, "Attention.*masks"),
        (scores, "AdditiveAttention.*2 outputs"),
        (grid, "only \\(items, features\\) tensors"),
    ):
        with pytest.raises(UnsupportedModelError, match=fragment):
            export_keras(model)
