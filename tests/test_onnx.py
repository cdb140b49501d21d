"""ONNX models, the dense subset: every operator read, compiled to C and compared with ONNX Runtime.

No PyTorch needed: the graphs are built with ``onnx.helper``. One graph holds a branch per case (an
operator with one set of attributes, an odd width, a broadcast), all branches laid side by side in its
output, so that one compile serves them all; each case then asserts its own output columns, judged by the
float32 rule against onnx's reference evaluator in float64 (a case whose float64 twin could not be
computed would fall back to the fixed rule: that is asserted not to happen). The random and edge rows are
the export's own (``Export.inputs``), fewer than an export checks.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from exporter.api import export_chain  # noqa: E402
from exporter.check.inspect import inspect_onnx  # noqa: E402
from exporter.common.errors import ExportError, UnsupportedModelError  # noqa: E402
from exporter.frontends.onnx import load_onnx  # noqa: E402

from helpers import ROOT, assert_user_error, run_cli, strict_compile  # noqa: E402

W = 7  # the zoo's input width: odd, prime (no reshape of it by accident)
ROWS = 1500  # random rows per check, besides the edge rows


class Graph:
    """A graph under construction: input ``x`` of [batch, W] (or [batch, *dims]); named branches, concatenated
    into ``y``."""

    def __init__(self, opset: int = 20, batch: str | int = "batch", width: int = W, dims: tuple = ()):
        self.opset, self.batch, self.width = opset, batch, width
        self.dims = tuple(dims) or (width,)
        self.nodes: list = []
        self.inits: list = []
        self.branches: list[tuple[str, str]] = []
        self.rng = np.random.default_rng(len(self.nodes) + 7)

    def const(self, value, dtype=np.float32) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weights(self, *shape: int, scale: float = 1.0) -> str:
        return self.const(self.rng.standard_normal(shape) * scale / np.sqrt(shape[0]))

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs):
        names = [f"t{len(self.nodes)}_{k}" for k in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=f"{op_type}_{len(self.nodes)}", **attrs))
        return names[0] if outputs == 1 else names

    def branch(self, name: str, tensor: str) -> None:
        self.branches.append((name, tensor))

    def model(self, *domains: str) -> onnx.ModelProto:
        out = (
            self.op("Concat", *(t for _, t in self.branches), axis=1) if len(self.branches) > 1 else self.branches[0][1]
        )
        self.nodes[-1].output[0] = "y"
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [self.batch, *self.dims])]
        graph = helper.make_graph(
            self.nodes,
            "zoo",
            inputs,
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [self.batch, None])],
            self.inits,
        )
        opsets = [helper.make_opsetid("", self.opset), *(helper.make_opsetid(d, 1) for d in domains)]
        model = helper.make_model(graph, opset_imports=opsets)
        del out
        return onnx.shape_inference.infer_shapes(model)

    def columns(self, model: onnx.ModelProto) -> dict[str, range]:
        """Each branch's columns of ``y``."""
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
        out, start = {}, 0
        for name, tensor in self.branches:
            width = int(np.prod(shapes[tensor][1:]))
            out[name], start = range(start, start + width), start + width
        return out


def _rows(g: Graph, t: str) -> str:
    """``t`` as a rank-2 tensor: its features flattened after the batch."""
    return g.op("Flatten", t, axis=1)


def _positive(g: Graph, x: str) -> str:
    return g.op("Add", g.op("Mul", x, x), g.const(0.25))


def _unary(op_type: str, **attrs) -> Callable[[Graph, str], str]:
    return lambda g, x: g.op(op_type, x, **attrs)


def _six(g: Graph, x: str) -> str:
    """A row of 6 features computed from x (for reshapes into [2, 3])."""
    return g.op("Gemm", x, g.weights(W, 6), g.const(np.linspace(-1, 1, 6)))


def _by_shape(g: Graph, x: str) -> str:
    """PyTorch's ``x.view(x.size(0), -1)``: a reshape to a shape computed from the batch size."""
    batch = g.op("Unsqueeze", g.op("Gather", g.op("Shape", x), g.const(0, np.int64), axis=0), g.const([0], np.int64))
    target = g.op("Concat", batch, g.const([-1], np.int64), axis=0)
    return g.op("Reshape", g.op("Unsqueeze", x, g.const([1], np.int64)), target)


def _gelu_torchscript(g: Graph, x: str) -> str:
    """``nn.GELU()`` as PyTorch's TorchScript exporter writes it before opset 20: ((x * (erf(x / sqrt 2) + 1)) * 0.5."""
    erf = g.op("Erf", g.op("Div", x, g.const(np.float32(np.sqrt(2.0)))))
    return g.op("Mul", g.op("Mul", x, g.op("Add", erf, g.const(np.float32(1.0)))), g.const(np.float32(0.5)))


def _gelu_export(g: Graph, x: str) -> str:
    """As ``torch.export``'s exporter writes it, constants first, and x / sqrt 2 as a product: x * (0.5 * (1 + erf))."""
    erf = g.op("Erf", g.op("Mul", g.const(np.float32(1 / np.sqrt(2.0))), x))
    return g.op("Mul", x, g.op("Mul", g.const(np.float32(0.5)), g.op("Add", g.const(np.float32(1.0)), erf)))


def _gelu_erf_read_twice(g: Graph, x: str) -> str:
    """The same nodes, but the erf also read elsewhere: not one GELU, each node walked as written."""
    erf = g.op("Erf", g.op("Div", x, g.const(np.float32(np.sqrt(2.0)))))
    gelu = g.op("Mul", g.op("Mul", x, g.op("Add", erf, g.const(np.float32(1.0)))), g.const(np.float32(0.5)))
    return g.op("Concat", gelu, erf, axis=1)


GELUS = {"GELU written out": _gelu_torchscript, "GELU written out, export's order": _gelu_export}
CASES: dict[str, Callable[[Graph, str], str]] = {
    **GELUS,
    "GELU's erf read twice": _gelu_erf_read_twice,
    **{op: _unary(op) for op in "Relu Sigmoid Tanh Softplus Softsign Mish Erf Abs Neg HardSwish Exp".split()},
    "Log": lambda g, x: g.op("Log", _positive(g, x)),
    "Sqrt": lambda g, x: g.op("Sqrt", g.op("Abs", x)),
    "LeakyRelu": _unary("LeakyRelu"),
    "LeakyRelu alpha": _unary("LeakyRelu", alpha=0.3),
    "Elu alpha": _unary("Elu", alpha=0.5),
    "Celu alpha": _unary("Celu", alpha=1.7),
    "Selu": _unary("Selu"),
    "Selu alpha gamma": _unary("Selu", alpha=1.5, gamma=1.1),
    "HardSigmoid": _unary("HardSigmoid"),
    "HardSigmoid PyTorch": _unary("HardSigmoid", alpha=1.0 / 6.0),
    "Gelu": _unary("Gelu"),
    "Gelu tanh": _unary("Gelu", approximate="tanh"),
    "Softmax": _unary("Softmax"),
    "Softmax axis 1": _unary("Softmax", axis=1),
    "LogSoftmax": _unary("LogSoftmax", axis=-1),
    "PRelu": lambda g, x: g.op("PRelu", x, g.const(np.linspace(-0.5, 0.5, W))),
    "PRelu one slope": lambda g, x: g.op("PRelu", x, g.const([0.2])),
    "Clip": lambda g, x: g.op("Clip", x, g.const(-0.5), g.const(0.8)),
    "Clip relu6": lambda g, x: g.op("Clip", x, g.const(0.0), g.const(6.0)),
    "Clip min": lambda g, x: g.op("Clip", x, g.const(-0.3)),
    "Clip max": lambda g, x: g.op("Clip", x, "", g.const(1.5)),
    "Pow 2": lambda g, x: g.op("Pow", x, g.const(2.0)),
    "Pow -1": lambda g, x: g.op("Pow", x, g.const(-1.0)),
    "Pow 0.5": lambda g, x: g.op("Pow", g.op("Abs", x), g.const(0.5)),
    "Pow 1.7": lambda g, x: g.op("Pow", g.op("Abs", x), g.const(1.7)),
    "Pow base": lambda g, x: g.op("Pow", g.const(1.5), x),
    "Add vector": lambda g, x: g.op("Add", x, g.const(np.linspace(-2, 2, W))),
    "Add scalar first": lambda g, x: g.op("Add", g.const(0.75), x),
    "Add [1, W]": lambda g, x: g.op("Add", x, g.const(np.linspace(1, 2, W).reshape(1, W))),
    "Sub": lambda g, x: g.op("Sub", x, g.const(np.linspace(-1, 1, W))),
    "Sub from constant": lambda g, x: g.op("Sub", g.const(3.0), x),
    "Mul": lambda g, x: g.op("Mul", x, g.const(np.linspace(-3, 3, W))),
    "Div": lambda g, x: g.op("Div", x, g.const(np.linspace(1, 4, W))),
    "Div constant by x": lambda g, x: g.op("Div", g.const(2.0), x),
    "Add rows": lambda g, x: g.op("Add", x, g.op("Tanh", x)),
    "Sub rows": lambda g, x: g.op("Sub", x, g.op("Sigmoid", x)),
    "Mul rows": lambda g, x: g.op("Mul", x, g.op("Tanh", x)),
    "Div rows": lambda g, x: g.op("Div", x, _positive(g, x)),
    "Sub broadcast max": lambda g, x: g.op("Sub", x, g.op("ReduceMax", x, g.const([1], np.int64))),
    "Add broadcast sum": lambda g, x: g.op("Add", g.op("ReduceSum", x, g.const([-1], np.int64)), x),
    "Max": lambda g, x: g.op("Max", x, g.op("Neg", x), g.op("Tanh", x)),
    "Min": lambda g, x: g.op("Min", x, g.op("Tanh", x)),
    "Sum": lambda g, x: g.op("Sum", x, x, g.op("Sigmoid", x)),
    "Mean": lambda g, x: g.op("Mean", x, g.op("Sigmoid", x)),
    "Gemm": lambda g, x: g.op("Gemm", x, g.weights(W, 5), g.const(np.linspace(-1, 1, 5))),
    "Gemm transB": lambda g, x: g.op("Gemm", x, g.weights(5, W), g.const([0.5] * 5), transB=1),
    "Gemm alpha beta": lambda g, x: g.op("Gemm", x, g.weights(W, 3), g.const(np.ones((1, 3))), alpha=0.5, beta=2.0),
    "Gemm scalar C": lambda g, x: g.op("Gemm", x, g.weights(W, 4), g.const(0.3)),
    "Gemm no C": lambda g, x: g.op("Gemm", x, g.weights(W, 9)),
    "MatMul Add": lambda g, x: g.op("Add", g.op("MatMul", x, g.weights(W, 6)), g.const(np.linspace(0, 1, 6))),
    "MatMul vector": lambda g, x: g.op("Unsqueeze", g.op("MatMul", x, g.weights(W)), g.const([1], np.int64)),
    "MatMul folded": lambda g, x: g.op("MatMul", x, g.op("Transpose", g.weights(3, W), perm=[1, 0])),
    "BatchNormalization": lambda g, x: g.op("BatchNormalization", x, *(g.const(v) for v in _bn(W)), epsilon=1e-3),
    "BatchNormalization channels": lambda g, x: _rows(
        g,
        g.op(
            "BatchNormalization",
            g.op("Reshape", _six(g, x), g.const([0, 2, 3], np.int64)),
            *(g.const(v) for v in _bn(2)),
        ),
    ),
    "LayerNormalization": lambda g, x: g.op(
        "LayerNormalization", x, g.const(np.linspace(0.5, 2, W)), g.const([0.1] * W)
    ),
    "LayerNormalization rank 3": lambda g, x: _rows(
        g,
        g.op(
            "LayerNormalization",
            g.op("Unsqueeze", _six(g, x), g.const([1], np.int64)),
            g.const(np.linspace(-1, 1, 6)),
            axis=1,
            epsilon=1e-2,
        ),
    ),
    "ReduceMean": lambda g, x: g.op("ReduceMean", x, g.const([1], np.int64)),
    "ReduceSum keepdims 0": lambda g, x: g.op(
        "Unsqueeze", g.op("ReduceSum", x, g.const([1], np.int64), keepdims=0), g.const([1], np.int64)
    ),
    "ReduceMax": lambda g, x: g.op("ReduceMax", x, g.const([-1], np.int64)),
    "Concat": lambda g, x: g.op("Concat", x, g.op("Tanh", x), x, axis=-1),
    "Concat interleaved": lambda g, x: _rows(
        g,
        g.op(
            "Concat",
            g.op("Unsqueeze", x, g.const([2], np.int64)),
            g.op("Unsqueeze", g.op("Neg", x), g.const([2], np.int64)),
            axis=2,
        ),
    ),
    "Slice": lambda g, x: g.op(
        "Slice", x, g.const([1], np.int64), g.const([6], np.int64), g.const([1], np.int64), g.const([2], np.int64)
    ),
    "Slice reversed": lambda g, x: g.op(
        "Slice", x, g.const([-1], np.int64), g.const([-100], np.int64), g.const([-1], np.int64), g.const([-3], np.int64)
    ),
    "Slice batch too": lambda g, x: g.op(
        "Slice", x, g.const([0, 2], np.int64), g.const([2**63 - 1, 5], np.int64), g.const([0, 1], np.int64)
    ),
    "Split first": lambda g, x: g.op("Split", x, g.const([3, 4], np.int64), axis=1, outputs=2)[0],
    "Split second": lambda g, x: g.op("Split", x, g.const([3, 4], np.int64), axis=1, outputs=2)[1],
    "Split num_outputs": lambda g, x: g.op("Split", x, axis=-1, num_outputs=3, outputs=3)[2],
    "Gather": lambda g, x: g.op("Gather", x, g.const([6, 0, 3, 3], np.int64), axis=1),
    "Gather scalar": lambda g, x: g.op(
        "Unsqueeze", g.op("Gather", x, g.const(-2, np.int64), axis=1), g.const([1], np.int64)
    ),
    "Gather matrix": lambda g, x: _rows(g, g.op("Gather", x, g.const([[1, 2], [-1, 0]], np.int64), axis=-1)),
    "Transpose": lambda g, x: _rows(
        g, g.op("Transpose", g.op("Reshape", _six(g, x), g.const([0, 2, 3], np.int64)), perm=[0, 2, 1])
    ),
    "Reshape -1": lambda g, x: g.op(
        "Reshape", g.op("Unsqueeze", x, g.const([1], np.int64)), g.const([-1, W], np.int64)
    ),
    "Reshape by shape": _by_shape,
    "Flatten axis 2": lambda g, x: g.op("Flatten", g.op("Unsqueeze", x, g.const([1], np.int64)), axis=2),
    "ReduceSum noop": lambda g, x: g.op("ReduceSum", x, noop_with_empty_axes=1),
    "Squeeze": lambda g, x: g.op("Squeeze", g.op("Unsqueeze", x, g.const([1], np.int64)), g.const([1], np.int64)),
    "Identity Dropout Cast": lambda g, x: g.op("Cast", g.op("Dropout", g.op("Identity", x), g.const(0.5)), to=1),
    "Constant": lambda g, x: g.op("Mul", x, g.op("Constant", value=numpy_helper.from_array(np.float32([2.5] * W)))),
}


def _bn(n: int) -> list[np.ndarray]:
    return [np.linspace(0.5, 1.5, n), np.linspace(-1, 1, n), np.linspace(-0.2, 0.3, n), np.linspace(0.5, 2, n)]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The zoo built, exported, compiled once, and checked: the report and each case's columns."""
    g = Graph()
    for name, make in CASES.items():
        g.branch(name, make(g, "x"))
    model = g.model()
    columns = g.columns(model)
    path = tmp_path_factory.mktemp("zoo") / "zoo.onnx"
    onnx.save(model, path)
    ex = export_chain(path)
    report = ex.check(ex.compile(path.parent, one_row=True), inputs=ex.inputs(samples=ROWS))
    return report, columns


@pytest.mark.parametrize("case", list(CASES))
def test_operator_parity(zoo, case):
    report, columns = zoo
    assert report.fallback is None and report.judgement is not None, report.fallback  # the float32 rule decided
    judged = report.judgement
    mine = [c for c in judged.columns if c.column in columns[case]]
    assert len(mine) == len(columns[case])
    failing = [why for ok, why in (c.decided(judged.rows, False) for c in mine) if not ok]
    assert not failing, failing
    arrays = report.arrays
    c, ref = arrays.c_out[:, columns[case]], arrays.ref[:, columns[case]]
    assert np.array_equal(np.isnan(c), np.isnan(ref)), "NaN where ONNX Runtime has none, or the reverse"


def test_gelu_written_out_is_one_gelu():
    """PyTorch's GELU before opset 20 (five nodes around an ``Erf``) becomes the IR's one ``gelu_erf`` (inline
    code under --math fast, not libm's erff per feature), whichever order the nodes come in; an erf read
    elsewhere too keeps every node as written. Parity of all three: the zoo's cases of the same names."""
    g = Graph()
    for name, make in [*GELUS.items(), ("twice", _gelu_erf_read_twice)]:
        g.branch(name, make(g, "x"))
    kinds = [op.activation.kind for op in load_onnx(g.model()).graph.ops if hasattr(op, "activation")]
    assert kinds.count("gelu_erf") == 2 and kinds.count("erf") == 1, kinds


def _save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, path)
    return str(path)


def _generator(tmp_path):
    """A generator of one input [batch, k] (k dynamic): 3 conditions then 2 noise entries -> 2 outputs."""
    g = Graph(opset=17, width="k")
    h = g.op("Tanh", g.op("Gemm", "x", g.weights(5, 16), g.const(np.linspace(-1, 1, 16))))
    g.branch("out", g.op("Gemm", g.op("LayerNormalization", h, g.const(np.ones(16))), g.weights(16, 2)))
    return _save(g.model(), tmp_path / "gen.onnx")


def test_generator_chain_cli_and_manifest(tmp_path, capsys):
    """An ONNX generator with a dynamic width fixed by input_shape, preprocessing and a target transform:
    through the command line and a manifest, parity passed, strict C and C++ compiles."""
    import pickle

    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    from helpers import export_through_cli_and_manifest

    rng = np.random.default_rng(1)
    (tmp_path / "tX.pkl").write_bytes(pickle.dumps(StandardScaler().fit(rng.normal(2.0, 3.0, (200, 3)))))
    target = QuantileTransformer(n_quantiles=30, output_distribution="normal").fit(rng.gamma(2.0, size=(200, 2)))
    (tmp_path / "tY.pkl").write_bytes(pickle.dumps(target))
    model = _generator(tmp_path)
    out = export_through_cli_and_manifest(
        capsys,
        tmp_path,
        model,
        input_shape="5",
        noise=2,
        preprocess=[tmp_path / "tX.pkl"],
        target_transform=tmp_path / "tY.pkl",
    )
    assert "3 inputs + 2 noise -> 2 outputs" in out.replace(",", ""), out
    assert "ONNX Runtime" in out


def _batch_one(name: str = "fc */ \x07\n one") -> onnx.ModelProto:
    """Opset 13, a batch fixed to 1 (no dynamic axes): attribute forms of opset 13, reshapes to [1, -1]."""
    g = Graph(opset=13, batch=1, width=5)
    h = g.op("Gemm", "x", g.weights(5, 6), g.const(np.linspace(-1, 1, 6)))
    g.nodes[-1].name = name
    parts = g.op("Split", h, axis=1, outputs=2)  # equal parts without a split input
    mean = g.op("ReduceMean", parts[0], axes=[1])  # axes an attribute until opset 18
    s = g.op(
        "Reshape", g.op("Unsqueeze", g.op("Sub", parts[1], mean), g.const([1], np.int64)), g.const([1, -1], np.int64)
    )
    by_shape = g.op(
        "Reshape",
        h,
        g.op(
            "Concat",
            g.op("Unsqueeze", g.op("Gather", g.op("Shape", "x"), g.const(0, np.int64), axis=0), g.const([0], np.int64)),
            g.const([-1], np.int64),
            axis=0,
        ),
    )
    g.branch("softmax", g.op("Softmax", s, axis=1))
    g.branch(
        "flatten",
        g.op("Flatten", g.op("Squeeze", g.op("Unsqueeze", by_shape, g.const([2], np.int64)), g.const([2], np.int64))),
    )
    return g.model()


def test_batch_of_one_opset_13_and_fallback(tmp_path, monkeypatch):
    """A model exported without a dynamic batch runs one row at a time on both references; its C compiles
    under the strict flags whatever its node names hold; without a float64 twin the fixed rule decides, saying so."""
    from exporter.frontends.onnx import reference

    ex = export_chain(load_onnx(_batch_one()))
    compiled = ex.compile(tmp_path, one_row=True)
    rows = ex.inputs(samples=300)
    report = ex.check(compiled, inputs=rows)
    assert report.passed and report.fallback is None, report.table()
    path = tmp_path / "one.c"
    ex.write(path, report)
    strict_compile(path, tmp_path)

    def unavailable(model):
        raise reference.Float64Unavailable("no twin here")

    monkeypatch.setattr(reference, "float64_twin", unavailable)
    fallback = export_chain(load_onnx(_batch_one())).check(compiled, inputs=rows)
    assert fallback.passed and "no twin here" in fallback.fallback and "rule fixed, since" in fallback.verdict()


def test_layernorm_compiles_strictly_in_float_and_double(tmp_path):
    """The LayerNorm template (an IR op ONNX maps) under Lamarr's strict flags, as C and as C++."""
    from exporter.backend import render
    from exporter.common.options import Options
    from exporter.ir import Graph as IRGraph
    from exporter.ir import LayerNorm

    for dtype in ("float", "double"):
        op = LayerNorm("ln", ("x",), "y", 5, scale=np.linspace(1, 2, 5), bias=np.zeros(5), epsilon=1e-3)
        options = Options(dtype=dtype, math="libm" if dtype == "double" else "fast")
        source = render(IRGraph("x", "y", {"x": 5, "y": 5}, [op], "t"), "ln", options=options)
        (tmp_path / f"ln_{dtype}.c").write_text(source.c)
        (tmp_path / "ln.h").write_text(source.h)
        strict_compile(tmp_path / f"ln_{dtype}.c", tmp_path)


def test_trace_taps_onnx_runtime(tmp_path):
    """The trace's Python side: ONNX Runtime's value of every IR value the walk names, the last the output."""
    loaded = load_onnx(_batch_one())
    values = [op.output for op in loaded.graph.ops if loaded.intermediates.knows(op.output)]
    assert values and values[-1] == loaded.graph.output
    rows = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    got = loaded.intermediates(values, rows)
    assert all(got[v].shape == (4, loaded.graph.widths[v]) for v in values)
    np.testing.assert_array_equal(got[values[-1]], loaded.reference(rows))


def _refused() -> onnx.ModelProto:
    """Every kind of refusal at once: a transposed convolution, a recurrence of other activations than ONNX's
    defaults, a product of two computed tensors of different ranks (their batches would meet), a custom
    domain, an input with a dynamic width."""
    g = Graph(opset=17, width=6)
    x3 = g.op("Unsqueeze", "x", g.const([1], np.int64))
    conv = g.op("ConvTranspose", x3, g.const(np.ones((1, 2, 3))), pads=[1, 1])
    g.nodes[-1].name = "conv1"
    lstm = g.op(
        "LSTM",
        g.op("Transpose", conv, perm=[2, 0, 1]),
        g.const(np.ones((1, 8, 2))),
        g.const(np.ones((1, 8, 2))),
        hidden_size=2,
        activations=["Tanh", "Tanh", "Tanh"],
        outputs=3,
    )[0]
    g.nodes[-1].name = "lstm"
    column = g.op("Unsqueeze", "x", g.const([1, 3], np.int64))  # [batch, 1, 6, 1]: its batch meets x3's stack
    scores = g.op("MatMul", x3, column)
    g.nodes[-1].name = "attention"
    custom = helper.make_node("Scale", ["x"], ["scaled"], domain="com.example", name="custom")
    g.nodes.append(custom)
    g.branch("conv", _rows(g, conv))
    g.branch("lstm", _rows(g, lstm))
    g.branch("scores", _rows(g, scores))
    g.branch("fine", g.op("Tanh", "x"))
    model = g.model("com.example")
    extra = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", "width"])
    model.graph.input.append(extra)
    model.graph.node.append(helper.make_node("Relu", ["z"], ["unused"], name="z_relu"))
    return model


def test_refusals_all_at_once(tmp_path, capsys):
    path = _save(_refused(), tmp_path / "refused.onnx")
    with pytest.raises(UnsupportedModelError) as caught:
        load_onnx(path)
    text = str(caught.value)
    for fragment in (
        "node 'conv1' (ConvTranspose, opset 17): a shaped op not read yet",
        "node 'lstm' (LSTM, opset 17)",
        "node 'attention' (MatMul, opset 17): ",
        "node 'custom' (Scale, opset 17, domain com.example): a custom domain",
        "input 'z' (input): has dynamic dimensions [1] besides the batch; fix them with --input-shape z=D",
    ):
        assert fragment in text, text
    assert len(caught.value.problems) == 5, text  # nodes fed by a refused one add no problem of their own
    inspection = inspect_onnx(path)
    assert not inspection.exportable and [p.layer for p in inspection.problems] == [
        p.layer for p in caught.value.problems
    ]
    assert any(row.op == "Tanh" or row.op.startswith("Activation tanh") for row in inspection.rows)
    code, out, err = run_cli(capsys, "inspect", path)
    assert code == 2 and "REFUSED" in out and "cannot export 5 inputs/nodes" in err, err
    assert_user_error(capsys, tmp_path, [path, "-o", tmp_path / "out.c"], "conv1", "lstm", "attention", "custom")


def _hostile(tmp_path) -> dict[str, tuple[object, str]]:
    """Files and graphs that must be refused with a clear message, and a fragment of it."""
    good = Graph(opset=17)
    good.branch("y", good.op("Relu", "x"))
    data = good.model().SerializeToString()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.onnx").write_text('{"graph": "not protobuf"}')
    wrong_types = Graph(opset=17)
    wrong_types.branch("y", wrong_types.op("Add", "x", wrong_types.const(np.arange(W), np.int64)))
    old = Graph(opset=11)
    old.branch("y", old.op("Relu", "x"))
    external = Graph(opset=17)
    external.branch("y", external.op("Add", "x", external.weights(W)))
    onnx.save(
        external.model(),
        tmp_path / "external.onnx",
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    huge = Graph(opset=17)
    big = huge.op("ConstantOfShape", huge.const([100_000, 100_000], np.int64))
    huge.branch("y", huge.op("Add", "x", huge.op("ReduceSum", big, keepdims=0)))
    random = Graph(opset=17)
    random.branch("y", random.op("Add", "x", random.op("RandomNormal", shape=[1, W])))
    return {
        "truncated": (tmp_path / "truncated.onnx", "truncated.onnx: not an ONNX model (DecodeError"),
        "text": (tmp_path / "text.onnx", "text.onnx: not an ONNX model"),
        "wrong types": (wrong_types.model(), "zoo (in memory): ONNX's shape inference fails"),
        "opset 11": (old.model(), "opset 11; opsets 13 to"),
        "external data": (tmp_path / "external.onnx", "external data: c0) are refused"),
        "huge constant": (huge.model(), "folding it would make a constant of shape (100000, 100000)"),
        "random": (random.model(), "(RandomNormal, opset 17): draws random numbers"),
    }


def test_hostile_files_are_refused_clearly(tmp_path, capsys):
    for what, (model, fragment) in _hostile(tmp_path).items():
        with pytest.raises(ExportError) as caught:
            load_onnx(model)
        assert fragment in str(caught.value), (what, str(caught.value))
    assert_user_error(capsys, tmp_path, [tmp_path / "truncated.onnx"], "not an ONNX model")
    assert_user_error(capsys, tmp_path, ["inspect", tmp_path / "external.onnx"], "tensors stored outside the file")


def test_input_shape_is_checked_in_the_users_words(tmp_path, capsys):
    path = _generator(tmp_path)
    code, out, err = run_cli(capsys, "inspect", path, "--input-shape", "x=5", "--noise", "2")
    assert code == 0 and "3 inputs + 2 noise -> 2 outputs" in out.replace(",", ""), out + err
    for flags, fragment in (
        (["--input-shape", "w=5"], "--input-shape w: no input of that name (the inputs: x)"),
        (["--input-shape", "x=5,2"], "--input-shape x=[5, 2] does not fit its shape [batch, ?]"),
        (["--input-shape", "x=five"], "--input-shape 'x=five': expected NAME=D1,D2"),
    ):
        assert_user_error(capsys, tmp_path, ["inspect", path, *flags], fragment)
    code, out, err = run_cli(capsys, "inspect", path)
    assert code == 2 and "fix them with --input-shape x=D" in out and "cannot export 1 input\n" in err, out + err
    keras_file = tmp_path / "model.keras"
    keras_file.write_bytes(b"")
    assert_user_error(capsys, tmp_path, [keras_file, "--input-shape", "5"], "--input-shape goes with an ONNX model")


def test_onnx_found_by_content_and_no_onnx_imported_by_the_cli(tmp_path):
    from exporter.frontends.chain_steps import load_network

    path = tmp_path / "model.bin"
    onnx.save(_batch_one("fc"), path)
    assert load_network(path).framework == "ONNX Runtime"
    script = (
        "import sys, exporter.cli, exporter.spec; print(sorted(m for m in ('onnx', 'onnxruntime') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


REFUSED_ATTRIBUTES = {
    "Gemm transA": (lambda g: g.op("Gemm", "x", g.weights(W, W), transA=1), "transA=1 transposes the batch"),
    "BatchNormalization training": (
        lambda g: g.op("BatchNormalization", "x", *(g.const(v) for v in _bn(W)), training_mode=1),
        "training_mode=1",
    ),
    "Dropout training": (
        lambda g: g.op("Dropout", "x", g.const(0.5), g.const(True, np.bool_)),
        "training_mode is true",
    ),
    "LayerNormalization mean used": (
        lambda g: g.op("LayerNormalization", "x", g.const(np.ones(W)), outputs=2)[1],
        "its output 1 (the mean or the inverse deviation) is used",
    ),
    "ReduceSum over the batch": (lambda g: g.op("ReduceSum", "x"), "the reduction would run over the batch"),
    "Softmax part of a row": (
        lambda g: _rows(g, g.op("Softmax", g.op("Reshape", _six(g, "x"), g.const([0, 2, 3], np.int64)), axis=1)),
        "is not over the whole row",
    ),
    "Flatten axis 0": (lambda g: g.op("Flatten", "x", axis=0), "mixes the rows"),
    "Cast to int": (lambda g: g.op("Cast", g.op("Cast", "x", to=7), to=1), "only float (1) and bool (9) are supported"),
    "Gather on the batch": (lambda g: g.op("Gather", "x", g.const([0], np.int64)), "axis 0 is the batch"),
    "Transpose of the batch": (lambda g: g.op("Flatten", g.op("Transpose", "x")), "has the batch as axis 1"),
    "Add per batch entry": (lambda g: g.op("Add", "x", g.const(np.ones((3, 1)))), "holds a value per batch entry"),
    "Add widening": (
        lambda g: _rows(g, g.op("Add", g.op("Unsqueeze", "x", g.const([2], np.int64)), g.const(np.ones((1, 3))))),
        "repeats parts of a row",
    ),
    "Pow of a vector": (lambda g: g.op("Pow", "x", g.const(np.linspace(1, 2, W))), "the exponent must be one value"),
    "Floor": (lambda g: g.op("Floor", "x"), "no C translation of this op"),
}


def test_attributes_that_cannot_be_exported_are_refused_by_name():
    """One graph with every refused attribute, each in a branch of its own: all refused at once, with reasons."""
    g = Graph(opset=17)
    for name, (make, _) in REFUSED_ATTRIBUTES.items():
        g.branch(name, make(g))
        g.nodes[-1].name = name
    with pytest.raises(UnsupportedModelError) as caught:
        load_onnx(g.model())
    problems = caught.value.problems
    assert len(problems) == len(REFUSED_ATTRIBUTES), [str(p) for p in problems]
    for name, (_, reason) in REFUSED_ATTRIBUTES.items():
        assert any(reason in p.reason for p in problems), (name, [str(p) for p in problems])


def test_two_input_generator_feeds_conditions_and_noise():
    """A generator of two inputs (conditions, noise): the IR takes them apart, both references feed both."""
    g = Graph(opset=17, width=3)
    noise = helper.make_tensor_value_info("r", TensorProto.FLOAT, ["batch", 2])
    g.branch("y", g.op("Gemm", g.op("Concat", "x", "r", axis=1), g.weights(5, 4)))
    model = g.model()
    model.graph.input.append(noise)
    loaded = load_onnx(model, noise=2)
    assert (loaded.graph.n_inputs, loaded.graph.n_noise, loaded.graph.n_outputs) == (3, 2, 4)
    rng = np.random.default_rng(3)
    x, r = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal((6, 2)).astype(np.float32)
    weights = numpy_helper.to_array(model.graph.initializer[0])
    np.testing.assert_allclose(loaded.reference(x, r), np.c_[x, r] @ weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.reference64(x, r), np.c_[x, r].astype(np.float64) @ weights, rtol=1e-12)
    with pytest.raises(UnsupportedModelError, match="noise = 3, but this input"):
        load_onnx(model, noise=3)
