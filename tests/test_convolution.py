"""The convolution family: convolutions (grouped, depthwise, separable), pooling, padding, cropping, upsampling,
Permute and TimeDistributed, as shaped IR ops with templates of their own.

Each model packs many layers of odd sizes, strides, dilations and both paddings into one export (exports are
what costs time); each is compiled and checked against Keras on 10,000 random rows plus the edge rows under
the default parity rule, and SYMBOL_batch and every instruction-set variant this CPU runs are held to one call
per row, bit for bit (the export's batch check); the image model's C (every template) compiles under the
strict flags as C and as C++. What the family does not take is refused by name.
"""

from __future__ import annotations

import numpy as np
import pytest

from exporter import export_keras
from exporter.check.batch_bits import build_and_run
from exporter.frontends.builder import Builder, Unsupported
from exporter.ir import Conv, Pad, Pool, Transpose
from exporter.ir.convolution import same_padding

from helpers import assert_refused, perturb_weight, saved, strict_compile


def spread(model, seed: int = 0):
    """Random weights with a trained network's spread: kernels std 1/sqrt(fan-in) (all axes but the filters'),
    biases std 0.5, so that no term hides behind a zero and no layer saturates the next."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        scale = 1 / np.sqrt(np.prod(shape[:-1])) if len(shape) > 1 else 0.5
        w.assign((rng.standard_normal(shape) * scale).astype("float32"))
    return model


def _sequence(keras):
    """A Conv1D stack over 37 steps: same, valid, causal; strides, dilation, groups, depthwise; pooling."""
    L = keras.layers
    x = keras.Input((37, 5))
    h = L.Conv1D(8, 3, padding="same", activation="tanh")(x)
    h = L.Conv1D(6, 4, strides=2, padding="valid", use_bias=False)(h)
    h = L.Conv1D(6, 3, padding="causal", dilation_rate=2, groups=2, activation="relu")(h)
    h = L.DepthwiseConv1D(3, depth_multiplier=2, strides=2, padding="same")(h)
    h = L.ZeroPadding1D((2, 1))(h)
    h = L.SeparableConv1D(7, 2, activation="sigmoid")(h)
    h = L.UpSampling1D(3)(L.Cropping1D((1, 2))(h))
    h = L.MaxPooling1D(2, padding="same")(h)
    h = L.AveragePooling1D(3, strides=2, padding="same")(h)
    pooled = [L.GlobalAveragePooling1D()(h), L.GlobalMaxPooling1D()(h)]
    return keras.Model(x, L.Dense(3)(L.Concatenate()(pooled)))


def _image(keras):
    """(9, 11, 3) images: padding, strided same, dilated grouped, separable, cropping, upsampling, pooling."""
    L = keras.layers
    x = keras.Input((9, 11, 3))
    h = L.ZeroPadding2D(((1, 0), (2, 1)))(x)
    h = L.Conv2D(8, (3, 2), strides=(2, 1), padding="same", activation="elu")(h)
    h = L.Conv2D(6, 3, dilation_rate=(1, 2), padding="valid", groups=2)(h)
    h = L.SeparableConv2D(5, (2, 3), depth_multiplier=2, padding="same", activation="tanh")(h)
    h = L.Cropping2D(((1, 0), (0, 1)))(h)
    h = L.UpSampling2D((2, 1))(h)
    h = L.MaxPooling2D((2, 3), strides=(1, 2), padding="same")(h)  # (4, 5, 5)
    p = L.Permute((2, 1, 3))(h)
    h = L.AveragePooling2D(2, padding="same")(p)  # (3, 2, 5): a partial window divides by its count
    g = L.GlobalMaxPooling2D(keepdims=True)(h)
    a = L.GlobalAveragePooling2D()(h)
    d = L.DepthwiseConv2D((2, 2), activation="relu")(h)
    out = L.Concatenate()([L.Flatten()(g), a, L.Flatten()(d)])
    return keras.Model(x, L.Dense(4, activation="softmax")(out))


def _steps(keras):
    """TimeDistributed row layers, Permute of a sequence, and a tensor output (softmax over the filters)."""
    L = keras.layers
    x = keras.Input((6, 4))
    h = L.TimeDistributed(L.Dense(5, activation="tanh"))(x)
    h = L.TimeDistributed(L.LayerNormalization())(h)
    h = L.Permute((2, 1))(h)  # (5, 6): the steps become channels
    return keras.Model(x, L.Conv1D(3, 2, padding="same", activation="softmax", name="filters")(h))


MODELS = {"sequence": _sequence, "image": _image, "steps": _steps}


def check_keras(model, tmp_path, strict: bool = False) -> None:
    """``model`` with spread weights exported from its file: parity on 10,000 rows and the edge rows, SYMBOL_batch
    and every variant this CPU runs against one row, bit for bit; ``strict``: Lamarr's strict flags, C and C++."""
    ex = export_keras(saved(spread(model), tmp_path))
    report = ex.check(ex.compile(tmp_path, one_row=True))
    assert report.rows >= 10_000
    assert report.passed, report.table()
    bits = build_and_run(ex.source, tmp_path)
    assert bits.passed and bits.results, bits.verdict()
    if strict:
        strict_compile(ex.write(tmp_path / "model.c")[0], tmp_path)


@pytest.mark.parametrize("kind", MODELS)
def test_convolution_models_match_keras(keras, tmp_path, kind):
    check_keras(MODELS[kind](keras), tmp_path, strict=kind == "image")  # every template (1-D ops share them)


def test_parity_sees_one_kernel_weight_off(keras, tmp_path):
    """The check can fail: the convolution's first weight moved by 0.01 (through the test hook) is caught."""
    ex = export_keras(saved(spread(_steps(keras)), tmp_path))
    ex.c_edit = lambda c: perturb_weight(c, "filters", 0.01)
    assert perturb_weight(ex.source.c, "filters", 0.01) != ex.source.c
    assert not ex.check(ex.compile(tmp_path, one_row=True)).passed


def test_what_the_family_does_not_take_is_refused_by_name(keras, tmp_path, capsys):
    L = keras.layers
    x = keras.Input((8, 8, 2))
    parts = [
        L.ConvLSTM1D(2, 2, name="lstm")(x),
    ]
    assert_refused(
        keras,
        capsys,
        tmp_path,
        x,
        parts,
        "'lstm' (ConvLSTM1D): convolutional recurrent layers (ConvLSTM) are not supported",
    )


def test_configurations_the_family_does_not_take_are_refused_by_name(keras, tmp_path, capsys):
    L = keras.layers
    x = keras.Input((8, 8, 2))
    parts = [
        L.Conv2D(2, 1, data_format="channels_first", name="first")(x),
        L.UpSampling2D(2, interpolation="bicubic", name="smooth")(x),
        L.TimeDistributed(L.Flatten(), name="per_row")(x),
    ]
    assert_refused(
        keras,
        capsys,
        tmp_path,
        x,
        parts,
        "'first' (Conv2D): data_format 'channels_first': only channels_last is supported",
        "'smooth' (UpSampling2D): interpolation 'bicubic': only nearest (and bilinear in 2-D) is supported",
        "'per_row' (TimeDistributed): of Flatten: its translation does not act on each of the 8 steps apart",
    )


def test_the_ops_refuse_shapes_they_do_not_take():
    b = Builder("m")
    x = b.value(0, (10, 3))
    kernel = np.ones((3, 3, 4))
    conv = {"in_shape": (10, 3), "window": (3,), "kernel": kernel}
    assert b.shape(b.add(Conv, "c", [x], 32, **conv)) == (8, 4)
    y = b.value(0, (3, 10))
    with pytest.raises(Unsupported, match=r"does not take inputs of shape \(3, 10\)"):
        b.add(Conv, "c", [y], 32, **conv)
    with pytest.raises(ValueError, match="kernel of shape"):
        Conv("c", (x,), "", 32, in_shape=(10, 2), window=(3,), kernel=kernel)
    with pytest.raises(ValueError, match="2 groups of 3 channels"):
        Conv("c", (x,), "", 32, in_shape=(10, 3), window=(3,), kernel=np.ones((3, 1, 4)), groups=2)
    pool = Pool("p", (x,), "", 15, in_shape=(10, 3), window=(2,), strides=(2,))
    assert pool.out_shape([(10, 3)]) == (5, 3) and pool.out_shape([(10, 4)]) is None
    assert Pad("z", (x,), "", 27, in_shape=(10, 3), pads=((-2, 1),)).out_shape([(10, 3)]) == (9, 3)
    assert Transpose("t", (x,), "", 30, in_shape=(10, 3), perm=(1, 0)).out_shape([(10, 3)]) == (3, 10)
    strided = Conv("c", (x,), "", 20, in_shape=(10, 3), window=(3,), kernel=kernel, strides=(2,), dilation=(2,),
                   padding=((2, 1),))  # fmt: skip
    assert strided.out_shape([(10, 3)]) == (5, 4) and strided.flops([30]) == 20 * 2 * 3 * 3
    assert strided.n_params == kernel.size


@pytest.mark.parametrize(("length", "window", "stride", "dilation"), [(9, 3, 2, 1), (10, 4, 3, 1), (7, 2, 1, 3)])
def test_same_padding_gives_as_many_outputs_as_tensorflow(length, window, stride, dilation):
    before, after = same_padding(length, window, stride, dilation)
    reach = (window - 1) * dilation + 1
    assert (length + before + after - reach) // stride + 1 == -(-length // stride)
    assert after - before in (0, 1)


def _flax_models():
    """Flax linen and nnx modules over a reshaped row: nn.Conv's padding forms (SAME, VALID, CAUSAL, an int,
    explicit pairs), strides, kernel_dilation, feature_group_count; nn.avg_pool both ways, nn.max_pool, means
    and maxima over the positions, nn.Dense over each position's channels."""
    import jax.numpy as jnp
    from flax import linen as nn
    from flax import nnx

    class Image(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x.reshape(7, 9, 4)
            x = nn.tanh(nn.Conv(6, (3, 2), strides=(2, 1), padding="SAME", feature_group_count=2)(x))
            x = nn.Conv(5, (2, 3), padding=((1, 0), (2, 1)), kernel_dilation=(1, 2), use_bias=False)(x)
            a = nn.avg_pool(x, (2, 2), strides=(1, 2), padding="SAME", count_include_pad=False)
            m = nn.max_pool(x, (3, 1), padding="VALID")
            return jnp.concatenate([a.reshape(-1), m.reshape(-1), jnp.mean(x, axis=(0, 1))])

    class Sequence(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x.reshape(12, 3)
            x = nn.relu(nn.Conv(4, (3,), padding="CAUSAL", kernel_dilation=2)(x))
            x = nn.Conv(4, (2,), strides=2, padding=1)(x)
            x = nn.avg_pool(x, (3,), padding="SAME")  # the padding's zeros counted, as Flax does
            x = nn.Dense(3)(x)  # over the channels of each position
            return nn.Dense(2)(jnp.concatenate([x.reshape(-1), jnp.max(x, axis=0)]))

    class Stack(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(2, 5, kernel_size=(3,), padding="VALID", rngs=rngs)
            self.head = nnx.Linear(40, 3, rngs=rngs)

        def __call__(self, x):
            return self.head(nnx.gelu(self.conv(x.reshape(10, 2))).reshape(-1))

    return {"image": (Image(), 252), "sequence": (Sequence(), 36), "nnx": (Stack(nnx.Rngs(0)), 20)}


def flax_params(model, n_inputs: int, seed: int):
    """A linen module's parameters drawn with a trained network's spread (kernels std 1/sqrt(fan-in), biases 0.5:
    Flax starts them at zero); None for an nnx module (its own)."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    if not isinstance(model, nn.Module):
        return None
    rng = np.random.default_rng(seed)

    def draw(leaf):
        scale = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 0.5
        return (rng.standard_normal(leaf.shape) * scale).astype(np.float32)

    return jax.tree_util.tree_map(draw, jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros(n_inputs)))


@pytest.mark.parametrize("kind", ["image", "sequence", "nnx"])
def test_flax_convolutions_match_jax(tmp_path, kind):
    from exporter import export_flax

    model, n_inputs = _flax_models()[kind]
    ex = export_flax(model, flax_params(model, n_inputs, 1), n_inputs=n_inputs, name=f"conv_{kind}")
    report = ex.check(ex.compile(tmp_path, one_row=True))
    assert report.rows >= 10_000
    assert report.passed, report.table()
