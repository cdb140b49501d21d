"""A composed generator (a pipeline of model specs) exported as one C function, for the export's steps.

:class:`PipelineSpec` is the spec: the pipeline's input width, its stages in call order (each a
:class:`~exporter.spec.ModelSpec`, with the slices it reads, written ``input[0:5]``, ``rich[0:4]``,
``rich[2]`` or ``rich`` for all, and the noise it takes), and the stage outputs that form the output
(default: all, concatenated). ``PipelineSpec.build`` turns the stages' exports into a
:class:`PipelineExport`, which the export's steps (``exporter/run/steps.py``) handle as they handle a
model's ``Export``, both being ``exporter.check.subject.Exported``: it renders the C glue, computes the
Python composition, samples inputs and checks parity end to end, stage by stage and conditionally
(``exporter/check/pipeline_parity.py``).

A manifest lists pipelines as ``[pipelines.NAME]`` tables (``exporter/sets/manifest.py``): their stages
are the manifest's models, exported once for the whole set. On its own a ``PipelineSpec`` exports
its stages and itself into one file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from exporter.backend.column_names import name_pipeline
from exporter.backend.headline import headline
from exporter.backend.naming import check_symbol, shared_name
from exporter.check.criteria import nudge
from exporter.check.inputs import DEFAULT_SAMPLES, noise_rows
from exporter.check.verdicts import Criterion
from exporter.common.errors import ExportError, Float64Unavailable, InputError
from exporter.common.options import DEFAULT_ATOL, DEFAULT_CRITERION, DEFAULT_RTOL, DEFAULTS, Options
from exporter.common.plural import count
from exporter.ir.pipeline import INPUT, Pipeline, PipelineError, Read, Stage, gather
from exporter.sets.slices import WrittenSlice, parse_slice
from exporter.spec import ModelSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from exporter.backend import CSource
    from exporter.build.toolchain import CompiledModel
    from exporter.check.pipeline_parity import PipelineReport
    from exporter.check.subject import Exported, ExportedModel
    from exporter.common.progress import Progress


@dataclass
class StageSpec:
    """One stage: a model spec, the slices it reads, and its noise count (None: what the model takes)."""

    model: ModelSpec
    reads: list[str]
    noise: int | None = None

    @property
    def name(self) -> str:
        assert self.model.name is not None  # PipelineSpec.check makes sure
        return self.model.name


@dataclass
class PipelineSpec:
    """A pipeline of model specs exported as ``NAME(output, input[, random])``; ``where`` names it in errors."""

    name: str
    n_inputs: int
    stages: list[StageSpec]
    output: list[str] | None = None  # None: every stage's output, concatenated in stage order
    n_random: int | None = None  # None: the sum of the stages' noise
    scikinc_names: bool = False  # also export each stage's steps as scikinC named them
    where: str = ""
    # its parity rule and column names (None: its stages', exporter.backend.column_names); its C type is its stages'
    options: Options = DEFAULTS

    def error(self, stage: str | None, key: str, message: str) -> ExportError:
        place = key if stage is None else f"stage {stage} {key}"
        return ExportError(f"{self.where or f'pipeline {self.name}'} {place}: {message}")

    @property
    def title(self) -> str:
        return self.where or f"pipeline {self.name}"

    def files(self) -> list[Path]:
        return list(dict.fromkeys(p for s in self.stages for p in s.model.files()))

    def check(self) -> None:
        """Names, order, cycles and slice syntax: everything known before a model is read."""
        try:
            check_symbol(self.name)
        except InputError as err:
            raise self.error(None, "name", err.message) from None
        if isinstance(self.n_inputs, bool) or not isinstance(self.n_inputs, int) or self.n_inputs < 1:
            raise self.error(None, "n_inputs", f"{self.n_inputs!r}: expected a positive integer")
        if not self.stages:
            raise self.error(None, "stages", "no stages: list the models called in turn")
        names = [s.model.name for s in self.stages]
        for stage in self.stages:
            if stage.model.name is None:
                raise self.error(None, "stages", "every stage needs a model with a name (its C symbol)")
            if names.count(stage.name) > 1:
                raise self.error(stage.name, "model", "listed twice: a model runs once per pipeline")
            if stage.noise is not None and (isinstance(stage.noise, bool) or stage.noise < 0):
                raise self.error(stage.name, "noise", f"{stage.noise!r}: expected an integer >= 0")
        if self.n_random is not None and (isinstance(self.n_random, bool) or self.n_random < 0):
            raise self.error(None, "n_random", f"{self.n_random!r}: expected an integer >= 0")
        for stage in self.stages:  # every slice parsed before the order is checked (a cycle reads ahead)
            if not stage.reads:
                raise self.error(stage.name, "reads", "reads nothing: list slices of input and of earlier stages")
            self._slices(stage.reads, stage.name, "reads")
        for index, stage in enumerate(self.stages):
            for s in self._slices(stage.reads, stage.name, "reads"):
                self._check_order(s, index)
        for s in self._slices(self.output or [], None, "output"):
            if s.source == INPUT:
                raise self.error(None, "output", f"{s.text}: the output is made of stage outputs, not of the input")

    def _slices(self, texts: list[str], stage: str | None, key: str) -> list[WrittenSlice]:
        slices = []
        for text in texts:
            try:
                s = parse_slice(text)
            except ValueError as err:
                raise self.error(stage, key, str(err)) from None
            if s.source != INPUT and s.source not in [st.name for st in self.stages]:
                stages = ", ".join(st.name for st in self.stages)
                raise self.error(stage, key, f"{s.text}: {s.source} is neither input nor a stage ({stages})")
            slices.append(s)
        return slices

    def _check_order(self, s: WrittenSlice, index: int) -> None:
        """A stage reads the input and earlier stages only; a read of itself or of a later reader is a cycle."""
        stage = self.stages[index].name
        if s.source == INPUT:
            return
        position = [st.name for st in self.stages].index(s.source)
        if position == index:
            raise self.error(stage, "reads", f"{s.text}: a stage cannot read its own output (a cycle)")
        if position > index:
            cycle = self._path(position, stage, [s.source])
            if cycle:
                raise self.error(stage, "reads", f"{s.text}: a cycle ({' -> '.join([stage, *cycle])})")
            raise self.error(
                stage, "reads", f"{s.text}: not computed yet ({s.source} runs after {stage}; list stages in call order)"
            )

    def _path(self, index: int, target: str, path: list[str]) -> list[str] | None:
        """The chain of reads from stage ``index`` back to ``target``, if there is one."""
        for text in self.stages[index].reads:
            source = parse_slice(text).source
            if source == target:
                return [*path, target]
            names = [st.name for st in self.stages]
            if source in names and source not in path:
                found = self._path(names.index(source), target, [*path, source])
                if found:
                    return found
        return None

    def build(self, built: dict[str, ExportedModel] | None = None) -> PipelineExport:
        """The stages' exports (``built``: a model set's, by symbol; None: exported here) composed."""
        self.check()
        exports: list[ExportedModel] = [built[s.name] if built is not None else s.model.build() for s in self.stages]
        reals = {ex.options.dtype for ex in exports}
        if len(reals) > 1:
            raise self.error(None, "stages", f"the stages compute in {' and '.join(sorted(reals))}: use one C type")
        widths = {INPUT: self.n_inputs}
        widths.update({s.name: ex.chain.n_outputs for s, ex in zip(self.stages, exports, strict=True)})
        stages = []
        for spec, ex in zip(self.stages, exports, strict=True):
            takes = ex.chain.n_noise
            if spec.noise is not None and spec.noise != takes:
                raise self.error(spec.name, "noise", f"{spec.noise}: model {spec.name} takes {takes} noise values")
            reads = [s.resolve(widths[s.source]) for s in self._slices(spec.reads, spec.name, "reads")]
            chain = ex.chain
            stages.append(
                Stage(
                    spec.name, chain.n_inputs, chain.n_outputs, takes, reads, 0, chain.n_params, ex.source.stack_bytes
                )
            )
        output_slices = self._slices(self.output, None, "output") if self.output else None
        output = (
            [s.resolve(widths[s.source]) for s in output_slices]
            if output_slices is not None
            else [Read(s.name, 0, s.n_outputs) for s in stages]
        )
        total = sum(s.n_noise for s in stages)
        if self.n_random is not None and self.n_random != total:
            parts = " + ".join(f"{s.name} {s.n_noise}" for s in stages)
            raise self.error(None, "n_random", f"{self.n_random}, but the stages take {total} noise values ({parts})")
        source = " + ".join(s.name for s in stages)
        try:
            pipeline = Pipeline(self.name, self.n_inputs, stages, output, source=source)
        except PipelineError as err:
            raise self.error(err.stage, err.key, err.message) from None
        try:
            name_pipeline(pipeline, exports, self.options.inputs, self.options.outputs)
        except InputError as err:
            raise self.error(None, err.field, err.message) from None
        first = exports[0].options  # the glue computes in its stages' one C type (checked above)
        return PipelineExport(pipeline, exports, replace(self.options, math=first.math, dtype=first.dtype))

    # the export steps' view (exporter.run.request.Exportable): the stages and the pipeline in one file
    one_model: ClassVar[bool] = False  # its summary lists each symbol
    library: ClassVar[str | None] = None  # its file lists no symbols (a manifest's does)

    def exports(self, progress: Progress) -> list[Exported]:
        self.check()
        built: dict[str, ExportedModel] = {}
        for stage in self.stages:
            progress.say(f"model {stage.name}")
            stage.model.scikinc_names = stage.model.scikinc_names or self.scikinc_names
            built[stage.name] = stage.model.build()
        exports = [*built.values(), self.build(built)]
        check_distinct(exports, self.title)
        return exports

    def combine(self, parts: list[CSource]) -> CSource:
        from exporter.backend import render_set

        return render_set(self.name, self.title, parts)

    def rows_title(self, exports: list[Exported]) -> str:
        return self.name


@dataclass
class PipelineExport:
    """A pipeline on its way to C: its IR, its stages' exports and the rendered glue (``source``).

    An ``exporter.check.subject.ExportedPipeline``: ``chain`` is the pipeline's IR (widths, noise,
    parameters, column names), ``reference`` the Python composition, ``parts`` its stages; it is no
    ``model`` of its own. Written alone its glue would call functions it does not hold, so a pipeline is
    written with its stages (``PipelineSpec.exports``, a manifest's ``ModelSet``).
    """

    pipeline: Pipeline
    stages: list[ExportedModel]
    options: Options = DEFAULTS  # its parity rule, and its stages' C type (and math, which goes with it)
    source: CSource = field(init=False)

    def __post_init__(self) -> None:
        from exporter.backend import render_pipeline

        self.source = render_pipeline(self.pipeline, real=self.options.dtype)

    def __repr__(self) -> str:
        line = headline(self.symbol, self.pipeline, count(len(self.stages), "stage"), self.source)
        return f"<PipelineExport {line}; from {self.pipeline.source}>"

    @property
    def symbol(self) -> str:
        return self.pipeline.name

    @property
    def chain(self) -> Pipeline:
        return self.pipeline

    @property
    def model(self) -> None:
        """None: it calls models, its stages, and is none itself."""
        return None

    @property
    def parts(self) -> list[ExportedModel]:
        """Its stages, in call order."""
        return self.stages

    @property
    def warnings(self) -> list[str]:
        """None of its own: its stages are models of the set, exported (and their warnings told) on their own."""
        return []

    @property
    def framework(self) -> str:
        parts = [p for ex in self.stages for p in ex.framework.split(" + ")]
        return " + ".join(dict.fromkeys(parts))

    @property
    def framework_version(self) -> str:
        parts = [p for ex in self.stages for p in ex.framework_version.split(", ") if p]
        return ", ".join(dict.fromkeys(parts))

    def values(
        self, rows: np.ndarray, noise: np.ndarray | None, run: Callable[..., np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Every source's values for ``rows``: the input, then each stage's output, ``run(index, x[, noise])``."""
        values = {INPUT: np.asarray(rows, dtype=np.float32)}
        for index, stage in enumerate(self.pipeline.stages):
            extra = [] if not stage.n_noise else [noise[:, stage.noise_offset : stage.noise_offset + stage.n_noise]]
            values[stage.name] = np.asarray(run(index, gather(stage.reads, values), *extra), dtype=np.float32)
        return values

    def output(self, values: dict[str, np.ndarray]) -> np.ndarray:
        return gather(self.pipeline.output, values)

    def reference(self, rows: np.ndarray, *noise: np.ndarray) -> np.ndarray:
        """The Python composition: each stage's frameworks, fed the Python values of the stages before."""
        return self.output(self.values(rows, noise[0] if noise else None, self.python_stage))

    def python_stage(self, index: int, x: np.ndarray, *noise: np.ndarray) -> np.ndarray:
        return self.stages[index].reference(x, *noise)

    def reference64(self, rows: np.ndarray, *noise: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The composition in float64: each stage's float64 reference fed the float64 values of the stages
        before (``rng``: each stage nudged where it rounds, and its output by one float32 ULP)."""
        given = noise[0] if noise else None
        values = {INPUT: np.asarray(rows, dtype=np.float64)}
        for index, stage in enumerate(self.pipeline.stages):
            fn = self.stages[index].reference64
            if fn is None:
                raise Float64Unavailable(f"stage {stage.name} has no float64 reference")
            part = [] if not stage.n_noise or given is None else [given[:, stage.noise_offset :][:, : stage.n_noise]]
            values[stage.name] = nudge(fn(gather(stage.reads, values), *part, rng=rng), rng)
        return gather(self.pipeline.output, values)

    def inputs(self, samples: int = DEFAULT_SAMPLES, user_rows: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        """Rows where the stages' preprocessing was fitted: each input column as its first reader samples it."""
        n = self.pipeline.n_inputs
        stage_rows: dict[int, np.ndarray] = {}
        columns: list[np.ndarray | None] = [None] * n
        for index, stage in enumerate(self.pipeline.stages):
            offset = 0
            for read in stage.reads:
                for k in range(read.start, read.stop):
                    if read.source == INPUT and columns[k] is None:
                        if index not in stage_rows:
                            stage_rows[index] = self.stages[index].inputs(samples, seed=seed)
                        columns[k] = stage_rows[index][:, offset + k - read.start]
                offset += read.width
        length = max((len(c) for c in columns if c is not None), default=samples)
        rng = np.random.default_rng(seed)
        filled = [np.resize(c, length) if c is not None else rng.standard_normal(length) for c in columns]
        rows = np.stack(filled, axis=1).astype(np.float32)
        if user_rows is not None:
            rows = np.concatenate([rows, np.asarray(user_rows, dtype=np.float32).reshape(-1, n)])
        return rows

    def noise(self, n_rows: int, seed: int = 1) -> np.ndarray | None:
        """Standard-normal rows for all stages at once, each stage taking its slice in order."""
        return noise_rows(n_rows, self.pipeline.n_noise, seed) if self.pipeline.n_noise else None

    def expect(self, rows: np.ndarray, noise: np.ndarray | None) -> dict[str, np.ndarray]:
        """Every source's Python values on ``rows`` (``values``): ``check``'s ``expected``, computed while the C
        compiles. The end to end reference is made of them, and the stage by stage comparisons need them."""
        return self.values(rows, noise, self.python_stage)

    def check(
        self,
        compiled: CompiledModel,
        inputs: np.ndarray | None = None,
        atol: float = DEFAULT_ATOL,
        rtol: float = DEFAULT_RTOL,
        noise: np.ndarray | None = None,
        expected: dict[str, np.ndarray] | None = None,
        criterion: str = DEFAULT_CRITERION,
    ) -> PipelineReport:
        """Parity end to end, stage by stage and conditionally; ``compiled`` is the pipeline's function.

        ``expected``: ``expect`` on those rows and noise rows, when it was computed already (while the C
        compiled); else the Python values are computed here.
        """
        from exporter.check.pipeline_parity import check_pipeline

        rows = self.inputs() if inputs is None else inputs
        noise = self.noise(len(rows)) if noise is None else noise
        return check_pipeline(self, compiled, rows, noise, Criterion(criterion, atol, rtol), expected)

    def final_source(self, report: PipelineReport | None) -> CSource:
        from exporter.backend import render_pipeline

        return render_pipeline(self.pipeline, report.verdict() if report else "not checked", self.options.dtype)

    def edited(self, source: CSource) -> CSource:
        """``source`` as it is: a pipeline has no test hook of its own (a model's ``Export.c_edit``)."""
        return source


def check_distinct(exports: Sequence[Exported], where: object) -> None:
    """The functions of one file (a manifest's models and pipelines) are all distinct, and no symbol is a name
    another model's code uses (``cls_pick`` beside ``cls``): one C file cannot hold two of a name."""
    functions = [f for ex in exports for f in ex.source.functions]
    clash = sorted({f for f in functions if functions.count(f) > 1})
    if clash:
        raise ExportError(f"{where}: two models export the same C function {clash[0]!r}: rename one")
    parts = {ex.symbol: ex.source.c + ex.source.h for ex in exports}
    calls = {ex.symbol: {part.symbol for part in ex.parts} - {ex.symbol} for ex in exports}  # a pipeline's stages
    shared = shared_name(parts, calls)
    if shared:
        symbol, other = shared
        raise ExportError(
            f"{where}: {symbol!r} is also a name the C code of {other} uses (its names start {other}_): rename one"
        )
