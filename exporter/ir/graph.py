"""A model as the IR sees it: one input row (and a generator's noise row), a topologically ordered list of ops,
one output row."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.ir.ops import Op


@dataclass
class Graph:
    """The whole network; frontends build it, passes rewrite it, the backend renders it.

    ``widths`` maps every value name to its number of floats. ``source`` is the model
    file's name (never its path: generated files must not depend on where they were made).
    """

    input: str
    output: str
    widths: dict[str, int]
    ops: list[Op] = field(default_factory=list)
    source: str = ""
    noise: str | None = None  # a generator's second input: the caller's random numbers (C argument `random`)

    def same_as(self, other: Graph) -> bool:
        """The same values, widths and ops (arrays compared by value): what two ways of reading one
        model (a file's stored configuration, the loaded model) must agree on."""
        return (
            (self.input, self.output, self.noise, self.widths) == (other.input, other.output, other.noise, other.widths)
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
            in_widths = [self.widths[name] for name in op.inputs]
            if op.n_inputs is not None and len(in_widths) != op.n_inputs:
                raise AssertionError(f"op {op.name!r} takes {op.n_inputs} inputs, got {len(in_widths)}")
            expected = op.out_width(in_widths)
            if expected != op.width or self.widths.get(op.output) != op.width:
                raise AssertionError(f"op {op.name!r}: widths {in_widths} -> {op.width} do not match")
            known.add(op.output)
        if self.output not in known:
            raise AssertionError(f"output {self.output!r} is never computed")
