"""Compile generated C into a shared library the way Lamarr does, and call it from numpy via cffi."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from exporter.backend import CSource
from exporter.common.errors import ExportError

LAMARR_FLAGS = ["-std=c99", "-O3"]
SHARED_FLAGS = ["-shared", "-fPIC"]


class CompileError(Exception):
    """The C compiler rejected generated code: a bug in the exporter, reported with the compiler's words."""


def compile_command(c_file: Path, so_file: Path, defines: tuple[str, ...] = ()) -> list[str]:
    """``$CC $CFLAGS -shared -fPIC file.c -o file.so -lm``; CC defaults to cc, CFLAGS to Lamarr's."""
    cc = shlex.split(os.environ.get("CC") or "cc")
    cflags = os.environ.get("CFLAGS")
    flags = ["-std=c99", *shlex.split(cflags)] if cflags else LAMARR_FLAGS
    return [*cc, *flags, *(f"-D{d}" for d in defines), *SHARED_FLAGS, str(c_file), "-o", str(so_file), "-lm"]


def running_isa_only(source: CSource) -> tuple[str, ...]:
    """The defines that compile only the instruction-set variant this CPU runs: a third of the compile
    for a dispatching file, and the very code its dispatch would pick here."""
    from exporter.backend.isa import running_level

    return tuple(f"{symbol}_ISA={running_level()}" for symbol in source.isa_symbols)


def compile_shared(source: CSource, workdir: Path, one_isa: bool = False, one_row: bool = False) -> Path:
    """``one_row``: ``SYMBOL_batch`` without its blocks of rows (``-DSYMBOL_ONE_ROW``), for a check that
    calls one row at a time: half the code to compile, the same bits."""
    c_file = workdir / f"{source.symbol}.c"
    so_file = workdir / f"lib{source.symbol}.so"
    c_file.write_text(source.c)
    (workdir / f"{source.symbol}.h").write_text(source.h)
    defines = (*(running_isa_only(source) if one_isa else ()), *(f"{s}_ONE_ROW" for s in source.row_symbols if one_row))
    return compile_files(c_file, so_file, defines)


def compile_files(c_file: Path, so_file: Path, defines: tuple[str, ...] = ()) -> Path:
    """``compile_command`` run: the library, or ``CompileError`` with the compiler's words."""
    cmd = compile_command(c_file, so_file, defines)
    if shutil.which(cmd[0]) is None:
        raise ExportError(f"C compiler {cmd[0]!r} not found (set CC, or use --no-check)")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise CompileError(f"{shlex.join(cmd)} failed:\n{result.stderr}")
    return so_file


@dataclass
class CompiledModel:
    """A loaded shared library exposing one model function to numpy."""

    symbol: str
    library: Path
    n_inputs: int
    n_outputs: int

    keepalive: object = None  # e.g. the temporary folder holding the library
    real: str = "float"  # the C type of the buffers: "float" or "double"
    n_noise: int = 0  # a generator's noise values per row: its functions take `random` too

    def __post_init__(self) -> None:
        import cffi

        t = self.real
        self._dtype = np.float64 if t == "double" else np.float32
        self._ffi = cffi.FFI()
        noise = f", const {t} *random" if self.n_noise else ""
        self._ffi.cdef(
            f"{t} *{self.symbol}({t} *output, const {t} *input{noise});\n"
            f"{t} *{self.symbol}_batch({t} *output, const {t} *input{noise}, size_t n);"
        )
        self._lib = self._ffi.dlopen(str(self.library))
        self._fn = getattr(self._lib, self.symbol)
        self._batch = getattr(self._lib, f"{self.symbol}_batch")

    def sibling(self, symbol: str, n_inputs: int, n_outputs: int, n_noise: int = 0) -> CompiledModel:
        """Another function of the same library (a chain's ``SYMBOL_preprocess``, ``SYMBOL_inverse``...)."""
        return CompiledModel(symbol, self.library, n_inputs, n_outputs, keepalive=self, real=self.real, n_noise=n_noise)

    def _noise(self, noise: np.ndarray | None, n_rows: int) -> np.ndarray | None:
        if not self.n_noise:
            if noise is not None:
                raise ValueError(f"{self.symbol} takes no noise")
            return None
        if noise is None:
            raise ValueError(f"{self.symbol} is a generator: give {self.n_noise} noise values per row")
        noise = np.ascontiguousarray(noise, dtype=self._dtype).reshape(-1, self.n_noise)
        if noise.shape[0] != n_rows:
            raise ValueError(f"{noise.shape[0]} noise rows for {n_rows} input rows")
        return noise

    def __call__(self, rows: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """Evaluate row by row, exactly as Lamarr calls it (one row per call)."""
        rows = np.ascontiguousarray(rows, dtype=self._dtype).reshape(-1, self.n_inputs)
        random = self._noise(noise, rows.shape[0])
        out = np.empty((rows.shape[0], self.n_outputs), dtype=self._dtype)
        self._each_row(out, self.n_outputs, rows, random)
        return out

    def _each_row(self, out: np.ndarray, out_stride: int, rows: np.ndarray, random: np.ndarray | None) -> None:
        """One call per row, its pointers stepped through the arrays (one buffer object per array, not per row)."""
        ffi, fn, t = self._ffi, self._fn, f"{self.real}[]"
        o, x, n_in = ffi.from_buffer(t, out), ffi.from_buffer(t, rows), rows.shape[1]
        if random is None:
            for i in range(rows.shape[0]):
                fn(o + i * out_stride, x + i * n_in)
        else:
            r = ffi.from_buffer(t, random)
            for i in range(rows.shape[0]):
                fn(o + i * out_stride, x + i * n_in, r + i * self.n_noise)

    def batch(self, rows: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """Evaluate all rows with one call of ``SYMBOL_batch`` (same bits as row by row, faster)."""
        rows = np.ascontiguousarray(rows, dtype=self._dtype).reshape(-1, self.n_inputs)
        random = self._noise(noise, rows.shape[0])
        out = np.empty((rows.shape[0], self.n_outputs), dtype=self._dtype)
        t = f"{self.real}[]"
        extra = () if random is None else (self._ffi.from_buffer(t, random),)
        self._batch(self._ffi.from_buffer(t, out), self._ffi.from_buffer(t, rows), *extra, rows.shape[0])
        return out

    def call_in_place(self, rows: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """Evaluate with output == input, in a buffer of max(inputs, outputs) floats per row."""
        rows = np.asarray(rows, dtype=self._dtype).reshape(-1, self.n_inputs)
        random = self._noise(noise, rows.shape[0])
        buf = np.zeros((rows.shape[0], max(self.n_inputs, self.n_outputs)), dtype=self._dtype)
        buf[:, : self.n_inputs] = rows
        self._each_row(buf, buf.shape[1], buf, random)
        return buf[:, : self.n_outputs].copy()


def build(
    source: CSource,
    n_inputs: int,
    n_outputs: int,
    workdir: Path | None = None,
    n_noise: int = 0,
    one_isa: bool = False,
    one_row: bool = False,
) -> CompiledModel:
    """Compile ``source`` (into ``workdir`` or a fresh temporary folder) and load it; ``one_isa``: only the
    variant this CPU runs (for a check; a library to ship holds them all); ``one_row``: see ``compile_shared``."""
    if workdir is not None:
        library = compile_shared(source, Path(workdir), one_isa, one_row)
        return CompiledModel(source.symbol, library, n_inputs, n_outputs, real=source.real, n_noise=n_noise)
    tmp = tempfile.TemporaryDirectory(prefix="lamarr-export-")
    library = compile_shared(source, Path(tmp.name), one_isa, one_row)
    return CompiledModel(source.symbol, library, n_inputs, n_outputs, keepalive=tmp, real=source.real, n_noise=n_noise)
