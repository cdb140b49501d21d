"""Backend: IR -> one C99 source file and its header, through the Jinja templates.

The templates only format; everything they print (weights, widths, activation
parameters, buffer names, row blocks) is stated by the IR or by the plan made here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

import jinja2

from exporter.backend.buffers import INPUT, OUTPUT, BufferPlan, plan_buffers
from exporter.backend.literals import c_array, c_comment, c_float
from exporter.backend.mathlib import ACCURACY, DEFAULT_MATH, check_math, check_real, helpers_used
from exporter.ir import Dense, Graph, Op
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
    real: str = "float"  # the C type of inputs, outputs and arithmetic: "float" or "double"


@dataclass
class Step:
    """One op as a template sees it: the op, its static-name prefix, its buffers and its row block.

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
class RowBlock:
    """One static function of the generated file: the whole network for ``rows`` rows at once."""

    name: str
    rows: int
    steps: list[Step]
    buffers: list[int]
    copy_stride: int

    real_size: int = 4

    @property
    def stack_bytes(self) -> int:
        return self.real_size * sum(self.buffers)


def template_dir() -> Path:
    """Templates ship inside the wheel as exporter/templates; in a checkout they sit at the top."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "model.c.j2").is_file():
            return candidate
    raise RuntimeError(f"templates not found next to {here}")


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
    env.filters.update(c_float=c_float, c_array=c_array, c_comment=c_comment)
    env.globals.update(fail=_fail, inf=math.inf)
    return env


def _row_block(graph: Graph, plan: BufferPlan, model: dict[str, Any], rows: int) -> RowBlock:
    env = environment()
    strides = {INPUT: graph.n_inputs, OUTPUT: graph.n_outputs}
    strides.update({f"{model['scratch']}{i}": size for i, size in enumerate(plan.sizes)})
    steps = [
        Step(
            op=op,
            id=f"{model['symbol']}_{index}",
            ins=[plan.location[v] for v in op.inputs],
            out=plan.location[op.output],
            in_widths=[graph.widths[v] for v in op.inputs],
            template=env.get_template(f"ops/{op.template}.c.j2").module,
            m=model,
            rows=rows,
            strides=strides,
        )
        for index, op in enumerate(graph.ops)
    ]
    return RowBlock(
        name=f"{model['symbol']}_rows{rows}",
        rows=rows,
        steps=steps,
        buffers=[rows * size for size in plan.sizes],
        copy_stride=strides.get(plan.copy_from or "", 0),
        real_size=REAL_SIZE[model["real"]],
    )


def math_note(graph: Graph, mode: str, real: str) -> str:
    """The banner's line on how activations are evaluated, with the stated error of those used."""
    if real == "double":
        return "double throughout, libm's double functions (tanh, exp, expm1, log1p, erfc as needed)"
    if mode == "libm":
        return "libm (tanhf, expf, expm1f, log1pf, erfcf as the activations need them)"
    kinds = sorted({a.kind for op in graph.ops if (a := getattr(op, "activation", None)) and a.kind in ACCURACY})
    bounds = ", ".join(f"{kind} {ACCURACY[kind]:g}" for kind in kinds) or "none used"
    return (
        "fast: branch-free inline float approximations that vectorize without -march or -ffast-math; "
        f"largest error in ULP: {bounds} (--math libm for libm's functions)"
    )


def render(
    graph: Graph, symbol: str, parity: str = "not checked", math_mode: str = DEFAULT_MATH, real: str = "float"
) -> CSource:
    """Render ``graph`` as the C function ``symbol``; ``parity`` is the verdict quoted in the banner.

    ``real="double"`` computes in double (same IR, its float32 weights printed exactly as doubles),
    with libm's double functions: the inline approximations exist for float only.
    """
    env = environment()
    check_real(real, math_mode)
    plan = plan_buffers(graph, scratch_prefix=f"{symbol}_buf")
    model: dict[str, Any] = {
        "symbol": symbol,
        "version": __version__,
        "source": graph.source,
        "n_inputs": graph.n_inputs,
        "n_outputs": graph.n_outputs,
        "n_params": graph.n_params,
        "stack_bytes": plan.stack_bytes // 4 * REAL_SIZE[real],
        "layers": [f"{op.name}: {op.describe()}" for op in graph.ops] or ["(identity)"],
        "parity": parity,
        "guard": f"{symbol.upper()}_H_INCLUDED",
        "scratch": f"{symbol}_buf",
        "copy_from": plan.copy_from,
        "math": check_math(math_mode),
        "math_note": math_note(graph, math_mode, real),
        "real": real,
        "helpers": [],
        "dense": any(isinstance(op, Dense) for op in graph.ops),
    }
    model["blocks"] = [_row_block(graph, plan, model, rows) for rows in (1, BATCH_ROWS)]
    math = env.get_template("math.c.j2").module
    code = "".join(str(s.template.body(s)) for s in model["blocks"][0].steps)  # cheap: no weights
    model["helpers"] = helpers_used(code, symbol, lambda name: str(math.helper(name, symbol, real)))
    return CSource(
        symbol=symbol,
        c=env.get_template("model.c.j2").render(m=model),
        h=env.get_template("model.h.j2").render(m=model),
        stack_bytes=model["stack_bytes"],
        real=real,
    )
