"""A model as the IR sees it: one input (and a generator's noise row), a topologically ordered list of ops,
one output; each value a tensor of a static shape per row, held flat."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.ir.ops import Op, Shape, size


@dataclass(frozen=True)
class InputPart:
    """One of a model's several inputs, as the C's one input row holds it: the model's inputs side by side in
    their order, each flat (row-major) from ``offset``. ``mask``: read only as an attention mask, so the parity
    check fills it with 0/1 masks of every count instead of random numbers."""

    name: str
    offset: int
    shape: Shape
    mask: bool = False
    note: str = ""  # how the header describes it, when not as Keras' mask (1: kept): an ONNX bool input's 0/1


@dataclass
class Graph:
    """The whole network; frontends build it, passes rewrite it, the backend renders it.

    ``widths`` maps every value name to its number of floats, ``shapes`` to its shape per row where that is
    not ``(width,)`` (a tensor; the C holds it flat, row-major). ``source`` is the model file's name (never its
    path: generated files must not depend on where they were made).
    """

    input: str
    output: str
    widths: dict[str, int]
    ops: list[Op] = field(default_factory=list)
    source: str = ""
    noise: str | None = None  # a generator's second input: the caller's random numbers (C argument `random`)
    shapes: dict[str, Shape] = field(default_factory=dict)
    parts: tuple[InputPart, ...] = ()  # a model of several inputs: each one's place in the input row

    def shape(self, value: str) -> Shape:
        return self.shapes.get(value, (self.widths[value],))

    def drop(self, value: str) -> None:
        """Forget a value a pass removed."""
        del self.widths[value]
        self.shapes.pop(value, None)

    @property
    def shaped(self) -> bool:
        """Whether its input or output is a tensor rather than a row (the header then states their shapes)."""
        return len(self.shape(self.input)) > 1 or len(self.shape(self.output)) > 1 or bool(self.parts)

    def same_as(self, other: Graph) -> bool:
        """The same values, widths and ops (arrays compared by value): what two ways of reading one
        model (a file's stored configuration, the loaded model) must agree on."""
        return (
            (self.input, self.output, self.noise, self.widths) == (other.input, other.output, other.noise, other.widths)
            and all(self.shape(v) == other.shape(v) for v in self.widths)
            and self.parts == other.parts
            and len(self.ops) == len(other.ops)
            and all(a.same_as(b) for a, b in zip(self.ops, other.ops, strict=True))
        )

    @property
    def n_inputs(self) -> int:
        return self.widths[self.input]

    @property
    def n_noise(self) -> int:
        return self.widths[self.noise] if self.noise else 0

    @property
    def n_outputs(self) -> int:
        return self.widths[self.output]

    @property
    def n_params(self) -> int:
        return sum(op.n_params for op in self.ops)

    def consumers(self, value: str) -> list[Op]:
        return [op for op in self.ops if value in op.inputs]

    def validate(self) -> None:
        """Check what every backend relies on; a failure here is a frontend bug, not a user error."""
        known = {self.input, *([self.noise] if self.noise else [])}
        for op in self.ops:
            for name in op.inputs:
                if name not in known:
                    raise AssertionError(f"op {op.name!r} reads {name!r} before it is computed")
            if op.output in known:
                raise AssertionError(f"value {op.output!r} is written twice")
            in_widths = [self.widths[name] // op.steps for name in op.inputs]
            if op.n_inputs is not None and len(in_widths) != op.n_inputs:
                raise AssertionError(f"op {op.name!r} takes {op.n_inputs} inputs, got {len(in_widths)}")
            expected = op.out_width(in_widths)
            if expected != op.width or self.widths.get(op.output) != op.width * op.steps:
                raise AssertionError(f"op {op.name!r}: widths {in_widths} -> {op.width} do not match")
            in_shapes = [self.shape(name) for name in op.inputs]
            if op.out_shape(in_shapes) != self.shape(op.output):
                raise AssertionError(f"op {op.name!r}: shapes {in_shapes} -> {self.shape(op.output)} do not match")
            known.add(op.output)
        for name, shape in self.shapes.items():
            if size(shape) != self.widths.get(name):
                raise AssertionError(f"value {name!r} of shape {shape} is {self.widths.get(name)} floats wide")
        if self.output not in known:
            raise AssertionError(f"output {self.output!r} is never computed")
