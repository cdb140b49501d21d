"""Transposed convolutions (Keras' Conv1DTranspose and Conv2DTranspose, Flax's ConvTranspose; ONNX's are in
test_onnx_transposed.py) as one IR op, ``ConvTranspose``, rendered through the convolution's template.

Each model packs layers of odd sizes, every stride, padding, ``output_padding`` and dilation the framework
accepts into one export; each is compiled and checked against the framework on 10,000 random rows plus the
edge rows under the default parity rule, and SYMBOL_batch and every instruction-set variant this CPU runs are
held to one call per row, bit for bit. The crop each framework's padding becomes is checked against the
framework itself over every combination of a grid of geometries (no export needed for those).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from test_convolution import check_keras, flax_params

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.convolution import transposed_crop
from exporter.ir import ConvTranspose
from exporter.ir.transposed import transposed_positions

from helpers import assert_user_error, saved


def transposed_reference(x: np.ndarray, kernel: np.ndarray, strides, dilation, padding) -> np.ndarray:
    """The op's rule written out in numpy, one input and kernel position at a time: ``x`` (*positions, C),
    ``kernel`` (*window, C, F); what the frameworks are compared with below."""
    rank = x.ndim - 1
    out = transposed_positions(x.shape[:-1], kernel.shape[:rank], strides, dilation, padding)
    y = np.zeros((*out, kernel.shape[-1]))
    for i in itertools.product(*map(range, x.shape[:-1])):
        for k in itertools.product(*map(range, kernel.shape[:rank])):
            o = tuple(a * s + b * d - p[0] for a, b, s, d, p in zip(i, k, strides, dilation, padding, strict=True))
            if all(0 <= v < n for v, n in zip(o, out, strict=True)):
                y[o] += x[i] @ kernel[k]
    return y


def test_keras_padding_rules_become_the_crops_keras_computes(keras):
    """Every window, stride, dilation, padding and output_padding Keras accepts, on lengths 1, 4 and 5: Keras'
    output against the op's rule with the crop ``transposed_crop`` states, shape and values."""
    rng = np.random.default_rng(0)
    checked = 0
    for n, k, s, d, mode, extra in itertools.product((1, 4, 5), (1, 2, 3, 4), (1, 2, 3), (1, 2), ("same", "valid"),
                                                     (None, 0, 1, 2)):  # fmt: skip
        if (extra is not None and extra >= s) or (s > 1 and d > 1):
            continue  # Keras refuses these
        layer = keras.layers.Conv1DTranspose(2, k, s, mode, output_padding=extra, dilation_rate=d, use_bias=False)
        x = rng.standard_normal((1, n, 3)).astype("float32")
        try:
            y = np.asarray(layer(x))[0]
        except Exception as err:  # TensorFlow's oneDNN kernel fails even windows, same, output_padding 0
            assert "primitive descriptor" in str(err) and (mode, extra, k % 2) == ("same", 0, 0), err
            continue
        crop = (transposed_crop(k, s, d, mode, extra),)
        kernel = np.swapaxes(np.asarray(layer.kernel), -1, -2)
        expected = transposed_reference(x[0].astype(np.float64), kernel, (s,), (d,), crop)
        assert expected.shape == y.shape, (n, k, s, d, mode, extra)
        np.testing.assert_allclose(y, expected, atol=1e-5, err_msg=str((n, k, s, d, mode, extra)))
        checked += 1
    assert checked > 150


def _sequence(keras):
    """Conv1DTranspose over 7 and 13 steps: strides 1 to 3, both paddings, output_padding, no bias."""
    L = keras.layers
    x = keras.Input((7, 3))
    h = L.Conv1DTranspose(5, 3, strides=2, padding="same", activation="tanh")(x)  # (14, 5)
    h = L.Conv1DTranspose(4, 4, strides=3, padding="valid", output_padding=2, use_bias=False)(h)  # (45, 4)
    h = L.Conv1DTranspose(3, 3, padding="same", activation="relu")(h)
    h = L.Conv1DTranspose(4, 2, strides=2, padding="same", output_padding=1)(L.MaxPooling1D(4)(h))
    y = keras.Input((13, 2))
    g = L.Conv1DTranspose(3, 5, strides=1, padding="valid", activation="sigmoid")(y)
    g = L.Conv1DTranspose(2, 1, strides=3, padding="valid")(g)  # a window narrower than its stride: gaps of bias
    return keras.Model([x, y], L.Concatenate()([L.Flatten()(h), L.Flatten()(g)]))


def _image(keras):
    """Conv2DTranspose over 3x5 images: strides per axis, both paddings, output_padding per axis."""
    L = keras.layers
    x = keras.Input((3, 5, 2))
    h = L.Conv2DTranspose(4, (3, 2), strides=(2, 3), padding="same", activation="elu")(x)  # (6, 15, 4)
    h = L.Conv2DTranspose(3, (2, 3), strides=(3, 2), padding="valid", output_padding=(1, 0))(L.MaxPooling2D(3)(h))
    h = L.Conv2DTranspose(2, 3, padding="same", use_bias=False, activation="softmax")(h)
    return keras.Model(x, h)


def _dilated(keras):
    """Dilated transposed convolutions, 1-D and 2-D, both paddings. TensorFlow has no float64 kernel for them:
    the check falls back to the fixed rule, and says so."""
    L = keras.layers
    x = keras.Input((6, 5, 2))
    h = L.Conv2DTranspose(3, (2, 3), padding="same", dilation_rate=(2, 1), activation="tanh")(x)
    h = L.Conv2DTranspose(2, 2, padding="valid", dilation_rate=(1, 3))(h)
    s = L.Reshape((-1, 2))(h)
    s = L.Conv1DTranspose(3, 3, padding="same", dilation_rate=2)(s)
    return keras.Model(x, L.Conv1DTranspose(2, 5, padding="valid", dilation_rate=3, use_bias=False)(s))


MODELS = {"sequence": _sequence, "image": _image, "dilated": _dilated}


@pytest.mark.parametrize("kind", MODELS)
def test_keras_transposed_convolutions_match_keras(keras, tmp_path, kind):
    check_keras(MODELS[kind](keras), tmp_path, strict=kind == "image")


def test_what_stays_out_is_refused_by_name(keras, tmp_path, capsys):
    L = keras.layers
    x = keras.Input((4, 4, 2))
    volume = L.Conv3DTranspose(2, 2, name="volume")(L.Reshape((4, 4, 2, 1))(x))
    model = keras.Model(x, L.Concatenate()([L.Flatten()(x), L.Flatten()(volume)]))
    assert_user_error(
        capsys,
        tmp_path,
        [saved(model, tmp_path), "-o", tmp_path / "m.c"],
        "'volume' (Conv3DTranspose): 3-D transposed convolutions are not supported (Conv1DTranspose and Conv2DTra",
    )
    first = keras.Model(x, L.Conv2DTranspose(2, 2, data_format="channels_first", name="first")(x))
    assert_user_error(
        capsys,
        tmp_path,
        [saved(first, tmp_path), "-o", tmp_path / "m.c"],
        "'first' (Conv2DTranspose): data_format 'channels_first': only channels_last is supported",
    )


def test_the_op_states_its_shape_and_refuses_others():
    b = Builder("m")
    x = b.value(0, (4, 3))
    kernel = np.ones((3, 3, 2))
    fields = {"in_shape": (4, 3), "window": (3,), "strides": (2,), "kernel": kernel}
    assert b.shape(b.add(ConvTranspose, "t", [x], 18, **fields)) == (9, 2)
    extended = b.add(ConvTranspose, "t", [x], 22, padding=((1, -3),), **fields)
    assert b.shape(extended) == (11, 2)
    with pytest.raises(Unsupported, match=r"does not take inputs of shape \(3, 4\)"):
        b.add(ConvTranspose, "t", [b.value(0, (3, 4))], 18, **fields)
    with pytest.raises(ValueError, match="gives"):
        ConvTranspose("t", (x,), "", 2, padding=((5, 5),), **fields)
    assert "ConvTranspose1D 4x3->2 3, strides 2, crop 1+-3" in ConvTranspose("t", (x,), "", 22, padding=((1, -3),),
                                                                              **fields).describe()  # fmt: skip


def _flax_models():
    """``nn.ConvTranspose`` (linen) and ``nnx.ConvTranspose`` over reshaped rows: SAME, VALID, an int and explicit
    pairs (negative ones crop, wide ones extend), strides, kernel_dilation, ``transpose_kernel`` both ways."""
    from flax import linen as nn
    from flax import nnx

    class Image(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x.reshape(5, 4, 3)
            x = nn.tanh(nn.ConvTranspose(4, (3, 2), strides=(2, 3), padding="SAME")(x))
            x = nn.ConvTranspose(3, (2, 3), strides=(1, 2), padding="VALID", kernel_dilation=(2, 1),
                                 transpose_kernel=True)(x)  # fmt: skip
            x = nn.ConvTranspose(2, (3, 3), padding=((0, 3), (-1, 2)), use_bias=False)(x)
            return x.reshape(-1)

    class Sequence(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x.reshape(9, 2)
            x = nn.relu(nn.ConvTranspose(3, (4,), strides=(3,), padding=1, transpose_kernel=True)(x))
            x = nn.ConvTranspose(2, (3,), strides=(2,), padding="SAME", kernel_dilation=(2,))(x)
            return x.reshape(-1)

    class Stack(nnx.Module):
        def __init__(self, rngs):
            self.up = nnx.ConvTranspose(2, 3, kernel_size=(3,), strides=(2,), padding="VALID", rngs=rngs)

        def __call__(self, x):
            return self.up(x.reshape(7, 2)).reshape(-1)

    return {"image": (Image(), 60), "sequence": (Sequence(), 18), "nnx": (Stack(nnx.Rngs(0)), 14)}


@pytest.mark.parametrize("kind", ["image", "sequence", "nnx"])
def test_flax_transposed_convolutions_match_jax(tmp_path, kind):
    from exporter import export_flax

    model, n_inputs = _flax_models()[kind]
    ex = export_flax(model, flax_params(model, n_inputs, 2), n_inputs=n_inputs, name=f"up_{kind}")
    assert any(type(op).__name__ == "ConvTranspose" for op in ex.graph.ops)
    report = ex.check(ex.compile(tmp_path, one_row=True))
    assert report.rows >= 10_000
    assert report.passed, report.table()


def test_flax_what_stays_out_is_refused_by_name():
    """A convolution both strided and of a dilated (or negatively padded) input: no one op computes it."""
    from jax import lax

    from exporter import export_flax
    from exporter.common.errors import UnsupportedModelError

    def both(params, x):
        y = lax.conv_general_dilated(x.reshape(1, 6, 2), params, (2,), ((1, 1),), lhs_dilation=(2,),
                                     dimension_numbers=("NWC", "WIO", "NWC"))  # fmt: skip
        return y.reshape(-1)

    with pytest.raises(UnsupportedModelError, match=r"window strides \(2,\) with input dilation \(2,\)"):
        export_flax(both, np.ones((3, 2, 2), np.float32), n_inputs=12, name="both")
