"""Speed of the generated C against its peers, in one run on one pinned core.

    python benchmarks/run.py [--quick] [--rows N] [--repeats N] [--cpu K] [--trees | --onnx | --shapes | --read]

Builds the reference models (benchmarks/models.py), exports them with lamarr-export, and
measures per-row latency (one call per row, as Lamarr calls it) and batch throughput:
our C at Lamarr's flags (-O3 -std=c99: the file picks its instruction set at run time), each
variant forced (-DSYMBOL_ISA=...), the single-ISA file (--dispatch none) at Lamarr's flags, -O2
and -march=native, --math libm and --dtype double, timed by a C driver; scikinC's C++ (Sequential
twin, the only form it reads); keras2c's C; ONNX Runtime through its C API (benchmarks/ort_capi.c) and
through Python via tf2onnx; ONNX files (benchmarks/onnx_files.py, issue 26: PyTorch's MLP fixture)
exported by lamarr-export against ONNX Runtime's C API on the same file; shaped networks (benchmarks/shapes.py,
issue 29: a Conv1D stack, a GRU, a Transformer encoder) against ONNX Runtime's C API on the same weights;
Keras predict and model(x); numpy;
for tree models (benchmarks/trees.py, the goals of issue 28) tl2cgen's C, m2cgen's C, scikinC's C++ and
scikit-learn's predict_proba (``--trees``: the tree models alone, ours in every layout); for XGBoost and
LightGBM files (benchmarks/tree_files.py) tl2cgen's C.
Every figure is the best of repeated passes after a warm-up, in CPU time of the timing thread (time another
process takes on the pinned core is not counted), taken in three rounds one after the other (all timings, then
all again), so that a burst of other load does not decide a ratio, with its ratio to
ours at Lamarr's flags on the same model. It also prints the FLOPs per row, the compute limit of
this core for each variant (benchmarks/peak.c) and the time one core takes to read the residual model's weights once
(benchmarks/stream.c over the same bytes: what bounds one call per row; timed in every round right after ours, so
that both see the same load), the verdicts against the goals of issues 15 and 28, and the
export and compile time of a ~1M-parameter model. ``--quick`` measures only what the verdicts read
(no Keras, no other flag sets, no 1M-parameter model), with fewer passes over the same rows: its
verdicts are those of the full run. Keras runs on TensorFlow when a peer needs it (Keras' own timings,
tf2onnx), otherwise on the backend the exporter picks. A peer that
cannot be installed or run is listed as unavailable, with the reason.
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

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from importlib.util import find_spec  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the exporter, from a checkout
from cbench import FLAG_SETS, LAMARR, compile_object, peak_gflops, stream_gbs, time_c  # noqa: E402
from models import EXAMPLE, build, flops_per_row, residual_model  # noqa: E402
from onnx_files import onnx_file_results, onnx_verdict  # noqa: E402
from peers import (  # noqa: E402
    Result,
    keras2c,
    keras_peers,
    numpy_peer,
    onnxruntime_capi_peer,
    onnxruntime_peer,
    scikinc,
)
from shapes import shape_results, shapes_verdict  # noqa: E402
from tree_files import tree_file_results  # noqa: E402
from trees import SMOKE, tree_results, tree_verdict  # noqa: E402

from exporter import export_keras  # noqa: E402
from exporter.backend.isa import VARIANTS, Variant, missing_on_this_cpu  # noqa: E402
from exporter.check.inputs import make_inputs  # noqa: E402

OURS = f"lamarr-export --math fast {LAMARR}"  # the reference of every ratio
GOAL_LIMIT_RATIO = 1.5  # per row within 1.5x of the compute limit of the variant that runs
GOAL_READ_RATIO = 1.2  # per row within 1.2x of reading its weights once (issue 28)
READ = "benchmarks/stream.c: the weights read once"  # a row of the table: the read's time, per row
GOAL_SCIKINC_RATIO = 25.0  # per row at least 25x faster than scikinC
GOAL_ORT_RATIO = {"fast": 0.95, "fma": 1.0}  # batch: ONNX Runtime's C API time / ours, per --math (issue 28)
FMA = OURS.replace("--math fast", "--math fma")
GOAL_EXPORT_S = 10.0  # export + compile of a 1M-parameter model
ROUNDS = 3  # every timing but Keras' runs in this many rounds, one after the other; each figure keeps its
# best round, so that a burst of other load on a shared machine does not decide a ratio of the verdict


def pin(cpu: int | None) -> int:
    """Run this process (and the drivers it starts) on one core: the last allowed one by default."""
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


def runnable() -> list[Variant]:
    """The variants of the generated file this CPU can run, best last: the last is the one chosen."""
    return [v for v in VARIANTS["auto"] if not missing_on_this_cpu(v)]


def forced(variant: Variant) -> str:
    return f"{OURS} {variant.name} forced"


def ours(name: str, path: Path, workdir: Path, rows: int, repeats: int, quick: bool) -> list[Result]:
    """Our C: the dispatching file at Lamarr's flags and with each variant forced; the single-ISA
    file (--dispatch none) at every flag set; --math fma, --math libm and --dtype double at Lamarr's flags.
    ``quick``: what the verdicts read only (the dispatching and single-ISA files of the residual model at
    Lamarr's flags, and its --math fma file; the sequential twin's for scikinC)."""
    lamarr = {LAMARR: FLAG_SETS[LAMARR]}
    builds: list[tuple[str, str, str, dict[str, list[str]]]] = [("fast", "float", "auto", lamarr)]
    if not quick or name == "residual":
        builds.append(("fma", "float", "auto", lamarr))
    if not quick or name == "residual":
        builds.append(("fast", "float", "none", lamarr if quick else FLAG_SETS))
    if not quick:
        builds += [("libm", "float", "auto", lamarr), ("libm", "double", "auto", lamarr)]
    results = []
    for math, dtype, dispatch, flag_sets in builds:
        ex = export_keras(
            path, name=f"ours_{name}_{math}_{dtype}_{dispatch}", math=math, dtype=dtype, dispatch=dispatch
        )
        c_file, _ = ex.write(workdir / f"{ex.symbol}.c")
        n_in, n_out = ex.graph.n_inputs, ex.graph.n_outputs
        label = f"lamarr-export --math {math}" + (" --dtype double" if dtype == "double" else "")
        label += " --dispatch none" if dispatch == "none" else ""
        for flags_label, flags in flag_sets.items():
            t = time_c(c_file, ex.symbol, n_in, n_out, flags, batch=True, rows=rows, repeats=repeats, real=dtype)
            results.append(Result(f"{label} {flags_label}", name, t.row_ns, t.batch_ns))
        if (math, dispatch) == ("fast", "auto") and (name == "residual" or not quick):
            for v in runnable():
                flags = [*FLAG_SETS[LAMARR], f"-D{ex.symbol}_ISA={v.level}"]
                t = time_c(c_file, ex.symbol, n_in, n_out, flags, batch=True, rows=rows, repeats=repeats, real=dtype)
                results.append(Result(forced(v), name, t.row_ns, t.batch_ns))
    return results


def attempt(label: str, model: str, fn, *args) -> list[Result]:
    try:
        return fn(*args)
    except Exception as err:  # a peer failing must not stop the benchmark
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        return [Result(label, model, unavailable=f"{type(err).__name__}: {reason}"[:150])]


def export_and_compile_times(path: Path, workdir: Path) -> tuple[int, float, float, float]:
    """(parameters, export s, compile -O3 s, compile -O2 s) of one model, --no-check style, in CPU seconds."""
    start = time.process_time()
    ex = export_keras(path, name="wide")
    c_file, _ = ex.write(workdir / "wide.c")
    export_s = time.process_time() - start
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
    p.add_argument("--quick", action="store_true", help="fewer passes, only what the verdicts read")
    p.add_argument("--rows", type=int, default=None, help="distinct input rows per timed pass (default 2000)")
    p.add_argument("--repeats", type=int, default=None, help="timed passes per figure (default 21)")
    p.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last one allowed)")
    p.add_argument(
        "--smoke",
        type=int,
        metavar="WIDTH",
        default=None,
        help="the residual model at this width, random weights, and the tree models with 100 times fewer trees "
        "(a check that every part runs; its numbers say nothing about the shipped models)",
    )
    p.add_argument("--trees", action="store_true", help="the tree models alone (issue 28), ours in every layout")
    p.add_argument("--onnx", action="store_true", help="the ONNX files alone (issue 26) against ONNX Runtime's C API")
    p.add_argument(
        "--shapes", action="store_true", help="the shaped models alone (issue 29: Conv1D, GRU, Transformer encoder)"
    )
    p.add_argument(
        "--read", action="store_true", help="one call per row against the read of its weights alone (issue 28)"
    )
    args = p.parse_args(argv)
    rows = args.rows or 2000  # the same rows in --quick: ONNX Runtime's per-call cost must weigh the same
    repeats = args.repeats or (5 if args.quick else 21)
    cpu = pin(args.cpu)
    print(f"lamarr-export benchmark: {platform.processor() or platform.machine()}, {cpu_name()}, pinned to core {cpu}")
    n_rounds = 1 if args.smoke else ROUNDS  # a smoke run's numbers say nothing: every part once
    per_round = max(1, -(-repeats // n_rounds))
    print(
        f"{rows} rows per pass, best of {n_rounds} rounds of {per_round} passes after a warm-up (CPU time); "
        "microseconds per row\n"
    )

    shrink = SMOKE if args.smoke else 10 if args.quick else 1  # the tree models' (benchmarks/trees.py)
    if args.trees:
        return trees_only(rows, per_round, n_rounds, shrink)
    if args.onnx:
        return onnx_only(rows, per_round, n_rounds, args.smoke)
    if args.shapes:
        return shapes_only(rows, per_round, n_rounds, args.smoke is not None)
    if args.read:
        return read_only(rows, per_round, n_rounds, args.smoke)
    keras_on_tensorflow(args.quick)

    with tempfile.TemporaryDirectory(prefix="lamarr-bench-") as tmp:
        workdir = Path(tmp)
        models = build(workdir, args.smoke)
        inputs = make_inputs(12, rows)[:rows]
        flops = flops_per_row(models["residual"][1])
        before = machine_limits(workdir)
        rounds = [
            measure(models, workdir, inputs, per_round, args.quick, shrink, keras=k == 0, smoke=args.smoke is not None)
            for k in range(n_rounds)
        ]
        results = best_of(rounds)
        print(table(results))

        after = machine_limits(workdir)
        peaks = {name: max(before[name], after[name]) for name in before}
        wide = None if args.quick else export_and_compile_times(models["wide"][0], workdir)
    verdict(results, flops, peaks, wide)
    onnx_verdict(results)
    shapes_verdict(results)
    tree_verdict(results)
    return 0


def shapes_only(rows: int, repeats: int, n_rounds: int, smoke: bool) -> int:
    """``--shapes``: the shaped models' rounds (ours and ONNX Runtime's C API), table and verdict alone."""
    from exporter.frontends.keras.load import import_keras

    import_keras()
    with tempfile.TemporaryDirectory(prefix="lamarr-bench-") as tmp:
        rounds = [shape_results(attempt, Path(tmp), rows, repeats, smoke) for _ in range(n_rounds)]
    results = best_of(rounds)
    print(table(results))
    shapes_verdict(results)
    return 0


def read_only(rows: int, repeats: int, n_rounds: int, smoke: int | None) -> int:
    """``--read``: one call per row of the efficiency network (the dispatching file at Lamarr's flags) and the read of
    its weights' bytes (benchmarks/stream.c), one after the other in each round, each keeping its best round."""
    from exporter.frontends.keras.load import import_keras

    keras = import_keras()
    with tempfile.TemporaryDirectory(prefix="lamarr-bench-") as tmp:
        workdir = Path(tmp)
        model = keras.saving.load_model(EXAMPLE, compile=False) if smoke is None else residual_model(smoke)
        ex = export_keras(model, name="ours_residual")
        c_file, _ = ex.write(workdir / f"{ex.symbol}.c")
        n_in, n_out, flops = ex.graph.n_inputs, ex.graph.n_outputs, flops_per_row(model)
        rounds = []
        for _ in range(n_rounds):
            t = time_c(c_file, ex.symbol, n_in, n_out, FLAG_SETS[LAMARR], batch=False, rows=rows, repeats=repeats)
            rounds.append([Result(OURS, "residual", t.row_ns), read_result(workdir, flops)])
    results = best_of(rounds)
    print(table(results))
    print()
    read_verdict(results)
    return 0


def trees_only(rows: int, repeats: int, n_rounds: int, shrink: int) -> int:
    """``--trees``: the tree models' rounds (scikit-learn's, ours in every layout, then XGBoost's and LightGBM's
    files), table and verdict alone."""
    with tempfile.TemporaryDirectory(prefix="lamarr-bench-") as tmp:
        workdir = Path(tmp)
        rounds = [
            tree_results(attempt, workdir, shrink, rows, repeats, layouts=True)
            + tree_file_results(attempt, workdir, shrink, rows, repeats)
            for _ in range(n_rounds)
        ]
    results = best_of(rounds)
    print(table(results))
    tree_verdict(results)
    return 0


def onnx_only(rows: int, repeats: int, n_rounds: int, smoke: int | None) -> int:
    """``--onnx``: the ONNX files' rounds (the MLP fixture and the efficiency net as ONNX), table and verdict alone."""
    from exporter.frontends.keras.load import import_keras

    import_keras()
    model = str(EXAMPLE) if smoke is None else residual_model(smoke)
    graph = export_keras(model, name="np").graph
    inputs = make_inputs(12, rows)[:rows]
    with tempfile.TemporaryDirectory(prefix="lamarr-bench-") as tmp:
        rounds = [onnx_file_results(attempt, Path(tmp), graph, inputs, repeats, False) for _ in range(n_rounds)]
    results = best_of(rounds)
    print(table(results))
    onnx_verdict(results)
    return 0


def keras_on_tensorflow(quick: bool) -> None:
    """Keras on TensorFlow, one thread, when a peer runs the model there (Keras' predict; ONNX Runtime, through
    tf2onnx); otherwise (``--quick`` without tf2onnx) on the backend the exporter picks: no TensorFlow start-up."""
    from exporter.frontends.keras.load import import_keras
    from exporter.frontends.keras.quiet import quiet_stderr

    if not quick or find_spec("tf2onnx") is not None:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if os.environ.get("KERAS_BACKEND") == "tensorflow":
        with quiet_stderr():  # TensorFlow's C++ start-up lines
            import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(1)  # before TensorFlow runs anything
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import_keras()


def measure(
    models: dict, workdir: Path, inputs, repeats: int, quick: bool, shrink: int, keras: bool, smoke: bool
) -> list[Result]:
    """One round of every timing: ours, then the peers (Keras' only if ``keras`` and not ``quick``); ``shrink``: the
    tree models' (benchmarks/trees.py); ``smoke``: the shaped models at toy sizes (benchmarks/shapes.py)."""
    rows = len(inputs)
    results: list[Result] = []
    for name in ("residual", "sequential"):
        results += ours(name, models[name][0], workdir, rows, repeats, quick)
        if name == "residual":  # right after ours: the same load on the core
            results.append(read_result(workdir, flops_per_row(models[name][1])))
    seq = models["sequential"][1]
    sk_flags = {LAMARR: FLAG_SETS[LAMARR]} if quick else FLAG_SETS
    results += attempt("scikinC", "sequential", scikinc, seq, "sequential", workdir, rows, repeats, sk_flags)
    results += attempt("keras2c", "sequential", keras2c, seq, "sequential", workdir, rows, repeats)
    graphs = {name: export_keras(models[name][1], name="np").graph for name in ("residual", "sequential")}
    results += onnx_file_results(attempt, workdir, graphs["residual"], inputs, repeats, quick)
    for name in ("residual", "sequential"):
        model, graph = models[name][1], graphs[name]
        capi = (model, graph, name, workdir, inputs, repeats)
        results += attempt("ONNX Runtime C API", name, onnxruntime_capi_peer, *capi)
        results += attempt("ONNX Runtime (tf2onnx)", name, onnxruntime_peer, model, name, workdir, inputs, repeats)
        if keras and not quick:
            results += attempt("Keras", name, keras_peers, model, name, workdir, inputs, repeats)
        results += attempt("numpy", name, numpy_peer, graph, name, inputs, repeats)
    results += shape_results(attempt, workdir, rows, repeats, smoke)
    results += tree_results(attempt, workdir, shrink, rows, repeats)
    return results + tree_file_results(attempt, workdir, shrink, rows, repeats)


def best_of(rounds: list[list[Result]]) -> list[Result]:
    """Each figure's best over the rounds, in the first round's order (then any only later rounds have)."""
    merged: dict[tuple[str, str], Result] = {}
    for result in (r for one in rounds for r in one):
        key = (result.name, result.model)
        if key not in merged or merged[key].unavailable:
            merged[key] = replace(result)
        elif not result.unavailable:
            kept = merged[key]
            kept.row_ns = min((t for t in (kept.row_ns, result.row_ns) if t is not None), default=None)
            kept.batch_ns = min((t for t in (kept.batch_ns, result.batch_ns) if t is not None), default=None)
    return list(merged.values())


def machine_limits(workdir: Path) -> dict[str, float]:
    """GFLOP/s of each runnable variant (benchmarks/peak.c). Measured before and after the timings, the larger
    kept: other load on a shared machine lowers them, which would flatter the ratios to them."""
    return {v.name: peak_gflops([*FLAG_SETS[LAMARR], *peak_flags(v)], workdir) for v in runnable()}


def read_result(workdir: Path, flops: int) -> Result:
    """The time one core takes to read a row's weights once (benchmarks/stream.c over the same bytes, vectors of the
    variant Lamarr's build line runs here), as a row of the table: the bound of one call per row."""
    n_bytes = weight_bytes(flops)
    gbs = stream_gbs([*FLAG_SETS[LAMARR], *peak_flags(runnable()[-1])], workdir, n_bytes)
    return Result(READ, "residual", n_bytes / gbs, note=f"{n_bytes / 1000:.0f} kB at {gbs:.0f} GB/s")


def read_verdict(results: list[Result]) -> None:
    """Issue 28: one call per row within ``GOAL_READ_RATIO`` of reading its weights once, both from the same rounds."""
    mine = next((r for r in results if r.name == OURS and r.model == "residual" and r.row_ns), None)
    read = next((r for r in results if r.name == READ and r.row_ns), None)
    if not mine or not read:
        print("  per row vs the read of its weights: not measured")
        return
    r = mine.row_ns / read.row_ns
    print(
        f"  per row vs reading its weights once ({read.note}, benchmarks/stream.c, in the same rounds): "
        f"{mine.row_ns / 1000:.2f} us / {read.row_ns / 1000:.2f} us = {r:.2f}x "
        f"({'met' if r <= GOAL_READ_RATIO else 'NOT met'}: within {GOAL_READ_RATIO}x)"
    )


def weight_bytes(flops: int) -> int:
    """Bytes of float Dense kernels a row reads: one multiply and one add per weight."""
    return flops // 2 * 4


def peak_flags(variant: Variant) -> list[str]:
    """The flags that make benchmarks/peak.c (and stream.c) use the variant's vectors."""
    return [f"-march={variant.target.removeprefix('arch=')}"] if variant.target else []


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def verdict(results: list[Result], flops: int, peaks: dict[str, float], wide: tuple | None) -> None:
    """The goals of issue 15, and issue 28's per row, each from figures of this run (ratios, so a busy machine moves
    both sides)."""

    def find(name: str, model: str = "residual") -> Result | None:
        return next((r for r in results if r.name.startswith(name) and r.model == model and not r.unavailable), None)

    ours_res, ours_seq, sk = find(OURS), find(OURS, "sequential"), find("scikinC", "sequential")
    ort = next((r for r in results if "C API" in r.name and r.model == "residual" and not r.unavailable), None)
    chosen = runnable()[-1]  # what Lamarr's build line runs here
    print(f"\nFLOPs per row (residual model, Dense multiplies and adds): {flops:,}")
    limits = {name: flops / gflops for name, gflops in peaks.items()}  # ns per row; GFLOP/s = FLOP/ns
    print(
        "compute limit of this core, measured by benchmarks/peak.c (no FMA): "
        + "; ".join(f"{name} {peaks[name]:.1f} GFLOP/s -> {limits[name] / 1000:.2f} us/row" for name in peaks)
    )
    for v in runnable():
        r = find(forced(v))
        if r and r.row_ns and r.batch_ns:
            print(
                f"  {v.name} forced: {r.row_ns / 1000:.2f} us/row = {r.row_ns / limits[v.name]:.2f}x its limit, "
                f"batch {r.batch_ns / 1000:.2f} us/row = {r.batch_ns / limits[v.name]:.2f}x"
            )
    print(f"\nverdict (Lamarr's build line runs {chosen.name} on this CPU):")
    if ours_res and ours_res.row_ns:
        r = ours_res.row_ns / limits[chosen.name]
        ok = "met" if r <= GOAL_LIMIT_RATIO else "NOT met"
        print(f"  per row: {ours_res.row_ns / 1000:.2f} us = {r:.2f}x the {chosen.name} limit ({ok}: within 1.5x)")
        read = next((r for r in results if r.name == READ and r.row_ns), None)
        if read:  # the limit one row cannot pass: it reuses no weight
            print(f"    reading its weights once takes {read.row_ns / limits[chosen.name]:.2f}x that compute limit")
    read_verdict(results)
    if sk and sk.row_ns and ours_seq and ours_seq.row_ns:
        r = sk.row_ns / ours_seq.row_ns
        ok = "met" if r >= GOAL_SCIKINC_RATIO else "NOT met"
        print(f"  per row vs scikinC (same Sequential model, -O3): {r:.1f}x faster ({ok}: at least 25x)")
    else:
        print("  per row vs scikinC: not measured (scikinC unavailable)")
    for math, mine in (("fast", ours_res), ("fma", find(FMA))):
        if ort and ort.batch_ns and mine and mine.batch_ns:
            r, goal = ort.batch_ns / mine.batch_ns, GOAL_ORT_RATIO[math]
            ok = "met" if r >= goal else "NOT met"
            contract = "bit-identical" if math == "fast" else "--math fma"
            print(
                f"  batch ({contract}): ours {mine.batch_ns / 1000:.2f} us/row, ONNX Runtime's C API (one thread) "
                f"{ort.batch_ns / 1000:.2f}: ONNX Runtime / ours = {r:.2f} ({ok}: at least {goal:.2f})"
            )
        else:
            print(f"  batch ({math}) vs ONNX Runtime's C API: not measured (ONNX Runtime or the build unavailable)")
    if wide is None:
        return  # --quick: the issue 6 goal below is not one of issue 15's, and its model is slow to build
    params, export_s, o3, o2 = wide
    total = export_s + o3
    ok = "met" if total < GOAL_EXPORT_S else "NOT met"
    print(
        f"\nissue 6: {params:,}-parameter model: export {export_s:.2f} s + compile {o3:.2f} s (-O3) = {total:.2f} s "
        f"CPU ({ok}: under 10 s); -O2 compile {o2:.2f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
