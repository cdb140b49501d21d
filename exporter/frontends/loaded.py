"""What a frontend hands on: the IR, plus the framework's own forward pass to check the C against."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from exporter.common.errors import ExportError
from exporter.frontends.keras.quiet import brief  # Keras' texts quote whole configurations
from exporter.ir import Graph
from exporter.ir.columns import ColumnStage


class Intermediates(Protocol):
    def knows(self, value: str) -> bool: ...

    def __call__(self, values: list[str], rows: np.ndarray, *noise: np.ndarray) -> dict[str, np.ndarray]: ...


@dataclass
class LoadedModel:
    graph: Graph
    reference: Callable[[np.ndarray], np.ndarray]  # float32 rows in, float32 rows out
    framework: str  # e.g. "Keras": quoted in generated files, so no version here
    framework_version: str = ""  # e.g. "3.15.1 (tensorflow)": for reports only
    # The framework's own value of IR values ({value: rows}) for given input rows, with a
    # ``knows(value)`` method; used by the trace.
    intermediates: Intermediates | None = None
    pre: ColumnStage | None = None  # preprocessing written inside the model's own function (traced JAX)
    # The same model computed by the framework in float64 (float64 rows in and out), the float32 criterion's
    # reference; None when the framework cannot (it may also raise ``Float64Unavailable`` when called).
    reference64: Callable[..., np.ndarray] | None = None
    # The same with each layer's output moved by one float32 ULP (the float32 rule's envelope: rounding
    # between layers, which later layers amplify); None: only the network's inputs and outputs are moved.
    reference64_nudged: Callable[..., np.ndarray] | None = None

    def float64(self, nudged: bool) -> Callable[..., np.ndarray]:
        """The float64 reference; ``nudged``: with each layer's output moved where the framework can."""
        assert self.reference64 is not None, "asked for only where the framework gives one"
        return (nudged and self.reference64_nudged) or self.reference64

    def run(self, rows: np.ndarray, *noise: np.ndarray) -> np.ndarray:
        """``reference`` on the check's rows. A model the framework loaded but cannot run (a crafted configuration
        it accepted, ``keepdims=[]`` on Keras' JAX backend) is the file's error, named as such, not the exporter's."""
        try:
            return self.reference(rows, *noise)
        except (ExportError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as err:  # any framework's own exception, stated in the message
            raise ExportError(
                f"{self.graph.source}: {self.framework} cannot run this model on the check's rows "
                f"({type(err).__name__}: {brief(err)}); check the model with {self.framework} itself"
            ) from None
