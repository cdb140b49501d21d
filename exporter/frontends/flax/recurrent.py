"""Flax linen recurrences: ``nn.RNN`` of a ``GRUCell``, ``LSTMCell``, ``OptimizedLSTMCell`` or ``SimpleCell``
(and so ``nn.Bidirectional`` of them) -> ``Recurrent``.

JAX traces ``nn.RNN`` into a ``scan`` whose body is the cell: in the jaxpr a recurrence is a loop like any
other, which the walk refuses. So while the model is traced for its IR (never for its reference), each call
of ``nn.RNN`` on a cell of these classes is intercepted (``flax.linen.intercept_methods``) and replaced by one
primitive of ours, ``lamarr_recurrent``, whose parameters name the cell and its configuration and whose
operands are the sequence and the cell's weights (the walk sees them as constants); ``walk`` maps it to one
``Recurrent`` op. Flax's gates go to Keras' order (GRU: z, r, n; LSTM: i, f, g, o) with the weights side by
side as the op lays them out. An unbatched ``(steps, features)`` sequence only; ``seq_lengths`` (masks), an
initial carry and other cells are left to the scan, which the walk refuses; an LSTM's returned cell state
``c`` is no value the C computes (what depends on it is refused).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

from exporter.common.errors import Problem, UnsupportedModelError
from exporter.frontends.builder import Builder, Unsupported
from exporter.ir import Activation, Reshape
from exporter.ir.activations import KINDS
from exporter.ir.recurrent import SIGMOID, Recurrent

NAME = "lamarr_recurrent"
# cell class -> (the op's kind, its input-side and state-side Dense names in the op's gate order)
CELLS = {
    "GRUCell": ("gru", ("iz", "ir", "in"), ("hz", "hr", "hn")),
    "LSTMCell": ("lstm", ("ii", "if", "ig", "io"), ("hi", "hf", "hg", "ho")),
    "OptimizedLSTMCell": ("lstm", ("ii", "if", "ig", "io"), ("hi", "hf", "hg", "ho")),
    "SimpleCell": ("simple", ("i",), ("h",)),
}


@functools.cache
def primitive() -> Any:
    """The primitive standing for one recurrence: outputs ``(steps, units)``, with ``carry`` the last state first."""
    import jax
    from jax.extend.core import Primitive

    p = Primitive(NAME)
    p.multiple_results = True

    def abstract(x: Any, *weights: Any, units: int, carry: int, **params: Any) -> list[Any]:
        state = jax.core.ShapedArray((units,), x.dtype)
        return [*([state] * carry), jax.core.ShapedArray((x.shape[0], units), x.dtype)]

    p.def_abstract_eval(abstract)
    return p


def refusal(rnn: Any, inputs: Any, kwargs: dict[str, Any]) -> str | None:
    """Why this call of ``nn.RNN`` has no ``Recurrent`` op (None: it has one)."""
    cell = rnn.cell
    if type(cell).__name__ not in CELLS or not type(cell).__module__.startswith("flax."):
        return f"cell {type(cell).__name__}: only {', '.join(CELLS)} are supported"
    given = [k for k, v in kwargs.items() if v is not None and k in ("initial_carry", "seq_lengths")]
    if given:
        return f"{given[0]} is not supported: every step of every row runs, from a zero state"
    if kwargs.get("time_major", rnn.time_major) or getattr(inputs, "ndim", 0) != 2:
        return f"input of shape {getattr(inputs, 'shape', '?')}: one (steps, features) sequence per row is needed"
    if getattr(cell, "residual", False):
        return "a residual SimpleCell is not supported"
    return None


def _cell_call(rnn: Any, inputs: Any, kwargs: dict[str, Any]) -> Any:
    """The primitive's results for this call of ``nn.RNN``, as Flax returns them."""
    cell = rnn.cell
    own = ("return_carry", "reverse", "keep_order")
    given = {k: getattr(rnn, k) if kwargs.get(k) is None else kwargs[k] for k in own}
    kind, inside, state = CELLS[type(cell).__name__]
    params = cell.variables["params"]
    names = [f"{d}.{w}" for d in (*inside, *state) for w in ("kernel", "bias") if w in params[d]]
    weights = [params[d][w] for d, w in (n.split(".") for n in names)]
    reverse, return_carry = bool(given["reverse"]), bool(given["return_carry"])
    gate = getattr(cell, "gate_fn", None)
    outs = primitive().bind(
        inputs,
        *weights,
        kind=kind,
        names=tuple(names),
        units=int(cell.features),
        carry=(2 if kind == "lstm" else 1) if return_carry else 0,
        backwards=reverse,
        flip=reverse and bool(given["keep_order"]),
        activation=getattr(cell.activation_fn, "__name__", "?"),
        gate=getattr(gate, "__name__", "sigmoid"),
    )
    if not return_carry:
        return outs[-1]
    carry = tuple(outs[:-1]) if kind == "lstm" else outs[0]
    return (carry, outs[-1])


@functools.cache
def _not_the_users() -> None:
    """The interceptor runs under every module call: JAX must not take it for the user's code, whose line a
    refused primitive names (``jaxpr._where``). JAX-internal API: a courtesy, never a failure."""
    with contextlib.suppress(Exception):
        from jax._src import source_info_util

        source_info_util.register_exclusion(__file__)


@contextlib.contextmanager
def intercepted(source: str) -> Iterator[None]:
    """While tracing for the IR: every ``nn.RNN`` call becomes the primitive, or is refused by name at once."""
    from flax import linen as nn

    _not_the_users()

    def interceptor(next_fun: Any, args: Any, kwargs: Any, context: Any) -> Any:
        rnn = context.module
        if not (isinstance(rnn, nn.RNN) and context.method_name == "__call__" and len(args) == 1):
            return next_fun(*args, **kwargs)
        reason = refusal(rnn, args[0], dict(kwargs))
        if reason is not None:
            name = "/".join(str(p) for p in (rnn.scope.path if rnn.scope else ())) or str(rnn.name)
            raise UnsupportedModelError(source, [Problem(name, f"RNN({type(rnn.cell).__name__})", reason, "module")])
        return _cell_call(rnn, args[0], dict(kwargs))

    with nn.intercept_methods(interceptor):
        yield


def _activation(name: str) -> Activation:
    kind = KINDS.get(name)
    if kind is None or kind.params or kind.vector:
        raise Unsupported(f"activation {name!r} of a recurrent cell is not supported")
    return Activation(name)


def relabel(b: Builder, label: str, x: str, shape: tuple[int, ...]) -> str:
    """``x`` as JAX reshapes it: a value of a shape of its own (a sequence) relabelled, a flat row as it is."""
    target = tuple(int(n) for n in shape) or (1,)
    if x not in b.shapes or b.shape(x) == target:
        return x
    return b.add(Reshape, label, [x], b.widths[x], shape=target)


def walk(b: Builder, label: str, params: dict[str, Any], x: str, operands: list[Any]) -> list[str | None]:
    """The primitive's results as IR values (``x``, the sequence, flat or shaped; ``operands``, the walk's values
    of the weights): each state the call returns (None for an LSTM's cell state, which the C does not compute),
    then the op's sequence."""
    weights = [getattr(v, "value", None) for v in operands]  # constants have one
    if any(w is None for w in weights):
        raise Unsupported("a recurrence whose weights depend on the input")
    kind, units = params["kind"], params["units"]
    inside, state = CELLS[next(c for c, s in CELLS.items() if s[0] == kind)][1:]
    w = dict(zip(params["names"], (np.asarray(a, np.float64) for a in weights), strict=True))
    features = w[f"{inside[0]}.kernel"].shape[0]
    length = b.widths[x] // features
    if b.shape(x) != (length, features):
        x = b.add(Reshape, label, [x], b.widths[x], shape=(length, features))
    zeros = np.zeros(units)
    bias = np.concatenate([w.get(f"{d}.bias", zeros) for d in inside])
    recurrent_bias = np.concatenate([w.get(f"{d}.bias", zeros) for d in state])
    if kind != "gru":  # one bias, held by one side's Dense (the other's zeros)
        bias, recurrent_bias = bias + recurrent_bias, None
    fields = dict(kind=kind, length=length, units=units, bias=bias, recurrent_bias=recurrent_bias)
    fields["kernel"] = np.concatenate([w[f"{d}.kernel"] for d in inside], axis=1)
    fields["recurrent_kernel"] = np.concatenate([w[f"{d}.kernel"] for d in state], axis=1)
    fields["activation"] = _activation(params["activation"])
    fields["recurrent_activation"] = _activation(params["gate"]) if kind != "simple" else SIGMOID
    sequence = b.add(Recurrent, label, [x], length * units, sequences=True, backwards=params["backwards"],
                     flip=params["flip"], **fields)  # fmt: skip
    outs: list[str | None] = [sequence]
    if params["carry"]:
        last = b.add(Recurrent, label, [x], units, backwards=params["backwards"], **fields)
        outs[:0] = [None, last] if kind == "lstm" else [last]
    return outs
