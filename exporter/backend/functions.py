"""The functions a chain exports, planned for the templates: one type per kind of generated function.

A network becomes a :class:`NetworkFunction` (its ops as :class:`Step` s, rendered for one row and
for a block of rows, per instruction set), a column stage a :class:`ColumnsFunction`, a whole chain a
:class:`ComposedFunction` calling its stages in turn; scikinC's names for a chain's steps are
:class:`AliasFunction` s and a :class:`JoinedFunction`, a pipeline of chains a :class:`PipelineFunction`.
Every step sees the :class:`~exporter.backend.target.Target` (symbol, C type, math, contract) it is rendered for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from exporter.backend.buffers import INPUT, OUTPUT, RANDOM, BufferPlan, block_rows, plan_buffers, sliced, stored_reads
from exporter.backend.isa import Variant
from exporter.backend.steps import Step, defer_activations
from exporter.backend.target import Target
from exporter.backend.templates import environment
from exporter.common.errors import NotInvertible
from exporter.ir import Graph
from exporter.ir.chain import Chain
from exporter.ir.columns import ColumnOp, ColumnStage

REAL_SIZE = {"float": 4, "double": 8}  # bytes of each C type the backend can compute in


@dataclass
class ColumnStep:
    """One column op (preprocessing, target transform) as a template sees it: it rewrites the row ``buf``."""

    op: ColumnOp
    id: str
    template: Any
    symbol: str
    buf: str


@dataclass
class RowBlock:
    """One static function of the generated file: a whole network for ``rows`` rows at once."""

    name: str
    rows: int
    steps: list[Step]
    buffers: list[int]
    copy_stride: int
    real_size: int = 4
    working: int = 0  # floats of the ops' shared working memory (``Step.tmp``), 0: none

    @property
    def stack_bytes(self) -> int:
        return self.real_size * (sum(self.buffers) + self.working)


@dataclass
class ExportedFunction:
    """One exported C function ``real *name(real *output, const real *input)`` and its ``name_batch``;
    a generator's network and chain take ``const real *random`` too. ``kind`` names the macro of
    ``templates/functions.c.j2`` that writes it."""

    kind: ClassVar[str] = ""

    name: str
    n_inputs: int
    n_outputs: int
    stack_bytes: int
    scratch: str
    real: str
    n_noise: int = 0  # a generator's noise entries: the function takes `random` too

    @property
    def params(self) -> str:
        """The C parameter list."""
        t = self.real
        return f"{t} *output, const {t} *input" + (f", const {t} *random" if self.n_noise else "")

    @property
    def args(self) -> str:
        """The arguments a wrapper passes on."""
        return "output, input" + (", random" if self.n_noise else "")

    @property
    def steps(self) -> list[Step] | list[ColumnStep]:
        """The steps whose static declarations (weights) the file holds once."""
        return []

    @property
    def column_ops(self) -> list[ColumnOp]:
        """The column ops it computes: the file defines the helpers they ask for (``ColumnOp.file_helpers``)."""
        return []

    @property
    def variant_functions(self) -> tuple[tuple[Variant, str, str], ...]:
        """Per instruction-set variant, baseline first, its static functions for one row and for n rows, which
        a check including the file calls directly (a network's; the other functions have none)."""
        return ()


@dataclass
class VariantCode:
    """A network's row blocks for one instruction set (one row, then as many as fit: ``buffers.block_rows``)."""

    variant: Variant
    blocks: list[RowBlock]
    batch: str  # the static function running n rows through the blocks

    @property
    def reduced(self) -> bool:  # its batch block holds fewer rows than the variant's
        return self.blocks[-1].rows < self.variant.batch_rows


@dataclass
class NetworkFunction(ExportedFunction):
    """A network, as static row-block functions for one row and for a batch block, per instruction set."""

    kind: ClassVar[str] = "network"

    variants: list[VariantCode] = field(default_factory=list)  # baseline first
    copy_from: str | None = None  # the scratch array to copy into `output` at the end
    unread: list[str] = field(default_factory=list)  # arguments no op reads (`input` of a generator that
    # ignores its conditions, `random` of one that ignores its noise): cast away for the strict warnings

    @property
    def steps(self) -> list[Step]:
        return self.variants[0].blocks[0].steps  # the baseline's one-row block: every variant has the same ops

    @property
    def variant_functions(self) -> tuple[tuple[Variant, str, str], ...]:
        return tuple((c.variant, c.blocks[0].name, c.batch) for c in self.variants)


@dataclass
class ColumnsFunction(ExportedFunction):
    """A column stage (preprocessing, target transform, a transformer alone) on a row of doubles."""

    kind: ClassVar[str] = "columns"

    column_steps: list[ColumnStep] = field(default_factory=list)
    width: int = 0  # the widest row

    @property
    def steps(self) -> list[ColumnStep]:
        return self.column_steps

    @property
    def column_ops(self) -> list[ColumnOp]:
        return [step.op for step in self.column_steps]


@dataclass
class ComposedFunction(ExportedFunction):
    """A chain: its stage functions called in turn through one scratch row."""

    kind: ClassVar[str] = "compose"

    parts: list[str] = field(default_factory=list)  # the functions called in turn
    part_noise: list[bool] = field(default_factory=list)  # which parts take `random`
    width: int = 0  # the widest stage


@dataclass
class AliasFunction(ExportedFunction):
    """scikinC's name for a chain's step (``SYMBOL_tX``, ``SYMBOL_tY_inverse``): the step, called under that name."""

    kind: ClassVar[str] = "alias"

    parts: list[str] = field(default_factory=list)  # the one function called


@dataclass
class JoinedFunction(ExportedFunction):
    """scikinC's generator network ``SYMBOL_dnn(output, input)``: one input, the preprocessed conditions
    then ``width`` noise values, copied out before the three-argument network is called."""

    kind: ClassVar[str] = "joined"

    parts: list[str] = field(default_factory=list)  # the one function called: the network
    width: int = 0  # the noise values at the end of the input


@dataclass
class PipelineFunction(ExportedFunction):
    """A pipeline (``exporter.ir.pipeline``): its stages, functions of the same file, called in turn."""

    kind: ClassVar[str] = "pipeline"


def _row_block(graph: Graph, plan: BufferPlan, name: str, m: Target, rows: int, variant: Variant) -> RowBlock:
    env = environment()
    scratch = f"{name}_buf"
    strides = {INPUT: graph.n_inputs, OUTPUT: graph.n_outputs, RANDOM: graph.n_noise}
    strides.update({f"{scratch}{i}": size for i, size in enumerate(plan.sizes)})
    steps = []
    for index, op in enumerate(graph.ops):
        reads = stored_reads(op, [plan.location[v] for v in op.inputs], f"{name}_{index}", strides)
        at = {array: pointer for pointer, array in reads}
        step = Step(
            op=op,
            id=f"{name}_{index}",
            ins=[
                sliced(at.get(plan.location[v], plan.location[v]), graph.widths[v], op.steps, strides)
                for v in op.inputs
            ],
            out=sliced(plan.location[op.output], graph.widths[op.output], op.steps, strides),
            in_widths=[graph.widths[v] // op.steps for v in op.inputs],
            template=env.get_template(f"ops/{op.template}.c.j2").module,
            m=replace(m, suffix=variant.suffix, fused=m.fma and variant.fma),
            rows=rows,
            strides=strides,
            block=variant.columns(rows, m.real),
            chunk=variant.chunk_of(m.real),
            unroll=variant.unroll(rows),
            tmp=f"{scratch}_tmp" if op.scratch_floats() else "",
            reads=reads,
        )
        steps.append(step)
    working = rows * max((op.scratch_floats() for op in graph.ops), default=0)
    working = max(working, defer_activations(steps, rows, f"{scratch}_tmp"))
    return RowBlock(
        name=f"{name}{variant.suffix}_rows{rows}",
        rows=rows,
        steps=steps,
        buffers=[rows * size for size in plan.sizes],
        working=working,
        copy_stride=strides.get(plan.copy_from or "", 0),
        real_size=REAL_SIZE[m.real],
    )


def _network(graph: Graph, name: str, m: Target) -> NetworkFunction:
    plan = plan_buffers(graph, scratch_prefix=f"{name}_buf")
    variants = [
        VariantCode(v, [_row_block(graph, plan, name, m, n, v) for n in rows], f"{name}{v.suffix}_rows_n")
        for v in m.variants
        for rows in [sorted({1, block_rows(graph, plan, v.batch_rows, REAL_SIZE[m.real])})]
    ]
    read = {graph.output, *(v for op in graph.ops for v in op.inputs)}
    unread = [arg for value, arg in ((graph.input, INPUT), (graph.noise, RANDOM)) if value and value not in read]
    return NetworkFunction(
        name,
        graph.n_inputs,
        graph.n_outputs,
        max(v.blocks[0].stack_bytes for v in variants),  # one row, in whichever variant the CPU runs
        scratch=f"{name}_buf",
        real=m.real,
        n_noise=graph.n_noise,
        variants=variants,
        copy_from=plan.copy_from,
        unread=unread,
    )


def _columns(stage: ColumnStage, name: str, symbol: str, real: str) -> ColumnsFunction:
    env = environment()
    buf = f"{name}_row"
    steps = [
        ColumnStep(op, f"{name}_{i}", env.get_template(f"columns/{op.template}.c.j2").module, symbol, buf)
        for i, op in enumerate(stage.ops)
    ]
    stack = 8 * stage.max_width * 2  # the row, and at most one Select's copy
    return ColumnsFunction(
        name, stage.n_inputs, stage.n_outputs, stack, scratch=buf, real=real, column_steps=steps, width=stage.max_width
    )


def _compose(name: str, parts: list[ExportedFunction], real: str) -> ComposedFunction:
    widest = max(max(p.n_inputs, p.n_outputs) for p in parts)
    stack = REAL_SIZE[real] * widest + max(p.stack_bytes for p in parts)
    return ComposedFunction(
        name,
        parts[0].n_inputs,
        parts[-1].n_outputs,
        stack,
        scratch=f"{name}_stage",
        real=real,
        n_noise=max(p.n_noise for p in parts),
        parts=[p.name for p in parts],
        part_noise=[bool(p.n_noise) for p in parts],
        width=widest,
    )


def _inverse_or_none(stage: ColumnStage) -> ColumnStage | None:
    try:
        return stage.inverse()
    except NotInvertible:
        return None


def _scikinc_names(symbol: str, parts: list[ExportedFunction], real: str) -> list[ExportedFunction]:
    """scikinC's names for a chain's steps (``SYMBOL_tX``, ``SYMBOL_tY_inverse``, ``SYMBOL_dnn``), which
    Lamarr's hand-written glue declares. A generator's ``SYMBOL_dnn`` takes scikinC's one input (the
    preprocessed conditions, then the noise) and calls the network, exported as ``SYMBOL_dnn_random``."""
    names = {f"{symbol}_preprocess": f"{symbol}_tX", f"{symbol}_postprocess": f"{symbol}_tY_inverse"}
    aliases: list[ExportedFunction] = []
    for p in parts:
        if p.name in names:
            aliases.append(AliasFunction(names[p.name], p.n_inputs, p.n_outputs, 0, "", real, parts=[p.name]))
        elif isinstance(p, NetworkFunction) and p.n_noise:
            n_in, stack = p.n_inputs + p.n_noise, REAL_SIZE[real] * p.n_noise + p.stack_bytes
            joined = JoinedFunction(f"{symbol}_dnn", n_in, p.n_outputs, stack, f"{symbol}_dnn_noise", real)
            joined.parts, joined.width = [p.name], p.n_noise
            aliases.append(joined)
    return aliases


def plan_functions(chain: Chain, symbol: str, m: Target, scikinc: bool = False) -> list[ExportedFunction]:
    """The exported functions of a chain, the main symbol first; ``scikinc``: with scikinC's names too."""
    if chain.pre is None and chain.post is None and chain.net is not None and not scikinc:
        return [_network(chain.net, symbol, m)]
    if chain.net is None and chain.post is None and chain.pre is not None:  # a transformer on its own
        inverse = _inverse_or_none(chain.pre)
        forward = _columns(chain.pre, symbol, symbol, m.real)
        return [forward, _columns(inverse, f"{symbol}_inverse", symbol, m.real)] if inverse else [forward]
    parts: list[ExportedFunction] = []
    extra: list[ExportedFunction] = []
    if chain.pre is not None:
        parts.append(_columns(chain.pre, f"{symbol}_preprocess", symbol, m.real))
        inverse = _inverse_or_none(chain.pre)
        if inverse is not None:
            extra.append(_columns(inverse, f"{symbol}_preprocess_inverse", symbol, m.real))
    if chain.net is not None:
        renamed = scikinc and chain.net.n_noise  # SYMBOL_dnn is then scikinC's one-input form
        parts.append(_network(chain.net, f"{symbol}_dnn_random" if renamed else f"{symbol}_dnn", m))
    if chain.post is not None:
        parts.append(_columns(chain.post, f"{symbol}_postprocess", symbol, m.real))
    if scikinc:
        extra += _scikinc_names(symbol, parts, m.real)
    return [_compose(symbol, parts, m.real), *parts, *extra]
