"""Attention written out in ONNX ops, as PyTorch's exporters write it, compiled to C and compared with ONNX Runtime.

Each graph is built with onnx.helper: x [batch, T, D] projected to queries, keys and values, split into heads
(``Reshape``, ``Transpose``), scores ``q k^T`` (a ``MatMul`` of two computed tensors) scaled, masked (or not),
a ``Softmax`` over the keys, the weights times the values, the heads joined and projected. The masks: none;
a key padding mask as a second input, bool (``Where`` of ``-inf``, true: padding, as PyTorch's
``key_padding_mask``) or float (added); a causal mask, a constant added (0 and ``-inf``) or picked by a
constant condition (``Where``); and all of them at once, the values computed with the batch moved to axis 1
through a GELU written out. A bool mask input is read as 0/1 floats beside x in the C's input row, and the
parity rows give it every count of padded keys, 0 to T (all padded: NaN in ONNX Runtime and in the C).
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from exporter.api import export_chain  # noqa: E402
from exporter.common.errors import UnsupportedModelError  # noqa: E402
from exporter.frontends.onnx import load_onnx  # noqa: E402
from exporter.ir import Masked, MatMul, Select  # noqa: E402

from helpers import strict_compile  # noqa: E402

T, D, H = 5, 6, 2  # tokens, model width, heads
DH = D // H
ROWS = 1200


class Net:
    """A graph under construction: named nodes, constants as initializers, inputs as value infos."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self.inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", T, D])]
        self.rng = np.random.default_rng(26)

    def const(self, value, dtype=np.float32) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, name: str = "", **attrs) -> str:
        out = f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=name or f"{op_type}_{out}", **attrs))
        return out

    def input(self, name: str, elem: int, dims: list) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem, ["batch", *dims]))
        return name

    def project(self, x: str, n: int) -> str:
        return self.op("MatMul", x, self.const(self.rng.standard_normal((D, n)) / np.sqrt(D)))

    def model(self, out: str) -> onnx.ModelProto:
        self.nodes[-1].output[0] = "y"
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", T, D])
        graph = helper.make_graph(self.nodes, "attention", self.inputs, [y], self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _heads(net: Net, t: str, perm: list[int]) -> str:
    """[batch, T, D] -> [batch, H, T, DH] (perm [0, 2, 1, 3]) or its keys' [batch, H, DH, T] ([0, 2, 3, 1])."""
    return net.op("Transpose", net.op("Reshape", t, net.const([0, T, H, DH], np.int64)), perm=perm)


def _causal() -> np.ndarray:
    return np.triu(np.ones((T, T), dtype=bool), 1)  # key j > query i: masked


def attention(mask: str, einsum: bool = False) -> onnx.ModelProto:
    """Multi-head self-attention over x with ``mask`` (see the module's docstring), then a residual and a
    projection; the products written as ``Einsum`` when ``einsum``."""
    net = Net()
    q = _heads(net, net.project("x", D), [0, 2, 1, 3])
    k = _heads(net, net.project("x", D), [0, 2, 1, 3] if einsum else [0, 2, 3, 1])
    if mask == "every":  # the values computed on [T, batch, D] (the batch moved), through a GELU written out
        seq = net.project(net.op("Transpose", "x", perm=[1, 0, 2]), D)
        erf = net.op("Erf", net.op("Div", seq, net.const(np.sqrt(2.0))))
        gelu = net.op("Mul", net.op("Mul", seq, net.op("Add", erf, net.const(1.0))), net.const(0.5))
        v = _heads(net, net.op("Transpose", gelu, perm=[1, 0, 2]), [0, 2, 1, 3])
    else:
        v = _heads(net, net.project("x", D), [0, 2, 1, 3])
    product = ("Einsum", q, k) if einsum else ("MatMul", q, k)
    scores = net.op(*product, **({"equation": "bhqd,bhkd->bhqk"} if einsum else {}))
    scores = net.op("Mul", scores, net.const(1 / np.sqrt(DH)))
    if mask in ("bool padding", "every"):
        padded = net.op("Unsqueeze", net.input("mask", TensorProto.BOOL, [T]), net.const([1, 2], np.int64))
        scores = net.op("Where", padded, net.const(-np.inf), scores)
    if mask in ("float padding", "every"):
        bias = net.op("Unsqueeze", net.input("bias", TensorProto.FLOAT, [T]), net.const([1, 2], np.int64))
        scores = net.op("Add", scores, bias)
    if mask in ("causal added", "every"):
        scores = net.op("Add", scores, net.const(np.where(_causal(), -np.inf, 0.0)))
    if mask in ("causal where", "every"):
        scores = net.op("Where", net.const(_causal(), bool), net.const(-1e9), scores)
    weights = net.op("Softmax", scores, axis=-1)
    if einsum:
        heads = net.op("Einsum", weights, v, equation="bhqk,bhkd->bqhd")
    else:
        heads = net.op("Transpose", net.op("MatMul", weights, v), perm=[0, 2, 1, 3])
    joined = net.op("Reshape", heads, net.const([0, T, D], np.int64))
    return net.model(net.op("Add", "x", net.project(joined, D)))


MASKS = ["none", "bool padding", "float padding", "causal added", "causal where", "every"]


@pytest.mark.parametrize("mask", MASKS)
def test_attention_parity(tmp_path, mask):
    """Each form of attention exports whole, two batched products in the IR, and passes the float32 rule."""
    path = tmp_path / "attention.onnx"
    onnx.save(attention(mask), path)
    ex = export_chain(path)
    ops = ex.chain.net.ops
    assert sum(isinstance(op, MatMul) for op in ops) == 2
    assert any(isinstance(op, Select) for op in ops) == (mask in ("bool padding", "every"))
    assert any(isinstance(op, Masked) for op in ops) == (mask.startswith("causal") or mask == "every")
    rows = ex.inputs(samples=ROWS)
    if mask in ("bool padding", "every"):  # the mask's columns, after x's: 0/1, every count of padded keys
        assert [(p.name, p.offset, p.mask) for p in ex.chain.net.parts][:2] == [("x", 0, False), ("mask", T * D, True)]
        flags = rows[:, T * D : T * D + T]
        assert set(np.unique(flags)) == {0.0, 1.0} and set(flags.sum(axis=1)) == set(range(T + 1))
    report = ex.check(ex.compile(tmp_path, one_row=True), inputs=rows)
    assert report.passed and report.fallback is None, report.table()
    assert report.judgement is not None and report.judgement.rows >= ROWS


def test_every_mask_at_once_compiles_strictly(tmp_path):
    """Both mask inputs and both constant masks in one graph: the IR's ``MatMul``, ``Select`` and ``Masked``
    (its ``-INFINITY``) under Lamarr's strict flags, as C and as C++, in float and in double."""
    path = tmp_path / "every.onnx"
    onnx.save(attention("every"), path)
    for dtype in ("float", "double"):
        ex = export_chain(path, dtype=dtype, dispatch="none", name=f"every_{dtype}")
        assert [p.mask for p in ex.chain.net.parts] == [False, True, False]
        c_file, _ = ex.write(tmp_path / f"every_{dtype}.c")
        assert "-INFINITY" in c_file.read_text()
        strict_compile(c_file, tmp_path)


def test_einsum_attention_parity(tmp_path):
    """The same attention with its products written as ``Einsum`` (the forms attention takes) reads onto the
    same transposes and batched products."""
    path = tmp_path / "einsum.onnx"
    onnx.save(attention("bool padding", einsum=True), path)
    ex = export_chain(path)
    assert sum(isinstance(op, MatMul) for op in ex.chain.net.ops) == 2
    report = ex.check(ex.compile(tmp_path, one_row=True), inputs=ex.inputs(samples=ROWS))
    assert report.passed and report.fallback is None, report.table()


def test_attention_without_masking_fails_parity(tmp_path):
    """The check can fail: the bool padding mask's ``Where`` dropped from the C (every key kept) is caught."""
    path = tmp_path / "attention.onnx"
    onnx.save(attention("bool padding"), path)
    ex = export_chain(path)
    edited = "? (float)-INFINITY :"
    assert edited in ex.render().c
    ex.c_edit = lambda c: c.replace(edited, "? (float)0.f :")  # a padded key's score 0, not -inf: attended
    report = ex.check(ex.compile(tmp_path, one_row=True), inputs=ex.inputs(samples=200))
    assert not report.passed


def _refused() -> onnx.ModelProto:
    """What stays out, each named by its node: products of computed tensors of other ranks, a ``Where`` of
    two computed tensors, a reshape that mixes rows, an ``Einsum`` with a sum over one operand."""
    net = Net()
    q = _heads(net, net.project("x", D), [0, 2, 1, 3])
    stacked = net.op("Reshape", "x", net.const([0, 1, 3, T * D // 3], np.int64))  # [batch, 1, 3, 10]
    net.op("MatMul", net.project("x", 3), stacked, name="ranks")  # [batch, 5, 3] @ [batch, 1, 3, 10]
    scores = net.op("MatMul", q, net.op("Transpose", q, perm=[0, 1, 3, 2]))
    net.op("Where", net.op("Cast", scores, to=TensorProto.BOOL), scores, net.op("Relu", scores), name="two sides")
    net.op("Reshape", "x", net.const([T, -1], np.int64), name="mixes rows")
    net.op("Einsum", q, q, equation="bhqd,bhkd->bhq", name="one-sided sum")
    return net.model(net.op("Relu", "x"))


def test_refusals_named_by_node():
    with pytest.raises(UnsupportedModelError) as caught:
        load_onnx(_refused())
    text = str(caught.value)
    for fragment in (
        "node 'ranks' (MatMul, opset 17): a product of tensors of ranks 3 and 4",
        "node 'two sides' (Where, opset 17): both X and Y are computed tensors",
        "node 'mixes rows' (Reshape, opset 17): a reshape to [5, -1] does not keep the rows",
        "node 'one-sided sum' (Einsum, opset 17): ",
    ):
        assert fragment in text, text
