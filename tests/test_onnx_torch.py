"""PyTorch's ONNX files: the committed fixtures of tests/fixtures/onnx/make_torch.py, read without PyTorch.

The dense ones (an MLP with LayerNorm and GELU from both of PyTorch's exporters, a residual MLP with
BatchNorm, SiLU and LayerNorm) and the shaped ones read (a Conv1D net, a GRU) are exported, compiled and
checked against ONNX Runtime under the float32 rule, and so is the TransformerEncoder with a padding mask,
its attention read op by op (docs/onnx.md#attention).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from exporter.api import export_chain

from helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "onnx"
ROWS = 2000  # random rows per check, besides the export's edge rows


@pytest.mark.parametrize(
    ("name", "ops"),
    [
        ("mlp", {"Gemm", "LayerNormalization", "Div", "Erf", "Add", "Mul"}),
        ("mlp_dynamo", {"Gemm", "LayerNormalization", "Div", "Erf", "Add", "Mul"}),
        ("mlp_opset13", {"Gemm", "ReduceMean", "Sub", "Pow", "Sqrt", "Div", "Erf", "Add", "Mul"}),
        ("resnet", {"Gemm", "BatchNormalization", "Relu", "Sigmoid", "Mul", "Add", "LayerNormalization"}),
    ],
)
def test_dense_fixture_parity(tmp_path, name, ops):
    """Each dense fixture exports whole and its compiled C passes the float32 rule against ONNX Runtime."""
    import onnx

    path = FIXTURES / f"{name}.onnx"
    written = {n.op_type for n in onnx.load(path).graph.node} - {"Constant", "MatMul"}
    assert written == ops, written  # the patterns PyTorch wrote are those this test means to cover
    ex = export_chain(path)
    kinds = [op.activation.kind for op in ex.chain.net.ops if hasattr(op, "activation")]
    assert "erf" not in kinds and kinds.count("gelu_erf") == ("Erf" in ops) * (1 + (name == "mlp")), kinds
    report = ex.check(ex.compile(tmp_path, one_row=True), inputs=ex.inputs(samples=ROWS))
    assert report.passed and report.fallback is None, report.table()
    assert report.judgement is not None and report.judgement.rows >= ROWS
    assert "ONNX Runtime" in report.verdict()


@pytest.mark.parametrize(
    ("name", "ops"),
    [
        ("conv1d", {"Conv", "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm"}),
        ("gru", {"Shape", "Gather", "Unsqueeze", "Concat", "ConstantOfShape", "Transpose", "GRU", "Gemm"}),
    ],
)
def test_shaped_fixture_parity(tmp_path, name, ops):
    """Each shaped fixture exports whole, its input read flat in ONNX's own (channels-first) order, and its
    compiled C passes the float32 rule against ONNX Runtime."""
    import onnx

    path = FIXTURES / f"{name}.onnx"
    model = onnx.load(path)
    assert {n.op_type for n in model.graph.node} - {"Constant"} == ops
    ex = export_chain(path)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    assert ex.chain.net.widths[ex.chain.net.input] == int(np.prod(dims))
    report = ex.check(ex.compile(tmp_path, one_row=True), inputs=ex.inputs(samples=ROWS))
    assert report.passed and report.fallback is None, report.table()
    assert report.judgement is not None and report.judgement.rows >= ROWS


@pytest.mark.parametrize("name", ["transformer", "transformer_dynamo"])
def test_transformer_parity_every_mask_count(tmp_path, name):
    """PyTorch's TransformerEncoder with a padding mask: its attention as the TorchScript exporter writes it
    (the batch moved to axis 1 and merged with the heads, ``MatMul``-``Softmax``-``MatMul`` per head, the bool
    ``src_key_padding_mask`` a second input turned into ``-inf`` by ``Where``) exports whole, x and the mask
    side by side in the C's input row. The parity rows pad every count of tokens, 0 to 8 (8: every token
    padded, NaN in ONNX Runtime as in PyTorch, and in the C), and pass the float32 rule. The ``torch.export``
    exporter writes the same encoder otherwise (the mask a ``Where`` of ``zeros_like``, the batch not merged
    with the heads): the same ops read it, nothing matches either exporter's sequence."""
    import onnx

    from exporter.ir import MatMul, Select

    path = FIXTURES / f"{name}.onnx"
    model = onnx.load(path)
    assert model.graph.input[1].type.tensor_type.elem_type == onnx.TensorProto.BOOL
    assert {"Where", "MatMul", "Softmax", "Expand", "LayerNormalization"} <= {n.op_type for n in model.graph.node}
    ex = export_chain(path)
    net = ex.chain.net
    assert [(p.name, p.offset, p.shape, p.mask) for p in net.parts] == [
        ("x", 0, (8, 16), False),
        ("mask", 128, (8,), True),
    ]
    assert sum(isinstance(op, MatMul) for op in net.ops) == 4 and any(isinstance(op, Select) for op in net.ops)
    rows = ex.inputs(samples=ROWS)
    padded = rows[:, 128:].sum(axis=1)
    assert set(np.unique(rows[:, 128:])) == {0.0, 1.0} and set(padded) == set(range(9))
    lib = ex.compile(tmp_path, one_row=True)
    report = ex.check(lib, inputs=rows)
    assert report.passed and report.fallback is None, report.table()
    assert report.judgement is not None and report.judgement.rows >= ROWS
    whole = rows[padded == 8][:3].astype(np.float32)
    assert np.isnan(lib.batch(whole)).all() and np.isnan(ex.loaded.reference(whole)).all()
    if name == "transformer":  # the trace: ONNX Runtime's tensors with the batch first, tapped step by step
        from exporter.check.trace import trace

        traced = trace(ex, report.arrays.inputs, [int(r) for r in report.worst_rows(4)], report.atol, report.rtol)
        assert traced.first_drift is None and "every step agrees" in traced.verdict(), traced.table()
        named = " ".join(step.name for step in traced.steps)
        assert "/encoder/Where" in named and "self_attn/Softmax" in named and "self_attn/MatMul_1" in named, named
