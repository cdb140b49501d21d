"""ONNX files against ONNX Runtime's C API on the same file (issue 26): per row and batch, one thread.

- ``mlp.onnx``: the PyTorch MLP fixture (tests/fixtures/onnx/mlp.onnx: 12 -> Linear 64, LayerNorm, GELU
  (``Erf`` form), Linear 32, LayerNorm, GELU -> Linear 4, as ``torch.onnx.export`` wrote it).
- ``eff.onnx`` (full runs): the efficiency network written as ONNX nodes (``peers.onnx_from_graph``: Gemm,
  Tanh, the residual Adds, Softmax), exported by lamarr-export from that file rather than from Keras.

Ours is the file exported by lamarr-export (the dispatching C at Lamarr's flags, timed by the C driver);
ONNX Runtime's is benchmarks/ort_capi.c on the same file. Before either is timed, ours is compared with
ONNX Runtime's outputs on the same rows (within 1e-4 of the largest output: the parity check of an export
is the real one; this only shows that both run the same model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from cbench import FLAG_SETS, LAMARR, time_c
from peers import Result, onnx_from_graph, ort_capi

from exporter import export_chain

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "tests" / "fixtures" / "onnx" / "mlp.onnx"
OURS = f"lamarr-export --math fast {LAMARR}"  # as benchmarks/run.py names it: the reference of every ratio
GOAL_ROW = 2.0  # per row on the MLP: ONNX Runtime's C API time / ours, at least


def onnx_files(workdir: Path, graph: Any, quick: bool) -> dict[str, Path]:
    """The files by benchmark name: the MLP fixture, and (not ``quick``) the efficiency net as ONNX."""
    files = {"mlp.onnx": MLP}
    if not quick:
        path = workdir / "eff.onnx"
        if not path.exists():
            path.write_bytes(onnx_from_graph(graph))
        files["eff.onnx"] = path
    return files


CHECKED: dict[str, float] = {}  # by benchmark name: the largest relative difference of ONNX Runtime from our C


def onnx_file_results(
    attempt: Any, workdir: Path, graph: Any, rows: np.ndarray, repeats: int, quick: bool
) -> list[Result]:
    """One round of the ONNX rows of the table; ``attempt`` turns a failing side into an "unavailable" row."""
    results: list[Result] = []
    for name, path in onnx_files(workdir, graph, quick).items():
        exports: dict[str, Any] = {}
        results += attempt(OURS, name, ours, path, name, workdir, rows, repeats, exports)
        if name in exports:
            results += attempt("ONNX Runtime C API", name, peer, path, name, exports[name], workdir, rows, repeats)
    return results


def ours(path: Path, name: str, workdir: Path, rows: np.ndarray, repeats: int, exports: dict) -> list[Result]:
    """Our C of the file at Lamarr's flags (the export kept in ``exports`` for the peer's check)."""
    ex = exports[name] = export_chain(path, name=f"ours_{path.stem}")
    c_file, _ = ex.write(workdir / f"{ex.symbol}.c")
    n_in, n_out = ex.chain.n_inputs, ex.chain.n_outputs
    t = time_c(c_file, ex.symbol, n_in, n_out, FLAG_SETS[LAMARR], batch=True, rows=len(rows), repeats=repeats)
    return [Result(OURS, name, t.row_ns, t.batch_ns, "exported from the ONNX file")]


def peer(path: Path, name: str, ex: Any, workdir: Path, rows: np.ndarray, repeats: int) -> list[Result]:
    """ONNX Runtime's C API on the same file, its outputs compared with our C's (in the first round)."""
    version, row_ns, batch_ns, got = ort_capi(path, ex.chain.n_inputs, ex.chain.n_outputs, rows, workdir, repeats)
    if name not in CHECKED:
        folder = workdir / f"check_{path.stem}"
        folder.mkdir(exist_ok=True)
        mine = ex.compile(folder, one_row=True)(np.asarray(rows, dtype=np.float32))
        CHECKED[name] = float(np.max(np.abs(got - mine)) / max(1.0, float(np.max(np.abs(got)))))
    if not CHECKED[name] <= 1e-4:
        raise RuntimeError(f"ONNX Runtime's outputs differ from our C's by up to {CHECKED[name]:.3g} (relative)")
    note = f"C API, one thread, the same file; |ORT - ours| <= {CHECKED[name]:.1g}"
    return [Result(f"ONNX Runtime {version} C API", name, row_ns, batch_ns, note)]


def onnx_verdict(results: list[Result]) -> None:
    """Issue 26's goal: per row on the MLP at least 2x faster than ONNX Runtime's C API on the same file."""
    print("\nverdict, ONNX files (issue 26; ONNX Runtime's C API on the same file, one thread):")
    for name in ("mlp.onnx", "eff.onnx"):
        mine = next((r for r in results if r.model == name and r.name == OURS and not r.unavailable), None)
        ort = next((r for r in results if r.model == name and "C API" in r.name and not r.unavailable), None)
        if mine is None or ort is None or not (mine.row_ns and ort.row_ns and mine.batch_ns and ort.batch_ns):
            if name == "mlp.onnx":
                print(f"  {name}: not measured (ours or ONNX Runtime unavailable)")
            continue
        r = ort.row_ns / mine.row_ns
        goal = f" ({'met' if r >= GOAL_ROW else 'NOT met'}: at least {GOAL_ROW:.0f}x)" if name == "mlp.onnx" else ""
        print(
            f"  {name}: per row ours {mine.row_ns / 1000:.2f} us, ONNX Runtime {ort.row_ns / 1000:.2f} us: "
            f"{r:.1f}x faster{goal}; batch ours {mine.batch_ns / 1000:.2f} us/row, ONNX Runtime "
            f"{ort.batch_ns / 1000:.2f}: ONNX Runtime / ours = {ort.batch_ns / mine.batch_ns:.2f}"
        )
