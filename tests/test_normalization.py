"""Normalizations, embeddings and elementwise layers on rows and tensors: compiled C against Keras and Flax.

Each model is exported from its file (Keras) or traced (Flax), compiled and checked on 10,000 random rows
plus the edge rows (constant rows among them: a group of variance 0) under the default parity rule. An
Embedding's input columns are drawn as whole numbers in range (``exporter.check.inputs.index_columns``);
what the C gives outside that range is checked against the documented rule (NaN).
"""

from __future__ import annotations

import numpy as np
import pytest

from exporter.api import export_flax, export_keras
from exporter.check.inputs import index_columns, with_indices
from exporter.frontends.builder import Builder, Unsupported
from exporter.ir import Graph, Reshape
from exporter.ir.normalization import Embedding, Normalize

from helpers import assert_refused, export_and_check, randomize, saved, strict_compile

# Keras warns that rms_scaling divides by the variance's root: the layer computes that, and the C matches it
pytestmark = pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")


def _rows(keras):
    """Every normalization on rows of odd widths, the first straight on the input (constant rows: variance 0)."""
    L = keras.layers
    x = keras.Input((7,))
    h = L.LayerNormalization(rms_scaling=True)(x)
    h = L.Add()([L.UnitNormalization()(x), L.RMSNormalization(epsilon=1e-4)(h)])
    h = L.GroupNormalization(groups=3, epsilon=1e-3)(L.Dense(9)(h))
    h = L.GroupNormalization(groups=1, center=False)(h)
    return keras.Model(x, L.Dense(3)(L.LayerNormalization(scale=False)(h)))


def _tensors(keras):
    """(H, W, C): groups of channels over the whole image; trailing-axes RMS and unit norms; per-pixel forms."""
    L = keras.layers
    x = keras.Input((3, 5, 6))
    h = L.GroupNormalization(groups=2)(x)
    h = L.RMSNormalization(axis=[-2, -1])(h)
    h = L.UnitNormalization(axis=[-2, -1])(L.Dense(6)(h))
    h = L.GroupNormalization(groups=-1, center=False, scale=False)(h)  # one group per channel
    return keras.Model(x, L.LayerNormalization(rms_scaling=True)(L.UnitNormalization()(h)))


def _embedded(keras):
    """Indices in the middle of a row: an Embedding of a slice, joined with the other features."""
    L = keras.layers
    x = keras.Input((6,))
    ids = L.Embedding(5, 3)(x[:, 2:5])  # (3, 3)
    h = L.LayerNormalization()(L.Dense(4, activation="tanh")(ids))
    return keras.Model(x, L.Concatenate()([x[:, :2], L.Flatten()(h), x[:, 5:]]))


def _sequence(keras):
    """Merges, identity-at-inference layers, activation layers, Rescaling and keras.ops on (T, F)."""
    L, K = keras.layers, keras.ops
    x = keras.Input((5, 6))
    a = L.Dense(6)(x)
    h = L.Average()([L.Multiply()([L.Subtract()([L.Add()([x, a]), x]), a]), x, a])
    h = L.Minimum()([L.Maximum()([h, x]), a])
    h = L.GaussianNoise(0.1)(L.ActivityRegularization(0.1)(L.Dropout(0.3)(h)))
    h = L.ELU(0.7)(L.LeakyReLU(0.2)(L.ReLU(max_value=3.0, negative_slope=0.1, threshold=0.2)(h)))
    h = L.Rescaling(np.linspace(0.5, 2, 6), offset=np.linspace(-1, 1, 6))(L.Rescaling(0.5, offset=0.1)(h))
    h = K.softmax(K.tanh(h) * 2.0 + np.linspace(0, 1, 6).astype("float32"))
    joined = [K.concatenate([h, x[..., 1:3]], axis=-1), K.concatenate([K.abs(h - 0.3), K.square(x)[:, :, :2]], axis=-1)]
    h = K.concatenate(joined, axis=1)
    return keras.Model(x, h)


def _image(keras):
    """(H, W, C) through activations, a per-channel Rescaling, log-softmax over channels, joins along W."""
    L, K = keras.layers, keras.ops
    x = keras.Input((3, 4, 2))
    h = L.Rescaling([0.5, 2.0])(L.Add()([L.Activation("gelu")(x), x]))
    h = K.log_softmax(h, axis=-1) + K.sigmoid(x)
    h = K.concatenate([K.concatenate([h, x[:, :, :, :1]], axis=-1), K.concatenate([x, h[..., 1:]], axis=-1)], axis=2)
    return keras.Model(x, K.maximum(h, K.tanh(h) * np.array([1.0, 2.0, 0.5], "float32")))


MODELS = {"rows": _rows, "tensors": _tensors, "embedding": _embedded, "sequence": _sequence, "image": _image}


@pytest.mark.parametrize("kind", MODELS)
def test_keras_models_match(keras, tmp_path, kind):
    report = export_and_check(randomize(MODELS[kind](keras)), tmp_path)
    assert report.rows >= 10_000
    assert report.passed, report.table()


def test_every_activation_layer_on_a_tensor(keras, tmp_path):
    from exporter.frontends.keras.activations import KERAS_ACTIVATIONS

    L = keras.layers
    x = keras.Input((2, 3))
    names = sorted(set(KERAS_ACTIVATIONS.names()) - {"threshold", "glu"})  # no defaults; glu halves the axis
    outs = [L.Flatten()(L.Activation(name)(x)) for name in names]
    report = export_and_check(keras.Model(x, L.Concatenate()(outs)), tmp_path)
    assert report.passed, report.table()


def test_an_embedding_outside_its_range_gives_nan(keras, tmp_path):
    table = np.arange(8, dtype=np.float32).reshape(4, 2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Embedding(4, 2)])
    model.layers[0].set_weights([table])
    compiled = export_keras(saved(model, tmp_path), name="lookup").compile(tmp_path, one_row=True)
    rows = np.array([[0, 3.9, -0.5], [-1, -4, -4.5], [4, -5, np.nan], [1e30, 2, -1e30]], np.float32)
    out = compiled(rows).reshape(4, 3, 2)
    index = np.trunc(np.clip(np.nan_to_num(rows, nan=99), -99, 99)).astype(np.int64)
    inside = (index >= -4) & (index < 4)
    np.testing.assert_array_equal(out[inside], table[index[inside] % 4])
    assert np.isnan(out[~inside]).all() and (~inside).sum() == 5


def test_parity_rows_draw_indices_in_range():
    b = Builder("test")
    x = b.value(6)
    ids = b.add(Reshape, "r", [x], 6, shape=(2, 3))
    out = b.add(Embedding, "e", [ids], 24, table=np.ones((5, 4)))
    graph = Graph(x, out, b.widths, b.ops, shapes=b.shapes)
    assert index_columns(graph) == dict.fromkeys(range(6), (-5, 5))
    rows = with_indices(np.random.default_rng(0).standard_normal((1000, 6)), index_columns(graph), 0)
    assert set(np.unique(np.trunc(rows))) == set(range(-5, 5))
    assert rows[4, 0] == 4.5 and rows[6, 0] == -5.5  # halves truncated to the ends


def test_what_stays_out_is_refused_by_name(keras, tmp_path, capsys):
    L = keras.layers
    x = keras.Input((4, 6))
    h = L.Embedding(10, 2, mask_zero=True, name="masked")(x)
    g = L.GroupNormalization(groups=2, axis=1, name="over_time")(x)
    assert_refused(
        keras,
        capsys,
        tmp_path,
        x,
        [h, g],
        "'masked' (Embedding): mask_zero=True",
        "'over_time' (GroupNormalization): axis 1",
    )


def test_normalize_checks_its_groups_and_epsilon():
    with pytest.raises(ValueError, match="groups"):
        Normalize("n", ("x",), "y", 6, channels=6, groups=4)
    b = Builder("test")
    with pytest.raises(Unsupported, match="epsilon"):
        b.add(Normalize, "unit", [b.value(3)], 3, kind="unit", channels=3, epsilon=0.0)


def test_flax_normalizations_and_embed():
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            ids = nn.Embed(6, 3)(x.astype(jnp.int32)).reshape(-1)
            h = nn.LayerNorm()(nn.Dense(9)(jnp.concatenate([ids, x])))
            h = nn.GroupNorm(num_groups=3)(nn.RMSNorm()(h))
            return nn.Dense(2)(nn.GroupNorm(num_groups=None, group_size=1, use_bias=False)(h))

    model = Model()
    params = model.init(jax.random.PRNGKey(0), jnp.zeros(5))
    params = jax.tree_util.tree_map(lambda p: p + 0.3 * np.random.default_rng(1).standard_normal(p.shape), params)
    ex = export_flax(model, params, n_inputs=5, name="normed")
    kinds = [op.describe().split()[0] for op in ex.chain.net.ops]
    assert {"Embedding", "LayerNorm", "Normalize"} <= set(kinds)
    report = ex.check(ex.compile(one_row=True))
    assert report.passed, report.table()


def test_batch_gives_the_bits_of_one_row_at_a_time(keras, tmp_path):
    """The ops' loops over a block of rows (``SYMBOL_batch``) give each row the bits of one call; the C
    compiles under the strict flags as C99 and as C++."""
    L = keras.layers
    x = keras.Input((3, 4))
    h = L.Flatten()(L.Embedding(7, 2)(L.Flatten()(x)))  # (24,)
    h = L.Reshape((4, 6))(h)
    h = L.UnitNormalization()(L.RMSNormalization()(L.GroupNormalization(groups=3)(h)))
    model = randomize(keras.Model(x, L.LayerNormalization(rms_scaling=True)(L.LayerNormalization()(h))))
    ex = export_keras(saved(model, tmp_path), name="batched")
    ex.write(tmp_path / "batched.c")
    strict_compile(tmp_path / "batched.c", tmp_path)
    compiled = ex.compile(tmp_path)
    rows = with_indices(np.random.default_rng(2).standard_normal((300, 12)), dict.fromkeys(range(12), (-7, 7)), 0)
    rows = rows.astype(np.float32)
    rows[5, 3] = 9.0  # out of range: NaN in that row's outputs only
    expected = compiled(rows)
    for n in (1, 3, 7, len(rows)):
        np.testing.assert_array_equal(compiled.batch(rows[:n]).view(np.uint32), expected[:n].view(np.uint32))
