"""A composed generator: exported chains (stages) called in turn inside one C function.

Lamarr's particle identification chains generators: the RICH and Muon generators read the
conditions, the GlobalPID generators read the conditions and those generators' outputs. A
:class:`Pipeline` says, framework-free, what the composed function does: each :class:`Stage` is a
function of the same library (a model's symbol) that reads slices of the pipeline's input and of
earlier stages' outputs (:class:`Read`), and the next ``n_noise`` values of ``random``; the output
is slices of stage outputs. Its widths and order are checked here, each error naming the stage and
the key (:class:`PipelineError`); the manifest and the API add where the pipeline was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exporter.common.errors import ExportError

INPUT = "input"  # the source name of the pipeline's own input


class PipelineError(ExportError):
    """A pipeline that cannot be composed: ``stage`` (None: the pipeline as a whole) and ``key`` name the place."""

    def __init__(self, stage: str | None, key: str, message: str):
        self.stage = stage
        self.key = key
        self.message = message
        super().__init__(f"{'' if stage is None else f'stage {stage} '}{key}: {message}")


@dataclass(frozen=True)
class Read:
    """Values ``start`` to ``stop`` (not included) of ``source``: the pipeline's input or a stage's output."""

    source: str
    start: int
    stop: int

    @property
    def width(self) -> int:
        return self.stop - self.start

    def __str__(self) -> str:
        return f"{self.source}[{self.start}:{self.stop}]"


@dataclass
class Stage:
    """One call: the C function ``name`` (``n_inputs`` values, ``n_noise`` of ``random`` from ``noise_offset``)."""

    name: str
    n_inputs: int
    n_outputs: int
    n_noise: int
    reads: list[Read]
    noise_offset: int = 0
    n_params: int = 0
    stack_bytes: int = 0  # the stage function's own stack per call (bytes)

    @property
    def direct(self) -> Read | None:
        """The one slice this stage reads, when it reads only one: passed as a pointer, not gathered."""
        return self.reads[0] if len(self.reads) == 1 else None


@dataclass
class Pipeline:
    """Stages in call order and the slices of their outputs that form the output."""

    name: str
    n_inputs: int
    stages: list[Stage]
    output: list[Read]
    source: str = ""
    input_names: tuple[str, ...] | None = None  # the columns' names (exporter.backend.column_names; None: x0../y0..)
    output_names: tuple[str, ...] | None = None
    n_noise: int = field(init=False)

    def __post_init__(self) -> None:
        offset = 0
        for stage in self.stages:
            stage.noise_offset = offset
            offset += stage.n_noise
        self.n_noise = offset
        self.check()

    @property
    def n_outputs(self) -> int:
        return sum(r.width for r in self.output)

    @property
    def n_params(self) -> int:
        return sum(s.n_params for s in self.stages)

    @property
    def gather_width(self) -> int:
        """The widest input a stage gathers from several slices (0: every stage reads one slice in place)."""
        return max((s.n_inputs for s in self.stages if s.direct is None), default=0)

    @property
    def values_width(self) -> int:
        """The values the glue keeps on the stack: every stage's outputs and one gathered input."""
        return sum(s.n_outputs for s in self.stages) + self.gather_width

    def widths(self) -> dict[str, int]:
        """Every source's width: the input's and each stage's output."""
        return {INPUT: self.n_inputs, **{s.name: s.n_outputs for s in self.stages}}

    def check(self) -> None:
        """Each read within its source and after it is computed; each stage's input width its own."""
        known = {INPUT: self.n_inputs}
        for stage in self.stages:
            for read in stage.reads:
                _check_read(read, known, stage.name, "reads")
            width = sum(r.width for r in stage.reads)
            if width != stage.n_inputs:
                listed = ", ".join(map(str, stage.reads))
                raise PipelineError(
                    stage.name, "reads", f"{listed} give {width} values, {stage.name} takes {stage.n_inputs}"
                )
            known[stage.name] = stage.n_outputs
        if not self.output:
            raise PipelineError(None, "output", "no values: list stage outputs")
        for read in self.output:
            if read.source == INPUT:
                raise PipelineError(None, "output", f"{read}: the output is made of stage outputs, not of the input")
            _check_read(read, known, None, "output")


def _check_read(read: Read, known: dict[str, int], stage: str | None, key: str) -> None:
    if read.source not in known:
        raise PipelineError(stage, key, f"{read.source}: not computed yet (only the input and earlier stages are)")
    width = known[read.source]
    if not 0 <= read.start < read.stop <= width:
        raise PipelineError(stage, key, f"{read}: out of range, {read.source} has {width} values (0 to {width})")


def gather(reads: list[Read], values: dict[str, np.ndarray]) -> np.ndarray:
    """The slices side by side, as the C glue copies them."""
    return np.concatenate([values[r.source][:, r.start : r.stop] for r in reads], axis=1)
