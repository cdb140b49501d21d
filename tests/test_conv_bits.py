"""Small convolutions give the same bits in every instruction-set variant, one row or a batch.

The tensor fuzz test found ``Input((1, 1, 1, 2)) -> Conv3D(7, 1, padding="same")``: the x86-64-v3 and v4 one-row
results up to 16 ULP away from the baseline's. Its loops fully unrolled, GCC 12 saw the bias's values, turned
``bias + w * x`` with a negative bias into ``w * x - |bias|`` and its SLP vectorizer fused the mix of additions
and subtractions into FMSUBADD (one rounding; it ignores ``-ffp-contract=off``): the kernel was read through an
opaque pointer already, the bias was not. Now every weight of a convolution is (templates/ops/conv.c.j2). The
sweep: 1-D and 2-D convolutions, plain, grouped, depthwise and transposed, of 1 to 3 channels, 1 to 9 filters,
windows 1 to 3, strides 1 and 2, on inputs of 1 to 3 positions per axis (loops GCC unrolls), in one C file.
Exact comparisons, with GCC and Clang, every variant this CPU runs (``exporter.check.batch_bits``).
"""

from __future__ import annotations

import pytest

from helpers import assert_same_bits_everywhere, models_in_one_file, one_layer_models


def conv_sweep(keras) -> list:
    """(name, model): every channel count 1-3 with every filter count 1-9 (windows, strides, 1-D or 2-D and
    activations cycling), grouped and depthwise ones, transposed ones; positions 1 to 3 per axis."""
    L = keras.layers
    layers = []
    for c in (1, 2, 3):
        for f in range(1, 10):
            k, s, rank = 1 + (c + f) % 3, 1 + f % 2, 1 + (c * f) % 2
            conv = (L.Conv1D, L.Conv2D)[rank - 1]
            act = ("linear", "celu", "tanh")[f % 3]
            layer = conv(f, k, strides=s, padding="same", activation=act)
            layers.append((f"c{c}f{f}k{k}s{s}d{rank}", (1 + f % 3,) * rank + (c,), layer))
    for c, f in ((2, 2), (2, 6), (3, 3), (3, 9)):
        layers.append((f"g{c}f{f}", (2, c), L.Conv1D(f, 2, groups=c, activation="elu")))
    for c in (1, 2, 3):
        for m in (1, 3):
            layers.append((f"dw{c}m{m}", (2, 1 + c % 2, c), L.DepthwiseConv2D(2, depth_multiplier=m, padding="same")))
            layers.append((f"dw1d{c}m{m}", (3, c), L.DepthwiseConv1D(3, depth_multiplier=m, strides=2)))
    for c, f in ((1, 5), (2, 7), (3, 2)):
        layers.append((f"t{c}f{f}", (2, c), L.Conv1DTranspose(f, 2, strides=2)))
        layers.append((f"t2{c}f{f}", (1, 2, c), L.Conv2DTranspose(f, 3, padding="same")))
    layers.append(("v2f7", (1, 1, 1, 2), L.Conv3D(7, 1, padding="same", activation="celu")))  # the fuzz finding
    return one_layer_models(keras, layers)


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_small_convolutions_give_the_same_bits_in_every_variant_and_batch(keras, tmp_path, monkeypatch, compiler):
    convs = models_in_one_file("convs", conv_sweep(keras))  # one C file, one build (exporting takes half a second)
    assert len(convs.networks) == 50
    assert_same_bits_everywhere(convs, tmp_path, monkeypatch, compiler)
