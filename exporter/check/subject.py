"""What is exported, as the checks, the sets and the run see it: the protocols every exported thing follows.

Declared here, below the API, the sets and the run, so that each of them depends on what it reads and
nothing else. :class:`Exported` is what the run (``exporter/run/steps.py``), its summary and the sets
handle: one model, ``exporter.api.Export``, an :class:`ExportedModel`; or models composed, the
generators of ``exporter.sets.pipelines.PipelineExport``, an :class:`ExportedPipeline`. A test's
stand-in may be any of them without being one of those classes, and a caller asks the object what it
is (``model``, ``parts``) instead of testing its class.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from exporter.backend import CSource
    from exporter.build.toolchain import CompiledModel
    from exporter.check.compare import ParityReport
    from exporter.common.options import Options
    from exporter.frontends.loaded import LoadedModel
    from exporter.ir import Graph
    from exporter.ir.chain import Chain
    from exporter.ir.pipeline import Pipeline

Reference = Callable[..., np.ndarray]  # raw float32 rows (, noise rows) -> outputs, by the Python frameworks


class Shape(Protocol):
    """An exported function as its callers see it: widths, parameters, column names and what it was made
    from (a model's ``Chain`` and a pipeline's ``Pipeline`` alike)."""

    @property
    def n_inputs(self) -> int: ...

    @property
    def n_outputs(self) -> int: ...

    @property
    def n_noise(self) -> int: ...

    @property
    def n_params(self) -> int: ...

    @property
    def input_names(self) -> tuple[str, ...] | None: ...

    @property
    def output_names(self) -> tuple[str, ...] | None: ...

    @property
    def source(self) -> str: ...


class Report(Protocol):
    """A parity report as the run and its summary read it: a model's ``ParityReport``, a pipeline's
    ``PipelineReport`` (``exporter/check/pipeline_parity.py``)."""

    @property
    def passed(self) -> bool: ...

    @property
    def rows(self) -> int:
        """The rows compared."""
        ...

    def verdict(self) -> str:
        """One reproducible line for the banner and ``SYMBOL_info``."""
        ...

    def table(self) -> str:
        """The comparison, for people."""
        ...


class Exported(Protocol):
    """One exported function on its way to a file: its C (``source``), the Python computation it must match,
    and its parity check. A file holds several (a manifest's models and pipelines), each under its symbol."""

    source: CSource  # rendered before parity is known ("not checked" in its banner)
    options: Options  # how its C is written (math, dtype, dispatch) and its parity judged

    @property
    def symbol(self) -> str: ...

    @property
    def chain(self) -> Shape:
        """Its IR, as far as its callers see it."""
        ...

    @property
    def framework(self) -> str:
        """What computes the reference (``Keras + scikit-learn``): quoted in the files, so no version."""
        ...

    @property
    def framework_version(self) -> str:
        """The frameworks with their versions, for reports."""
        ...

    @property
    def warnings(self) -> list[str]:
        """What the user may not have meant, told once the models are loaded."""
        ...

    @property
    def model(self) -> ExportedModel | None:
        """Itself when it is one model (which the run may trace and report on); None when it composes models."""
        ...

    @property
    def parts(self) -> Sequence[ExportedModel]:
        """The models whose code it runs: itself, or the models it calls in turn."""
        ...

    def reference(self, rows: np.ndarray, *noise: np.ndarray) -> np.ndarray:
        """What the Python frameworks compute on ``rows`` (and a generator's noise rows)."""
        ...

    def inputs(self, samples: int = ..., user_rows: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        """Rows where its preprocessing was fitted (then edge rows, then ``user_rows``)."""
        ...

    def noise(self, n_rows: int, seed: int = 1) -> np.ndarray | None:
        """Standard-normal noise rows for a generator (None for a deterministic function)."""
        ...

    def expect(self, rows: np.ndarray, noise: np.ndarray | None) -> Any:
        """The Python side of parity on ``rows``, computed while the C compiles: ``check`` takes it back as
        ``expected``."""
        ...

    def check(
        self,
        compiled: CompiledModel,
        inputs: np.ndarray | None = None,
        atol: float = ...,
        rtol: float = ...,
        noise: np.ndarray | None = None,
        expected: Any = None,
        criterion: str = ...,
    ) -> Report:
        """Parity of ``compiled`` (its function in a built library) on ``inputs`` and ``noise``."""
        ...

    def final_source(self, report: Report | None) -> CSource:
        """The source with ``report``'s verdict in its banner (None: "not checked"); the code is unchanged."""
        ...

    def edited(self, source: CSource) -> CSource:
        """``source`` (its own, or a file holding it) as every build of it compiles it: a test may edit the C."""
        ...


class ExportedModel(Exported, Protocol):
    """One exported chain: its IR, its C symbol and options, and the Python computation it must match."""

    chain: Chain
    symbol: str
    reference: Reference
    reference64: Reference | None  # the same in float64 where the frameworks allow it (the float32 rule)
    framework: str
    framework_version: str
    loaded: LoadedModel | None
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

    def network_inputs(self, rows: np.ndarray) -> np.ndarray: ...

    def check(
        self,
        compiled: CompiledModel | None = None,
        inputs: np.ndarray | None = None,
        atol: float = ...,
        rtol: float = ...,
        noise: np.ndarray | None = None,
        expected: np.ndarray | None = None,
        criterion: str = ...,
    ) -> ParityReport: ...


class ExportedPipeline(Exported, Protocol):
    """Exported chains called in turn: the routing (``pipeline``), its stages, and how Python runs them."""

    pipeline: Pipeline
    stages: Sequence[ExportedModel]

    def values(
        self, rows: np.ndarray, noise: np.ndarray | None, run: Callable[..., np.ndarray]
    ) -> dict[str, np.ndarray]: ...

    def output(self, values: dict[str, np.ndarray]) -> np.ndarray: ...

    def python_stage(self, index: int, x: np.ndarray, *noise: np.ndarray) -> np.ndarray: ...

    def reference64(
        self, rows: np.ndarray, *noise: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray: ...
