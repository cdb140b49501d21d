"""Random Keras models over tensors, for tests/test_fuzz.py: a sequence (T, F) or an image (H, W, C) per row.

Each step applies one layer kind of ``TENSOR_LAYERS`` to a tensor (functional: merges and concatenations
read two tensors of one shape), and the model ends on a Flatten and a Dense head, or on the tensor itself.
Some steps are refused on purpose (a softmax over another axis than the last, a Lambda); the refusal
must name them: a Lambda alone when there is one, since its file is refused before Keras loads it (and
the walk that would see the softmax's axis never runs). Sizes stay small: every model exports in a second or two.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from exporter.frontends.keras.activations import KERAS_ACTIVATIONS

# exponential overflows float32 on the edge rows (inputs of 100), and softmax of the infinities that
# follow is the one documented NaN difference from TensorFlow (docs/speed.md): not drawn. threshold has
# no defaults: Keras cannot call it by name.
ACTIVATIONS = sorted(set(KERAS_ACTIVATIONS.names()) - {"exponential", "threshold"})


class TensorDraw:
    """A model being drawn over tensors: the tensors made so far and the fragments a refusal must name."""

    def __init__(self, keras: Any, data: Any):
        self.keras, self.data = keras, data
        self.tensors: list[Any] = []
        self.refused: list[str] = []  # named before Keras loads the file (the stored configuration shows them)
        self.walk_refused: list[str] = []  # named by the walk of the loaded model, when nothing stopped the load
        self.count = 0

    def draw(self, strategy: Any, label: str) -> Any:
        return self.data.draw(strategy, label=label)

    def name(self, kind: str) -> str:
        self.count += 1
        return f"t{self.count}_{kind}"

    def size(self, label: str) -> int:
        return self.draw(st.integers(1, 6) | st.integers(7, 12), label)

    def activation(self) -> str:
        return self.draw(st.sampled_from(ACTIVATIONS), "activation")

    def partner(self, x: Any) -> Any:
        """A second tensor of ``x``'s shape: an earlier one, or a Dense over ``x``'s last axis."""
        same = [t for t in self.tensors if tuple(t.shape) == tuple(x.shape) and t is not x]
        if same and self.draw(st.booleans(), "reuse a tensor of that shape"):
            return same[self.draw(st.integers(0, len(same) - 1), "which")]
        return self.keras.layers.Dense(x.shape[-1], name=self.name("project"))(x)


def _rank(x: Any) -> int:
    return len(x.shape) - 1  # axes per row


def _reshape(d: TensorDraw, x: Any, name: str) -> Any:
    """Another view of the same floats: the leading axes joined, or the last axis split in two."""
    shape = tuple(int(n) for n in x.shape[1:])
    last = shape[-1]
    splits = [k for k in range(2, last) if last % k == 0]
    options = [(math.prod(shape[:-1]), last)] + [(*shape[:-1], last // k, k) for k in splits]
    return d.keras.layers.Reshape(d.draw(st.sampled_from(options), "target shape"), name=name)(x)


def _layer_norm(d: TensorDraw, x: Any, name: str) -> Any:
    leading = [*range(1, _rank(x) + 1), [1, _rank(x)]] if _rank(x) > 1 else []  # a transpose around the norm
    axes = d.draw(st.sampled_from([-1, [-2, -1], *leading] if _rank(x) > 1 else [-1]), "normalized axes")
    return d.keras.layers.LayerNormalization(axis=axes, name=name)(x)


def _prelu(d: TensorDraw, x: Any, name: str) -> Any:
    shared = d.draw(st.lists(st.integers(1, _rank(x)), unique=True, max_size=_rank(x)), "shared axes")
    return d.keras.layers.PReLU(shared_axes=sorted(shared) or None, name=name)(x)


def _merge(d: TensorDraw, x: Any, name: str) -> Any:
    """Two tensors of ``x``'s shape, or ``x`` and one of its last axis 1 that broadcasts over it, either first."""
    kind = d.draw(st.sampled_from(["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]), "merge")
    if not d.draw(st.booleans(), "broadcast"):
        return getattr(d.keras.layers, kind)(name=name)([x, d.partner(x)])
    narrow = d.keras.layers.Dense(1, name=d.name("narrow"))(x)
    pair = [x, narrow] if d.draw(st.booleans(), "wide first") else [narrow, x]
    return getattr(d.keras.layers, kind)(name=name)(pair)


def _batch_norm(d: TensorDraw, x: Any, name: str) -> Any:
    axis = d.draw(st.sampled_from([-1, *range(1, _rank(x) + 1)]), "batch normalization axis")
    return d.keras.layers.BatchNormalization(axis=axis, name=name)(x)


def _concatenate(d: TensorDraw, x: Any, name: str) -> Any:
    axis = d.draw(st.sampled_from([-1, *range(1, _rank(x) + 1)]), "concatenation axis")
    return d.keras.layers.Concatenate(axis=axis, name=name)([x, d.partner(x)])


def _convolution(d: TensorDraw, x: Any, name: str) -> Any:
    """Conv1D over a sequence, Conv2D over an image, Conv3D over a volume: kernel, strides, padding and dilation
    drawn to fit."""
    spatial = [int(n) for n in x.shape[1:-1]]
    kernel = d.draw(st.integers(1, min(3, *spatial)), "kernel")
    padding = d.draw(st.sampled_from(["same", "valid"]), "padding")
    strides = d.draw(st.integers(1, 2), "strides")
    dilation = 1 if strides > 1 or kernel == 1 else d.draw(st.integers(1, 2), "dilation")
    if padding == "valid" and min(spatial) < dilation * (kernel - 1) + 1:
        padding = "same"
    layer = getattr(d.keras.layers, f"Conv{len(spatial)}D")
    config = {"strides": strides, "padding": padding, "dilation_rate": dilation, "activation": d.activation()}
    return layer(d.size("filters"), kernel, name=name, **config)(x)


def _transposed(d: TensorDraw, x: Any, name: str) -> Any:
    """Conv1DTranspose over a sequence, Conv2DTranspose over an image: kernel, padding, strides (1 over more than
    36 positions, to keep the stack small) and output_padding drawn. No dilation (TensorFlow has no float64 kernel
    for it) and no output_padding 0 (TensorFlow's oneDNN kernel fails it with `same` and an even window)."""
    spatial = [int(n) for n in x.shape[1:-1]]
    kernel = d.draw(st.integers(1, 3), "kernel")
    padding = d.draw(st.sampled_from(["same", "valid"]), "padding")
    strides = 1 if math.prod(spatial) > 36 else d.draw(st.integers(1, 2), "strides")
    extra = d.draw(st.sampled_from([None, 1]), "output padding") if strides == 2 else None
    layer = d.keras.layers.Conv1DTranspose if len(spatial) == 1 else d.keras.layers.Conv2DTranspose
    config = {"strides": strides, "padding": padding, "output_padding": extra, "activation": d.activation()}
    return layer(d.size("filters"), kernel, name=name, **config)(x)


def _pooling(d: TensorDraw, x: Any, name: str) -> Any:
    kind = d.draw(st.sampled_from(["MaxPooling", "AveragePooling"]), "pooling")
    layer = getattr(d.keras.layers, f"{kind}{_rank(x) - 1}D")
    return layer(2, padding="same", name=name)(x)


def _recurrent(d: TensorDraw, x: Any, name: str) -> Any:
    kind = d.draw(st.sampled_from(["SimpleRNN", "GRU", "LSTM"]), "recurrent layer")
    backwards = d.draw(st.booleans(), "go backwards")
    layer = getattr(d.keras.layers, kind)(d.size("units"), return_sequences=True, go_backwards=backwards, name=name)
    return layer(x)


def _attention(d: TensorDraw, x: Any, name: str) -> Any:
    heads, key_dim = d.draw(st.integers(1, 3), "heads"), d.draw(st.integers(1, 4), "key dim")
    return d.keras.layers.MultiHeadAttention(heads, key_dim, name=name)(x, d.partner(x))


def _softmax_elsewhere(d: TensorDraw, x: Any, name: str) -> Any:
    d.walk_refused.append(f"'{name}' (Softmax): axis 1; only the last axis (-1) is supported")
    return d.keras.layers.Softmax(axis=1, name=name)(x)


def _lambda(d: TensorDraw, x: Any, name: str) -> Any:
    d.refused.append(f"'{name}' (Lambda)")
    return d.keras.layers.Lambda(lambda t: t * 2.0, name=name)(x)


L = Callable[[TensorDraw, Any, str], Any]
TENSOR_LAYERS: dict[str, L] = {
    "dense": lambda d, x, n: d.keras.layers.Dense(d.size("units"), activation=d.activation(), name=n)(x),
    "activation": lambda d, x, n: d.keras.layers.Activation(d.activation(), name=n)(x),
    "softmax": lambda d, x, n: d.keras.layers.Softmax(name=n)(x),
    "layer_norm": _layer_norm,
    "batch_norm": _batch_norm,
    "rescaling": lambda d, x, n: d.keras.layers.Rescaling([0.5 + k for k in range(x.shape[-1])], 0.25, name=n)(x),
    "prelu": _prelu,
    "dropout": lambda d, x, n: d.keras.layers.Dropout(0.5, name=n)(x),
    "reshape": _reshape,
    "merge": _merge,
    "concatenate": _concatenate,
}
# the layers that take a sequence (T, F) only, or a sequence or an image
SEQUENCE_LAYERS: dict[str, L] = {"recurrent": _recurrent, "attention": _attention}
SPATIAL_LAYERS: dict[str, L] = {"convolution": _convolution, "pooling": _pooling, "transposed": _transposed}
REFUSED_TENSOR_LAYERS: dict[str, L] = {"softmax_elsewhere": _softmax_elsewhere, "lambda": _lambda}


def _fitting(x: Any) -> dict[str, L]:
    """The shaped layers that take ``x``: convolutions and pooling over a sequence, an image or a volume (transposed
    convolutions over the first two), recurrences and attention over a sequence."""
    rank = _rank(x)
    spatial = {k: v for k, v in SPATIAL_LAYERS.items() if rank in (2, 3) or k != "transposed"}
    return {**(spatial if rank in (2, 3, 4) else {}), **(SEQUENCE_LAYERS if rank == 2 else {})}


def draw_tensor_model(keras: Any, data: Any) -> tuple[Any, list[str]]:
    """A random model over one tensor input and the fragments its refusal must name (none: it must export)."""
    d = TensorDraw(keras, data)
    rank = d.draw(st.sampled_from([2, 2, 3, 4]), "axes per row")
    small = st.integers(1, 4)  # a volume's axes: a row of at most 256 values
    shape = tuple(d.size(f"axis {k}") if rank < 4 else d.draw(small, f"axis {k}") for k in range(rank))
    x = keras.Input(shape, name="tensor")
    d.tensors.append(x)
    for _ in range(d.draw(st.integers(1, 4), "steps")):
        refused = d.draw(st.sampled_from([False] * 9 + [True]), "refused layer")
        table = REFUSED_TENSOR_LAYERS if refused else {**TENSOR_LAYERS, **_fitting(x)}
        kind = d.draw(st.sampled_from(sorted(table)), "layer")
        x = table[kind](d, x, d.name(kind))
        d.tensors.append(x)
    if d.draw(st.booleans(), "flatten to a Dense head"):
        x = keras.layers.Dense(d.size("outputs"), name="head")(keras.layers.Flatten(name="flat")(x))
    return keras.Model(d.tensors[0], x, name="fuzz_tensor"), d.refused or d.walk_refused
