"""frugally-deep's test models as our own table: the layer configurations its generator exercises.

Mirrors ``keras_export/generate_test_models.py`` of Dobiasd/frugally-deep (MIT), its Keras 3
revision (it imports from ``keras`` and tests Conv1DTranspose, MultiHeadAttention and UnitNormalization),
read on 2026-12-06 through the code index (stored file id 15026529235; the index names no commit for it;
the TensorFlow 2 revision at commit 63b2f6ded6f7 was read alongside). Groups, in the peer's order:

- ``exhaustive``: ``get_test_model_exhaustive``, one entry per output of its one large model;
- ``embedding``: ``get_test_model_embedding`` (Embedding, CategoryEncoding on integer inputs);
- ``variable``: ``get_test_model_variable`` (inputs with ``None`` sizes);
- ``autoencoder``: ``get_test_model_autoencoder`` (nested models);
- ``sequential``: ``get_test_model_sequential`` (a VGG-like Sequential).

Each output becomes a model of its own with the inputs its sub-graph reads (so an output of two
inputs stays a model of two inputs). The peer trains each model ten epochs on random data; here the
weights are random instead (``peer_suites.scramble``). The peer's commented-out configurations are
left out, as it leaves them out.
"""

from __future__ import annotations

from typing import Any

from peer_suites import Entry, S, Table

_SHAPES = [
    (2, 3, 4, 5, 6), (2, 3, 4, 5, 6), (7, 8, 9, 10), (7, 8, 9, 10), (11, 12, 13), (11, 12, 13),  # 0-5
    (14, 15), (14, 15), (16,), (16,), (2,), (1,), (2,), (1,), (1, 3), (1, 4), (1, 1, 3), (1, 1, 4),  # 6-17
    (1, 1, 1, 3), (1, 1, 1, 4), (1, 1, 1, 1, 3), (1, 1, 1, 1, 4), (26, 28, 3), (4, 4, 3), (4, 4, 3),  # 18-24
    (4,), (2, 3), (1,), (1,), (1,), (2, 3), (9, 16, 1), (1, 9, 16), (6, 1, 1), (1, 1, 1, 1, 6),  # 25-34
    (1, 1, 1, 10), (1, 1, 13), (1, 15), (1, 1, 1, 1, 6), (1, 1, 1, 5, 1), (1, 1, 4, 1, 1),  # 35-40
    (1, 3, 1, 1, 1), (2, 1, 1, 1, 1), (1, 1, 4, 1, 6), (1, 3, 1, 5, 1), (2, 1, 4, 1, 1), (1,), (3, 1),  # 41-47
    (6, 5, 4, 3, 2), (5, 4), (7, 4), (7, 4), (2, 4, 6, 8, 10),  # 48-52
]  # fmt: skip


def _exhaustive() -> list[Entry]:
    t = Table("exhaustive", _SHAPES)
    # transposed convolutions on (14, 15) and (11, 12, 13)
    for spec in [(4, 3, "valid", 1, False), (4, 1, "valid", 1, False), (4, 1, "same", 1, False),
                 (1, 3, "valid", 1, False), (2, 3, "same", 1, True), (2, 5, "same", 2, True),
                 (2, 5, "valid", 2, True), (1, 3, "valid", 1, True), (2, 1, "same", 1, True)]:  # fmt: skip
        f, k, pad, s, bias = spec
        t.on(6, S("Conv1DTranspose", f, k, padding=pad, strides=s, use_bias=bias))
    for f, k, pad, s, bias in [(4, (5, 3), "valid", 1, False), (4, (1, 1), "valid", 1, False),
                               (4, (1, 1), "same", 1, False), (1, (3, 3), "valid", 1, True),
                               (4, (3, 3), "valid", 1, False), (4, (3, 3), "same", 1, True),
                               (4, (5, 5), "same", (2, 3), True), (4, (5, 5), "valid", (2, 3), True),
                               (4, (3, 3), "valid", 1, True), (4, (3, 3), "valid", 1, False),
                               (4, (2, 4), "same", (2, 2), True)]:  # fmt: skip
        t.on(4, S("Conv2DTranspose", f, k, padding=pad, strides=s, use_bias=bias))
    # one-dimensional convolution, padding, pooling on (14, 15)
    t.on(6, S("Conv1D", 1, 3, padding="valid"))
    t.on(6, S("Conv1D", 2, 1, padding="same"))
    t.on(6, S("Conv1D", 2, 1, padding="same", strides=2))
    t.on(6, S("Conv1D", 3, 4, padding="causal", dilation_rate=2))
    t.on(6, S("ZeroPadding1D", 2))
    t.on(6, S("Cropping1D", (2, 3)))
    for pool in ("MaxPooling1D", "AveragePooling1D"):
        t.on(6, S(pool, 2))
        t.on(6, S(pool, 2, strides=2, padding="same"))
    for keepdims in (False, True):
        t.on(6, S("GlobalMaxPooling1D", keepdims=keepdims))
        t.on(6, S("GlobalAveragePooling1D", keepdims=keepdims))
    # Normalization with a given mean and variance, Rescaling
    for axis, i in [(None, 4), (-1, 46), (1, 46), (-1, 47), (2, 47), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]:
        mean, variance = (4.2, 2.3) if i == 0 else (2.1, 2.2)
        t.on(i, S("Normalization", axis=axis, mean=mean, variance=variance))
    t.on(0, S("Rescaling", 23.5, 42.1))
    # two-dimensional and three-dimensional convolution and pooling on (11, 12, 13) and (7, 8, 9, 10)
    t.on(4, S("Conv2D", 4, (3, 3)))
    t.on(4, S("Conv2D", 4, (3, 3), use_bias=False, padding="valid"))
    t.on(4, S("Conv2D", 4, (2, 4), strides=(2, 3), padding="same"))
    t.on(4, S("Conv2D", 4, (2, 4), padding="same", dilation_rate=(2, 3)))
    t.on(4, S("SeparableConv2D", 3, (3, 3)))
    t.on(4, S("DepthwiseConv2D", (3, 3)))
    t.on(4, S("DepthwiseConv2D", (1, 2)))
    for kind in ("Max", "Average"):
        t.on(4, S(f"{kind}Pooling2D", (2, 2)))
        t.on(2, S(f"{kind}Pooling3D", (2, 2, 2)))
        t.on(4, S(f"{kind}Pooling2D", (1, 3), strides=(2, 3), padding="same"))
        t.on(2, S(f"{kind}Pooling3D", (1, 3, 5), strides=(2, 3, 4), padding="same"))
    for keepdims in (False, True):
        for kind in ("Average", "Max"):
            t.on(4, S(f"Global{kind}Pooling2D", keepdims=keepdims))
            t.on(2, S(f"Global{kind}Pooling3D", keepdims=keepdims))
    # image layers: CenterCrop, UpSampling2D, Resizing
    for h, w, i in [(4, 5, 4), (5, 6, 4), (19, 53, 23)]:
        t.on(i, S("CenterCrop", h, w))
    for size in ((1, 2), (5, 3)):
        for interpolation in ("nearest", "bilinear"):
            t.on(4, S("UpSampling2D", size=size, interpolation=interpolation))
    t.on(4, S("Resizing", 4, 5))
    t.on(4, S("Resizing", 5, 6))
    t.on(23, S("Resizing", 19, 53, interpolation="bilinear"))
    t.on(23, S("Resizing", 19, 53, interpolation="nearest"))
    t.on(23, S("Resizing", 19, 53, crop_to_aspect_ratio=True))
    # Permute
    for dims, i in [((3, 4, 1, 5, 2), 0), ((1, 5, 3, 2, 4), 0), ((3, 4, 1, 2), 2), ((2, 1, 3), 4), ((2, 1), 6),
                    ((1,), 8), ((3, 1, 2), 31), ((3, 1, 2), 32)]:  # fmt: skip
        t.on(i, S("Permute", dims))
    # BatchNormalization: default, without centre/scale, along every axis of several ranks
    t.on(11, S("BatchNormalization", center=False, scale=False))
    for i in (11, 10, 14, 26, 23, 0):
        t.on(i, S("BatchNormalization"))
    t.on(0, S("BatchNormalization", center=False))
    t.on(0, S("BatchNormalization", scale=False))
    t.on(0, S("BatchNormalization", center=False, scale=False))
    for i, axes in [(0, (-1, 1, 2, 3, 4, 5)), (2, (-1, 1, 2, 3, 4)), (4, (-1, 2, 3)), (6, (-1, 1, 2)), (8, (-1, 1)),
                    (27, (-1, 1)), (14, (-1, 1, 2)), (16, (-1, 2, 3)), (18, (-1, 1, 2, 3, 4)),
                    (20, (-1, 1, 2, 3, 4, 5))]:  # fmt: skip
        for axis in axes:
            t.on(i, S("BatchNormalization", axis=axis))
    # LayerNormalization and UnitNormalization over one or several axes
    for norm in ("LayerNormalization", "UnitNormalization"):
        for i in (11, 10, 26, 24, 0):
            t.on(i, S(norm))
        for axis in (1, 2, 3, 4, 5, [1, 2], [2, 3, 5]):
            t.on(0, S(norm, axis=axis))
    t.on(4, S("Dropout", 0.5))
    t.on(4, S("ActivityRegularization", 0.3, 0.4))
    for padding in (2, (2, 3), ((1, 2), (3, 4))):
        t.on(4, S("ZeroPadding2D", padding))
    for cropping in (2, (2, 3), ((1, 2), (3, 4))):
        t.on(4, S("Cropping2D", cropping))
    for padding in (2, (2, 3, 4), ((1, 2), (3, 4), (5, 6))):
        t.on(2, S("ZeroPadding3D", padding))
    for cropping in (2, (2, 3, 4), ((1, 2), (3, 4), (2, 1))):
        t.on(2, S("Cropping3D", cropping))
    # Dense on every rank
    for i in (0, 2, 4, 6, 8, 13, 14):
        t.on(i, S("Dense", 3, use_bias=True))
    t.on(16, S("Dense", 4, use_bias=False))
    t.on(18, S("Dense", 4, use_bias=False, activation="tanh"))
    t.on(20, S("Dense", 4, use_bias=False))
    for target in ((720,), (2, 360), (2, 3, 120), (2, 3, 4, 30), (2, 3, 4, 5, 6)):
        t.on(0, S("Reshape", target))
    for merge in ("Maximum", "Minimum"):
        for pair in ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9)):
            t.on(pair, S(merge))
    for target in ((16,), (2, 8), (2, 2, 4), (2, 2, 2, 2), (2, 2, 1, 2, 2)):
        t.on(8, S("Reshape", target))
    t.on(8, S("RepeatVector", 3))
    t.on(0, S("ReLU"))
    for pair, axes in [((0, 1), (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)), ((2, 3), (-4, -3, -2, -1, 1, 2, 3, 4)),
                       ((4, 5), (-3, -2, -1, 1, 2, 3)), ((6, 7), (-2, -1, 1, 2)), ((8, 9), (-1, 1)),
                       ((14, 15), (-1,)), ((16, 17), (-1, 3))]:  # fmt: skip
        for axis in axes:
            t.on(pair, S("Concatenate", axis=axis))
    t.on(6, S("UpSampling1D", size=2))
    # Multiply with broadcasting between ranks and sizes of one
    for group in [(10, 11), (11, 10), (11, 13), (10, 11, 12), (11, 12, 13), (14, 16, 18, 20), (14, 16), (16, 18),
                  (18, 20), (30, 33), (34, 0), (35, 2), (36, 4), (37, 6), (0, 38), (0, 39), (0, 40), (0, 41),
                  (0, 42), (43, 44), (44, 45)]:  # fmt: skip
        t.on(group, S("Multiply"))
    # attention layers on (5, 4) queries and (7, 4) values (and keys)
    t.on((49, 50), S("Attention", use_scale=False, score_mode="dot"))
    t.on((49, 50, 51), S("Attention", use_scale=False, score_mode="dot"))
    t.on((49, 50), S("Attention", use_scale=True, score_mode="dot"))
    t.on((49, 50), S("Attention", use_scale=False, score_mode="concat"))
    for inputs, scale in [((49, 50), False), ((49, 50, 51), False), ((49, 50), True), ((49, 50, 51), True)]:
        t.on(inputs, S("AdditiveAttention", use_scale=scale))
    for heads, key, value, bias, inputs in [
        (1, 1, None, False, (49, 50)), (1, 1, None, True, (49, 50)), (1, 2, None, False, (49, 50)),
        (1, 2, None, True, (49, 50)), (1, 1, 2, False, (49, 50)), (1, 1, 2, True, (49, 50)),
        (3, 1, None, False, (49, 50)), (3, 1, None, True, (49, 50)), (1, 1, None, False, (49, 50, 51)),
        (2, 3, 5, False, (49, 50, 51)), (2, 3, 5, True, (49, 50, 51)),
    ]:  # fmt: skip
        t.on(inputs, S("MultiHeadAttention", num_heads=heads, key_dim=key, value_dim=value, use_bias=bias, spread=True))
    # a shared convolution over two upsampled inputs, then a chain: each link is an output
    for depth in (1, 2, 3, 4, 5, 6):
        t.add(f"chain{depth}", [_SHAPES[23], _SHAPES[24]], _upsampled_chain(depth))
    for merge in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Concatenate"):
        t.on((26, 30) if merge == "Subtract" else (26, 30, 30), S(merge))
    # activations as layers and as functions on (4,)
    for name in ("tanh", "hard_sigmoid", "selu", "sigmoid", "softplus", "softmax", "relu", "relu6", "swish",
                 "exponential", "gelu", "softsign", "celu", "elu", "exponential", "gelu", "hard_tanh", "linear",
                 "log_sigmoid", "silu", "softmax", "softsign", "sparse_plus", "squareplus", "tanh",
                 "tanh_shrink"):  # fmt: skip
        t.on(25, S("Activation", name))
    t.on(25, S("LeakyReLU", negative_slope=0.5))
    t.on(25, S("ReLU"))
    t.on(25, S("ReLU", max_value=0.4, negative_slope=1.1, threshold=0.3))
    t.on(25, S("ELU"))
    for i in (24, 25, 26):
        t.on(i, S("PReLU"))
    t.on(25, S("Softmax"))
    t.on(25, S("Activation", "tanh"))
    t.on(26, S("Activation", "linear"))
    t.on(23, S("Activation", "linear"))
    for name, kwargs in [("celu", {}), ("elu", {"alpha": 0.71}), ("exponential", {}), ("gelu", {}),
                         ("hard_shrink", {"threshold": 0.31}), ("hard_sigmoid", {}), ("hard_tanh", {}),
                         ("leaky_relu", {"negative_slope": 0.31}), ("linear", {}), ("log_sigmoid", {}),
                         ("log_softmax", {}), ("relu", {"negative_slope": 0.1, "max_value": 0.8, "threshold": 0.3}),
                         ("relu6", {}), ("selu", {}), ("sigmoid", {}), ("silu", {}), ("softmax", {}),
                         ("soft_shrink", {"threshold": 0.31}), ("softplus", {}), ("softsign", {}), ("sparse_plus", {}),
                         ("squareplus", {"b": 3}), ("tanh", {}), ("tanh_shrink", {}),
                         ("threshold", {"threshold": 0.123, "default_value": 0.423})]:  # fmt: skip
        t.on(25, S(f"activations.{name}", **kwargs))
    t.add("chain6", [_SHAPES[23], _SHAPES[24]], _upsampled_chain(6))  # the chain's end, listed again
    t.add("chain6_tanh", [_SHAPES[23], _SHAPES[24]], _upsampled_chain(7))
    return t.entries


def _upsampled_chain(depth: int) -> Any:
    """The peer's little network over inputs 23 and 24, cut after link ``depth`` (7: a tanh after the last)."""

    def build(keras: Any, inputs: list[Any]) -> Any:
        L = keras.layers
        up, shared = L.UpSampling2D((2, 2)), L.Conv2D(1, (1, 1), activation="relu")
        a, b = inputs
        links = [
            lambda x: L.Concatenate()([shared(up(a)), shared(up(b)), L.Conv2D(1, (1, 1))(up(b))]),
            lambda x: L.Conv2D(3, (1, 1), padding="same", use_bias=False)(x),
            lambda x: L.Dropout(0.5)(x),
            lambda x: L.Concatenate()([L.MaxPooling2D((2, 2))(x), L.AveragePooling2D((2, 2))(x)]),
            lambda x: L.Dense(4, use_bias=False)(L.Flatten()(x)),
            lambda x: L.Dense(3)(x),
            lambda x: L.Activation("tanh")(x),
        ]
        x = None
        for link in links[:depth]:
            x = link(x)
        return x

    return build


def _embedding() -> list[Entry]:
    t = Table("embedding", [(100,), (1000,)])
    t.on(0, S("Embedding", 1023, 8))
    t.on(1, S("Embedding", 255, 3))
    t.on(0, S("CategoryEncoding", 1024, output_mode="multi_hot", sparse=False))
    return t.entries


def _variable() -> list[Entry]:
    t = Table("variable", [(None, None, 1), (None, None, 3), (None, 4)])
    t.on((0, 1), S("Concatenate"))
    t.on(0, S("Conv2D", 8, (3, 3), padding="same", activation="elu"))
    t.on(1, S("Conv2D", 8, (3, 3), padding="same", activation="relu"))
    t.on(0, S("GlobalMaxPooling2D"))
    t.on(2, S("Reshape", (2, -1)))
    t.on(2, S("Reshape", (-1, 2)))
    t.on(1, S("MaxPooling2D"))
    t.on(2, S("AveragePooling1D", 2))
    t.on(0, S("PReLU", shared_axes=[1, 2]))
    t.on(1, S("PReLU", shared_axes=[1, 2]))
    t.on(1, S("PReLU", shared_axes=[1, 2, 3]))
    t.on(2, S("PReLU", shared_axes=[1]))
    return t.entries


def _autoencoder() -> list[Entry]:
    def build(keras: Any, inputs: list[Any]) -> Any:
        def identity_model(name: str) -> Any:
            x = keras.Input((1,))
            return keras.Model(x, keras.layers.Identity()(x), name=name)

        return identity_model("decoder")(identity_model("encoder")(inputs[0]))

    t = Table("autoencoder")
    t.add("nested_identity", [(1,)], build)
    return t.entries


def _sequential() -> list[Entry]:
    t = Table("sequential", [(32, 32, 3)])
    t.on(
        0,
        S("Conv2D", 8, (3, 3), activation="relu"),
        S("Conv2D", 8, (3, 3), activation="relu"),
        S("Permute", (3, 1, 2)),
        S("MaxPooling2D", pool_size=(2, 2)),
        S("Permute", (2, 3, 1)),
        S("Dropout", 0.25),
        S("Conv2D", 16, (3, 3), activation="elu"),
        S("Conv2D", 16, (3, 3)),
        S("ELU"),
        S("MaxPooling2D", pool_size=(2, 2)),
        S("Dropout", 0.25),
        S("Flatten"),
        S("Dense", 64, activation="sigmoid"),
        S("Dropout", 0.5),
        S("Dense", 10, activation="softmax"),
    )
    return t.entries


ENTRIES: list[Entry] = [*_exhaustive(), *_embedding(), *_variable(), *_autoencoder(), *_sequential()]
