"""Compile C (ours or a peer's) with given flags and time it with the C driver, on one pinned core."""

from __future__ import annotations

import hashlib
import resource
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLAG_SETS = {
    "-O3 -std=c99 (Lamarr)": ["-std=c99", "-O3"],
    "-O2 -std=c99 (PID models)": ["-std=c99", "-O2"],
    "-O3 -std=c99 -march=native": ["-std=c99", "-O3", "-march=native"],
}
LAMARR = "-O3 -std=c99 (Lamarr)"
SPREAD = 3  # driver runs each C figure's passes are spread over


@dataclass
class Timing:
    row_ns: float  # best pass, per row, one call per row
    batch_ns: float | None  # best pass, per row, through SYMBOL_batch, if there is one
    compile_s: float  # 0 when an earlier round compiled the same source


def compile_object(source: Path, flags: list[str], obj: Path, cxx: bool = False) -> float:
    """Compile ``source`` to ``obj``; returns the compiler's CPU seconds (user + system: a busy
    machine does not inflate them)."""
    compiler = ["g++", "-x", "c++"] if cxx else ["gcc"]
    flags = [f for f in flags if not (cxx and f.startswith("-std="))]
    cmd = [*compiler, *flags, "-c", str(source), "-o", str(obj)]
    start = children_cpu_s()
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return children_cpu_s() - start


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_driver(
    obj: Path,
    symbol: str,
    n_in: int,
    n_out: int,
    batch: bool,
    rows: int,
    repeats: int,
    cxx: bool = False,
    real: str = "float",
) -> dict[str, float]:
    """Link the driver with ``obj`` (a C or C++ object defining ``symbol``), run it, parse its best passes.
    The ``repeats`` passes are spread over ``SPREAD`` runs of the driver, the best pass of all kept:
    on a machine shared with other jobs a burst of their load then slows some runs, not all passes."""
    exe = obj.with_suffix(".bench")
    defines = [f"-DMODEL={symbol}", f"-DN_IN={n_in}", f"-DN_OUT={n_out}", f"-DREAL={real}"]
    defines += ["-DBATCH"] if batch else []
    linker = "g++" if cxx else "gcc"
    driver = obj.with_name(f"driver_{hashlib.sha1(' '.join(defines).encode()).hexdigest()[:12]}.o")
    if not driver.exists():  # the same driver for every build of a model, and in every round
        compile_driver = ["gcc", "-std=c99", "-O2", *defines, "-c", str(HERE / "driver.c"), "-o", str(driver)]
        subprocess.run(compile_driver, check=True)
    subprocess.run([linker, str(driver), str(obj), "-o", str(exe), "-lm"], check=True)
    best: dict[str, float] = {}
    for _ in range(SPREAD):
        passes = str(-(-repeats // SPREAD))
        out = subprocess.run([str(exe), str(rows), passes], capture_output=True, text=True, check=True).stdout
        for what, ns in (line.split()[:2] for line in out.splitlines()):
            if what in ("row", "batch"):
                best[what] = min(float(ns), best.get(what, float("inf")))
    return best


def time_c(
    source: Path,
    symbol: str,
    n_in: int,
    n_out: int,
    flags: list[str],
    *,
    batch: bool,
    rows: int,
    repeats: int,
    real: str = "float",
) -> Timing:
    cxx = source.suffix == ".cpp"
    obj, seconds = object_of(source, flags)
    best = run_driver(obj, symbol, n_in, n_out, batch, rows, repeats, cxx, real)
    return Timing(best["row"], best.get("batch"), seconds)


def object_of(source: Path, flags: list[str]) -> tuple[Path, float]:
    """``source`` compiled with ``flags`` (C++ for a .cpp file), and the compiler's CPU seconds: 0 when an
    earlier round compiled the same source with the same flags (a later round times the same code)."""
    key = hashlib.sha1(source.read_bytes() + "\0".join(flags).encode()).hexdigest()[:12]
    obj = source.with_name(f"{source.stem}_{key}.o")
    return obj, 0.0 if obj.exists() else compile_object(source, flags, obj, source.suffix == ".cpp")


def peak_gflops(flags: list[str], workdir: Path) -> float:
    """Multiply-add throughput of one core for code compiled with ``flags`` (benchmarks/peak.c)."""
    return _measure("peak", flags, workdir)


def stream_gbs(flags: list[str], workdir: Path, n_bytes: int) -> float:
    """Read bandwidth of one core over ``n_bytes`` of floats that fit in L2, not L1 (benchmarks/stream.c)."""
    return _measure("stream", flags, workdir, str(n_bytes))


def _measure(program: str, flags: list[str], workdir: Path, *args: str) -> float:
    """Build benchmarks/<program>.c with ``flags``, run it, read the figure of its first line."""
    exe = workdir / f"{program}_{abs(hash(tuple(flags))) % 10**8}"
    subprocess.run(["gcc", *flags, str(HERE / f"{program}.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe), *args], capture_output=True, text=True, check=True).stdout
    return float(out.split()[1])
