"""Zero padding and cropping give the same bits in every instruction-set variant, one row or a batch.

The Keras config fuzz found ``Input((8, 2)) -> ZeroPadding1D(2)`` wrong in the x86-64-v3 and v4 variants (GCC 12
at -O2 and -O3): the template wrote each output position as ``inside ? x[...] : 0``, and GCC's vectorizer turned
that into masked loads whose mask lanes (one per position) did not line up with the data lanes (one per position
and channel), so padded rows read as garbage and real values as zeros. The template now zeros the padding and
copies the box of positions that come from the input, with no test per position (``Pad.spans``). The sweep:
ZeroPadding and Cropping over 1 to 3 spatial axes, 1 to 4 channels, in one C file, exact comparisons with GCC and
Clang in every variant this CPU runs (``exporter.check.batch_bits``).
"""

from __future__ import annotations

import pytest

from helpers import assert_same_bits_everywhere, models_in_one_file, one_layer_models


def pad_sweep(keras) -> list:
    """(name, model): padding and cropping of 1-D, 2-D and 3-D inputs of 1 to 4 channels."""
    L = keras.layers
    layers = []
    for c in (1, 2, 3, 4):
        layers += [
            (f"p1c{c}", (8, c), L.ZeroPadding1D(2)),
            (f"k1c{c}", (9, c), L.Cropping1D((1, 2))),
            (f"p2c{c}", (3, 5, c), L.ZeroPadding2D(((1, 0), (0, 2)))),
            (f"p3c{c}", (2, 2, 3, c), L.ZeroPadding3D(((0, 1), (1, 1), (2, 0)))),
        ]
    return one_layer_models(keras, layers)


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_padding_and_cropping_give_the_same_bits_in_every_variant_and_batch(keras, tmp_path, monkeypatch, compiler):
    pads = models_in_one_file("pads", pad_sweep(keras))
    assert len(pads.networks) == 16
    assert_same_bits_everywhere(pads, tmp_path, monkeypatch, compiler)
