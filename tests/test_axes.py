"""Layers along any axis of a tensor, and merges that broadcast: compiled C against Keras.

BatchNormalization and Normalization on any axis (``Affine`` spread over the axes its vectors vary along),
LayerNormalization, RMS and unit norms over leading or scattered axes (a ``Transpose`` around the norm),
merges of inputs of different shapes (numpy's broadcasting: ``Expand``), RepeatVector, CenterCrop and Dot
(``MatMul``, normalized or not). Each model is exported from its file, compiled and checked on 10,000
random rows plus the edge rows under the default parity rule, at odd sizes.
"""

from __future__ import annotations

import numpy as np
import pytest

from exporter.api import export_keras

from helpers import export_and_check, randomize, saved, strict_compile

pytestmark = pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")


def _norms(keras):
    """(3, 4, 5): batch and preprocessing normalizations along each axis, norms over leading and scattered axes."""
    L = keras.layers
    x = keras.Input((3, 4, 5))
    h = L.BatchNormalization(axis=1)(x)
    h = L.BatchNormalization(axis=-2, center=False)(h)
    h = L.Normalization(axis=(1, 3), mean=np.linspace(-1, 1, 15).reshape(3, 5), variance=np.full((3, 5), 2.0))(h)
    h = L.Normalization(axis=None, mean=0.5, variance=3.0)(h)
    h = L.LayerNormalization(axis=1)(L.Dense(5)(h))
    h = L.UnitNormalization(axis=[1, 3])(h)
    h = L.LayerNormalization(axis=[1, 2], rms_scaling=True)(h)
    h = L.LayerNormalization(axis=[-3, -1], center=False)(L.BatchNormalization(axis=2, scale=False)(h))
    return keras.Model(x, L.Normalization(axis=2, mean=np.arange(4.0), variance=np.arange(1.0, 5.0), invert=True)(h))


def _ones(keras):
    """(3, 2, 1): a vector along an axis followed only by axes of 1 (BatchNormalization of axis 2 in 3 steps), and
    arithmetic with constants along the leading axes."""
    L = keras.layers
    x = keras.Input((3, 2, 1))
    h = L.LayerNormalization(axis=2)(L.BatchNormalization(axis=2)(x))
    h = h * np.array([[[1.5]], [[-2.0]], [[0.25]]], "float32") - np.array([[0.5], [1.0]], "float32")  # constants
    return keras.Model(x, L.Normalization(axis=1, mean=[0.5, 1.0, 2.0], variance=[2.0, 3.0, 4.0])(h))


def _merges(keras):
    """Inputs (4, 1), (4, 5), (1,) and (5,): every merge layer broadcasting them, as Keras does."""
    L = keras.layers
    a, b, c, d = (keras.Input(s) for s in [(4, 1), (4, 5), (1,), (5,)])
    h = L.Multiply()([a, b])
    h = L.Add()([h, c, d])
    h = L.Subtract()([d, h])
    h = L.Maximum()([h, a])
    h = L.Average()([c, h, L.Minimum()([a, d])])
    return keras.Model([a, b, c, d], h)


def _dots(keras):
    """Dot over every pairing of axes (the first input's, the second's), normalized or not, and RepeatVector."""
    L = keras.layers
    x, y, z = keras.Input((3, 5)), keras.Input((4, 3)), keras.Input((5,))
    along = L.Dot(axes=(1, 2))([x, y])  # (5, 4)
    cosines = L.Dot(axes=2, normalize=True)([x, L.RepeatVector(2)(L.Dense(5)(z))])  # (3, 2)
    last = L.Dot(axes=-1, normalize=True)([z, L.Dense(5)(z)])  # (1,)
    first = L.Dot(axes=1)([L.Dense(3)(z), x])  # (5,)
    flat = [L.Flatten()(t) for t in (along, cosines)]
    return keras.Model([x, y, z], L.Concatenate()([*flat, last, first]))


def _crops(keras):
    """CenterCrop of an odd difference (the extra row and column at the end, as Keras starts at half of it)."""
    L = keras.layers
    x = keras.Input((7, 8, 2))
    return keras.Model(x, L.CenterCrop(4, 3)(L.Conv2D(3, 1)(x)))


def _encodings(keras):
    """CategoryEncoding of a row of 5 indices in each mode (parity rows draw them in range: 0 to 6)."""
    L = keras.layers
    x = keras.Input((5,))
    modes = [L.CategoryEncoding(7, output_mode=mode)(x) for mode in ("multi_hot", "count", "one_hot")]
    return keras.Model(x, L.Concatenate()([modes[0], modes[1], L.Flatten()(modes[2])]))


MODELS = {"norms": _norms, "ones": _ones, "merges": _merges, "dots": _dots, "crops": _crops, "encodings": _encodings}


@pytest.mark.parametrize("kind", MODELS)
def test_axes_models_match_keras(keras, tmp_path, kind):
    report = export_and_check(randomize(MODELS[kind](keras), seed=3), tmp_path)
    assert report.passed and report.rows >= 10_000, report.table()


def test_encodings_follow_the_stated_index_rule(keras, tmp_path):
    """Outside ``[0, depth)`` (negative, too large, NaN, huge) an index adds nothing; a fraction is truncated
    toward zero (-0.5 is 0): the documented rule, checked on the C directly (TensorFlow raises on some)."""
    L = keras.layers
    x = keras.Input((4,))
    model = keras.Model(x, L.Concatenate()([L.CategoryEncoding(3, output_mode=m)(x) for m in ("multi_hot", "count")]))
    ex = export_keras(saved(model, tmp_path))
    rows = np.array([[0, 2.9, -0.5, 3], [-1, np.nan, 1e30, -1e30], [1, 1, 1.5, 2], [np.inf, -np.inf, 2, 2.5]])
    out = ex.compile(tmp_path)(rows.astype(np.float32))
    index = np.trunc(np.nan_to_num(rows, nan=-9, posinf=9, neginf=-9))
    counts = np.stack([((index == c) & (index >= 0) & (index < 3)).sum(axis=1) for c in range(3)], axis=1)
    np.testing.assert_array_equal(out, np.concatenate([np.minimum(counts, 1), counts], axis=1))


def test_batch_gives_the_bits_of_one_row_at_a_time(keras, tmp_path):
    """Every new op's loop over a block of rows (``SYMBOL_batch``: Affine spread over an axis, Expand, Transpose
    around a norm, MatMul, Encode) gives each row the bits of one call; the C compiles under the strict flags
    as C99 and as C++."""
    L = keras.layers
    x = keras.Input((3, 5))
    h = L.LayerNormalization(axis=1)(L.BatchNormalization(axis=1)(x))
    h = L.Multiply()([h, L.Reshape((3, 1))(L.Dense(3)(L.Flatten()(h)))])
    h = L.Dot(axes=(2, 1), normalize=True)([h, L.Dense(4)(L.Permute((2, 1))(h))])  # (3, 4): of (3, 5), (5, 4)
    counts = L.CategoryEncoding(4, output_mode="count")(L.Flatten()(L.Rescaling(0.0, offset=2.0)(x)))
    model = randomize(keras.Model(x, L.Concatenate()([L.Flatten()(L.RepeatVector(2)(counts)), L.Flatten()(h)])))
    ex = export_keras(saved(model, tmp_path), name="batched")
    ex.write(tmp_path / "batched.c")
    strict_compile(tmp_path / "batched.c", tmp_path)
    compiled = ex.compile(tmp_path)
    rows = np.random.default_rng(4).standard_normal((200, 15)).astype(np.float32)
    expected = compiled(rows)
    for n in (1, 3, 7, len(rows)):
        np.testing.assert_array_equal(compiled.batch(rows[:n]).view(np.uint32), expected[:n].view(np.uint32))


def test_flax_norms_on_any_axis_and_broadcasting_match_jax(tmp_path):
    """Flax: BatchNorm along the first axis of a (4, 6) tensor (its arithmetic, constants broadcast along it),
    LayerNorm and RMSNorm over leading axes (a transpose around the op), a product and a sum broadcasting a
    (4, 1) and a (1, 6) network value over (4, 6) (``Expand``)."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    from exporter.api import export_flax

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.Dense(6)(x.reshape(4, 5))
            h = nn.BatchNorm(use_running_average=True, axis=0)(h)
            h = nn.LayerNorm(reduction_axes=0, feature_axes=0)(h)
            h = nn.RMSNorm(reduction_axes=(0, 1), feature_axes=-1)(h)
            h = h * nn.Dense(1)(h) + nn.Dense(6)(x[:3]).reshape(1, 6)
            return h.reshape(-1)

    model = Model()
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros(20))
    leaves, tree = jax.tree_util.tree_flatten(variables)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    leaves = [a + 0.3 * jax.random.uniform(k, a.shape) for a, k in zip(leaves, keys, strict=True)]  # variances > 0
    ex = export_flax(model, jax.tree_util.tree_unflatten(tree, leaves), n_inputs=20, name="flaxaxes")
    kinds = {type(op).__name__ for op in ex.chain.net.ops}
    assert {"Affine", "Transpose", "LayerNorm", "Normalize", "Expand"} <= kinds, kinds
    report = ex.check(ex.compile(tmp_path, one_row=True))
    assert report.passed, report.table()


def test_what_does_not_fit_is_refused_by_name(keras, tmp_path):
    """A CenterCrop larger than the image (Keras resizes it) is refused with the layer's name and the rule."""
    L = keras.layers
    x = keras.Input((3, 4, 2))
    model = keras.Model(x, L.CenterCrop(5, 4, name="grow")(x))
    with pytest.raises(Exception, match="'grow' \\(CenterCrop\\): target \\(5, 4\\) outside the image"):
        export_keras(saved(model, tmp_path))
