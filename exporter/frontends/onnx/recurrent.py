"""ONNX's recurrences -> the IR's ``Recurrent``: ``RNN``, ``GRU`` (either ``linear_before_reset``), ``LSTM``;
``direction`` forward, reverse or bidirectional; the outputs ``Y`` and ``Y_h``.

ONNX holds a sequence as ``[steps, batch, features]`` (``layout`` 0; ``layout`` 1, batch first, is refused:
ONNX Runtime does not run it); the walk keeps each batch entry's floats in order whichever axis the batch is
(``Row.batch``), so PyTorch's ``Transpose`` of a batch-first input costs nothing. ONNX's weights
``W [dirs, gates * hidden, input]``, ``R [dirs, gates * hidden, hidden]``, ``B [dirs, 2 * gates * hidden]``
are re-ordered into the IR's Keras layout (kernels transposed, LSTM's gates from ONNX's i, o, f, c to Keras'
i, f, c, o; GRU's z, r, h are Keras' too). The state starts at zero: an ``initial_h`` is read only when it
is zeros (PyTorch writes a ``ConstantOfShape`` of 0). Only ONNX's default activations are read (the IR's
are Keras'); others, ``clip``, LSTM's peepholes and ``input_forget``, and ``sequence_lens`` other than every
sequence whole, are refused by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.onnx.declare import Const, Meta, Node, Row, Value, flat, handles, tensor
from exporter.ir import Concatenate, Recurrent, Slice

# ONNX's op -> (the IR's kind, gates, ONNX's default activations, the ONNX gate blocks in Keras' order)
KINDS: dict[str, tuple[str, int, tuple[str, ...], tuple[int, ...]]] = {
    "RNN": ("simple", 1, ("Tanh",), (0,)),
    "GRU": ("gru", 3, ("Sigmoid", "Tanh"), (0, 1, 2)),
    "LSTM": ("lstm", 4, ("Sigmoid", "Tanh", "Tanh"), (0, 2, 3, 1)),
}
DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}


def _gates(array: np.ndarray, order: tuple[int, ...], hidden: int) -> np.ndarray:
    """The gate blocks (along axis 0, ``hidden`` rows each) of ONNX's order re-ordered into Keras'."""
    return np.concatenate([array[g * hidden : (g + 1) * hidden] for g in order])


def _checked(node: Node, steps: int, dirs: int, defaults: tuple[str, ...]) -> None:
    """Refuse what the IR's recurrence does not compute: other activations, clipping, peepholes, a state given,
    sequences of other lengths."""
    given = [a.decode() if isinstance(a, bytes) else str(a) for a in node.attr("activations", None) or []]
    if given and given != list(defaults) * dirs:
        raise Unsupported(f"activations {given}: only ONNX's defaults {list(defaults)} are supported")
    if node.attr("clip", None) is not None:
        raise Unsupported("clip: clipped cell inputs are not supported")
    if node.attr("input_forget", 0):
        raise Unsupported("input_forget 1 (coupled input and forget gates) is not supported")
    lengths = node.inputs[4] if len(node.inputs) > 4 else None
    if lengths is not None and not (isinstance(lengths, Const) and np.all(lengths.array == steps)):
        raise Unsupported(f"sequence_lens: only constant lengths of every whole sequence ({steps}) are supported")
    for i, what in ((5, "initial_h"), (6, "initial_c")):
        state = node.inputs[i] if len(node.inputs) > i else None
        zero = state is None or (isinstance(state, Meta) and state.zero)
        if not (zero or (isinstance(state, Const) and not np.any(state.array))):
            raise Unsupported(f"{what}: only a zero initial state is supported")
    if len(node.inputs) > 7 and node.inputs[7] is not None:
        raise Unsupported("peepholes (P) are not supported")


def _direction(node: Node, b: Builder, x: str, d: int, backwards: bool, sequences: bool) -> str:
    """One direction's ``Recurrent``: its sequence of states (in time order), or its last state."""
    kind, gates, _, order = KINDS[node.op_type]
    hidden = int(node.attr("hidden_size"))
    steps = b.shape(x)[0]
    w = node.const(1, "W").astype(np.float64)[d]
    r = node.const(2, "R").astype(np.float64)[d]
    given = node.optional(3, "B")
    bias = np.zeros(2 * gates * hidden) if given is None else given.astype(np.float64)[d]
    w_bias, r_bias = _gates(bias[: gates * hidden], order, hidden), _gates(bias[gates * hidden :], order, hidden)
    after = kind == "gru" and bool(node.attr("linear_before_reset", 0))
    fields: dict[str, Any] = dict(
        kind=kind, length=steps, units=hidden, kernel=_gates(w, order, hidden).T,
        recurrent_kernel=_gates(r, order, hidden).T, bias=w_bias if after else w_bias + r_bias,
        recurrent_bias=r_bias if after else None, reset_after=after, sequences=sequences,
        backwards=backwards, flip=backwards and sequences,
    )  # fmt: skip
    try:
        return b.add(Recurrent, node.name, [x], hidden * (steps if sequences else 1), **fields)
    except ValueError as err:  # weights of shapes that do not fit hidden_size and the input
        raise Unsupported(str(err)) from None


@handles("RNN", "GRU", "LSTM", since=(14, 22))
def recurrence(node: Node, b: Builder) -> list[Value]:
    row = node.moved(0)
    if node.attr("layout", 0):
        raise Unsupported("layout 1 (batch first): ONNX Runtime, the reference, does not run it")
    if row.batch != 1 or len(row.dims) != 2:
        raise Unsupported("X must be [steps, batch, features]")
    steps, features = row.dims
    direction = node.attr("direction", "forward")
    if direction not in DIRECTIONS:
        raise Unsupported(f"direction {direction!r}")
    dirs = DIRECTIONS[direction]
    _checked(node, steps, dirs, KINDS[node.op_type][2])
    if node.op_type == "LSTM" and len(node.used) > 2 and node.used[2]:
        raise Unsupported("its output Y_c (the last cell state) is used; Y and Y_h are computed")
    hidden = int(node.attr("hidden_size"))
    x = tensor(b, node.name, row, (steps, features))
    backwards = [False, True] if dirs == 2 else [direction == "reverse"]
    out: list[Value] = []
    if node.used[0]:
        parts = [_direction(node, b, x, d, back, True) for d, back in enumerate(backwards)]
        y = parts[0] if dirs == 1 else b.add(Concatenate, node.name, parts, dirs * hidden, steps=steps)
        out.append(Row(flat(b, node.name, y, (steps * dirs * hidden,)).value, (steps, dirs, hidden), 2))
        rows = [flat(b, node.name, p, (steps * hidden,)).value for p in parts]
        starts = [0 if back else (steps - 1) * hidden for back in backwards]  # the state after the last step read
        last = [b.add(Slice, node.name, [p], hidden, start=a) for p, a in zip(rows, starts, strict=True)]
    else:
        out.append(Meta())
        last = [_direction(node, b, x, d, back, False) for d, back in enumerate(backwards)]
    if len(node.used) > 1 and node.used[1]:
        h = last[0] if dirs == 1 else b.add(Concatenate, node.name, last, dirs * hidden)
        out.append(Row(h, (dirs, hidden), 1))
    return out
