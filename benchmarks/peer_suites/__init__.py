"""Peers' own test models, described as data: the yardstick of issue 29 (item 6).

frugally-deep and keras2c each test their exporter on a set of small Keras models. This package
describes the same layer configurations in a table of our own (``frugally_deep.ENTRIES``,
``keras2c.ENTRIES``): one ``Entry`` per model with ONE output (a peer model with several outputs
becomes one entry per output, the sub-graph that reaches it), its input shapes and how its layers
are called. Nothing of the peers' code is copied or downloaded; each module's docstring names the
peer file it mirrors and the revision it was read at. ``benchmarks/peer_suites/harness.py`` exports
every entry and sorts it: exported with parity, refused by name, wrong numbers or crash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Shape = tuple[int | None, ...]
Build = Callable[[Any, list[Any]], Any]  # (keras, input tensors) -> the one output tensor


@dataclass(frozen=True)
class Step:
    """One call in a chain: ``cls`` is a name in ``keras.layers`` (or ``activations.NAME``, a function
    of ``keras.activations`` called on the tensor), built from ``args``/``kwargs``; a ``Step`` among
    them becomes a layer first (the layer a ``Bidirectional`` or ``TimeDistributed`` wraps). The first
    step of a chain gets every input: one tensor, or a list (a merge), or ``spread`` as separate
    arguments (``MultiHeadAttention(query, value, key)``)."""

    cls: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    spread: bool = False

    def make(self, keras: Any) -> Any:
        if self.cls.startswith("activations."):
            function = getattr(keras.activations, self.cls.split(".", 1)[1])
            return lambda x: function(x, *self.args, **self.kwargs)
        made = [a.make(keras) if isinstance(a, Step) else a for a in self.args]
        kwargs = {k: v.make(keras) if isinstance(v, Step) else v for k, v in self.kwargs.items()}
        return getattr(keras.layers, self.cls)(*made, **kwargs)


def S(cls: str, *args: Any, spread: bool = False, **kwargs: Any) -> Step:
    """``Step`` in the table's short form: ``S("Conv1D", 2, 3, padding="same")``."""
    return Step(cls, args, kwargs, spread)


def chain(*steps: Step) -> Build:
    """The steps called one after another on the entry's inputs."""

    def build(keras: Any, inputs: list[Any]) -> Any:
        first, *rest = steps
        layer = first.make(keras)
        x = layer(*inputs) if first.spread else layer(inputs if len(inputs) > 1 else inputs[0])
        for step in rest:
            x = step.make(keras)(x)
        return x

    return build


@dataclass(frozen=True)
class Entry:
    """One peer test model with one output. ``group``: the peer's model (or test class) it comes from;
    ``batch``: a fixed batch size (the peer's stateful recurrent layers need one)."""

    name: str
    group: str
    shapes: tuple[Shape, ...]
    build: Build
    batch: int | None = None

    def model(self, keras: Any, seed: int = 0) -> Any:
        """The Keras model, every weight drawn at random (seeded) so that no term hides behind a zero."""
        if self.batch is None:
            inputs = [keras.Input(shape) for shape in self.shapes]
        else:
            inputs = [keras.Input(batch_shape=(self.batch, *shape)) for shape in self.shapes]
        output = self.build(keras, inputs)
        model = keras.Model(inputs if len(inputs) > 1 else inputs[0], output, name="yardstick")
        return scramble(model, seed)


def scramble(model: Any, seed: int) -> Any:
    """Random weights in place of the peers' few training epochs on random data: kernels with spread
    1/sqrt(fan-in), other trainable weights and moving means std 0.5, moving variances in [0.5, 2];
    fixed non-trainable state (counters, seeds, Normalization's given mean) stays as built."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape, path = tuple(weight.shape), weight.path
        if "moving_variance" in path:
            weight.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
        elif "moving_mean" in path or (weight.trainable and len(shape) < 2):
            weight.assign((0.5 * rng.standard_normal(shape)).astype("float32"))
        elif weight.trainable:
            fan_in = int(np.prod(shape[:-1]))
            weight.assign((rng.standard_normal(shape) / np.sqrt(fan_in)).astype("float32"))
    return model


class Table:
    """The entries of one peer model (or test file), named ``group.NNN.label`` in the peer's order
    (``--only`` matches any part of a name)."""

    def __init__(self, group: str, shapes: Sequence[Shape] = ()):
        self.group, self.shapes, self.entries = group, list(shapes), []

    def add(self, label: str, shapes: Sequence[Shape], build: Build, batch: int | None = None) -> None:
        name = f"{self.group}.{len(self.entries):03d}.{label}"
        self.entries.append(Entry(name, self.group, tuple(shapes), build, batch))

    def on(self, inputs: int | Sequence[int], *steps: Step) -> None:
        """A chain of ``steps`` on the table's input(s) number ``inputs``, labelled by its first layer."""
        numbers = [inputs] if isinstance(inputs, int) else list(inputs)
        self.add(steps[0].cls.removeprefix("activations."), [self.shapes[i] for i in numbers], chain(*steps))
