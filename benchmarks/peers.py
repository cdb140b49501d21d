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
