"""Backend: IR -> one C99 source file and its header, through the Jinja templates.

The templates only format; everything they print (weights, widths, activation
parameters, buffer names, row blocks) is stated by the IR or by the plans made here.
A chain becomes several exported functions in one file: the whole chain under its
symbol and each stage under ``SYMBOL_preprocess``, ``SYMBOL_dnn``, ``SYMBOL_postprocess``
(and ``SYMBOL_preprocess_inverse`` when the preprocessing can be inverted). Every
function also has a ``_batch`` form for n consecutive rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

import jinja2

from exporter.backend.buffers import INPUT, OUTPUT, RANDOM, BufferPlan, plan_buffers
from exporter.backend.literals import c_array, c_comment, c_double, c_doubles, c_float
from exporter.backend.mathlib import ACCURACY, DEFAULT_MATH, check_math, check_real, helpers_used
from exporter.ir import Dense, Graph, Op
from exporter.ir.chain import Chain
from exporter.ir.columns import ColumnOp, ColumnStage, NotInvertible, Quantile
from exporter.ir.pipeline import INPUT as PIPELINE_INPUT
from exporter.ir.pipeline import Pipeline
from exporter.version import __version__

BATCH_ROWS = 2
"""Rows ``SYMBOL_batch`` computes together: each weight loaded is used this many times (2 measured
fastest for the 128-wide example with SSE2 and with AVX-512: more rows leave fewer columns per
block and the sums' add latency shows)."""

REAL_SIZE = {"float": 4, "double": 8}  # bytes of each C type the backend can compute in

ACCUMULATORS = 32
"""Sums a Dense keeps in registers at once (rows x columns): 8 SSE registers, 4 AVX ones."""


@dataclass
class CSource:
    """A generated model: its symbol, the ``.c`` text and the ``.h`` text."""

    symbol: str
    c: str
    h: str
    stack_bytes: int
    functions: list[str] = field(default_factory=list)  # every exported symbol (not the _batch forms), main first
    real: str = "float"  # the C type of inputs, outputs and network arithmetic: "float" or "double"
    widths: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # symbol -> (inputs, outputs, noise)


@dataclass
class Step:
    """One network op as a template sees it: the op, its static-name prefix, its buffers and its row block.

    ``x(i, k)`` and ``y(k)`` are the C lvalues of element ``k`` of input ``i`` and of the output
    in row ``r`` of a block of ``rows`` rows (plain ``buf[k]`` when ``rows`` is 1). ``block`` is
    the number of output columns a Dense sums at once.
    """

    op: Op
    id: str
    ins: list[str]
    out: str
    in_widths: list[int]
    template: Any
    m: dict[str, Any]
    rows: int
    strides: dict[str, int]

    @property
    def block(self) -> int:
        lanes = ACCUMULATORS // 2 if self.m["real"] == "double" else ACCUMULATORS  # same register count
        return max(1, lanes // self.rows)

    def _at(self, buf: str, k: str, flat: bool) -> str:
        return f"{buf}[{k}]" if self.rows == 1 or flat else f"{buf}[r * {self.strides[buf]} + {k}]"

    def x_row(self, i: int, k: str, row: int) -> str:
        """Element ``k`` of input ``i`` in the block's row number ``row`` (a constant)."""
        buf = self.ins[i]
        return f"{buf}[{k}]" if row == 0 else f"{buf}[{row * self.strides[buf]} + {k}]"

    def x(self, i: int, k: str, flat: bool = False) -> str:
        return self._at(self.ins[i], k, flat)

    def y(self, k: str, flat: bool = False) -> str:
        return self._at(self.out, k, flat)

    def flat(self, width: int, inputs: list[int]) -> bool:
        """Whether the output and ``inputs`` hold the block's rows back to back (row stride ``width``):
        an elementwise pass is then one loop over all the block's values, which GCC vectorizes at
        -O2 where it does not vectorize the same loop nested in a loop over rows."""
        buffers = [self.out, *(self.ins[i] for i in inputs)]
        return self.rows > 1 and all(self.strides[b] == width for b in buffers)


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

    @property
    def stack_bytes(self) -> int:
        return self.real_size * sum(self.buffers)


@dataclass
class Function:
    """One exported C function ``real *name(real *output, const real *input)`` and its ``name_batch``;
    for a generator's network and chain ``real *name(real *output, const real *input, const real *random)``."""

    name: str
    kind: str  # "network", "columns", "compose", "alias", "joined" (scikinC's names) or "pipeline"
    n_inputs: int
    n_outputs: int
    stack_bytes: int
    steps: list[Any] = field(default_factory=list)  # columns: ColumnSteps
    blocks: list[RowBlock] = field(default_factory=list)  # network: one row, and BATCH_ROWS rows
    scratch: str = ""
    copy_from: str | None = None
    width: int = 0  # columns: the widest row; compose: the widest stage
    parts: list[str] = field(default_factory=list)  # compose: the functions called in turn; alias, joined: the one
    real: str = "float"
    n_noise: int = 0  # a generator's noise entries: the function takes `random` too
    part_noise: list[bool] = field(default_factory=list)  # compose: which parts take `random`
    ignores_noise: bool = False  # network: takes `random` but no op reads it (strict warnings need it cast away)

    @property
    def params(self) -> str:
        """The C parameter list."""
        t = self.real
        return f"{t} *output, const {t} *input" + (f", const {t} *random" if self.n_noise else "")

    @property
    def args(self) -> str:
        """The arguments a wrapper passes on, for row ``r`` of a batch when given (``output + r * ...``)."""
        return "output, input" + (", random" if self.n_noise else "")


def shipped_dir(name: str, marker: str) -> Path:
    """A folder that ships inside the wheel as exporter/<name>; in a checkout it sits at the top."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / name, here.parent / name):
        if (candidate / marker).is_file():
            return candidate
    raise RuntimeError(f"{name}/ not found next to {here}")


def template_dir() -> Path:
    return shipped_dir("templates", "model.c.j2")


def _fail(message: str) -> NoReturn:
    raise jinja2.TemplateError(message)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(c_float=c_float, c_array=c_array, c_comment=c_comment, c_double=c_double, c_doubles=c_doubles)
    env.globals.update(fail=_fail, inf=math.inf)
    return env


def _row_block(graph: Graph, plan: BufferPlan, name: str, m: dict[str, Any], rows: int) -> RowBlock:
    env = environment()
    scratch = f"{name}_buf"
    strides = {INPUT: graph.n_inputs, OUTPUT: graph.n_outputs, RANDOM: graph.n_noise}
    strides.update({f"{scratch}{i}": size for i, size in enumerate(plan.sizes)})
    steps = [
        Step(
            op=op,
            id=f"{name}_{index}",
            ins=[plan.location[v] for v in op.inputs],
            out=plan.location[op.output],
            in_widths=[graph.widths[v] for v in op.inputs],
            template=env.get_template(f"ops/{op.template}.c.j2").module,
            m=m,
            rows=rows,
            strides=strides,
        )
        for index, op in enumerate(graph.ops)
    ]
    return RowBlock(
        name=f"{name}_rows{rows}",
        rows=rows,
        steps=steps,
        buffers=[rows * size for size in plan.sizes],
        copy_stride=strides.get(plan.copy_from or "", 0),
        real_size=REAL_SIZE[m["real"]],
    )


def _network(graph: Graph, name: str, m: dict[str, Any]) -> Function:
    plan = plan_buffers(graph, scratch_prefix=f"{name}_buf")
    blocks = [_row_block(graph, plan, name, m, rows) for rows in (1, BATCH_ROWS)]
    unread_noise = bool(graph.noise) and not any(graph.noise in op.inputs for op in graph.ops)
    return Function(
        name,
        "network",
        graph.n_inputs,
        graph.n_outputs,
        blocks[0].stack_bytes,
        blocks=blocks,
        scratch=f"{name}_buf",
        copy_from=plan.copy_from,
        real=m["real"],
        n_noise=graph.n_noise,
        ignores_noise=unread_noise,
    )


def _columns(stage: ColumnStage, name: str, symbol: str, real: str) -> Function:
    env = environment()
    buf = f"{name}_row"
    steps = [
        ColumnStep(op, f"{name}_{i}", env.get_template(f"columns/{op.template}.c.j2").module, symbol, buf)
        for i, op in enumerate(stage.ops)
    ]
    stack = 8 * stage.max_width * 2  # the row, and at most one Select's copy
    return Function(
        name, "columns", stage.n_inputs, stage.n_outputs, stack, steps, scratch=buf, width=stage.max_width, real=real
    )


def _compose(name: str, parts: list[Function], real: str) -> Function:
    widest = max(max(p.n_inputs, p.n_outputs) for p in parts)
    stack = REAL_SIZE[real] * widest + max(p.stack_bytes for p in parts)
    return Function(
        name,
        "compose",
        parts[0].n_inputs,
        parts[-1].n_outputs,
        stack,
        scratch=f"{name}_stage",
        width=widest,
        parts=[p.name for p in parts],
        real=real,
        n_noise=max(p.n_noise for p in parts),
        part_noise=[bool(p.n_noise) for p in parts],
    )


def _inverse_or_none(stage: ColumnStage) -> ColumnStage | None:
    try:
        return stage.inverse()
    except NotInvertible:
        return None


def _scikinc_names(symbol: str, parts: list[Function], real: str) -> list[Function]:
    """scikinC's names for a chain's steps (``SYMBOL_tX``, ``SYMBOL_tY_inverse``, ``SYMBOL_dnn``), which
    Lamarr's hand-written glue declares. A generator's ``SYMBOL_dnn`` takes scikinC's one input (the
    preprocessed conditions, then the noise) and calls the network, exported as ``SYMBOL_dnn_random``."""
    names = {f"{symbol}_preprocess": f"{symbol}_tX", f"{symbol}_postprocess": f"{symbol}_tY_inverse"}
    aliases = []
    for p in parts:
        if p.name in names:
            aliases.append(Function(names[p.name], "alias", p.n_inputs, p.n_outputs, 0, parts=[p.name], real=real))
        elif p.kind == "network" and p.n_noise:
            width, n_in = p.n_noise, p.n_inputs + p.n_noise
            scratch = f"{symbol}_dnn_noise"
            joined = Function(f"{symbol}_dnn", "joined", n_in, p.n_outputs, 4 * width, scratch=scratch, width=width)
            joined.parts, joined.real = [p.name], real
            aliases.append(joined)
    return aliases


def plan_functions(chain: Chain, symbol: str, m: dict[str, Any], scikinc: bool = False) -> list[Function]:
    """The exported functions of a chain, the main symbol first; ``scikinc``: with scikinC's names too."""
    if chain.pre is None and chain.post is None and chain.net is not None and not scikinc:
        return [_network(chain.net, symbol, m)]
    if chain.net is None and chain.post is None and chain.pre is not None:  # a transformer on its own
        inverse = _inverse_or_none(chain.pre)
        forward = _columns(chain.pre, symbol, symbol, m["real"])
        return [forward, _columns(inverse, f"{symbol}_inverse", symbol, m["real"])] if inverse else [forward]
    parts: list[Function] = []
    extra: list[Function] = []
    if chain.pre is not None:
        parts.append(_columns(chain.pre, f"{symbol}_preprocess", symbol, m["real"]))
        inverse = _inverse_or_none(chain.pre)
        if inverse is not None:
            extra.append(_columns(inverse, f"{symbol}_preprocess_inverse", symbol, m["real"]))
    if chain.net is not None:
        renamed = scikinc and chain.net.n_noise  # SYMBOL_dnn is then scikinC's one-input form
        parts.append(_network(chain.net, f"{symbol}_dnn_random" if renamed else f"{symbol}_dnn", m))
    if chain.post is not None:
        parts.append(_columns(chain.post, f"{symbol}_postprocess", symbol, m["real"]))
    if scikinc:
        extra += _scikinc_names(symbol, parts, m["real"])
    return [_compose(symbol, parts, m["real"]), *parts, *extra]


def _layers(chain: Chain) -> list[str]:
    lines = [f"{op.name}: {op.describe()}" for stage, _ in chain.stages for op in stage.ops]
    return lines or ["(identity)"]


def math_note(graph: Graph | None, mode: str, real: str) -> str:
    """The banner's line on how activations are evaluated, with the stated error of those used."""
    if real == "double":
        return "double throughout, libm's double functions (tanh, exp, expm1, log1p, erfc as needed)"
    if mode == "libm":
        return "libm (tanhf, expf, expm1f, log1pf, erfcf as the activations need them)"
    ops = graph.ops if graph is not None else []
    kinds = sorted({a.kind for op in ops if (a := getattr(op, "activation", None)) and a.kind in ACCURACY})
    bounds = ", ".join(f"{kind} {ACCURACY[kind]:g}" for kind in kinds) or "none used"
    return (
        "fast: branch-free inline float approximations that vectorize without -march or -ffast-math; "
        f"largest error in ULP: {bounds} (--math libm for libm's functions)"
    )


def render(
    chain: Chain | Graph,
    symbol: str,
    parity: str = "not checked",
    math_mode: str = DEFAULT_MATH,
    real: str = "float",
    scikinc: bool = False,
) -> CSource:
    """Render ``chain`` as the C function ``symbol`` (and its stages); ``parity`` is quoted in the banner.
    ``scikinc``: each step is also exported under the name scikinC gave it (see ``_scikinc_names``).

    ``real="double"`` computes the network in double (same IR, its float32 weights printed exactly
    as doubles), with libm's double functions: the inline approximations exist for float only.
    Preprocessing and target transforms are computed in double either way.
    """
    chain = chain if isinstance(chain, Chain) else Chain(net=chain, source=chain.source)
    env = environment()
    check_real(real, math_mode)
    m: dict[str, Any] = {
        "symbol": symbol,
        "version": __version__,
        "source": chain.source,
        "n_inputs": chain.n_inputs,
        "n_outputs": chain.n_outputs,
        "n_noise": chain.n_noise,
        "n_params": chain.n_params,
        "layers": _layers(chain),
        "parity": parity,
        "guard": f"{symbol.upper()}_H_INCLUDED",
        "math": check_math(math_mode),
        "math_note": math_note(chain.net, math_mode, real),
        "real": real,
        "batch_rows": BATCH_ROWS,
    }
    functions = plan_functions(chain, symbol, m, scikinc)
    networks = [f for f in functions if f.kind == "network"]
    column_ops = [step.op for f in functions if f.kind == "columns" for step in f.steps]
    math = env.get_template("math.c.j2").module
    code = "".join(str(s.template.body(s)) for f in networks for s in f.blocks[0].steps)  # cheap: no weights
    m.update(
        functions=functions,
        stack_bytes=functions[0].stack_bytes,
        dense=any(isinstance(s.op, Dense) for f in networks for s in f.blocks[0].steps),
        helpers=helpers_used(code, symbol, lambda name: str(math.helper(name, symbol, real))),
        column_helpers={
            "interp": any(isinstance(op, Quantile) for op in column_ops),
            "ndtr": any(isinstance(op, Quantile) and op.normal and op.inverse_direction for op in column_ops),
            "ndtri": any(isinstance(op, Quantile) and op.normal and not op.inverse_direction for op in column_ops),
        },
    )
    return CSource(
        symbol=symbol,
        c=env.get_template("model.c.j2").render(m=m),
        h=env.get_template("model.h.j2").render(m=m),
        stack_bytes=functions[0].stack_bytes,
        functions=[f.name for f in functions],
        real=real,
        widths={f.name: (f.n_inputs, f.n_outputs, f.n_noise) for f in functions},
    )


def render_pipeline(pipeline: Pipeline, parity: str = "not checked", real: str = "float") -> CSource:
    """The C glue of ``pipeline``: one function calling its stages (functions of the same file) in turn."""
    env = environment()
    name = pipeline.name
    n_noise = pipeline.n_noise
    stack = REAL_SIZE[real] * pipeline.values_width + max(s.stack_bytes for s in pipeline.stages)
    f = Function(name, "pipeline", pipeline.n_inputs, pipeline.n_outputs, stack, real=real)
    f.n_noise, f.scratch = n_noise, f"{name}_in"
    buffer = {PIPELINE_INPUT: INPUT, **{s.name: f"{name}_out{i}" for i, s in enumerate(pipeline.stages)}}
    m: dict[str, Any] = {
        "symbol": name,
        "version": __version__,
        "source": pipeline.source,
        "real": real,
        "functions": [f],
        "stages": pipeline.stages,
        "output": pipeline.output,
        "buffer": buffer,
        "gather_width": pipeline.gather_width,
        "stack_bytes": stack,
        "n_params": pipeline.n_params,
        "parity": parity,
        "guard": f"{name.upper()}_H_INCLUDED",
    }
    return CSource(
        symbol=name,
        c=env.get_template("pipeline.c.j2").render(m=m),
        h=env.get_template("pipeline.h.j2").render(m=m),
        stack_bytes=stack,
        functions=[name],
        real=real,
        widths={name: (f.n_inputs, f.n_outputs, n_noise)},
    )


def render_set(name: str, source: str, parts: list[CSource]) -> CSource:
    """Several rendered models in one ``.c`` and one ``.h`` (a Lamarr model set, from a manifest).

    Every static name of a part is prefixed by its symbol, so the parts are simply laid end to end
    under one banner and one include guard; the header keeps each part's own guard too.
    """
    env = environment()
    model = {"name": name, "version": __version__, "source": source, "parts": parts}
    banner = env.get_template("set.j2").module
    return CSource(
        symbol=name,
        c=banner.c(model) + "".join(p.c for p in parts),
        h=banner.h_open(model) + "".join(p.h for p in parts) + banner.h_close(model),
        stack_bytes=max(p.stack_bytes for p in parts),
        functions=[f for p in parts for f in p.functions],
        real=parts[0].real,
        widths={k: v for p in parts for k, v in p.widths.items()},
    )
