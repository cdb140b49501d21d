"""Recurrent layers (SimpleRNN, GRU with either reset placement, LSTM, RNN of their cells, Bidirectional), in
Keras and in Flax linen (nn.RNN of each cell class, nn.Bidirectional).

Each model stacks several layers in branches, with odd sizes (1 and 7 steps, 3 and 17 units), sequences and
last states, go_backwards, every merge mode, activations other than the defaults, no bias, dropouts (the
identity at inference); it is exported from its file, compiled and checked against Keras on 10,000 random
rows plus the edge rows under the default parity rule, one model with inputs scaled up to saturate every gate.
The batch check builds every instruction-set variant this CPU runs and compares each, one row and batches,
bit for bit, and no variant's object code holds a fused multiply-add. What stays out is refused by name.
"""

from __future__ import annotations

import platform
import re
import subprocess

import jax.numpy as jnp
import numpy as np
import pytest

from exporter import export_flax, export_keras
from exporter.check.batch_bits import build_and_run
from exporter.common.errors import UnsupportedModelError
from exporter.ir import Recurrent

from helpers import export_and_check, randomize, strict_compile

FMA = re.compile(r"\bvfn?m(add|sub)")


def _stacked(keras):
    """Sequences into sequences: GRU -> LSTM (backwards) -> SimpleRNN, beside a GRU without reset_after and an
    RNN of an LSTM cell."""
    L = keras.layers
    x = keras.Input((7, 3))
    s1 = L.GRU(17, return_sequences=True, dropout=0.3, recurrent_dropout=0.2)(x)
    s2 = L.LSTM(3, go_backwards=True, return_sequences=True, recurrent_activation="hard_sigmoid")(s1)
    s3 = L.SimpleRNN(5, activation="relu", use_bias=False)(s2)
    g = L.GRU(3, reset_after=False, go_backwards=True, activation="softsign", recurrent_activation="hard_sigmoid")(x)
    r = L.RNN(L.LSTMCell(4, use_bias=False), return_sequences=True)(x)
    return keras.Model(x, L.Concatenate()([s3, g, L.Flatten()(s2), L.Flatten()(r)]))


def _bidirectional(keras):
    """Every merge mode, sequences and last states, and a forward layer that itself goes backwards."""
    L = keras.layers
    x = keras.Input((7, 3))
    b1 = L.Bidirectional(L.LSTM(3, return_sequences=True))(x)
    b2 = L.Bidirectional(L.GRU(4, reset_after=False, return_sequences=True), merge_mode="sum")(b1)
    b3 = L.Bidirectional(L.SimpleRNN(3), merge_mode="mul")(b2)
    b4 = L.Bidirectional(L.GRU(2, return_sequences=True), merge_mode="ave")(x)
    ahead = L.LSTM(2, return_sequences=True)
    b5 = L.Bidirectional(L.LSTM(2, go_backwards=True, return_sequences=True), backward_layer=ahead)(x)
    return keras.Model(x, L.Concatenate()([b3, L.Flatten()(b4), L.Flatten()(b5)]))


def _saturated(keras):
    """One step, inputs scaled by 50: gates at 0 and 1, tanh at -1 and 1."""
    L = keras.layers
    x = keras.Input((1, 4))
    big = L.Rescaling(50.0)(x)
    g = L.GRU(3)(big)
    m = L.LSTM(17, return_sequences=True)(big)
    s = L.SimpleRNN(3, return_sequences=True)(big)
    return keras.Model(x, L.Concatenate()([g, L.Flatten()(m), L.Flatten()(s)]))


MODELS = {"stacked": _stacked, "bidirectional": _bidirectional}


@pytest.mark.parametrize("kind", MODELS)
def test_recurrent_models_match_keras(keras, tmp_path, kind):
    report = export_and_check(randomize(MODELS[kind](keras), seed=3), tmp_path)
    assert report.rows >= 10_000
    assert report.passed, report.table()


def test_every_variant_and_batch_give_the_same_bits_without_fma(keras, tmp_path):
    ex = export_keras(randomize(_bidirectional(keras), seed=4), name="bidi")
    check = build_and_run(ex.source, tmp_path)
    assert check.passed, check.verdict()
    if platform.machine() == "x86_64":
        library = tmp_path / "libbidi_batch_check.so"
        asm = subprocess.run(["objdump", "-d", str(library)], capture_output=True, text=True)
        fused = [line.strip() for line in asm.stdout.splitlines() if FMA.search(line)]
        assert not fused, f"{len(fused)} FMA instructions, e.g. {fused[:3]}"


@pytest.mark.parametrize("options", [{}, {"dtype": "double"}, {"math": "fma"}])
def test_saturated_gates_compile_strictly_and_match(keras, tmp_path, options):
    """Gates at 0 and 1 in float (fast math), double and with fused sums: strict C99 and C++ without a warning,
    and parity."""
    ex = export_keras(randomize(_saturated(keras), seed=5), name="seq", **options)
    source = tmp_path / "seq.c"
    source.write_text(ex.source.c)
    (tmp_path / "seq.h").write_text(ex.source.h)
    strict_compile(source, tmp_path)
    report = ex.check(ex.compile(tmp_path, one_row=True))
    assert report.passed, report.table()


def _refusal(keras, build) -> str:
    L = keras.layers
    with pytest.raises(UnsupportedModelError) as err:
        export_keras(build(L))
    return str(err.value)


def test_what_stays_out_is_refused_by_name(keras):
    def stateful(L):
        x = keras.Input((4, 2), batch_size=1)
        return keras.Model(x, L.GRU(3, stateful=True, name="carried")(x))

    def with_state(L):
        x = keras.Input((4, 2))
        out, _ = L.GRU(3, return_state=True, name="states")(x)
        return keras.Model(x, out)

    def masked(L):
        x = keras.Input((4, 2))
        return keras.Model(x, L.LSTM(3)(L.Masking(name="pad")(x)))

    def two_outputs(L):
        x = keras.Input((4, 2))
        forward, backward = L.Bidirectional(L.GRU(3), merge_mode=None, name="both")(x)
        return keras.Model(x, L.Add()([forward, backward]))

    def conv_lstm(L):
        x = keras.Input((4, 5, 2))
        return keras.Model(x, L.Flatten()(L.ConvLSTM1D(2, 3, name="conv")(x)))

    assert "'carried' (GRU): stateful=True is not supported" in _refusal(keras, stateful)
    assert "'states' (GRU): 2 outputs; layers with one output are supported" in _refusal(keras, with_state)
    assert "'pad' (Masking): masking (the Masking layer) is not supported" in _refusal(keras, masked)
    assert "'both' (Bidirectional): 2 outputs; layers with one output are supported" in _refusal(keras, two_outputs)
    assert "'conv' (ConvLSTM1D): convolutional recurrent layers (ConvLSTM) are not supported" in _refusal(
        keras, conv_lstm
    )


def _flax_model():
    """Flax linen: every cell class, a reversed RNN, a bidirectional one (keep_order), a returned carry; 7 steps."""
    from flax import linen as nn

    class Sequences(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x.reshape(7, 3)
            gru = nn.RNN(nn.GRUCell(17))(x)
            both = nn.Bidirectional(nn.RNN(nn.LSTMCell(3)), nn.RNN(nn.OptimizedLSTMCell(3)))(x)
            back = nn.RNN(nn.SimpleCell(3), reverse=True)(x)
            last, _ = nn.RNN(nn.GRUCell(2, gate_fn=nn.hard_sigmoid), return_carry=True)(x)
            return nn.Dense(5)(jnp.concatenate([gru.reshape(-1), both.reshape(-1), back.reshape(-1), last]))

    return Sequences()


def _flax_params(model, n_inputs):
    """Random params of the model's shapes (``eval_shape``: an eager init would compile every op), spread as
    ``helpers.randomize`` spreads Keras weights."""
    import jax

    rng = np.random.default_rng(2)
    template = jax.eval_shape(model.init, jax.random.PRNGKey(0), np.zeros(n_inputs, np.float32))

    def spread(s):
        return (rng.standard_normal(s.shape) / (np.sqrt(s.shape[0]) if len(s.shape) == 2 else 2.0)).astype(np.float32)

    return jax.tree_util.tree_map(spread, template)


def test_flax_recurrences_match_flax(tmp_path):
    model = _flax_model()
    ex = export_flax(model, _flax_params(model, 21), n_inputs=21, name="flax_rnn")
    kinds = sorted({op.describe().split(" ")[0] for op in ex.graph.ops if isinstance(op, Recurrent)})
    assert kinds == ["GRU,", "LSTM", "SimpleRNN"]
    report = ex.check(ex.compile(tmp_path, one_row=True))
    assert report.rows >= 10_000
    assert report.passed, report.table()


def test_flax_recurrences_flax_cannot_map_are_refused_by_name():
    from flax import linen as nn

    class Masked(nn.Module):
        cell: str

        @nn.compact
        def __call__(self, x):
            x = x.reshape(4, 2)
            if self.cell == "mgu":
                return nn.RNN(nn.MGUCell(3), name="gated")(x).reshape(-1)
            return nn.RNN(nn.GRUCell(3), name="masked")(x, seq_lengths=jnp.array(2)).reshape(-1)

    for cell, fragment in (
        ("mgu", "module 'gated' (RNN(MGUCell)): cell MGUCell: only GRUCell, LSTMCell"),
        ("gru", "module 'masked' (RNN(GRUCell)): seq_lengths is not supported"),
    ):
        model = Masked(cell)
        with pytest.raises(UnsupportedModelError, match=re.escape(fragment)):
            export_flax(model, _flax_params(model, 8), n_inputs=8)
