"""Shaped networks against ONNX Runtime's C API (issue 29 item 4): per row and batch, one thread, one core.

- ``conv1d``: a (64, 8) input, three Conv1D(32, 3, same, relu) (max pooling by 2 before the third), global
  average pooling, Dense 4.
- ``gru``: GRU(64) over 32 steps of 8 features, Dense 4 on its last state.
- ``encoder``: two Transformer encoder blocks over 16 items of 16 features (MultiHeadAttention with 4 heads of
  4, Add, LayerNormalization; Dense 32 relu, Dense 16, Add, LayerNormalization), average over the items,
  Dense 4.

Random weights from fixed seeds. Ours: the Keras model exported by lamarr-export, the dispatching C at Lamarr's
flags, timed by the C driver. ONNX Runtime's: the same model written as ONNX nodes with ``onnx.helper`` from the
Keras layers' weights (tf2onnx, the `bench` extra, is not in the environment the benchmark runs in, and this
writes what ONNX Runtime's optimizer would make of it: Conv, GRU, MatMul/Softmax attention,
LayerNormalization), run by benchmarks/ort_capi.c over [1, steps, features] tensors, one ``Run`` per row, then
one ``Run`` of all rows. Before either is timed its outputs are compared with Keras' (ONNX Runtime's on the
timed rows, ours on 200 rows; within 1e-5 of the largest output): both run the same model.
``--smoke``: the same three architectures at toy sizes, so that every part runs in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from cbench import FLAG_SETS, LAMARR, time_c
from peers import Result, ort_capi

from exporter import export_keras

OURS = f"lamarr-export --math fast {LAMARR}"  # as benchmarks/run.py names it: the reference of every ratio
MODELS = ("conv1d", "gru", "encoder")
SIZES = {  # per model: (steps, features, width) of the full run and of --smoke
    False: {"conv1d": (64, 8, 32), "gru": (32, 8, 64), "encoder": (16, 16, 32)},
    True: {"conv1d": (8, 3, 4), "gru": (4, 3, 4), "encoder": (4, 8, 8)},
}
HEADS = 4  # the encoder's attention heads (key_dim = features / HEADS)
OUTPUTS = 4
TOLERANCE = 1e-5  # |ONNX Runtime - Keras| over the largest output (at least 1)


def keras_model(name: str, smoke: bool, seed: int = 0) -> Any:
    """The Keras model ``name`` at its full or smoke size, weights drawn from ``seed``."""
    import keras

    L = keras.layers
    steps, features, width = SIZES[smoke][name]
    x = keras.Input((steps, features))
    if name == "conv1d":
        h = L.Conv1D(width, 3, padding="same", activation="relu")(x)
        h = L.MaxPooling1D(2)(L.Conv1D(width, 3, padding="same", activation="relu")(h))
        h = L.GlobalAveragePooling1D()(L.Conv1D(width, 3, padding="same", activation="relu")(h))
    elif name == "gru":
        h = L.GRU(width)(x)
    else:
        h = x
        for _ in range(2):
            a = L.MultiHeadAttention(num_heads=HEADS, key_dim=features // HEADS)(h, h)
            h = L.LayerNormalization()(L.Add()([h, a]))
            f = L.Dense(features)(L.Dense(width, activation="relu")(h))
            h = L.LayerNormalization()(L.Add()([h, f]))
        h = L.GlobalAveragePooling1D()(h)
    model = keras.Model(x, L.Dense(OUTPUTS)(h), name=name)
    rng = np.random.default_rng(seed)
    for w in model.weights:
        fan_in = int(np.prod(w.shape[:-1])) if len(w.shape) > 1 else 0
        scale = 1 / np.sqrt(fan_in) if fan_in else 0.1
        w.assign((rng.standard_normal(tuple(w.shape)) * scale).astype("float32"))
    return model


class Nodes:
    """An ONNX graph under construction: nodes, initializers, fresh value names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.weights: list[Any] = []

    def const(self, array: Any, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        name = f"c{len(self.weights)}"
        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), name))
        return name

    def __call__(self, kind: str, *inputs: str, **attributes: Any) -> str:
        from onnx import helper

        out = f"v{len(self.nodes)}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attributes))
        return out

    def dense(self, x: str, kernel: Any, bias: Any) -> str:
        """x @ kernel + bias over the last axis (MatMul + Add, which ONNX Runtime fuses)."""
        return self("Add", self("MatMul", x, self.const(kernel)), self.const(bias))

    def model(self, y: str, shape: tuple[int, ...]) -> bytes:
        from onnx import TensorProto, helper

        self.nodes.append(helper.make_node("Identity", [y], ["y"]))
        x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])
        y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", OUTPUTS])
        graph = helper.make_graph(self.nodes, "shaped", [x_info], [y_info], self.weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        return model.SerializeToString()


def onnx_model(model: Any) -> bytes:
    """The Keras model as ONNX nodes over the same weights (input "x" [N, steps, features], output "y" [N, 4])."""
    import keras

    g = Nodes()
    h, layers = "x", [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if model.name == "conv1d":
        h = g("Transpose", h, perm=[0, 2, 1])  # ONNX convolves [N, channels, steps]
        for layer in layers[:-1]:
            if isinstance(layer, keras.layers.Conv1D):
                kernel, bias = layer.get_weights()
                h = g("Relu", g("Conv", h, g.const(kernel.transpose(2, 1, 0)), g.const(bias), pads=[1, 1]))
            elif isinstance(layer, keras.layers.MaxPooling1D):
                h = g("MaxPool", h, kernel_shape=[2], strides=[2])
        h = g("Flatten", g("GlobalAveragePool", h))
    elif model.name == "gru":
        kernel, recurrent, bias = layers[0].get_weights()  # gates z, r, h in both; Keras' reset_after bias (2, 3u)
        seq = g("Transpose", h, perm=[1, 0, 2])  # ONNX's GRU takes [steps, N, features]
        w, r, b = g.const(kernel.T[None]), g.const(recurrent.T[None]), g.const(bias.reshape(1, -1))
        g.nodes.append(_gru_node(seq, w, r, b, layers[0].units))
        h = g("Squeeze", "last", g.const([0], np.int64))
    else:
        h = _encoder(g, h, layers[:-1])
    kernel, bias = layers[-1].get_weights()
    return g.model(g.dense(h, kernel, bias), tuple(model.inputs[0].shape[1:]))


def _gru_node(seq: str, w: str, r: str, b: str, units: int) -> Any:
    from onnx import helper

    return helper.make_node(
        "GRU", [seq, w, r, b], ["", "last"], hidden_size=units, linear_before_reset=1
    )  # Keras' reset_after=True: the reset gate multiplies (h R + b), as linear_before_reset


def _encoder(g: Nodes, h: str, layers: list[Any]) -> str:
    """The encoder blocks: attention as MatMul, Softmax, MatMul per head (what ONNX Runtime fuses when it can),
    the residual Adds, LayerNormalization; then the mean over the items."""
    import keras

    residual = h
    for layer in layers:
        if isinstance(layer, keras.layers.MultiHeadAttention):
            h = _attention(g, h, layer)
        elif isinstance(layer, keras.layers.Add):
            h = residual = g("Add", residual, h)
        elif isinstance(layer, keras.layers.LayerNormalization):
            gamma, beta = layer.get_weights()
            h = residual = g("LayerNormalization", h, g.const(gamma), g.const(beta), axis=-1, epsilon=layer.epsilon)
        elif isinstance(layer, keras.layers.Dense):
            h = g.dense(h, *layer.get_weights())
            h = g("Relu", h) if layer.activation is keras.activations.relu else h
        elif isinstance(layer, keras.layers.GlobalAveragePooling1D):
            h = g("ReduceMean", h, axes=[1], keepdims=0)
    return h


def _attention(g: Nodes, x: str, layer: Any) -> str:
    qk, qb, kk, kb, vk, vb, ok, ob = layer.get_weights()  # kernels (d, heads, dim); output (heads, dim, d)
    heads, dim = qb.shape
    split = g.const([0, -1, heads, dim], np.int64)  # [N, items, heads, dim]

    def project(kernel: Any, bias: Any, perm: list[int]) -> str:
        return g(
            "Transpose", g("Reshape", g.dense(x, kernel.reshape(len(kernel), -1), bias.reshape(-1)), split), perm=perm
        )

    q = g("Mul", project(qk, qb, [0, 2, 1, 3]), g.const(np.float32(1 / np.sqrt(dim))))  # Keras scales the query
    scores = g("Softmax", g("MatMul", q, project(kk, kb, [0, 2, 3, 1])), axis=-1)
    mixed = g("Transpose", g("MatMul", scores, project(vk, vb, [0, 2, 1, 3])), perm=[0, 2, 1, 3])
    joined = g("Reshape", mixed, g.const([0, -1, heads * dim], np.int64))
    return g.dense(joined, ok.reshape(heads * dim, -1), ob)


def shape_results(attempt: Any, workdir: Path, rows: int, repeats: int, smoke: bool) -> list[Result]:
    """One round of the shaped models' rows of the table: ours, then ONNX Runtime's C API, per model."""
    results: list[Result] = []
    for name in MODELS:
        if (name, smoke) not in BUILT:
            BUILT[name, smoke] = keras_model(name, smoke)
        model = BUILT[name, smoke]
        results += attempt(OURS, name, ours, model, workdir, rows, repeats)
        results += attempt("ONNX Runtime C API", name, peer, model, workdir, rows, repeats)
    return results


BUILT: dict[tuple[str, bool], Any] = {}  # the Keras models, built once for every round
EXPORTS: dict[Path, Any] = {}  # our exports by C file, written once for every round
CHECKED: dict[str, float] = {}  # by model: the largest difference of ONNX Runtime from Keras, over the largest output
OURS_OFF: dict[str, float] = {}  # by model: the same of our C


def ours(model: Any, workdir: Path, rows: int, repeats: int) -> list[Result]:
    """Our C of the model at Lamarr's flags (exported once, then compared with Keras on a few rows: the parity
    tests are the real check, this shows that both sides of the table run the same model)."""
    c_file = workdir / f"ours_shaped_{model.name}.c"
    if c_file not in EXPORTS:
        EXPORTS[c_file] = export_keras(model, name=f"ours_shaped_{model.name}")
        EXPORTS[c_file].write(c_file)
        folder = workdir / f"check_{model.name}"
        folder.mkdir(exist_ok=True)
        x = random_rows(model, 200, 2)
        OURS_OFF[model.name] = off_keras(model, x, EXPORTS[c_file].compile(folder, one_row=True)(x))
    if not OURS_OFF[model.name] <= TOLERANCE:
        raise RuntimeError(f"our C's outputs differ from Keras' by up to {OURS_OFF[model.name]:.3g} (relative)")
    ex = EXPORTS[c_file]
    n_in, n_out = ex.graph.n_inputs, ex.graph.n_outputs
    t = time_c(c_file, ex.symbol, n_in, n_out, FLAG_SETS[LAMARR], batch=True, rows=rows, repeats=repeats)
    return [Result(OURS, model.name, t.row_ns, t.batch_ns, f"|ours - Keras| <= {OURS_OFF[model.name]:.1g}")]


def off_keras(model: Any, x: np.ndarray, got: np.ndarray) -> float:
    """The largest difference of ``got`` from Keras' outputs on the flat rows ``x``, over the largest output."""
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    expected = np.asarray(model(x.reshape(len(x), *shape), training=False), dtype=np.float32)
    return float(np.max(np.abs(np.asarray(got) - expected)) / max(1.0, float(np.max(np.abs(expected)))))


def random_rows(model: Any, rows: int, seed: int) -> np.ndarray:
    """Standard-normal rows for ``model``, flat (as the C and ort_capi.c read them)."""
    width = int(np.prod(model.inputs[0].shape[1:]))
    return np.random.default_rng(seed).standard_normal((rows, width)).astype(np.float32)


def peer(model: Any, workdir: Path, rows: int, repeats: int) -> list[Result]:
    """ONNX Runtime's C API on the model written as ONNX, its outputs compared with Keras' (first round)."""
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    path = workdir / f"{model.name}.onnx"
    if not path.exists():
        path.write_bytes(onnx_model(model))
    x = random_rows(model, rows, 1)
    version, row_ns, batch_ns, got = ort_capi(path, x.shape[1], OUTPUTS, x, workdir, repeats, shape)
    if model.name not in CHECKED:
        CHECKED[model.name] = off_keras(model, x, got)
    if not CHECKED[model.name] <= TOLERANCE:
        raise RuntimeError(f"ONNX Runtime's outputs differ from Keras' by up to {CHECKED[model.name]:.3g} (relative)")
    note = f"C API, one thread, the same weights as ONNX; |ORT - Keras| <= {CHECKED[model.name]:.1g}"
    return [Result(f"ONNX Runtime {version} C API", model.name, row_ns, batch_ns, note)]


def shapes_verdict(results: list[Result]) -> None:
    """Issue 29's goal: per row faster than ONNX Runtime's C API on each shaped model; the batch ratio beside."""
    print("\nverdict, shaped models (issue 29; ONNX Runtime's C API on the same weights, one thread):")
    for name in MODELS:
        mine = next((r for r in results if r.model == name and r.name == OURS and not r.unavailable), None)
        ort = next((r for r in results if r.model == name and "C API" in r.name and not r.unavailable), None)
        if mine is None or ort is None or not (mine.row_ns and ort.row_ns and mine.batch_ns and ort.batch_ns):
            print(f"  {name}: not measured (ours or ONNX Runtime unavailable)")
            continue
        r = ort.row_ns / mine.row_ns
        print(
            f"  {name}: per row ours {mine.row_ns / 1000:.2f} us, ONNX Runtime {ort.row_ns / 1000:.2f} us: ONNX Runtime"
            f" / ours = {r:.2f} ({'met' if r > 1 else 'NOT met'}: above 1); batch ours {mine.batch_ns / 1000:.2f} "
            f"us/row, ONNX Runtime {ort.batch_ns / 1000:.2f}: ONNX Runtime / ours = {ort.batch_ns / mine.batch_ns:.2f}"
        )
