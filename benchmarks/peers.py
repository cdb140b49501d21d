"""The implementations we compare against, each measured or reported as unavailable with a reason.

A peer is a function ``(model, rows, repeats) -> Result``; any exception it raises (missing
package, a converter refusing the model, a compiler error) becomes "unavailable: <reason>".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cbench import time_c


@dataclass
class Result:
    name: str
    model: str
    row_ns: float | None = None  # best pass, per row, one call per row
    batch_ns: float | None = None  # best pass, per row, all rows in one call
    note: str = ""
    unavailable: str = ""


def best_ns(call: Callable[[], Any], count: int, repeats: int) -> float:
    """Best over ``repeats`` of (CPU time of ``call`` run ``count`` times) / count, after one warm-up.

    Process CPU time, as the C driver's thread CPU time: other work on the pinned core does not
    count, and a library's own threads (one intra-op thread is asked for) would."""
    call()
    samples = []
    for _ in range(repeats):
        start = time.process_time_ns()
        for _ in range(count):
            call()
        samples.append((time.process_time_ns() - start) / count)
    return min(samples)


def python_timings(
    row_fn: Callable[[np.ndarray], Any],
    batch_fn: Callable[[np.ndarray], Any],
    rows: np.ndarray,
    repeats: int,
    budget_s: float = 0.3,
) -> tuple[float, float]:
    """Per-row latency (single-row calls, as many as fit in ``budget_s``) and batch time per row."""
    one = rows[:1]
    start = time.perf_counter()
    row_fn(one)
    count = max(3, min(len(rows), int(budget_s / max(time.perf_counter() - start, 1e-7))))
    per_row = best_ns(lambda: row_fn(one), count, repeats)
    batch = best_ns(lambda: batch_fn(rows), 1, repeats) / len(rows)
    return per_row, batch


def scikinc(
    model: Any, name: str, workdir: Path, rows: int, repeats: int, flag_sets: dict[str, list[str]]
) -> list[Result]:
    """scikinC's C++ for a Sequential model, built with g++ at each flag set (it has no batch call)."""
    import scikinC

    source = workdir / "scikinc_model.cpp"
    source.write_text(scikinC.convert({"scikinc_model": model}))
    n_in, n_out = model.inputs[0].shape[-1], model.outputs[0].shape[-1]
    results = []
    for label, flags in flag_sets.items():
        timing = time_c(source, "scikinc_model", n_in, n_out, flags, batch=False, rows=rows, repeats=repeats)
        results.append(Result(f"scikinC {scikinc_version()} {label.replace('-std=c99', 'g++')}", name, timing.row_ns))
    return results


def scikinc_version() -> str:
    from importlib.metadata import version

    return version("scikinC")


def keras2c(model: Any, name: str, workdir: Path, rows: int, repeats: int) -> list[Result]:
    """keras2c writes C that #includes its C library (include/k2c_*.h, .c), which its package must ship."""
    from importlib.metadata import version
    from importlib.util import find_spec

    spec = find_spec("keras2c")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("No module named 'keras2c'")
    if not (Path(spec.origin).parent / "include" / "k2c_include.h").is_file():
        raise RuntimeError(
            f"keras2c {version('keras2c')} from PyPI ships the Python generator only, not the C library "
            "(include/k2c_*.c) its output #includes"
        )
    raise RuntimeError("keras2c's C library is present, but this benchmark has no driver for its k2c_tensor calls")


def onnxruntime_peer(model: Any, name: str, workdir: Path, rows: np.ndarray, repeats: int) -> list[Result]:
    """tf2onnx converts the Keras model's forward pass; ONNX Runtime runs it on one thread."""
    from importlib.util import find_spec

    if find_spec("tf2onnx") is None:  # before importing TensorFlow (seconds) for nothing: the `test` extra lacks it
        raise ModuleNotFoundError("No module named 'tf2onnx'")
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, rows.shape[1]), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_function(
        tf.function(lambda x: model(x, training=False)), input_signature=spec, opset=17
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> Any:
        return session.run(None, {input_name: x})

    per_row, batch = python_timings(run, run, rows, repeats)
    note = "Python session.run per call"
    return [Result(f"ONNX Runtime {ort.__version__} (tf2onnx {tf2onnx.__version__})", name, per_row, batch, note)]


def onnx_from_graph(graph: Any) -> bytes:
    """The IR's Dense network (linear, tanh or softmax, residual adds) as an ONNX model: one Gemm per Dense,
    then its activation and skip, as ONNX Runtime's optimizer leaves a converted Keras model (MatMul + Add
    fused into Gemm). Input "x" [N, n_inputs], output "y", float32, opset 17."""
    from onnx import TensorProto, helper, numpy_helper

    numpy_forward(graph)  # refuses what it covers not, with the reason
    nodes, weights = [], []
    for k, op in enumerate(graph.ops):
        out = f"v{op.output}"
        x = "x" if op.inputs[0] == graph.input else f"v{op.inputs[0]}"
        bias = op.bias if op.bias is not None else np.zeros(op.width, np.float32)
        weights += [numpy_helper.from_array(op.kernel, f"w{k}"), numpy_helper.from_array(bias, f"b{k}")]
        steps = [("Gemm", [x, f"w{k}", f"b{k}"])]
        if op.activation.kind != "linear":
            steps.append(({"tanh": "Tanh", "softmax": "Softmax"}[op.activation.kind], None))
        if op.residual:
            steps.append(("Add", [None, f"v{op.inputs[1]}"]))
        for i, (kind, args) in enumerate(steps):
            last = i == len(steps) - 1
            src = nodes[-1].output[0] if i else None
            ins = [src if a is None else a for a in (args or [None])]
            dst = ("y" if op.output == graph.output else out) if last else f"{out}_{i}"
            nodes.append(helper.make_node(kind, ins, [dst], **({"axis": -1} if kind == "Softmax" else {})))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", graph.n_inputs])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", graph.n_outputs])
    model = helper.make_model(
        helper.make_graph(nodes, "efficiency", [x], [y], weights), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    return model.SerializeToString()


def ort_capi(
    path: Path, n_in: int, n_out: int, rows: np.ndarray, workdir: Path, repeats: int
) -> tuple[str, float, float, np.ndarray]:
    """ONNX Runtime's C API (benchmarks/ort_capi.c, loading the wheel's libonnxruntime.so) on one thread, on
    the ONNX file ``path`` (input "x", output "y"): its version, ns per row one row per Run and in one Run of
    all rows, and that Run's outputs."""
    import subprocess

    import onnxruntime as ort

    library = next((Path(ort.__file__).parent / "capi").glob("libonnxruntime.so*"))
    x = np.ascontiguousarray(rows, dtype=np.float32)
    inputs, outputs = workdir / f"{path.stem}_in.f32", workdir / f"{path.stem}_out.f32"
    x.tofile(inputs)
    exe = workdir / "ort_capi"
    if not exe.exists():
        source = str(Path(__file__).parent / "ort_capi.c")
        subprocess.run(["gcc", "-std=c99", "-O2", source, "-o", str(exe), "-ldl"], check=True)
    args = [str(library), str(path), str(n_in), str(n_out), str(len(x)), str(repeats), str(inputs), str(outputs)]
    out = subprocess.run([str(exe), *args], capture_output=True, text=True, check=True).stdout
    fields = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    got = np.fromfile(outputs, dtype=np.float32).reshape(len(x), n_out)
    return fields["version"][0], float(fields["row"][0]), float(fields["batch"][0]), got


def onnxruntime_capi_peer(
    model: Any, graph: Any, name: str, workdir: Path, rows: np.ndarray, repeats: int
) -> list[Result]:
    """ONNX Runtime through its C API, one thread, on the IR's network written as ONNX; its outputs are
    checked against Keras' on the same rows."""
    path = workdir / f"{name}.onnx"
    path.write_bytes(onnx_from_graph(graph))
    version, row_ns, batch_ns, got = ort_capi(path, graph.n_inputs, graph.n_outputs, rows, workdir, repeats)
    expected = np.asarray(model(np.asarray(rows, dtype=np.float32), training=False), dtype=np.float32)
    worst = float(np.max(np.abs(got - expected)))
    if not worst <= 1e-4:
        raise RuntimeError(f"ONNX Runtime's outputs differ from Keras' by up to {worst:.3g}")
    note = f"C API, one thread; |ORT - Keras| <= {worst:.1g}"
    return [Result(f"ONNX Runtime {version} C API", name, row_ns, batch_ns, note)]


def keras_peers(model: Any, name: str, workdir: Path, rows: np.ndarray, repeats: int) -> list[Result]:
    import keras

    predict = python_timings(
        lambda x: model.predict(x, verbose=0, batch_size=len(x)),
        lambda x: model.predict(x, verbose=0, batch_size=len(x)),
        rows,
        repeats,
    )
    direct = python_timings(lambda x: model(x, training=False), lambda x: model(x, training=False), rows, repeats)
    version = f"Keras {keras.__version__} ({keras.backend.backend()})"
    return [
        Result(f"{version} predict", name, *predict),
        Result(f"{version} model(x)", name, *direct),
    ]


def numpy_forward(graph: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy evaluation of the IR (Dense with linear, tanh or softmax, residual adds): x @ W + b per layer."""
    from exporter.ir import Dense

    steps = []
    for op in graph.ops:
        if not isinstance(op, Dense) or op.activation.kind not in ("linear", "tanh", "softmax"):
            raise RuntimeError(f"the numpy reference covers Dense with linear/tanh/softmax only, not {op.describe()}")
        steps.append(op)

    def forward(x: np.ndarray) -> np.ndarray:
        values = {graph.input: x}
        for op in steps:
            y = values[op.inputs[0]] @ op.kernel
            if op.bias is not None:
                y += op.bias
            if op.activation.kind == "tanh":
                np.tanh(y, out=y)
            elif op.activation.kind == "softmax":
                y = np.exp(y - y.max(axis=1, keepdims=True))
                y /= y.sum(axis=1, keepdims=True)
            if op.residual:
                y += values[op.inputs[1]]
            values[op.output] = y
        return values[graph.output]

    return forward


def numpy_peer(graph: Any, name: str, rows: np.ndarray, repeats: int) -> list[Result]:
    forward = numpy_forward(graph)
    per_row, batch = python_timings(forward, forward, rows, repeats)
    return [Result(f"numpy {np.__version__} (float32 matmul per layer)", name, per_row, batch)]
