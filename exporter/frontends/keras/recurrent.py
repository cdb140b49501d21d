"""Keras' recurrent layers (SimpleRNN, GRU, LSTM, the RNN wrapper of their cells, Bidirectional) -> ``Recurrent``.

A layer reads one ``(steps, features)`` sequence per row, from a zero state, at inference: its dropouts are
the identity. What carries state between calls (``stateful``), hands out states (``return_state``) or takes
them in (``initial_state``), and cells other than Keras' three, are refused by name; so is a bidirectional
layer with two outputs (``merge_mode=None``). Registered here with ``handles`` of ``layers.py``; ``walk.py``
imports this module so that every reader of the registry sees the declarations.
"""

from __future__ import annotations

from typing import Any

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.activations import from_keras
from exporter.frontends.keras.layers import _numpy, concatenate_values, handles, merge_values
from exporter.ir.recurrent import SIGMOID, Recurrent

# Keras' cell classes -> the op's kind
CELLS = {"SimpleRNNCell": "simple", "GRUCell": "gru", "LSTMCell": "lstm"}
# Bidirectional's merge modes -> the merge of the two directions ("concat" is a Concatenate)
MERGES = {"sum": "add", "mul": "multiply", "ave": "average"}


def _sequence(b: Builder, inputs: list[str]) -> str:
    if len(inputs) != 1:
        raise Unsupported(f"called on {len(inputs)} tensors: an initial state (initial_state) is not supported")
    x = inputs[0]
    if len(b.shape(x)) != 2:
        raise Unsupported(f"input of shape {b.shape(x)} per row: a sequence (steps, features) is needed")
    return x


def recurrence(b: Builder, name: str, layer: Any, x: str, flip: bool = False) -> str:
    """One recurrent layer (SimpleRNN, GRU, LSTM or RNN of their cells) on the sequence ``x``; ``flip`` writes
    its sequence of outputs last first (the backward half of a Bidirectional)."""
    if getattr(layer, "stateful", False):
        raise Unsupported("stateful=True is not supported: the C starts every row from a zero state")
    if getattr(layer, "return_state", False):
        raise Unsupported("return_state=True is not supported: one output per layer")
    cell = layer.cell
    kind = CELLS.get(type(cell).__name__)
    if kind is None or not type(cell).__module__.startswith("keras."):
        raise Unsupported(f"cell {type(cell).__name__}: only SimpleRNNCell, GRUCell and LSTMCell are supported")
    length, _ = b.shape(x)
    units = int(cell.units)
    bias = _numpy(cell.bias) if cell.use_bias else None
    recurrent_bias = None
    reset_after = bool(getattr(cell, "reset_after", False))
    if bias is not None and kind == "gru" and reset_after:
        bias, recurrent_bias = bias[0], bias[1]  # Keras stores (2, 3 units): the input's, then the state's
    sequences = bool(layer.return_sequences)
    return b.add(
        Recurrent,
        name,
        [x],
        units * (length if sequences else 1),
        kind=kind,
        length=length,
        units=units,
        kernel=_numpy(cell.kernel),
        recurrent_kernel=_numpy(cell.recurrent_kernel),
        bias=bias,
        recurrent_bias=recurrent_bias,
        activation=from_keras(cell.activation),
        recurrent_activation=from_keras(cell.recurrent_activation) if kind != "simple" else SIGMOID,
        reset_after=reset_after,
        sequences=sequences,
        backwards=bool(layer.go_backwards),
        flip=flip and sequences,
    )


@handles("SimpleRNN", "GRU", "LSTM", "RNN")
def recurrent(layer: Any, b: Builder, inputs: list[str]) -> str:
    return recurrence(b, layer.name, layer, _sequence(b, inputs))


@handles("Bidirectional")
def bidirectional(layer: Any, b: Builder, inputs: list[str]) -> str:
    """Both directions over the sequence, the backward one's outputs flipped back in time (Keras does), merged."""
    x = _sequence(b, inputs)
    if layer.merge_mode is None:
        raise Unsupported("merge_mode=None gives two outputs; only merged ones (concat, sum, mul, ave) are supported")
    if layer.merge_mode != "concat" and layer.merge_mode not in MERGES:
        raise Unsupported(f"merge_mode {layer.merge_mode!r} is not supported")
    forward = recurrence(b, f"{layer.name}/{layer.forward_layer.name}", layer.forward_layer, x)
    backward = recurrence(b, f"{layer.name}/{layer.backward_layer.name}", layer.backward_layer, x, flip=True)
    if layer.merge_mode == "concat":
        return concatenate_values(b, layer.name, [forward, backward], -1)
    return merge_values(b, layer.name, MERGES[layer.merge_mode], [forward, backward])
