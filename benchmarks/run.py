"""Speed of the generated C against its peers, in one run on one pinned core.

    python benchmarks/run.py [--quick] [--rows N] [--repeats N] [--cpu K]

Builds the reference models (benchmarks/models.py), exports them with lamarr-export, and
measures per-row latency (one call per row, as Lamarr calls it) and batch throughput:
our C at Lamarr's flags (-O3 -std=c99), -O2 and -march=native (and --math libm, --dtype double),
timed by a C driver; scikinC's
C++ (Sequential twin, the only form it reads); keras2c's C; ONNX Runtime via tf2onnx; Keras
predict and model(x); numpy. Every figure is the median of repeated passes after a warm-up,
with its ratio to ours at Lamarr's flags on the same model. It also prints the FLOPs per row,
the compute limit measured on this core (benchmarks/peak.c), a verdict against the goals of
issue 6, and the export and compile time of a ~1M-parameter model. A peer that cannot be
installed or run is listed as unavailable, with the reason.
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
):
    os.environ.setdefault(_var, "1")  # one core: no thread pool fighting the pinned one
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the exporter, from a checkout
from cbench import FLAG_SETS, LAMARR, compile_object, peak_gflops, time_c  # noqa: E402
from models import build, flops_per_row  # noqa: E402
from peers import Result, keras2c, keras_peers, numpy_peer, onnxruntime_peer, scikinc  # noqa: E402

from exporter import export_keras  # noqa: E402
from exporter.parity import make_inputs  # noqa: E402

OURS = f"lamarr-export --math fast {LAMARR}"  # the reference of every ratio
GOAL_LIMIT_RATIO = 2.0  # within 2x of the compute limit
GOAL_SCIKINC_RATIO = 15.0  # 15-30x faster than scikinC
GOAL_EXPORT_S = 10.0  # export + compile of a 1M-parameter model


def pin(cpu: int | None) -> int:
    """Run this process (and the drivers it starts) on one core: the last allowed one by default."""
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


def ours(name: str, path: Path, workdir: Path, rows: int, repeats: int) -> list[Result]:
    """Our C: --math fast at every flag set, --math libm and --dtype double at Lamarr's flags."""
    variants = [("fast", "float", FLAG_SETS), ("libm", "float", {LAMARR: FLAG_SETS[LAMARR]})]
    variants.append(("libm", "double", {LAMARR: FLAG_SETS[LAMARR]}))
    results = []
    for math, dtype, flag_sets in variants:
        ex = export_keras(path, name=f"ours_{name}_{math}_{dtype}", math=math, dtype=dtype)
        c_file, _ = ex.write(workdir / f"{ex.symbol}.c")
        n_in, n_out = ex.graph.n_inputs, ex.graph.n_outputs
        label = f"lamarr-export --math {math}" + (" --dtype double" if dtype == "double" else "")
        for flags_label, flags in flag_sets.items():
            t = time_c(c_file, ex.symbol, n_in, n_out, flags, batch=True, rows=rows, repeats=repeats, real=dtype)
            results.append(Result(f"{label} {flags_label}", name, t.row_ns, t.batch_ns))
    return results


def attempt(label: str, model: str, fn, *args) -> list[Result]:
    try:
        return fn(*args)
    except Exception as err:  # a peer failing must not stop the benchmark
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        return [Result(label, model, unavailable=f"{type(err).__name__}: {reason}"[:150])]


def export_and_compile_times(path: Path, workdir: Path) -> tuple[int, float, float, float]:
    """(parameters, export s, compile -O3 s, compile -O2 s) of one model, --no-check style."""
    start = time.perf_counter()
    ex = export_keras(path, name="wide")
    c_file, _ = ex.write(workdir / "wide.c")
    export_s = time.perf_counter() - start
    o3 = compile_object(c_file, FLAG_SETS[LAMARR], workdir / "wide_o3.o")
    o2 = compile_object(c_file, ["-std=c99", "-O2"], workdir / "wide_o2.o")
    return ex.graph.n_params, export_s, o3, o2


def fmt_us(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.2f}" if ns < 1e7 else f"{ns / 1000:.0f}"


def ratio(ns: float | None, ref: float | None) -> str:
    return "-" if ns is None or not ref else f"{ns / ref:.1f}x" if ns / ref >= 10 else f"{ns / ref:.2f}x"


def table(results: list[Result]) -> str:
    ours_lamarr = [r for r in results if r.name == OURS]
    reference = {(r.model, "row"): r.row_ns for r in ours_lamarr}
    reference.update({(r.model, "batch"): r.batch_ns for r in ours_lamarr})
    lines = [f"{'implementation':<64} {'model':<10} {'us/row':>9} {'vs ours':>8} {'batch us/row':>13} {'vs ours':>8}"]
    for r in results:
        if r.unavailable:
            lines.append(f"{r.name:<64} {r.model:<10} unavailable: {r.unavailable}")
            continue
        lines.append(
            f"{r.name:<64} {r.model:<10} {fmt_us(r.row_ns):>9} {ratio(r.row_ns, reference.get((r.model, 'row'))):>8} "
            f"{fmt_us(r.batch_ns):>13} {ratio(r.batch_ns, reference.get((r.model, 'batch'))):>8}"
            + (f"  ({r.note})" if r.note else "")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run: few rows and repeats, a small wide model")
    p.add_argument("--rows", type=int, default=None, help="distinct input rows per timed pass (default 2000)")
    p.add_argument("--repeats", type=int, default=None, help="timed passes per figure (default 21)")
    p.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last one allowed)")
    args = p.parse_args(argv)
    rows = args.rows or (200 if args.quick else 2000)
    repeats = args.repeats or (3 if args.quick else 21)
    cpu = pin(args.cpu)
    print(f"lamarr-export benchmark: {platform.processor() or platform.machine()}, {cpu_name()}, pinned to core {cpu}")
    print(f"{rows} rows per pass, median of {repeats} passes after a warm-up; times in microseconds per row\n")

    from exporter.frontends.keras import _import_keras
    from exporter.frontends.keras.quiet import quiet_stderr

    with quiet_stderr():  # TensorFlow's C++ start-up lines
        import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)  # before TensorFlow runs anything
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras = _import_keras()

    with tempfile.TemporaryDirectory(prefix="lamarr-bench-") as tmp:
        workdir = Path(tmp)
        models = build(workdir, args.quick)
        inputs = make_inputs(12, rows)[:rows]
        results: list[Result] = []
        for name in ("residual", "sequential"):
            results += ours(name, models[name][0], workdir, rows, repeats)
        seq = models["sequential"][1]
        results += attempt("scikinC", "sequential", scikinc, seq, "sequential", workdir, rows, repeats)
        results += attempt("keras2c", "sequential", keras2c, seq, "sequential", workdir, rows, repeats)
        for name in ("residual", "sequential"):
            model = models[name][1]
            graph = export_keras(model, name="np").graph
            results += attempt("ONNX Runtime (tf2onnx)", name, onnxruntime_peer, model, name, workdir, inputs, repeats)
            results += attempt("Keras", name, keras_peers, model, name, workdir, inputs, repeats)
            results += attempt("numpy", name, numpy_peer, graph, name, inputs, repeats)
        print(table(results))

        flops = flops_per_row(models["residual"][1])
        peak_sse = peak_gflops(FLAG_SETS[LAMARR], workdir)
        peak_native = peak_gflops(FLAG_SETS["-O3 -std=c99 -march=native"], workdir)
        wide = export_and_compile_times(models["wide"][0], workdir)
    verdict(results, flops, peak_sse, peak_native, wide, keras.__version__)
    return 0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def verdict(
    results: list[Result], flops: int, peak_sse: float, peak_native: float, wide: tuple, keras_version: str
) -> None:
    def find(prefix: str, model: str) -> Result | None:
        return next((r for r in results if r.name.startswith(prefix) and r.model == model and not r.unavailable), None)

    ours_o3, ours_seq = find(OURS, "residual"), find(OURS, "sequential")
    ours_native = find("lamarr-export --math fast -O3 -std=c99 -march=native", "residual")
    sk = find("scikinC", "sequential")
    limit_sse_ns = flops / peak_sse  # GFLOP/s = FLOP/ns
    limit_native_ns = flops / peak_native
    print(f"\nFLOPs per row (residual model, Dense multiplies and adds): {flops:,}")
    print(
        f"compute limit of this core, measured by benchmarks/peak.c: {peak_sse:.1f} GFLOP/s with Lamarr's flags "
        f"(SSE2) -> {limit_sse_ns / 1000:.2f} us/row; {peak_native:.1f} GFLOP/s with -march=native -> "
        f"{limit_native_ns / 1000:.2f} us/row"
    )
    print("\nverdict:")
    if ours_o3:
        r = ours_o3.row_ns / limit_sse_ns
        ok = "met" if r <= GOAL_LIMIT_RATIO else "NOT met"
        print(f"  per row at Lamarr's flags: {ours_o3.row_ns / 1000:.2f} us = {r:.2f}x the limit ({ok}: within 2x)")
        if ours_o3.batch_ns:
            r = ours_o3.batch_ns / limit_sse_ns
            print(f"  batch at Lamarr's flags:   {ours_o3.batch_ns / 1000:.2f} us/row = {r:.2f}x the limit")
    if ours_native:
        print(
            f"  -march=native: {ours_native.row_ns / 1000:.2f} us/row = {ours_native.row_ns / limit_native_ns:.2f}x "
            f"its limit; batch {(ours_native.batch_ns or 0) / 1000:.2f} us/row"
        )
    if sk and ours_seq:
        r = sk.row_ns / ours_seq.row_ns
        ok = "met" if r >= GOAL_SCIKINC_RATIO else "NOT met"
        print(f"  vs scikinC (same Sequential model, -O3): {r:.1f}x faster per row ({ok}: 15-30x)")
    else:
        print("  vs scikinC: not measured (scikinC unavailable)")
    params, export_s, o3, o2 = wide
    total = export_s + o3
    ok = "met" if total < GOAL_EXPORT_S else "NOT met"
    print(
        f"  {params:,}-parameter model: export {export_s:.2f} s + compile {o3:.2f} s (-O3) = {total:.2f} s "
        f"({ok}: under 10 s); -O2 compile {o2:.2f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
