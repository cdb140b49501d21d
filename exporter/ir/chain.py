"""What one exported symbol computes: raw inputs -> preprocessing -> network -> target inverse.

The preprocessing and the target transform are column stages computed in double
precision (as scikit-learn does); the network works in float32, as Keras does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from exporter.common.errors import ExportError
from exporter.ir.activations import Activation
from exporter.ir.columns import ColumnStage
from exporter.ir.graph import Graph
from exporter.ir.ops import Activate, Dense
from exporter.ir.passes import optimize

OUTPUT_ACTIVATIONS = ("sigmoid", "softmax")  # the activations a network that outputs logits may be given


@dataclass
class Chain:
    pre: ColumnStage | None = None
    net: Graph | None = None
    post: ColumnStage | None = None
    source: str = ""  # the files it was made from, by name (no paths: generated files must not depend on them)
    # stage name -> what it was made from ("tY.pkl: step tY (its class)"), for width mismatch messages
    labels: dict[str, str] = field(default_factory=dict)
    # the columns' names, for a loader to check (exporter.backend.column_names; None: unnamed, x0../y0..)
    input_names: tuple[str, ...] | None = None
    output_names: tuple[str, ...] | None = None
    sources: tuple[tuple[str, str], ...] = ()  # (file name, SHA-256) of each file it was made from (SYMBOL_info)

    def __post_init__(self) -> None:
        widths = [(s.n_inputs, s.n_outputs, self._named(name)) for s, name in self.stages]
        for (_, out, before), (inp, _, after) in itertools.pairwise(widths):
            if out != inp:
                raise ExportError(f"the {before} gives {out} values but the {after} takes {inp}")

    def _named(self, stage: str) -> str:
        return f"{stage} ({self.labels[stage]})" if stage in self.labels else stage

    @property
    def stages(self) -> list[tuple[ColumnStage | Graph, str]]:
        named = [(self.pre, "preprocessing"), (self.net, "network"), (self.post, "target transform")]
        return [(stage, name) for stage, name in named if stage is not None]

    @property
    def n_inputs(self) -> int:
        return self.stages[0][0].n_inputs

    @property
    def n_outputs(self) -> int:
        return self.stages[-1][0].n_outputs

    @property
    def n_noise(self) -> int:
        """A generator's noise entries per call (its C function's third argument), 0 otherwise."""
        return self.net.n_noise if self.net is not None else 0

    @property
    def n_params(self) -> int:
        return sum(stage.n_params for stage, _ in self.stages)


def repeated_activation(graph: Graph, kind: str) -> str | None:
    """Why an output activation ``kind`` given to a network already ending in it is worth a warning, or None.

    A network whose last layer is softmax outputs probabilities, not logits; softmax of them is a
    flatter distribution that sums to 1 but is no probability of the model's classes (sigmoid
    likewise): most likely the user took the flag for a description of the model."""
    last = next((op for op in graph.ops if op.output == graph.output), None)
    ends = isinstance(last, (Dense, Activate)) and last.activation.kind == kind
    if not ends or (isinstance(last, Dense) and last.residual):
        return None
    return (
        f"output activation {kind}: the network already ends in {kind} (its step {last.name!r}); {kind} of its "
        f"output is applied again, so the output then is not a probability of the model's classes"
    )


def with_output_activation(graph: Graph, activation: Activation) -> Graph:
    """Append an activation to a network that outputs logits (fused into its last Dense if it can be).

    A new graph: the frontend's own stays the model as walked (the trace compares it with the framework's walk)."""
    output = f"{graph.output}_{activation.kind}"
    act = Activate(
        name=f"output {activation.kind}",
        inputs=(graph.output,),
        output=output,
        width=graph.n_outputs,
        activation=activation,
    )
    widths = {**graph.widths, output: graph.n_outputs}
    return optimize(replace(graph, widths=widths, ops=[*graph.ops, act], output=output))
