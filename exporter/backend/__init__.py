"""Backend: IR -> one C99 source file and its header, through the Jinja templates.

The templates only format; everything they print (weights, widths, activation
parameters, buffer names) is stated by the IR or by the plans made here. A chain
becomes several exported functions in one file: the whole chain under its symbol
and each stage under ``SYMBOL_preprocess``, ``SYMBOL_dnn``, ``SYMBOL_postprocess``
(and ``SYMBOL_preprocess_inverse`` when the preprocessing can be inverted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

import jinja2

from exporter.backend.buffers import plan_buffers
from exporter.backend.literals import c_array, c_comment, c_double, c_doubles, c_float
from exporter.ir import Graph, Op
from exporter.ir.chain import Chain
from exporter.ir.columns import ColumnOp, ColumnStage, NotInvertible, Quantile
from exporter.version import __version__


@dataclass
class CSource:
    """A generated model: its symbol, the ``.c`` text and the ``.h`` text."""

    symbol: str
    c: str
    h: str
    stack_bytes: int
    functions: list[str] = field(default_factory=list)  # every exported symbol, the main one first
    widths: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # symbol -> (inputs, outputs, noise)


@dataclass
class Step:
    """One op as a template sees it: the op, its static-name prefix and its buffers."""

    op: Op | ColumnOp
    id: str
    template: Any
    symbol: str = ""
    ins: list[str] = field(default_factory=list)
    out: str = ""
    in_widths: list[int] = field(default_factory=list)
    buf: str = ""  # column ops: the double row they rewrite


@dataclass
class Function:
    """One exported C function ``float *name(float *output, const float *input)``, or for a generator's
    network and chain ``float *name(float *output, const float *input, const float *random)``."""

    name: str
    kind: str  # "network", "columns" or "compose"
    n_inputs: int
    n_outputs: int
    stack_bytes: int
    steps: list[Step] = field(default_factory=list)
    buffers: list[int] = field(default_factory=list)  # network: scratch sizes; columns: [row width]
    scratch: str = ""
    copy_from: str | None = None
    parts: list[str] = field(default_factory=list)  # compose: the functions called in turn
    n_noise: int = 0  # a generator's noise entries: the function takes `random` too
    part_noise: list[bool] = field(default_factory=list)  # compose: which parts take `random`
    ignores_noise: bool = False  # network: takes `random` but no op reads it (strict warnings need it cast away)

    @property
    def params(self) -> str:
        """The C parameter list."""
        return "float *output, const float *input" + (", const float *random" if self.n_noise else "")


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


def _network(graph: Graph, name: str) -> Function:
    env = environment()
    plan = plan_buffers(graph, scratch_prefix=f"{name}_buf")
    steps = [
        Step(
            op=op,
            id=f"{name}_{index}",
            template=env.get_template(f"ops/{op.template}.c.j2").module,
            ins=[plan.location[v] for v in op.inputs],
            out=plan.location[op.output],
            in_widths=[graph.widths[v] for v in op.inputs],
        )
        for index, op in enumerate(graph.ops)
    ]
    return Function(
        name,
        "network",
        graph.n_inputs,
        graph.n_outputs,
        plan.stack_bytes,
        steps,
        plan.sizes,
        f"{name}_buf",
        plan.copy_from,
        n_noise=graph.n_noise,
        ignores_noise=bool(graph.noise) and not any(graph.noise in op.inputs for op in graph.ops),
    )


def _columns(stage: ColumnStage, name: str, symbol: str) -> Function:
    env = environment()
    buf = f"{name}_row"
    steps = [
        Step(
            op=op,
            id=f"{name}_{i}",
            template=env.get_template(f"columns/{op.template}.c.j2").module,
            symbol=symbol,
            buf=buf,
        )
        for i, op in enumerate(stage.ops)
    ]
    stack = 8 * stage.max_width * 2  # the row, and at most one Select's copy
    return Function(name, "columns", stage.n_inputs, stage.n_outputs, stack, steps, [stage.max_width], buf)


def _compose(name: str, parts: list[Function]) -> Function:
    widest = max(max(p.n_inputs, p.n_outputs) for p in parts)
    stack = 4 * widest + max(p.stack_bytes for p in parts)
    return Function(
        name,
        "compose",
        parts[0].n_inputs,
        parts[-1].n_outputs,
        stack,
        buffers=[widest],
        scratch=f"{name}_stage",
        parts=[p.name for p in parts],
        n_noise=max(p.n_noise for p in parts),
        part_noise=[bool(p.n_noise) for p in parts],
    )


def _inverse_or_none(stage: ColumnStage) -> ColumnStage | None:
    try:
        return stage.inverse()
    except NotInvertible:
        return None


def plan_functions(chain: Chain, symbol: str) -> list[Function]:
    """The exported functions of a chain, the main symbol first."""
    if chain.pre is None and chain.post is None and chain.net is not None:
        return [_network(chain.net, symbol)]
    if chain.net is None and chain.post is None and chain.pre is not None:  # a transformer on its own
        inverse = _inverse_or_none(chain.pre)
        forward = _columns(chain.pre, symbol, symbol)
        return [forward, _columns(inverse, f"{symbol}_inverse", symbol)] if inverse else [forward]
    parts: list[Function] = []
    extra: list[Function] = []
    if chain.pre is not None:
        parts.append(_columns(chain.pre, f"{symbol}_preprocess", symbol))
        inverse = _inverse_or_none(chain.pre)
        if inverse is not None:
            extra.append(_columns(inverse, f"{symbol}_preprocess_inverse", symbol))
    if chain.net is not None:
        parts.append(_network(chain.net, f"{symbol}_dnn"))
    if chain.post is not None:
        parts.append(_columns(chain.post, f"{symbol}_postprocess", symbol))
    return [_compose(symbol, parts), *parts, *extra]


def _layers(chain: Chain) -> list[str]:
    lines = [f"{op.name}: {op.describe()}" for stage, _ in chain.stages for op in stage.ops]
    return lines or ["(identity)"]


def render(chain: Chain | Graph, symbol: str, parity: str = "not checked") -> CSource:
    """Render ``chain`` as the C function ``symbol`` (and its stages); ``parity`` is quoted in the banner."""
    chain = chain if isinstance(chain, Chain) else Chain(net=chain, source=chain.source)
    env = environment()
    functions = plan_functions(chain, symbol)
    ops = [step.op for f in functions for step in f.steps]
    quantile = any(isinstance(op, Quantile) for op in ops)
    model = {
        "symbol": symbol,
        "version": __version__,
        "source": chain.source,
        "n_inputs": chain.n_inputs,
        "n_outputs": chain.n_outputs,
        "n_noise": chain.n_noise,
        "n_params": chain.n_params,
        "stack_bytes": functions[0].stack_bytes,
        "layers": _layers(chain),
        "parity": parity,
        "guard": f"{symbol.upper()}_H_INCLUDED",
        "functions": functions,
        "helpers": {
            "interp": quantile,
            "ndtr": any(isinstance(op, Quantile) and op.normal and op.inverse_direction for op in ops),
            "ndtri": any(isinstance(op, Quantile) and op.normal and not op.inverse_direction for op in ops),
        },
    }
    return CSource(
        symbol=symbol,
        c=env.get_template("model.c.j2").render(m=model),
        h=env.get_template("model.h.j2").render(m=model),
        stack_bytes=functions[0].stack_bytes,
        functions=[f.name for f in functions],
        widths={f.name: (f.n_inputs, f.n_outputs, f.n_noise) for f in functions},
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
        widths={k: v for p in parts for k, v in p.widths.items()},
    )
