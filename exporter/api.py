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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from exporter.backend import CSource, render
from exporter.backend.naming import check_symbol, symbol_from_stem
from exporter.errors import ExportError
from exporter.frontends.loaded import LoadedModel
from exporter.parity import DEFAULT_ATOL, DEFAULT_RTOL, DEFAULT_SAMPLES, ParityReport, check_parity, make_inputs
from exporter.toolchain import CompiledModel, build


@dataclass
class Export:
    """One model on its way to C: the loaded model, its symbol and its rendered source.

    ``c_edit`` is a test hook: it edits the C text before every compile (the production build and
    the trace builds alike), so a test can break one weight and check that the trace finds it.
    It never touches what ``write`` writes.
    """

    loaded: LoadedModel
    symbol: str
    source: CSource = field(init=False)
    c_edit: Callable[[str], str] | None = None

    def __post_init__(self) -> None:
        self.source = render(self.loaded.graph, self.symbol)

    @property
    def graph(self) -> Any:
        return self.loaded.graph

    def compile(self, workdir: str | os.PathLike[str] | None = None) -> CompiledModel:
        return self.compile_source(self.source, self.loaded.graph.n_outputs, workdir)

    def compile_source(
        self, source: CSource, n_outputs: int, workdir: str | os.PathLike[str] | None = None
    ) -> CompiledModel:
        """Compile a rendering of this model or of a part of it (``n_outputs`` wide), hook applied."""
        if self.c_edit is not None:
            source = replace(source, c=self.c_edit(source.c))
        return build(source, self.loaded.graph.n_inputs, n_outputs, Path(workdir) if workdir else None)

    def inputs(self, samples: int = DEFAULT_SAMPLES, user_rows: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        return make_inputs(self.loaded.graph.n_inputs, samples, seed, user_rows)

    def check(
        self,
        compiled: CompiledModel | None = None,
        inputs: np.ndarray | None = None,
        atol: float = DEFAULT_ATOL,
        rtol: float = DEFAULT_RTOL,
    ) -> ParityReport:
        """Parity of the compiled C against the framework; the report keeps the arrays for plots and the trace."""
        compiled = compiled or self.compile()
        rows = self.inputs() if inputs is None else inputs
        return check_parity(compiled, self.loaded.reference, rows, atol, rtol, self.loaded.framework)

    def final_source(self, report: ParityReport | None) -> CSource:
        """The source with the parity verdict in its banner (the code itself is unchanged)."""
        return render(self.loaded.graph, self.symbol, report.verdict() if report else "not checked")

    def files(self, c_path: str | os.PathLike[str], report: ParityReport | None = None) -> dict[Path, bytes]:
        """``c_path`` and the header beside it, with their contents: for ``write_atomically``, with other files."""
        c_path = Path(c_path)
        source = self.final_source(report)
        return {c_path: source.c.encode(), c_path.with_suffix(".h"): source.h.encode()}

    def write(self, c_path: str | os.PathLike[str], report: ParityReport | None = None) -> tuple[Path, Path]:
        """Write ``c_path`` and the header beside it; each appears whole or not at all."""
        c_path = Path(c_path)
        write_atomically(self.files(c_path, report))
        return c_path, c_path.with_suffix(".h")


def write_atomically(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary name first, then rename them all into place.

    A path that is a folder, or that another path needs as its folder, is refused before anything is
    written; any other failure to write is the user's to fix too (permissions, a full disk).
    """
    folders = {parent.resolve() for path in files for parent in path.parents}
    for path in files:
        if path.is_dir() or path.resolve() in folders:
            raise ExportError(f"{path}: is a folder (or must become one), cannot write the file there")
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            staged.append((tmp, path))
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as err:
        raise ExportError(f"{err.filename or 'output'}: cannot write ({err.strerror or err})") from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def default_symbol(model: Any) -> str:
    stem = Path(model).stem if isinstance(model, (str, os.PathLike)) else getattr(model, "name", "model")
    return symbol_from_stem(stem)


def export_keras(model: Any, name: str | None = None) -> Export:
    """Read a Keras model (``.keras``/``.h5`` path or live ``keras.Model``) into an ``Export``."""
    from exporter.frontends.keras import load_keras

    symbol = check_symbol(name) if name else default_symbol(model)
    return Export(load_keras(model), symbol)
