"""Image resizing: Keras' Resizing layer (bilinear and nearest, up and down, crop_to_aspect_ratio,
pad_to_aspect_ratio) and UpSampling2D's bilinear form, by TensorFlow's half-pixel rule (exporter/ir/resize.py).

Each model is compiled and checked against Keras on 10,000 random rows plus the edge rows under the default
parity rule, SYMBOL_batch and the variants this CPU runs held to one call per row; what is out is refused by
name.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_convolution import spread

from exporter.frontends.keras.resizing import aspect_pads
from exporter.ir.resize import table

from helpers import assert_parity_and_batch_bits, assert_refused


def _resizing(keras):
    """(6, 8, 2) images resized up, down and to other ratios, both ways, cropped and padded to the ratio."""
    L = keras.layers
    h = x = keras.Input((6, 8, 2))
    parts = [
        L.Resizing(7, 5)(h),
        L.Resizing(4, 11, interpolation="nearest")(h),
        L.Resizing(3, 3, interpolation="nearest")(h),
        L.Resizing(5, 7, crop_to_aspect_ratio=True)(h),
        L.Resizing(4, 9, pad_to_aspect_ratio=True)(h),
        L.Resizing(9, 4, pad_to_aspect_ratio=True, interpolation="nearest")(h),
        L.UpSampling2D((2, 3), interpolation="bilinear")(L.Cropping2D((2, 3))(h)),  # (2, 2) -> (4, 6)
        L.Resizing(6, 8)(h),  # the same size: every weight 0
    ]
    return keras.Model(x, L.Concatenate()([L.Flatten()(p) for p in parts]))


def test_resizing_matches_keras(keras, tmp_path):
    assert_parity_and_batch_bits(spread(_resizing(keras)), tmp_path)


@pytest.mark.parametrize(("n", "m"), [(6, 11), (8, 3), (5, 5), (19, 53), (53, 19), (4, 5)])
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_the_tables_give_tensorflows_resize(n, m, method):
    """Each axis' table, applied to a random line as the C does, gives tf.image.resize's values, bit for bit."""
    import tensorflow as tf

    line = np.random.default_rng(n * m).standard_normal(n).astype(np.float32)
    t = table(n, m, method)
    lower, upper = line[t.lower], line[t.upper]
    ours = lower + (upper - lower) * t.lerp
    theirs = tf.image.resize(line.reshape(1, n, 1, 1), (m, 1), method=method).numpy().reshape(-1)
    np.testing.assert_array_equal(ours, theirs)


def test_aspect_boxes_are_keras():
    assert aspect_pads(6, 8, (5, 7), crop=True) == ((0, -1), (0, 0))  # int(8 * 5 / 7) = 5 rows, from row 0
    assert aspect_pads(10, 4, (1, 1), crop=True) == ((-3, -3), (0, 0))
    assert aspect_pads(6, 8, (9, 4), crop=False) == ((6, 6), (0, 0))  # int(8 * 9 / 4) = 18 rows: 6 on each side


def test_resizing_it_cannot_take_is_refused_by_name(keras, tmp_path, capsys):
    L = keras.layers
    x = keras.Input((8, 8, 2))
    parts = [
        L.Resizing(4, 4, interpolation="bicubic", name="cubic")(x),
        L.Resizing(4, 4, antialias=True, name="smooth")(x),
        L.Resizing(4, 6, pad_to_aspect_ratio=True, fill_value=1.0, name="filled")(x),
        L.UpSampling2D(2, interpolation="lanczos3", name="lanczos")(x),
    ]
    assert_refused(
        keras,
        capsys,
        tmp_path,
        x,
        parts,
        "'cubic' (Resizing): interpolation 'bicubic': only bilinear and nearest are supported",
        "'smooth' (Resizing): antialias=True is not supported",
        "'filled' (Resizing): pad_to_aspect_ratio with fill_value 1.0: only zeros are supported",
        "'lanczos' (UpSampling2D): interpolation 'lanczos3': only nearest (and bilinear in 2-D) is supported",
    )
