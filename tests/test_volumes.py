"""Three spatial axes: Conv3D, 3-D pooling (windowed and global), ZeroPadding3D, Cropping3D, UpSampling3D and
SpatialDropout, through the same IR ops and templates as their 1-D and 2-D forms (exporter/ir/convolution.py
Grid); TimeDistributed shaped layers (the op's steps over the leading axis); Flax's nn.Conv and pools over volumes.

Each model packs layers of odd sizes, strides, dilations and both paddings into one export, compiled and checked
against the framework on 10,000 random rows plus the edge rows under the default parity rule; SYMBOL_batch and
every instruction-set variant this CPU runs are held to one call per row, bit for bit.
"""

from __future__ import annotations

import numpy as np
from test_convolution import spread

from exporter import export_keras
from exporter.ir import Conv, Pool
from exporter.ir.convolution import Grid

from helpers import assert_parity_and_batch_bits, assert_refused, saved, strict_compile


def _volume(keras):
    """A (4, 7, 6, 3) tensor as a volume, and as 4 images for TimeDistributed layers (keras2c's wrappers.006/007
    and more): padding, strided same, dilated grouped, cropping, upsampling, pooling both ways, global pooling,
    a softmax over the filters, a 3-D convolution of each slice; SpatialDropout1D/2D/3D (identities)."""
    L = keras.layers
    x = keras.Input((4, 7, 6, 3))
    h = L.ZeroPadding3D(((1, 0), (0, 2), (1, 1)))(x)  # (5, 9, 8, 3)
    h = L.Conv3D(4, (3, 2, 3), strides=(2, 1, 2), padding="same", activation="tanh")(h)  # (3, 9, 4, 4)
    h = L.SpatialDropout3D(0.3)(h)
    h = L.Conv3D(6, (2, 3, 2), dilation_rate=(1, 2, 1), padding="valid", groups=2)(h)  # (2, 5, 3, 6)
    h = L.Cropping3D(((0, 1), (1, 0), (0, 1)))(h)  # (1, 4, 2, 6)
    h = L.UpSampling3D((2, 1, 3))(h)  # (2, 4, 6, 6)
    m = L.MaxPooling3D((2, 2, 3), strides=(1, 2, 2), padding="same")(h)  # (2, 2, 3, 6)
    a = L.AveragePooling3D((1, 2, 2), padding="same")(m)  # (2, 1, 2, 6): partial windows divide by their count
    v = L.AveragePooling3D(2, strides=1)(h)  # valid: (1, 3, 5, 6)
    volume = [L.GlobalMaxPooling3D()(a), L.GlobalAveragePooling3D()(v), L.GlobalAveragePooling3D(keepdims=True)(m)]
    t = L.TimeDistributed(L.Conv2D(5, 2, strides=(2, 1), padding="same", activation="relu"))(x)  # (4, 4, 6, 5)
    t = L.TimeDistributed(L.ZeroPadding2D(((1, 0), (0, 1))))(L.SpatialDropout3D(0.5)(t))  # (4, 5, 7, 5)
    t = L.TimeDistributed(L.MaxPooling2D((2, 3), padding="same"))(t)  # (4, 3, 3, 5)
    g = L.SpatialDropout1D(0.5)(L.TimeDistributed(L.GlobalAveragePooling2D())(t))  # (4, 5)
    s = L.TimeDistributed(L.Conv1D(3, 2, activation="softmax"))(L.Reshape((4, 9, 5))(t))  # (4, 8, 3)
    s = L.SpatialDropout2D(0.5)(s)
    c = L.TimeDistributed(L.Conv3D(2, (2, 2, 3)))(L.Reshape((4, 3, 3, 5, 1))(t))  # (4, 2, 2, 3, 2)
    parts = [L.Flatten()(p) for p in (*volume, g, s, c)]
    return keras.Model(x, L.Dense(3)(L.Concatenate()(parts)))


def test_volume_and_time_distributed_models_match_keras(keras, tmp_path):
    assert_parity_and_batch_bits(spread(_volume(keras)), tmp_path)


def test_the_new_templates_compile_under_the_strict_flags(keras, tmp_path):
    """Each 3-D form, a grid op over slices, and both resizings once: Lamarr's strict flags, as C and as C++."""
    L = keras.layers
    x = keras.Input((3, 4, 5, 2))
    h = L.MaxPooling3D(2, padding="same")(L.Conv3D(2, 2, padding="same")(L.ZeroPadding3D(1)(x)))
    h = L.UpSampling3D(2)(L.AveragePooling3D(2, padding="same")(L.Cropping3D(1)(h)))
    r = L.Resizing(3, 5, interpolation="nearest")(L.Resizing(5, 7)(L.Reshape((12, 5, 2))(x)))
    t = L.TimeDistributed(L.Conv1D(2, 2))(L.Reshape((12, 5, 2))(x))
    model = keras.Model(x, L.Concatenate()([L.Flatten()(p) for p in (h, r, t)]))
    strict_compile(export_keras(saved(model, tmp_path)).write(tmp_path / "volume.c")[0], tmp_path)


def test_a_volume_grid_reads_its_positions_axis_by_axis():
    """The index arithmetic the templates print: divisors of a flat position and of the merged leading window."""
    kernel = np.ones((3, 2, 3, 2, 5))
    conv = Conv("c", ("x",), "", 4 * 3 * 2 * 5, in_shape=(6, 5, 4, 2), window=(3, 2, 3), kernel=kernel,
                strides=(1, 2, 1), padding=((0, 0), (0, 0), (0, 1)))  # fmt: skip
    g = conv.grid
    assert [a.name for a in g.axes] == ["d", "h", "w"]
    assert [(a.out, a.out_div) for a in g.axes] == [(4, 6), (2, 3), (3, 1)]
    assert [a.window_div for a in g.lead] == [2, 1] and g.lead_window == 6 and g.window == 18
    flat = Pool("p", ("x",), "", 9, in_shape=(9, 1), window=(1,)).grid  # a 1-D op: one position high
    assert [(a.name, a.n, a.out) for a in flat.axes] == [("h", 1, 1), ("w", 9, 9)]
    assert Grid.of((4, 5), (4, 5), 3).positions == 20


def test_flax_volumes_match_jax(tmp_path):
    """nn.Conv, nn.max_pool and nn.avg_pool over three spatial axes, and a mean over the positions."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    from exporter import export_flax

    class Volume(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x.reshape(4, 5, 6, 2)
            x = nn.tanh(nn.Conv(4, (2, 3, 2), strides=(1, 2, 1), padding="SAME")(x))
            m = nn.max_pool(x, (2, 2, 2), padding="VALID")
            a = nn.avg_pool(x, (1, 2, 3), strides=(2, 1, 2), padding="SAME", count_include_pad=False)
            return jnp.concatenate([m.reshape(-1), a.reshape(-1), jnp.mean(x, axis=(0, 1, 2))])

    model, rng = Volume(), np.random.default_rng(2)

    def draw(leaf):
        scale = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 0.5
        return (rng.standard_normal(leaf.shape) * scale).astype(np.float32)

    params = jax.tree_util.tree_map(draw, jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros(240)))
    ex = export_flax(model, params, n_inputs=240, name="volume")
    report = ex.check(ex.compile(tmp_path, one_row=True))
    assert report.rows >= 10_000
    assert report.passed, report.table()


def test_volumes_the_family_does_not_take_are_refused_by_name(keras, tmp_path, capsys):
    L = keras.layers
    x = keras.Input((4, 4, 4, 2))
    parts = [
        L.Conv3D(2, 2, data_format="channels_first", name="first")(x),
        L.UpSampling3D(2, data_format="channels_first", name="up")(x),
    ]
    assert_refused(
        keras,
        capsys,
        tmp_path,
        x,
        parts,
        "'first' (Conv3D): data_format 'channels_first': only channels_last is supported",
        "'up' (UpSampling3D): data_format 'channels_first': only channels_last is supported",
    )
