"""The efficiency network's batch against ONNX Runtime's C API, both contracts, on one pinned core (issue 28).

    python benchmarks/batch.py [--rows N] [--repeats N] [--rounds N] [--cpu K]

Exports examples/efficiency.keras bit-identical (``--math fast``) and with ``--math fma``, times one call
per row and ``SYMBOL_batch`` of each at Lamarr's flags (the dispatching file runs the best variant of this
CPU) and with each variant forced (``-DSYMBOL_ISA``), and ONNX Runtime on the same network through its C
API (benchmarks/ort_capi.c: one thread, one Run on all rows; its outputs checked against Keras'). The
rounds interleave: every timing once, then all again, each figure keeping its best round. Prints the
table and the verdicts of the batch goals: ONNX Runtime / ours at least 0.95 bit-identical, 1.0 with fma.
A shorter run than benchmarks/run.py, which times the same peer among all the others.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the exporter, from a checkout
from cbench import FLAG_SETS, LAMARR, time_c
from models import EXAMPLE
from peers import Result, onnxruntime_capi_peer
from run import GOAL_ORT_RATIO, best_of, cpu_name, pin, runnable, table

from exporter import export_keras
from exporter.check.inputs import make_inputs


def ours(math: str, workdir: Path, rows: int, repeats: int) -> list[Result]:
    """One call per row and the batch of the ``math`` export: the dispatching file, then each variant forced."""
    ex = export_keras(EXAMPLE, name=f"efficiency_{math}", math=math)
    c_file, _ = ex.write(workdir / f"{ex.symbol}.c")
    n_in, n_out = ex.graph.n_inputs, ex.graph.n_outputs
    label = f"lamarr-export --math {math} {LAMARR}"
    builds = [(label, [])] + [(f"{label} {v.name} forced", [f"-D{ex.symbol}_ISA={v.level}"]) for v in runnable()]
    results = []
    for name, defines in builds:
        t = time_c(
            c_file, ex.symbol, n_in, n_out, [*FLAG_SETS[LAMARR], *defines], batch=True, rows=rows, repeats=repeats
        )
        results.append(Result(name, "residual", t.row_ns, t.batch_ns))
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2000, help="rows per timed pass (default 2000)")
    p.add_argument("--repeats", type=int, default=7, help="timed passes per figure and round (default 7)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last one allowed)")
    args = p.parse_args(argv)
    cpu = pin(args.cpu)
    print(f"lamarr-export batch benchmark: {cpu_name()}, pinned to core {cpu}; efficiency network, {args.rows} rows")
    print(f"best of {args.rounds} interleaved rounds of {args.repeats} passes (CPU time); microseconds per row\n")
    import keras

    model = keras.saving.load_model(EXAMPLE)
    graph = export_keras(EXAMPLE, name="reference").graph
    inputs = make_inputs(graph.n_inputs, args.rows)[: args.rows]
    with tempfile.TemporaryDirectory(prefix="lamarr-batch-") as tmp:
        workdir = Path(tmp)
        rounds = [
            ours("fast", workdir, args.rows, args.repeats)
            + ours("fma", workdir, args.rows, args.repeats)
            + onnxruntime_capi_peer(model, graph, "residual", workdir, inputs, args.repeats)
            for _ in range(args.rounds)
        ]
    results = best_of(rounds)
    print(table(results) + "\n")
    ort = results[-1]
    for math, goal in GOAL_ORT_RATIO.items():
        mine = next(r for r in results if r.name == f"lamarr-export --math {math} {LAMARR}")
        ratio = ort.batch_ns / mine.batch_ns
        contract = "bit-identical" if math == "fast" else "--math fma"
        print(
            f"batch ({contract}): ours {mine.batch_ns / 1000:.3f} us/row, "
            f"ONNX Runtime's C API {ort.batch_ns / 1000:.3f}: "
            f"ONNX Runtime / ours = {ratio:.2f} ({'met' if ratio >= goal else 'NOT met'}: at least {goal:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
