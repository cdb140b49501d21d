"""What the exporter sees in a model, step by step, with what it costs and what stands in the way.

Three depths, whichever the model allows:

- ``graph``: the model is exportable; the rows are the IR ops after fusion, i.e. the steps of the
  generated C, with exact parameters, FLOPs and the stack the function needs.
- ``walk``: Keras loaded the model but some layers are refused; the rows are the walked chain
  (before fusion) with each refused layer in place, so every problem shows at once.
- ``config``: the file's stored configuration already names refused layers, so Keras is never
  loaded; the rows are the stored layers, widths and parameters unknown.

FLOPs are an estimate per call, stated by each op (``Op.flops``, ``ColumnOp.flops``): a multiply-add
counts 2, an activation function 1 per element (softmax 4: max, exp, sum, divide), an elementwise
merge 1 per element and input, a column step about 4 per column it maps.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporter.backend import REAL_SIZE
from exporter.common.errors import Problem
from exporter.common.escaping import terminal_line
from exporter.common.plural import count
from exporter.ir import Graph, Op
from exporter.ir.chain import Chain
from exporter.ir.columns import ColumnStage

if TYPE_CHECKING:
    from exporter.common.progress import Progress
    from exporter.frontends.builder import Refusal
    from exporter.frontends.keras.screen import ScreenedLayer

COLUMN_BYTES = 8  # preprocessing and target steps keep their parameters as doubles
STAGES = {
    "graph": "the steps of the generated C (IR after fusion)",
    "walk": "layers as walked, before fusion, refused layers in place",
    "config": "layers of the stored configuration (refused before Keras loads it: widths and parameters unknown)",
}


@dataclass
class Row:
    """One step: an IR op, a refused layer, or a stored layer. ``None`` means unknown."""

    name: str
    op: str
    inputs: list[int] | None
    output: int | None
    params: int | None
    flops: int | None
    problem: str | None = None
    param_bytes: int = 4  # bytes of one parameter in the C: the network's real type, doubles for column steps

    @property
    def supported(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "input_widths": self.inputs,
            "output_width": self.output,
            "params": self.params,
            "flops": self.flops,
            "supported": self.supported,
            "reason": self.problem,
        }


@dataclass
class Inspection:
    """A model as the exporter sees it: its rows and totals, and every problem found."""

    source: str
    symbol: str
    stage: str  # a key of STAGES
    rows: list[Row]
    n_inputs: int | None = None
    n_outputs: int | None = None
    stack_bytes: int | None = None  # known only for an exportable model
    problems: list[Problem] = field(default_factory=list)
    n_noise: int = 0  # a generator's noise entries (its C function's third argument)
    framework_version: str = ""  # the Keras version that saved the file (or the installed one), for --json

    @property
    def exportable(self) -> bool:
        return not self.problems

    @property
    def n_params(self) -> int:
        return sum(r.params or 0 for r in self.rows)

    @property
    def flops(self) -> int:
        return sum(r.flops or 0 for r in self.rows)

    @property
    def weight_bytes(self) -> int:
        return sum((r.params or 0) * r.param_bytes for r in self.rows)

    def totals(self) -> dict[str, int | None]:
        return {
            "params": self.n_params,
            "weight_bytes": self.weight_bytes,
            "flops": self.flops,
            "stack_bytes": self.stack_bytes,
        }

    def table(self) -> str:
        """The rows as aligned text, then the totals and the verdict."""
        header = ["step", "name", "op", "in", "out", "params", "FLOPs", "status"]
        body = [  # names from files on one line, escaped before the widths are measured
            [
                str(i),
                terminal_line(r.name),
                terminal_line(r.op),
                "+".join(map(str, r.inputs)) if r.inputs else "?",
                _count(r.output),
                _count(r.params),
                _count(r.flops),
                "ok" if r.supported else f"REFUSED: {terminal_line(r.problem)}",
            ]
            for i, r in enumerate(self.rows)
        ]
        widths = [max(len(line[k]) for line in [header, *body]) for k in range(len(header))]
        right = {0, 3, 4, 5, 6}
        lines = [
            "  ".join(
                cell.rjust(w) if k in right else cell.ljust(w)
                for k, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
            for line in [header, *body]
        ]
        stack = f"{self.stack_bytes:,} stack bytes per call" if self.stack_bytes is not None else "stack unknown"
        known = "" if self.stage == "graph" else " (of the supported steps)"
        lines.append(
            f"total{known}: {self.n_params:,} parameters, {self.weight_bytes:,} weight bytes, "
            f"{self.flops:,} FLOPs per call, {stack}"
        )
        if self.exportable:
            lines.append("exportable: yes")
        else:
            lines.append(f"exportable: no, {count(len(self.problems), 'layer')} refused:")
            lines += [f"  - {p}" for p in self.problems]
        return "\n".join(line.rstrip() for line in lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "symbol": self.symbol,
            "stage": self.stage,
            "stage_description": STAGES[self.stage],
            "exportable": self.exportable,
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "steps": [r.to_dict() for r in self.rows],
            "totals": self.totals(),
            "problems": [{"layer": p.layer, "class": p.cls, "reason": p.reason} for p in self.problems],
        }


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def op_row(op: Op, widths: dict[str, int], real: str = "float") -> Row:
    in_widths = [widths[v] for v in op.inputs]
    flops = op.flops(in_widths)
    return Row(op.name, op.describe(), in_widths, op.width, op.n_params, flops, param_bytes=REAL_SIZE[real])


def inspect_graph(graph: Graph, symbol: str, stack_bytes: int, real: str = "float") -> Inspection:
    """An exportable model: the steps of its C (weights of the C type ``real``)."""
    rows = [op_row(op, graph.widths, real) for op in graph.ops]
    return Inspection(
        graph.source, symbol, "graph", rows, graph.n_inputs, graph.n_outputs, stack_bytes, n_noise=graph.n_noise
    )


def column_rows(stage: ColumnStage) -> list[Row]:
    """The rows of a preprocessing or target stage: one per column op."""
    return [
        Row(op.name, op.describe(), [n_in], n_out, op.n_params, op.flops(), param_bytes=COLUMN_BYTES)
        for op, n_in, n_out in zip(stage.ops, stage.widths, stage.widths[1:], strict=False)
    ]


def inspect_export(chain: Chain, symbol: str, stack_bytes: int, real: str = "float") -> Inspection:
    """An exportable chain: its preprocessing steps, the steps of its network, its target steps."""
    rows = column_rows(chain.pre) if chain.pre else []
    if chain.net is not None:
        rows += inspect_graph(chain.net, symbol, stack_bytes, real).rows
    rows += column_rows(chain.post) if chain.post else []
    return Inspection(
        chain.source, symbol, "graph", rows, chain.n_inputs, chain.n_outputs, stack_bytes, n_noise=chain.n_noise
    )


def inspect_chain(
    source: str, symbol: str, chain: list[Op | Refusal], widths: dict[str, int], input_value: str, output_value: str
) -> Inspection:
    """A refused model as walked: supported ops and refused layers in walk order."""
    from exporter.frontends.builder import Refusal

    rows = []
    for entry in chain:
        if isinstance(entry, Refusal) and not entry.inputs:  # the model as a whole: no widths to show
            rows.append(Row(entry.problem.layer, entry.problem.cls, None, None, None, None, entry.problem.reason))
        elif isinstance(entry, Refusal):
            in_widths = [widths[v] for v in entry.inputs]
            rows.append(
                Row(entry.problem.layer, entry.problem.cls, in_widths, entry.width, None, None, entry.problem.reason)
            )
        else:
            rows.append(op_row(entry, widths))
    problems = [entry.problem for entry in chain if isinstance(entry, Refusal)]
    return Inspection(
        source, symbol, "walk", rows, widths.get(input_value), widths.get(output_value), problems=problems
    )


def inspect_stored(source: str, symbol: str, layers: list[ScreenedLayer]) -> Inspection:
    """A file refused from its stored configuration alone: every stored layer, screened by class."""
    rows = [
        Row(layer.name, layer.cls, None, None, None, None, layer.problem.reason if layer.problem else None)
        for layer in layers
    ]
    problems = [layer.problem for layer in layers if layer.problem]
    return Inspection(source, symbol, "config", rows, problems=problems)


def inspect_keras(model: Any, name: str | None = None, progress: Progress | None = None) -> Inspection:
    """Inspect a Keras model (file or live); never raises for an unsupported model, only for unreadable ones."""
    from exporter.backend.naming import symbol_for
    from exporter.common.progress import Progress
    from exporter.frontends.keras.load import source_name
    from exporter.frontends.keras.screen import read_stored_config, saved_version

    progress = progress or Progress(enabled=False)
    symbol = symbol_for(name, model)
    source = source_name(model)
    if not isinstance(model, (str, os.PathLike)):
        inspection = _inspect_keras(model, symbol, source, progress)
        inspection.framework_version = f"{sys.modules['keras'].__version__} (installed)"
        return inspection
    config = read_stored_config(model)
    inspection = _inspect_keras(model, symbol, source, progress, config)
    inspection.framework_version = saved_version(Path(model), config)
    return inspection


def _inspect_keras(
    model: Any, symbol: str, source: str, progress: Progress, config: dict[str, Any] | None = None
) -> Inspection:
    from exporter.backend import stack_bytes
    from exporter.frontends.keras.backend import require_keras
    from exporter.frontends.keras.load import load_keras_file, stored_walk
    from exporter.frontends.keras.screen import refused_from_config, stored_layers
    from exporter.frontends.keras.stored import NotStored
    from exporter.frontends.keras.walk import walk_keras

    walked = None
    if config is not None:
        layers = stored_layers(config)
        if refused_from_config(layers):
            return inspect_stored(source, symbol, layers)
        try:  # no framework needed for what the file stores, when it can be read so
            with progress.step("load", f"reading {source}"):
                walked = stored_walk(Path(model), source, config=config)
        except NotStored as why:
            require_keras(f"{source}: {why}; loading it with Keras instead")  # h5py alone reads a plain .keras
            with progress.step("load", "loading the model with Keras"):
                model = load_keras_file(model)
    walked = walked or walk_keras(model, source)
    b = walked.builder
    if b.problems:
        return inspect_chain(source, symbol, b.chain, b.widths, walked.input, walked.output)
    graph = walked.graph()
    return inspect_graph(graph, symbol, stack_bytes(graph, symbol))


def inspect_onnx(model: Any, name: str | None = None, input_shape: Any = None, noise: int = 0) -> Inspection:
    """An ONNX model (file or ``ModelProto``): the steps of its C, or its nodes as walked with every refused one
    in place; never raises for an unsupported model, only for an unreadable one."""
    from exporter.backend import stack_bytes
    from exporter.backend.naming import symbol_for
    from exporter.frontends.onnx import input_shapes, source_name
    from exporter.frontends.onnx.read import prepare
    from exporter.frontends.onnx.walk import walk_onnx

    source, symbol = source_name(model), symbol_for(name, model)
    prepared = prepare(model, input_shapes(input_shape), source)
    walked = walk_onnx(prepared, source, noise)
    b = walked.builder
    if b.problems:
        inspection = inspect_chain(source, symbol, b.chain, b.widths, walked.input, walked.output)
    else:
        graph = walked.graph()
        inspection = inspect_graph(graph, symbol, stack_bytes(graph, symbol))
    inspection.framework_version = f"opset {prepared.opsets['']}"
    return inspection
