"""What the checks are given: an exported model, or a composed pipeline of them, as the check stage sees it.

Declared here, below the API, so that the checks depend on what they read and nothing else:
``exporter.api.Export`` is an :class:`ExportedModel` and ``exporter.sets.pipelines.PipelineExport`` an
:class:`ExportedPipeline`, and a test's stand-in may be either without being one of those classes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from exporter.backend import CSource
    from exporter.build.toolchain import CompiledModel
    from exporter.common.options import Options
    from exporter.frontends.loaded import LoadedModel
    from exporter.ir import Graph
    from exporter.ir.chain import Chain
    from exporter.ir.pipeline import Pipeline

Reference = Callable[..., np.ndarray]  # raw float32 rows (, noise rows) -> outputs, by the Python frameworks


class ExportedModel(Protocol):
    """One exported chain: its IR, its C symbol and options, and the Python computation it must match."""

    chain: Chain
    symbol: str
    reference: Reference
    reference64: Reference | None  # the same in float64 where the frameworks allow it (the float32 rule)
    framework: str
    framework_version: str
    loaded: LoadedModel | None
    options: Options  # how its C is written (math, dtype, dispatch) and its parity judged
    after_network: Callable[[np.ndarray], list[tuple[str, np.ndarray]]] | None

    @property
    def graph(self) -> Graph | None: ...

    def compile_source(
        self,
        source: CSource,
        n_inputs: int,
        n_outputs: int,
        workdir: str | os.PathLike[str] | None = None,
        n_noise: int = 0,
        one_isa: bool = False,
        one_row: bool = False,
    ) -> CompiledModel: ...

    def noise(self, n_rows: int, seed: int = 1) -> np.ndarray | None: ...

    def network_inputs(self, rows: np.ndarray) -> np.ndarray: ...

    def inputs(self, samples: int = ..., user_rows: np.ndarray | None = None, seed: int = 0) -> np.ndarray: ...


class ExportedPipeline(Protocol):
    """Exported chains called in turn: the routing (``pipeline``), its stages, and how Python runs them."""

    pipeline: Pipeline
    stages: Sequence[ExportedModel]

    @property
    def framework(self) -> str: ...

    def values(
        self, rows: np.ndarray, noise: np.ndarray | None, run: Callable[..., np.ndarray]
    ) -> dict[str, np.ndarray]: ...

    def output(self, values: dict[str, np.ndarray]) -> np.ndarray: ...

    def python_stage(self, index: int, x: np.ndarray, *noise: np.ndarray) -> np.ndarray: ...

    def reference64(
        self, rows: np.ndarray, *noise: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray: ...
