"""keras2c's test models as our own table: the layer configurations its unit tests export.

Mirrors the ``tests/`` folder of PlasmaControl/keras2c (MIT), read on 2026-12-06 through the code index:
``test_core_layers.py``, ``test_convolution_layers.py``, ``test_recurrent_layers.py``,
``test_merge_layers.py``, ``test_advanced_activation_layers.py``, ``test_wrappers.py``,
``test_models.py`` and ``test_split_layers.py`` at commit 00617838d967, ``test_pooling_layers.py`` at
252ae0ac6f48 and ``test_convtranspose_layers.py`` at 2b2f75670251. One group per file, one entry per
test model (per output, for its models with several outputs); its tests that draw sizes at random
(transposed convolutions, splits) draw them here from a fixed seed, from the same ranges. keras2c's
``LeakyReLU(alpha=...)`` is Keras 3's ``negative_slope``; the initializers it sets to avoid trivial
weights give way to random weights (``peer_suites.scramble``), as for every entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from peer_suites import Entry, S, Table, chain


def _core() -> list[Entry]:
    t = Table("core")
    t.add("Dense", [(21, 4, 9)], chain(S("Dense", 45, activation="relu")))
    dense = S("Dense", 500, activation="tanh", use_bias=False)
    t.add("Dense_Activation", [(40, 30)], chain(dense, S("Activation", "exponential")))
    t.add("Dropout_Reshape_Flatten", [(10, 40, 30)], chain(S("Flatten"), S("Dropout", 0.4), S("Reshape", (20, 30, 20))))
    t.add("Permute", [(6, 12, 9)], chain(S("Permute", (3, 1, 2))))
    regularized = S("ActivityRegularization", l1=0.5, l2=0.3)
    t.add("RepeatVector", [(13,)], chain(S("RepeatVector", 23), regularized, S("Dense", 20)))
    dropouts = [S("SpatialDropout3D", 0.2), S("Reshape", (20, 6, 7)), S("SpatialDropout2D", 0.3),
                S("Reshape", (20, 42)), S("SpatialDropout1D", 0.4), S("Flatten")]  # fmt: skip
    t.add("SpatialDropout", [(4, 5, 6, 7)], chain(*dropouts))
    t.add("Embedding", [(10, 20)], chain(S("Activation", "relu"), S("Embedding", input_dim=20, output_dim=30)))
    for shape, axis, scale, center in [((10, 11, 12), 3, True, True), ((10, 11, 12), 2, False, True),
                                       ((10, 11, 12, 13), 1, True, False),
                                       ((10, 11, 12), 2, False, False)]:  # fmt: skip
        t.add("BatchNormalization", [shape], chain(S("BatchNormalization", axis=axis, scale=scale, center=center)))

    def shared(keras: Any, inputs: list[Any]) -> Any:
        L = keras.layers
        f = L.Dense(30, activation="relu")
        x, y = (f(L.Dense(20, activation="relu")(i)) for i in inputs)
        return L.Add()([x, y])

    t.add("SharedLayer", [(10, 20), (10, 20)], shared)
    return t.entries


def _convolution() -> list[Entry]:
    t = Table("convolution")
    for dims, shape, filters, kernel, strides, padding, dilation, activation, bias in [
        (3, (25, 32, 3, 4), 13, (3, 4, 2), (2, 3, 2), "valid", 1, "relu", False),
        (3, (25, 32, 3, 4), 13, (3, 4, 3), 1, "same", (1, 2, 3), "relu", True),
        (2, (25, 32, 3), 13, (3, 4), (2, 3), "valid", 1, "relu", False),
        (2, (13, 23, 10), 17, 2, 1, "same", (3, 2), "sigmoid", True),
        (1, (25, 32), 13, 3, 2, "valid", 1, "relu", False),
        (1, (13, 23), 17, 4, 1, "same", 3, "sigmoid", True),
        (1, (8, 32), 17, 4, 1, "causal", 1, "tanh", True),
    ]:  # fmt: skip
        conv = S(f"Conv{dims}D", filters=filters, kernel_size=kernel, strides=strides, padding=padding,
                 dilation_rate=dilation, activation=activation, use_bias=bias)  # fmt: skip
        t.add(conv.cls, [shape], chain(conv))
    t.add("ZeroPadding1D", [(10, 12)], chain(S("ZeroPadding1D", padding=(3, 1))))
    t.add("ZeroPadding2D", [(10, 12, 5)], chain(S("ZeroPadding2D", padding=((3, 1), (4, 3)))))
    t.add("ZeroPadding3D", [(10, 12, 5, 4)], chain(S("ZeroPadding3D", padding=((3, 1), (4, 3), (2, 4)))))
    t.add("Cropping1D", [(10, 12)], chain(S("Cropping1D", cropping=(3, 1))))
    t.add("Cropping2D", [(10, 12, 5)], chain(S("Cropping2D", cropping=((3, 1), (4, 3)))))
    t.add("Cropping3D", [(10, 12, 5, 4)], chain(S("Cropping3D", cropping=((3, 1), (4, 3), (2, 0)))))
    t.add("UpSampling1D", [(4, 10)], chain(S("UpSampling1D", 3)))
    t.add("UpSampling2D", [(4, 5, 10)], chain(S("UpSampling2D", (3, 4))))
    t.add("UpSampling3D", [(4, 5, 10, 3)], chain(S("UpSampling3D", (3, 4, 2))))
    return t.entries


def _pooling() -> list[Entry]:
    t = Table("pooling")
    for cls, shape, pool, strides, padding in [
        ("MaxPooling1D", (23, 29), 3, 2, "valid"), ("MaxPooling1D", (13, 19), 2, 2, "same"),
        ("AveragePooling1D", (23, 29), 2, 3, "valid"), ("AveragePooling1D", (13, 19), 3, 1, "same"),
        ("MaxPooling2D", (23, 29, 7), (3, 2), (2, 1), "valid"), ("MaxPooling2D", (13, 19, 4), (2, 4), (2, 3), "same"),
        ("AveragePooling2D", (18, 25, 7), (2, 3), (2, 2), "valid"),
        ("AveragePooling2D", (23, 29, 5), (2, 4), (3, 1), "same"),
    ]:  # fmt: skip
        t.add(cls, [shape], chain(S(cls, pool_size=pool, strides=strides, padding=padding)))
    for cls, shape in [("GlobalAveragePooling1D", (16, 11)), ("GlobalMaxPooling1D", (31, 21)),
                       ("GlobalAveragePooling2D", (16, 11, 13)), ("GlobalMaxPooling2D", (31, 21, 5)),
                       ("GlobalAveragePooling3D", (16, 11, 4, 5)), ("GlobalMaxPooling3D", (31, 21, 6, 7))]:  # fmt: skip
        t.add(cls, [shape], chain(S(cls)))
    return t.entries


def _recurrent() -> list[Entry]:
    t = Table("recurrent")
    for cls, shape, batch, kwargs in [
        ("SimpleRNN", (4, 46), 4, {"units": 17, "activation": "relu", "stateful": True}),
        ("SimpleRNN", (34, 17), None, {"units": 40, "go_backwards": True, "return_sequences": True}),
        ("SimpleRNN", (34, 17), None, {"units": 40, "return_sequences": True, "use_bias": False}),
        ("LSTM", (23, 32), None, {"units": 19, "activation": "relu", "recurrent_activation": "hard_sigmoid"}),
        ("LSTM", (4, 80), None, {"units": 23, "go_backwards": True, "return_sequences": True, "activation": "sigmoid",
                                 "recurrent_activation": "tanh"}),
        ("LSTM", (4, 80), 3, {"units": 23, "return_sequences": True, "activation": "sigmoid",
                              "recurrent_activation": "tanh", "use_bias": False, "stateful": True}),
        ("GRU", (12, 46), None, {"units": 17, "activation": "softmax", "recurrent_activation": "softsign"}),
        ("GRU", (12, 46), 5, {"units": 17, "activation": "softplus", "return_sequences": True, "go_backwards": True,
                              "reset_after": True, "stateful": True}),
        ("GRU", (12, 46), None, {"units": 17, "activation": "softplus", "return_sequences": True, "reset_after": True,
                                 "use_bias": False}),
    ]:  # fmt: skip
        t.add(cls, [shape], chain(S(cls, **kwargs)), batch=batch)
    return t.entries


def _merge() -> list[Entry]:
    t = Table("merge")
    t.add("Dot", [(10, 8), (8, 12)], chain(S("Dot", (2, 1))))
    t.add("Dot_normalize", [(5, 9), (9, 9)], chain(S("Dot", axes=(2, 2), normalize=True)))
    for cls, shape, n in [("Add", (10, 8, 12), 3), ("Subtract", (10, 8, 2, 3), 2), ("Multiply", (9, 12), 4),
                          ("Maximum", (9, 14), 4), ("Minimum", (7, 12, 2), 4), ("Average", (4, 12, 2), 4)]:  # fmt: skip
        t.add(cls, [shape] * n, chain(S(cls)))
    for shapes, axis in [([(4, 3, 2), (4, 3, 3), (4, 3, 6)], 3), ([(2, 3, 6), (2, 2, 6), (2, 4, 6)], 2),
                         ([(2, 3, 6, 3), (3, 3, 6, 3), (1, 3, 6, 3)], 1)]:  # fmt: skip
        t.add("Concatenate", shapes, chain(S("Concatenate", axis=axis)))
    return t.entries


def _activations() -> list[Entry]:
    t = Table("advanced_activation")
    t.add("LeakyReLU", [(9, 7, 6, 3)], chain(S("LeakyReLU", negative_slope=0.5)))
    t.add("PReLU", [(3, 6, 9, 3)], chain(S("PReLU", alpha_initializer="glorot_uniform")))
    t.add("ELU", [(13, 6, 9, 13)], chain(S("ELU", alpha=1.3)))
    t.add("ThresholdedReLU", [(3, 6, 19, 11)], chain(S("ReLU", threshold=0.3)))
    t.add("ReLU", [(12, 7, 9, 21)], chain(S("ReLU", max_value=1.0, negative_slope=1.0, threshold=0.3)))
    return t.entries


def _wrappers() -> list[Entry]:
    t = Table("wrappers")
    lstm = S("LSTM", 10, return_sequences=True)
    both = {mode: S("Bidirectional", lstm, merge_mode=mode) for mode in ("concat", "mul", "ave")}
    t.add("Bidirectional", [(5, 10)], chain(both["concat"], both["mul"], S("Dense", 5)))
    t.add("Bidirectional", [(5, 10)], chain(S("Dense", 5), both["ave"], both["concat"], S("Dense", 5)))
    dense = S("TimeDistributed", S("Dense", 7, use_bias=True))
    t.add("TimeDistributed", [(8, 5)], chain(dense))
    t.add("TimeDistributed", [(8, 5)], chain(dense, S("Dense", 10)))
    t.add("TimeDistributed", [(8, 5)], chain(S("Dense", 10), dense))
    t.add("TimeDistributed", [(8, 5)], chain(S("Dense", 10), dense, S("Dense", 10)))
    for dims, shape in ((1, (4, 8, 5)), (2, (4, 7, 8, 5))):
        inner = S("TimeDistributed", S(f"Conv{dims}D", 7, kernel_size=2))
        t.add(f"TimeDistributed_Conv{dims}D", [shape], chain(S("Dense", 10), inner, S("Dense", 10)))
    return t.entries


def _models() -> list[Entry]:
    t = Table("models")
    relu = S("Activation", "relu")
    conv = [S("Conv2D", 8, (3, 3), padding="same"), relu, S("Conv2D", 8, (3, 3)), relu, S("MaxPooling2D", (2, 2)),
            S("Dropout", 0.25)]  # fmt: skip
    head = [S("Flatten"), S("Dense", 20), relu, S("Dropout", 0.5), S("Dense", 10), S("Activation", "softmax")]
    t.add("CIFAR_10_CNN", [(32, 32, 3)], chain(*conv, *conv, *head))
    t.add("ProfilePredictor", [(8, 32)], chain(S("Dense", 20, activation="relu"), S("Dense", 20, activation="relu"),
                                               S("LSTM", 20, activation="relu"), S("Dense", 30)))  # fmt: skip
    for target in (0, 1):
        t.add(f"ProfilePredictorConv1D_out{target}", _PROFILE_INPUTS, _profile_conv1d(target))
    for target in (0, 1):
        t.add(f"ProfilePredictorConv2D_out{target}", _PROFILE_INPUTS, _profile_conv2d(target))
    return t.entries


# three profiles (1, 33), three past actuators (5,) and three future actuators (4,): the peer's input order
_PROFILE_INPUTS = [(1, 33)] * 3 + [(5,)] * 3 + [(4,)] * 3


def _actuators(keras: Any, inputs: list[Any], width: int) -> tuple[Any, Any, Any]:
    """The profiles (33, 3) and the past and future actuators, each (time, 3)."""
    L = keras.layers
    profiles = L.Reshape((33, 3))(L.Concatenate(axis=-1)([L.Reshape((1, 33, 1))(p) for p in inputs[:3]]))
    past = L.Concatenate(axis=-1)([L.Reshape((5, 1))(a) for a in inputs[3:6]])
    future = L.Concatenate(axis=-1)([L.Reshape((4, 1))(a) for a in inputs[6:9]])
    return profiles, past, future


def _profile_conv1d(target: int) -> Any:
    """test_ProfilePredictorConv1D's output ``target``: its two outputs share no layer but the inputs."""

    def build(keras: Any, inputs: list[Any]) -> Any:
        L = keras.layers
        profiles, past, future = _actuators(keras, inputs, 33)
        effects = [L.Reshape((33, 1))(L.LSTM(33, activation="relu")(a)) for a in (past, future)]
        x = L.Concatenate()([profiles, *effects])
        outputs = []
        for _ in range(2):
            c1 = L.Conv1D(8, 2, padding="same", activation="relu")(x)
            c2 = L.Conv1D(8, 4, padding="same", activation="relu")(c1)
            c3 = L.Conv1D(8, 8, padding="same", activation="relu")(c2)
            y = L.Conv1D(10, 4, padding="same", activation="tanh")(L.Concatenate()([c1, c2, c3]))
            outputs.append(L.Reshape((33,))(L.Conv1D(1, 4, padding="same")(y)))
        return outputs[target]

    return build


def _profile_conv2d(target: int) -> Any:
    """test_ProfilePredictorConv2D's output ``target`` (96 channels: three profiles times 32)."""

    def build(keras: Any, inputs: list[Any]) -> Any:
        L = keras.layers
        p = L.Concatenate(axis=-1)([L.Reshape((1, 33, 1))(q) for q in inputs[:3]])
        for filters, kernel in ((12, 2), (24, 4), (48, 5), (96, 8)):
            p = L.Conv2D(filters, (1, kernel), padding="same", activation="relu")(p)
        p = L.Reshape((33, 96))(p)
        acts = [
            L.Reshape((9, 1))(L.Concatenate()([past, future]))
            for past, future in zip(inputs[3:6], inputs[6:9], strict=True)
        ]
        a = L.Concatenate(axis=-1)(acts)
        for units in (12, 24, 48):
            a = L.Dense(units, activation="relu")(a)
        a = L.Reshape((96, 1))(L.LSTM(96, activation="relu", recurrent_activation="hard_sigmoid")(a))
        for units in (8, 16):
            a = L.Dense(units, activation="relu")(a)
        a = L.Permute((2, 1))(L.Dense(33)(a))
        merged = L.Reshape((1, 33, 96))(L.Add()([p, a]))
        outputs = []
        for _ in range(2):
            y = merged
            for filters, kernel in ((32, 8), (16, 4), (8, 5), (4, 8)):
                y = L.Conv2D(filters, (1, kernel), padding="same", activation="relu")(y)
            outputs.append(L.Reshape((33,))(L.Conv2D(1, (1, 8), padding="same")(y)))
        return outputs[target]

    return build


def _transposed() -> list[Entry]:
    t, rng = Table("convtranspose"), np.random.default_rng(1)
    for test in range(10):
        steps, channels, filters = (int(rng.integers(lo, 50)) for lo in (2, 1, 1))
        kernel = int(rng.integers(1, steps))
        strides = int(rng.integers(1, max(kernel, 2)))
        padding = ("valid", "same")[test % 2]
        layer = S("Conv1DTranspose", filters, kernel, strides=strides, padding=padding, use_bias=False)
        t.add("Conv1DTranspose", [(steps, channels)], chain(layer))
    return t.entries


def _split() -> list[Entry]:
    t, rng = Table("split"), np.random.default_rng(2)
    for _ in range(10):
        n = int(rng.integers(2, 10))
        width = int(rng.integers(n, 10 * n))
        sizes: list[int] = []
        for i in range(n - 1):
            sizes.append(int(rng.integers(1, width - sum(sizes) - n + i + 2)))
        sizes.append(width - sum(sizes))
        cuts = list(np.cumsum(sizes)[:-1])
        for part in range(n):
            t.add(f"split{n}_part{part}", [(width,)], _split_part(cuts, part))
    return t.entries


def _split_part(cuts: list[int], part: int) -> Any:
    """Part ``part`` of the row split at ``cuts``, as a slice of the input: keras2c wraps ``tf.split`` in a
    Lambda, Python code that no safe reader runs (and ``keras.ops.split`` in a model cannot be saved)."""

    def build(keras: Any, inputs: list[Any]) -> Any:
        bounds = [0, *cuts, None]
        return inputs[0][:, bounds[part] : bounds[part + 1]]

    return build


ENTRIES: list[Entry] = [
    *_core(), *_convolution(), *_pooling(), *_recurrent(), *_merge(), *_activations(), *_wrappers(), *_models(),
    *_transposed(), *_split(),
]  # fmt: skip
