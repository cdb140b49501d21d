"""What a frontend hands on: the IR, plus the framework's own forward pass to check the C against."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from exporter.ir import Graph


@dataclass
class LoadedModel:
    graph: Graph
    reference: Callable[[np.ndarray], np.ndarray]  # float32 rows in, float32 rows out
    framework: str  # e.g. "Keras": quoted in generated files, so no version here
    framework_version: str = ""  # e.g. "3.15.1 (tensorflow)": for reports only
    # The framework's own value of IR values ({value: rows}) for given input rows; used by the trace.
    intermediates: Callable[[list[str], np.ndarray], dict[str, np.ndarray]] | None = None
