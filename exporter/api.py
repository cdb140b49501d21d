"""The Python API: the CLI's steps, one by one (load -> IR -> C source -> compiled callable -> parity).

>>> from exporter import export_keras
>>> ex = export_keras("examples/efficiency.keras")      # frontend + IR
>>> ex.source.c[:40]                                      # backend (parity not yet known)
>>> model = ex.compile()                                  # toolchain: numpy rows -> C
>>> report = ex.check(model)                              # parity against Keras
>>> ex.write("efficiency.c", report)                      # .c and .h, atomically
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exporter.backend import CSource, render
from exporter.backend.mathlib import DEFAULT_MATH, check_math, check_real, resolve_math
from exporter.backend.naming import check_symbol, symbol_from_stem
from exporter.frontends.loaded import LoadedModel
from exporter.parity import DEFAULT_ATOL, DEFAULT_RTOL, DEFAULT_SAMPLES, ParityReport, check_parity, make_inputs
from exporter.toolchain import CompiledModel, build


@dataclass
class Export:
    """One model on its way to C: the loaded model, its symbol and its rendered source."""

    loaded: LoadedModel
    symbol: str
    math: str = DEFAULT_MATH  # "fast" (inline vectorizable approximations) or "libm"
    dtype: str = "float"  # the C type computed in: "float" or "double"
    source: CSource = field(init=False)

    def __post_init__(self) -> None:
        check_real(self.dtype, check_math(self.math))
        self.source = render(self.loaded.graph, self.symbol, math_mode=self.math, real=self.dtype)

    @property
    def graph(self) -> Any:
        return self.loaded.graph

    def compile(self, workdir: str | os.PathLike[str] | None = None) -> CompiledModel:
        graph = self.loaded.graph
        return build(self.source, graph.n_inputs, graph.n_outputs, Path(workdir) if workdir else None)

    def inputs(self, samples: int = DEFAULT_SAMPLES, user_rows: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        return make_inputs(self.loaded.graph.n_inputs, samples, seed, user_rows)

    def check(
        self,
        compiled: CompiledModel | None = None,
        inputs: np.ndarray | None = None,
        atol: float = DEFAULT_ATOL,
        rtol: float = DEFAULT_RTOL,
    ) -> ParityReport:
        compiled = compiled or self.compile()
        rows = self.inputs() if inputs is None else inputs
        return check_parity(compiled, self.loaded.reference, rows, atol, rtol, self.loaded.framework)

    def final_source(self, report: ParityReport | None) -> CSource:
        """The source with the parity verdict in its banner (the code itself is unchanged)."""
        verdict = report.verdict() if report else "not checked"
        return render(self.loaded.graph, self.symbol, verdict, self.math, self.dtype)

    def write(self, c_path: str | os.PathLike[str], report: ParityReport | None = None) -> tuple[Path, Path]:
        """Write ``c_path`` and the header beside it; each appears whole or not at all."""
        c_path = Path(c_path)
        h_path = c_path.with_suffix(".h")
        source = self.final_source(report)
        write_atomically({c_path: source.c.encode(), h_path: source.h.encode()})
        return c_path, h_path


def write_atomically(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary name first, then rename them all into place."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            staged.append((tmp, path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def default_symbol(model: Any, dtype: str = "float") -> str:
    """The file's stem (or the live model's name) as a C identifier; ``_double`` added for double."""
    stem = Path(model).stem if isinstance(model, (str, os.PathLike)) else getattr(model, "name", "model")
    return symbol_from_stem(stem + ("_double" if dtype == "double" else ""))


def export_keras(model: Any, name: str | None = None, math: str | None = None, dtype: str = "float") -> Export:
    """Read a Keras model (``.keras``/``.h5`` path or live ``keras.Model``) into an ``Export``.

    ``math="libm"`` makes the C call libm's ``tanhf``, ``expf``... instead of the default
    inline approximations (``"fast"``), for bit-for-bit libm results at a loss of speed.
    ``dtype="double"`` computes in double from the same IR (symbol ``<stem>_double`` by
    default, libm's double functions).
    """
    from exporter.frontends.keras import load_keras

    math = resolve_math(math, dtype)
    check_real(dtype, check_math(math))
    symbol = check_symbol(name) if name else default_symbol(model, dtype)
    return Export(load_keras(model), symbol, math, dtype)
