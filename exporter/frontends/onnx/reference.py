"""What the C is checked against: ONNX Runtime on the same model (CPU, one thread), in float32; onnx's
reference evaluator on its float64 twin, for the float32 rule (and the twin nudged after every node:
``nudged.py``); and ONNX Runtime's value of any tensor, for the trace.

The float64 twin is the model with every float32 tensor, input, output and cast made float64, evaluated by
onnx's own numpy implementation of the standard ops (ONNX Runtime has no float64 kernels for most
activations). It is the model the file holds, not the exporter's IR: a misread attribute shows. Two ops are
computed here instead (``float64_ops``): the evaluator's ``Erf`` rounds to float32, and its ``Gelu`` (the
schema's formula, ``0.5 x (1 + erf(x / sqrt 2))``) cancels to 0 below x = -6 even in float64, where the C's
value is right: both are the same functions written so that float64 keeps its digits. Its ``GlobalMaxPool``
takes the maximum over the channels too (onnx 1.x): written here as the schema states it, per channel; its
``ConvTranspose`` mixes groups up (onnx 1.x): run here one group at a time. When the twin
cannot be built or run, ``Float64Unavailable`` says why and the fixed rule decides, saying so.

A model whose batch dimension is 1 (exported without a dynamic batch) is run one row at a time.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from exporter.common.errors import ExportError, Float64Unavailable
from exporter.common.escaping import terminal_line
from exporter.frontends.onnx.nudged import nudge_op, nudged_twin

FLOAT, DOUBLE = 1, 11  # onnx.TensorProto's element types


class Feeds:
    """How rows become the model's inputs: ``feeds`` (name, dimensions after the batch); a one-input
    generator's conditions and noise side by side; ``batch_one``: one row per run."""

    def __init__(
        self,
        feeds: list[tuple[str, tuple[int, ...]]],
        batch_one: bool,
        several: bool = False,
        bools: frozenset[str] = frozenset(),
    ):
        self.feeds, self.batch_one, self.several, self.bools = feeds, batch_one, several, bools

    def run(self, fn: Callable[[dict[str, np.ndarray]], list[np.ndarray]], dtype: type, *rows: np.ndarray) -> list[Any]:
        """``fn`` on the inputs made of ``rows`` (and a generator's noise rows), each output as (rows, values):
        several inputs split out of one row, a bool input true where the row's value is nonzero (as the C)."""
        arrays = [np.asarray(r, dtype=dtype) for r in rows if r is not None]
        if len(self.feeds) == 1 and len(arrays) == 2:
            arrays = [np.concatenate(arrays, axis=1)]
        if self.several:
            ends = np.cumsum([0, *(math.prod(dims) for _, dims in self.feeds)])
            arrays = [arrays[0][:, a:e] for a, e in itertools.pairwise(ends)]
        n = len(arrays[0])
        inputs = {name: a.reshape(n, *dims) for (name, dims), a in zip(self.feeds, arrays, strict=True)}
        inputs = {name: a != 0 if name in self.bools else a for name, a in inputs.items()}
        with np.errstate(all="ignore"):  # edge rows overflow exp as the C does
            if not self.batch_one:
                return [np.asarray(o).reshape(n, -1) for o in fn(inputs)]
            runs = [fn({k: v[i : i + 1] for k, v in inputs.items()}) for i in range(n)]
        return [np.concatenate([np.asarray(r[k]).reshape(1, -1) for r in runs]) for k in range(len(runs[0]))]


def session(model: Any, source: str) -> Any:
    """An ONNX Runtime session on the CPU, one thread, quiet; its errors in the file's name."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ONNX Runtime's own error types
        raise ExportError(f"{source}: ONNX Runtime cannot run it: {terminal_line(str(err))[:300]}") from None


class OnnxReference:
    """ONNX Runtime's float32 outputs (``__call__``), the float64 twin's (``reference64``) and ONNX Runtime's
    value of IR values (``knows``, ``intermediates``: the trace), each built on first use."""

    def __init__(self, model: Any, feeds: Feeds, origins: dict[str, str], source: str):
        self.model, self.feeds, self.origins, self.source = model, feeds, origins, source
        self._tapped: dict[tuple[str, ...], Any] = {}  # sessions with tensors as extra outputs, for the trace

    @functools.cached_property
    def _session(self) -> Any:
        return session(self.model, self.source)

    def __call__(self, x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        return self.feeds.run(lambda inputs: self._session.run(None, inputs)[:1], np.float32, x, noise)[0]

    def _evaluator(self, nudged: bool) -> Any:
        from onnx.reference import ReferenceEvaluator

        try:
            twin = float64_twin(self.model)
            return ReferenceEvaluator(
                nudged_twin(twin, self.model) if nudged else twin, new_ops=[*float64_ops(), nudge_op()]
            )
        except Float64Unavailable:
            raise
        except Exception as err:  # the evaluator refuses an op it does not implement
            raise Float64Unavailable(f"onnx's reference evaluator cannot run the model in float64 ({err})") from None

    @functools.cached_property
    def _twin(self) -> Any:
        return self._evaluator(nudged=False)

    @functools.cached_property
    def _nudged(self) -> Any:
        return self._evaluator(nudged=True)

    def reference64(self, x: np.ndarray, noise: np.ndarray | None = None, nudged: bool = False) -> np.ndarray:
        """The float64 twin's outputs; ``nudged``: every node's output moved where float32 rounds (``nudged.py``)."""
        try:
            twin = self._nudged if nudged else self._twin
            (out,) = self.feeds.run(lambda inputs: twin.run(None, inputs)[:1], np.float64, x, noise)
        except Float64Unavailable:
            raise
        except Exception as err:
            raise Float64Unavailable(f"onnx's reference evaluator failed on the float64 twin ({err})") from None
        if out.dtype != np.float64:
            raise Float64Unavailable(f"onnx's reference evaluator computed {out.dtype}, not float64")
        return out

    def reference64_nudged(self, x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        return self.reference64(x, noise, nudged=True)

    def knows(self, value: str) -> bool:
        return value in self.origins

    def _tapping(self, names: tuple[str, ...]) -> Any:
        """A session of the model with the tensors ``names`` as outputs too."""
        import onnx

        tapped = onnx.ModelProto()
        tapped.CopyFrom(self.model)
        outputs = {o.name for o in tapped.graph.output}
        for name in names:
            if name not in outputs:  # of its own type: a mask's Cast to bool is tapped as bool, read as 0/1
                elem = self._types.get(name, FLOAT)
                tapped.graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
        return session(tapped, self.source)

    @functools.cached_property
    def _types(self) -> dict[str, int]:
        """The element type of every tensor ONNX's shape inference types."""
        import onnx

        inferred = onnx.shape_inference.infer_shapes(self.model)
        return {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}

    def intermediates(self, values: list[str], rows: np.ndarray, *noise: np.ndarray) -> dict[str, np.ndarray]:
        """ONNX Runtime's value of each IR value, for ``rows``: the model run with those tensors as outputs."""
        names = tuple(dict.fromkeys(self.origins[v] for v in values))
        if names not in self._tapped:
            self._tapped[names] = self._tapping(names)
        tapped = self._tapped[names]
        outs = self.feeds.run(lambda inputs: tapped.run(list(names), inputs), np.float32, rows, *noise)
        by_name = dict(zip(names, outs, strict=True))
        return {v: by_name[self.origins[v]].astype(np.float32) for v in values}


class Intermediates:
    """The trace's protocol (``exporter.frontends.loaded.Intermediates``) over an ``OnnxReference``."""

    def __init__(self, reference: OnnxReference):
        self.reference = reference

    def knows(self, value: str) -> bool:
        return self.reference.knows(value)

    def __call__(self, values: list[str], rows: np.ndarray, *noise: np.ndarray) -> dict[str, np.ndarray]:
        return self.reference.intermediates(values, rows, *noise)


def float64_ops() -> list[type]:
    """``Erf``, ``Gelu``, ``GlobalMaxPool`` and ``ConvTranspose`` for onnx's reference evaluator, computed in the
    input's own precision, without cancellation (``erfc`` for the exact form, a logistic for the tanh form:
    ``1 + tanh(u) = 2 / (1 + e^-2u)``); ``GlobalMaxPool`` per channel; ``ConvTranspose`` per group."""
    from onnx.reference.op_run import OpRun

    class Erf(OpRun):
        op_domain = ""

        def _run(self, x: np.ndarray) -> tuple[np.ndarray]:
            return (np.vectorize(math.erf, otypes=[x.dtype])(x),)

    class Gelu(OpRun):
        op_domain = ""

        def _run(self, x: np.ndarray, approximate: str | None = None) -> tuple[np.ndarray]:
            if approximate == "tanh":
                u = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
                return (x / (1.0 + np.exp(-2.0 * u)),)
            return (0.5 * x * np.vectorize(math.erfc, otypes=[x.dtype])(-x / math.sqrt(2.0)),)

    class GlobalMaxPool(OpRun):
        op_domain = ""

        def _run(self, x: np.ndarray) -> tuple[np.ndarray]:
            return (x.max(axis=tuple(range(2, x.ndim)), keepdims=True),)

    from onnx.reference.ops.op_conv_transpose import ConvTranspose as OnnxConvTranspose

    class ConvTranspose(OnnxConvTranspose):
        """onnx's own, one group at a time (its groups mix channels up): each group's channels, weight and bias."""

        def _run(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, **attrs: Any) -> tuple[np.ndarray]:
            groups = int(attrs.pop("group", None) or 1)
            cin, fout = x.shape[1] // groups, w.shape[1]
            parts = [
                super(ConvTranspose, self)._run(
                    x[:, q * cin : (q + 1) * cin], w[q * cin : (q + 1) * cin],
                    None if b is None else b[q * fout : (q + 1) * fout], group=1, **attrs,
                )[0]
                for q in range(groups)
            ]  # fmt: skip
            return (np.concatenate(parts, axis=1),)

    return [Erf, Gelu, GlobalMaxPool, ConvTranspose]


def _to_double(tensor: Any) -> None:
    from onnx import numpy_helper

    if tensor.data_type == FLOAT:
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name))


def float64_twin(model: Any) -> Any:
    """The model computing in float64: float32 inputs, outputs, initializers, constants and casts made float64."""
    import onnx

    twin = onnx.ModelProto()
    twin.CopyFrom(model)
    graph = twin.graph
    del graph.value_info[:]  # re-inferred by the evaluator as it goes
    for info in [*graph.input, *graph.output]:
        if info.type.tensor_type.elem_type == FLOAT:
            info.type.tensor_type.elem_type = DOUBLE
    for tensor in graph.initializer:
        _to_double(tensor)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g") or attribute.graphs:
                raise Float64Unavailable(f"node {node.name!r} holds a subgraph, which the float64 twin cannot convert")
            if attribute.HasField("t"):
                _to_double(attribute.t)
            if node.op_type in ("Cast", "CastLike") and attribute.name == "to" and attribute.i == FLOAT:
                attribute.i = DOUBLE
            if node.op_type == "Constant" and attribute.name in ("value_float", "value_floats"):
                values = [attribute.f] if attribute.name == "value_float" else list(attribute.floats)
                shape = [] if attribute.name == "value_float" else [len(values)]
                tensor = onnx.helper.make_tensor("value", DOUBLE, shape, np.asarray(values, dtype=np.float64))
                attribute.CopyFrom(onnx.helper.make_attribute("value", tensor))
    return twin
