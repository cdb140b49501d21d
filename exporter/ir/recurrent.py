"""Recurrent layers as one op: a simple RNN, a GRU (either reset placement) or an LSTM over a fixed sequence.

The input is a ``(length, features)`` tensor per row (held flat, time-major); the output is the last
state ``(units,)`` or, with ``sequences``, every step's ``(length, units)``. The state starts at zero.
Weights keep the Keras layout, which is the fast one for the C: ``kernel`` ``(features, gates * units)``
and ``recurrent_kernel`` ``(units, gates * units)``, row-major, gates side by side in Keras' order
(GRU: z, r, h; LSTM: i, f, c, o), so that each input's weights for all gates are one unit-stride run that
the C multiplies by that input and adds to every gate's sum at once (vectorized across the gates' columns,
each column's sum in the same order on every instruction set). ``bias`` is the input bias (or the LSTM's
and simple RNN's one bias), ``recurrent_bias`` a GRU's second bias with ``reset_after``.

The state (``h``, an LSTM's ``c``) and the two gate sums of one step live in the function's working
memory (``scratch_floats``), never in static storage: ``h[units] | c[units] | gx[gates * units] |
gh[gates * units]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from exporter.ir.activations import Activation
from exporter.ir.ops import Op, Shape

TANH, SIGMOID = Activation("tanh"), Activation("sigmoid")  # Keras' defaults
GATES = {"simple": 1, "gru": 3, "lstm": 4}
NAMES = {"simple": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}


@dataclass
class Recurrent(Op):
    """One recurrent layer over ``length`` steps; ``width`` is the whole output (``length * units`` with
    ``sequences``, else ``units``).

    ``backwards`` reads the sequence from its last step to its first; with ``sequences`` the outputs are
    in the order computed (Keras' ``go_backwards``); ``flip`` writes them last first (a bidirectional
    layer's backward half, whose outputs it flips: with ``backwards``, each at the step it read)."""

    kind: str = "gru"
    length: int = 1
    units: int = 1
    kernel: np.ndarray = None  # type: ignore[assignment]
    recurrent_kernel: np.ndarray = None  # type: ignore[assignment]
    bias: np.ndarray | None = None
    recurrent_bias: np.ndarray | None = None
    activation: Activation = TANH
    recurrent_activation: Activation = SIGMOID
    reset_after: bool = True
    sequences: bool = False
    backwards: bool = False
    flip: bool = False

    template: ClassVar[str] = "recurrent"

    def __post_init__(self) -> None:
        if self.kind not in GATES:
            raise ValueError(f"unknown recurrent kind {self.kind!r}")
        n = self.gates * self.units
        self.kernel = np.ascontiguousarray(self.kernel, dtype=np.float32)
        self.recurrent_kernel = np.ascontiguousarray(self.recurrent_kernel, dtype=np.float32)
        if self.kernel.ndim != 2 or self.kernel.shape[1] != n:
            raise ValueError(f"kernel shape {self.kernel.shape} does not give {self.gates} gates of {self.units}")
        if self.recurrent_kernel.shape != (self.units, n):
            raise ValueError(f"recurrent kernel shape {self.recurrent_kernel.shape}, expected {(self.units, n)}")
        for name in ("bias", "recurrent_bias"):
            value = getattr(self, name)
            if value is not None:
                value = np.ascontiguousarray(value, dtype=np.float32).reshape(-1)
                if value.shape != (n,):
                    raise ValueError(f"{name} has {value.size} values, expected {n}")
                setattr(self, name, value)
        if self.flip and not self.sequences:
            raise ValueError("only a sequence's outputs can be flipped")
        if self.recurrent_bias is not None and not (self.kind == "gru" and self.reset_after):
            raise ValueError("a recurrent bias belongs to a GRU with reset_after only")
        if self.width != self.units * (self.length if self.sequences else 1):
            raise ValueError(f"width {self.width} is not the output of {self.units} units over {self.length} steps")

    @property
    def gates(self) -> int:
        return GATES[self.kind]

    @property
    def features(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def n(self) -> int:
        """The columns of every gate together: one step's sums."""
        return self.gates * self.units

    def describe(self) -> str:
        name = NAMES[self.kind] + (", reset after" if self.kind == "gru" and self.reset_after else "")
        acts = "/".join(act.describe() for act in self.activations)
        what = "sequence" if self.sequences else "last"
        order = (", backwards" if self.backwards else "") + (", flipped" if self.flip else "")
        bias = "" if self.bias is not None else ", no bias"
        return f"{name} {self.length}x{self.features}->{self.units} ({what}{order}), {acts}{bias}"

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        """``(length, features)`` in; ``(length, units)`` out with ``sequences``, else ``(units,)``."""
        if in_shapes != [(self.length, self.features)]:
            return None
        return (self.length, self.units) if self.sequences else (self.units,)

    def out_width(self, in_widths: list[int]) -> int:
        return self.width if in_widths == [self.length * self.features] else -1

    def scratch_floats(self) -> int:
        return self.units * (2 if self.kind == "lstm" else 1) + 2 * self.n

    def flops(self, in_widths: list[int]) -> int:
        per_gate = {"simple": 3, "gru": 10, "lstm": 12}[self.kind]  # sums, gate updates and the state's, per unit
        products = 2 * (self.features + self.units) * self.n
        acts = self.activation.flops(self.units) + self.recurrent_activation.flops(self.units) * (self.gates - 1)
        return self.length * (products + per_gate * self.units + acts)

    def helpers(self, math: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h for act in self.activations for h in act.helpers(math)))

    def file_helpers(self) -> tuple[str, ...]:
        return ("barriers",)  # KEEP_SUMS in the loops over inputs, OPAQUE on the weights

    @property
    def activations(self) -> tuple[Activation, ...]:
        return (self.activation,) if self.kind == "simple" else (self.activation, self.recurrent_activation)

    def refusal(self) -> str | None:
        if self.activation.is_vector or self.recurrent_activation.is_vector:
            return "a softmax as a recurrent layer's activation is not supported (it couples the units)"
        return super().refusal()
