"""Backend: IR -> one C99 source file and its header, through the Jinja templates.

The templates only format; everything they print (weights, widths, activation
parameters, buffer names) is stated by the IR or by the buffer plan made here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

import jinja2

from exporter.backend.buffers import plan_buffers
from exporter.backend.literals import c_array, c_comment, c_float
from exporter.ir import Graph, Op
from exporter.version import __version__


@dataclass
class CSource:
    """A generated model: its symbol, the ``.c`` text and the ``.h`` text."""

    symbol: str
    c: str
    h: str
    stack_bytes: int


@dataclass
class Step:
    """One op as a template sees it: the op, its static-name prefix and its buffers."""

    op: Op
    id: str
    ins: list[str]
    out: str
    in_widths: list[int]
    template: Any


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


def render(graph: Graph, symbol: str, parity: str = "not checked") -> CSource:
    """Render ``graph`` as the C function ``symbol``; ``parity`` is the verdict quoted in the banner."""
    env = environment()
    plan = plan_buffers(graph, scratch_prefix=f"{symbol}_buf")
    steps = [
        Step(
            op=op,
            id=f"{symbol}_{index}",
            ins=[plan.location[v] for v in op.inputs],
            out=plan.location[op.output],
            in_widths=[graph.widths[v] for v in op.inputs],
            template=env.get_template(f"ops/{op.template}.c.j2").module,
        )
        for index, op in enumerate(graph.ops)
    ]
    model = {
        "symbol": symbol,
        "version": __version__,
        "source": graph.source,
        "n_inputs": graph.n_inputs,
        "n_outputs": graph.n_outputs,
        "n_params": graph.n_params,
        "stack_bytes": plan.stack_bytes,
        "layers": [f"{op.name}: {op.describe()}" for op in graph.ops] or ["(identity)"],
        "parity": parity,
        "guard": f"{symbol.upper()}_H_INCLUDED",
        "steps": steps,
        "buffers": plan.sizes,
        "scratch": f"{symbol}_buf",
        "copy_from": plan.copy_from,
    }
    return CSource(
        symbol=symbol,
        c=env.get_template("model.c.j2").render(m=model),
        h=env.get_template("model.h.j2").render(m=model),
        stack_bytes=plan.stack_bytes,
    )
