"""Backend: IR -> one C99 source file and its header, through the Jinja templates.

The templates only format; everything they print (weights, widths, activation
parameters, buffer names, row blocks) is stated by the IR or by the plans made here
(``functions.py``: the exported functions; ``buffers.py``: where each value lives).
A chain becomes several exported functions in one file: the whole chain under its
symbol and each stage under ``SYMBOL_preprocess``, ``SYMBOL_dnn``, ``SYMBOL_postprocess``
(and ``SYMBOL_preprocess_inverse`` when the preprocessing can be inverted). Every
function also has a ``_batch`` form for n consecutive rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from exporter.backend.buffers import MAX_STACK_BYTES
from exporter.backend.functions import REAL_SIZE, ExportedFunction, NetworkFunction, PipelineFunction, plan_functions
from exporter.backend.isa import VARIANTS, Variant
from exporter.backend.mathlib import helper_mode, helpers_needed
from exporter.backend.target import Target
from exporter.backend.templates import environment, shipped_dir
from exporter.backend.trees import with_layouts
from exporter.common.errors import ExportError
from exporter.common.options import DEFAULTS, Options
from exporter.common.version import __version__
from exporter.ir import Graph
from exporter.ir.activations import ACCURACY
from exporter.ir.chain import Chain
from exporter.ir.graph import InputPart
from exporter.ir.pipeline import INPUT as PIPELINE_INPUT
from exporter.ir.pipeline import Pipeline, Read, Stage

__all__ = [
    "MAX_STACK_BYTES",
    "REAL_SIZE",
    "CSource",
    "NetworkCode",
    "PipelineContext",
    "RenderContext",
    "SetContext",
    "render",
    "render_pipeline",
    "render_set",
    "shipped_dir",
]


@dataclass(frozen=True)
class NetworkCode:
    """A network function of a file as a check sees it (``exporter/check/batch_bits.py``): per instruction-set
    variant, the static functions for one row and for n rows, which a check including the file calls
    directly. ``symbol`` is the model's: its ``SYMBOL_DISPATCH`` says whether the variants beyond the
    baseline are compiled."""

    name: str
    symbol: str
    variants: tuple[tuple[Variant, str, str], ...]  # (variant, one-row function, n-row function), baseline first
    fma: bool = False  # the fma contract: variants with FMA hardware give the same bits, the others their own


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
    # The models whose network code is there once per instruction set: ``-DSYMBOL_ISA=k`` compiles variant k alone.
    isa_symbols: tuple[str, ...] = ()
    # The models whose SYMBOL_batch runs blocks of rows: ``-DSYMBOL_ONE_ROW`` leaves the blocks out.
    row_symbols: tuple[str, ...] = ()
    networks: tuple[NetworkCode, ...] = ()  # every network function, for the batch check


@dataclass(frozen=True)
class RenderContext(Target):
    """Everything ``model.c.j2`` and ``model.h.j2`` print (``m`` in the templates): the banner's facts,
    the planned functions, and the helpers the file must define."""

    version: str = __version__
    source: str = ""
    n_inputs: int = 0
    n_outputs: int = 0
    n_noise: int = 0
    n_params: int = 0
    layers: tuple[str, ...] = ()
    parity: str = "not checked"
    guard: str = ""
    math_note: str = ""
    functions: tuple[ExportedFunction, ...] = ()
    stack_bytes: int = 0
    stack_limit: int = MAX_STACK_BYTES  # a batch block holds as many rows as fit it (``buffers.block_rows``)
    input_shape: tuple[int, ...] = ()  # the network's, when its input or output is a tensor (else empty)
    output_shape: tuple[int, ...] = ()
    input_parts: tuple[InputPart, ...] = ()  # a network of several inputs: each one's place in the row
    dispatch: bool = False  # the network code is there per instruction set, chosen at run time
    helpers: tuple[str, ...] = ()  # math.c.j2 helpers, in definition order
    # the macros of ops/helpers.c.j2 and of columns/helpers.c.j2 the ops ask for (``file_helpers``), each once
    op_helpers: tuple[str, ...] = ()
    column_helpers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineContext:
    """Everything ``pipeline.c.j2`` and ``pipeline.h.j2`` print (``m``): the banner's facts, the one function,
    its stages and where each stage's values live (``buffer``: source -> C array)."""

    symbol: str
    source: str
    real: str
    functions: tuple[PipelineFunction, ...]
    stages: tuple[Stage, ...]
    output: tuple[Read, ...]
    buffer: dict[str, str]
    gather_width: int
    stack_bytes: int
    n_params: int
    parity: str
    guard: str
    version: str = __version__


@dataclass(frozen=True)
class SetContext:
    """What ``set.j2`` prints at the top of a model set's files: its name, source and the parts' functions."""

    name: str
    source: str
    parts: tuple[CSource, ...]
    version: str = __version__


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
    kinds = sorted({a.kind for op in ops for a in op.activations if a.kind in ACCURACY})
    bounds = ", ".join(f"{kind} {ACCURACY[kind]:g}" for kind in kinds) or "none used"
    return (
        "fast: branch-free inline float approximations that vectorize without -march or -ffast-math; "
        f"largest error in ULP: {bounds} (--math libm for libm's functions)"
    )


def _plan(
    chain: Chain | Graph, symbol: str, options: Options, scikinc: bool
) -> tuple[Chain, Target, list[ExportedFunction]]:
    chain = chain if isinstance(chain, Chain) else Chain(net=chain, source=chain.source)
    helpers = helper_mode(options.math, options.dtype)
    target = Target(symbol, options.dtype, helpers, VARIANTS[options.dispatch], fma=options.math == "fma")
    return chain, target, plan_functions(chain, symbol, target, scikinc)


def refuse_deep_stacks(source: str, functions: list[ExportedFunction]) -> None:
    """Refuse a network whose scratch arrays in one call exceed ``MAX_STACK_BYTES``: a thread's stack (Lamarr
    runs in worker threads) would overflow at run time, with no message at all. (A batch block holds as many
    rows as fit: ``buffers.block_rows``.)"""
    for f in functions:
        for code in f.variants if isinstance(f, NetworkFunction) else ():
            for block in code.blocks:
                if block.stack_bytes > MAX_STACK_BYTES:
                    raise ExportError(
                        f"{source}: {f.name} needs {block.stack_bytes} bytes of stack scratch "
                        f"({block.rows} row{'s' if block.rows > 1 else ''} at once, {code.variant.name}), more than "
                        f"the limit of {MAX_STACK_BYTES} (docs/c-contract.md#stack): the model's tensors are too large"
                    )


def stack_bytes(graph: Graph, symbol: str) -> int:
    """The stack one call of the default rendering needs, without rendering it (``inspect``)."""
    return _plan(graph, symbol, DEFAULTS, False)[2][0].stack_bytes


def render(
    chain: Chain | Graph,
    symbol: str,
    parity: str = "not checked",
    options: Options = DEFAULTS,
    scikinc: bool = False,
) -> CSource:
    """Render ``chain`` as the C function ``symbol`` (and its stages); ``parity`` is quoted in the banner.
    ``scikinc``: each step is also exported under the name scikinC gave it (``SYMBOL_tX``...).

    ``options.dtype == "double"`` computes the network in double (same IR, its float32 weights printed
    exactly as doubles), with libm's double functions: the inline approximations exist for float only.
    Preprocessing and target transforms are computed in double either way.
    ``options.dispatch == "none"`` writes the network code once, for whatever the compiler targets, instead
    of once per instruction set of ``exporter.backend.isa`` chosen at run time.
    """
    chain = chain if isinstance(chain, Chain) else Chain(net=chain, source=chain.source)
    if chain.net is not None:  # each tree ensemble in the layout options.trees names, or that the rule picks
        chain = replace(chain, net=with_layouts(chain.net, options.trees))
    chain, target, functions = _plan(chain, symbol, options, scikinc)
    refuse_deep_stacks(chain.source, functions)
    real = options.dtype
    env = environment()
    net_ops = chain.net.ops if chain.net is not None else []
    column_ops = [op for f in functions for op in f.column_ops]
    networks = tuple(
        NetworkCode(f.name, symbol, f.variant_functions, target.fma) for f in functions if f.variant_functions
    )
    m = RenderContext(
        symbol,
        real,
        target.math,
        source=chain.source,
        n_inputs=chain.n_inputs,
        n_outputs=chain.n_outputs,
        n_noise=chain.n_noise,
        n_params=chain.n_params,
        layers=tuple(_layers(chain)),
        parity=parity,
        guard=f"{symbol.upper()}_H_INCLUDED",
        math_note=math_note(chain.net, target.math, real),
        functions=tuple(functions),
        variants=target.variants,
        fma=target.fma,
        dispatch=len(target.variants) > 1 and chain.net is not None,
        stack_bytes=functions[0].stack_bytes,
        input_shape=chain.net.shape(chain.net.input) if chain.net is not None and chain.net.shaped else (),
        output_shape=chain.net.shape(chain.net.output) if chain.net is not None and chain.net.shaped else (),
        input_parts=chain.net.parts if chain.net is not None else (),
        helpers=tuple(helpers_needed(name for op in net_ops for name in op.helpers(target.math))),
        # sorted: a fixed order whatever the ops' (these helpers do not call one another)
        op_helpers=tuple(
            sorted(
                {name for op in net_ops for name in op.file_helpers()}
                | ({"fma"} if target.fma else set())
                | ({"barriers"} if any(op.widens for op in net_ops) else set())  # OPAQUE: ``buffers.stored_reads``
            )
        ),
        column_helpers=tuple(sorted({name for op in column_ops for name in op.file_helpers()})),
    )
    return CSource(
        symbol=symbol,
        c=env.get_template("model.c.j2").render(m=m),
        h=env.get_template("model.h.j2").render(m=m),
        stack_bytes=m.stack_bytes,
        functions=[f.name for f in functions],
        real=real,
        widths={f.name: (f.n_inputs, f.n_outputs, f.n_noise) for f in functions},
        isa_symbols=(symbol,) if m.dispatch else (),
        row_symbols=(symbol,) if networks else (),
        networks=networks,
    )


def render_pipeline(pipeline: Pipeline, parity: str = "not checked", real: str = "float") -> CSource:
    """The C glue of ``pipeline``: one function calling its stages (functions of the same file) in turn,
    their values in stack arrays sized from the IR."""
    env = environment()
    name = pipeline.name
    stack = REAL_SIZE[real] * pipeline.values_width + max(s.stack_bytes for s in pipeline.stages)
    f = PipelineFunction(name, pipeline.n_inputs, pipeline.n_outputs, stack, f"{name}_in", real, pipeline.n_noise)
    m = PipelineContext(
        symbol=name,
        source=pipeline.source,
        real=real,
        functions=(f,),
        stages=tuple(pipeline.stages),
        output=tuple(pipeline.output),
        buffer={PIPELINE_INPUT: "input", **{s.name: f"{name}_out{i}" for i, s in enumerate(pipeline.stages)}},
        gather_width=pipeline.gather_width,
        stack_bytes=stack,
        n_params=pipeline.n_params,
        parity=parity,
        guard=f"{name.upper()}_H_INCLUDED",
    )
    return CSource(
        symbol=name,
        c=env.get_template("pipeline.c.j2").render(m=m),
        h=env.get_template("pipeline.h.j2").render(m=m),
        stack_bytes=stack,
        functions=[name],
        real=real,
        widths={name: (f.n_inputs, f.n_outputs, f.n_noise)},
    )


def render_set(name: str, source: str, parts: list[CSource]) -> CSource:
    """Several rendered models in one ``.c`` and one ``.h`` (a Lamarr model set, from a manifest).

    Every static name of a part is prefixed by its symbol, so the parts are simply laid end to end
    under one banner and one include guard; the header keeps each part's own guard too.
    """
    env = environment()
    model = SetContext(name, source, tuple(parts))
    banner = env.get_template("set.j2").module
    return CSource(
        symbol=name,
        c=banner.c(model) + "".join(p.c for p in parts),
        h=banner.h_open(model) + "".join(p.h for p in parts) + banner.h_close(model),
        stack_bytes=max(p.stack_bytes for p in parts),
        functions=[f for p in parts for f in p.functions],
        real=parts[0].real,
        widths={k: v for p in parts for k, v in p.widths.items()},
        isa_symbols=tuple(s for p in parts for s in p.isa_symbols),
        row_symbols=tuple(s for p in parts for s in p.row_symbols),
        networks=tuple(n for p in parts for n in p.networks),
    )
