"""PyTorch's ONNX files: the committed fixtures of tests/fixtures/onnx/make_torch.py, read without PyTorch.

The dense ones (an MLP with LayerNorm and GELU from both of PyTorch's exporters, a residual MLP with
BatchNorm, SiLU and LayerNorm) and the shaped ones read (a Conv1D net, a GRU) are exported, compiled and
checked against ONNX Runtime under the float32 rule. The TransformerEncoder with a padding mask is refused,
every node that stands in the way named at once with its op type and opset (its attention pattern is not
matched yet).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from exporter.api import export_chain
from exporter.common.errors import UnsupportedModelError
from exporter.frontends.onnx import load_onnx

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


def test_transformer_is_refused_naming_every_node(capsys):
    """PyTorch's TransformerEncoder (attention as MatMul-Softmax-MatMul over heads, a boolean padding mask):
    not matched onto the IR's Attention yet, so refused, every node in the way listed at once (name, op type,
    opset 17), never a traceback."""
    import onnx

    from helpers import run_cli

    path = FIXTURES / "transformer.onnx"
    with pytest.raises(UnsupportedModelError) as caught:
        load_onnx(path)
    problems = caught.value.problems
    nodes = {n.name: n.op_type for n in onnx.load(path).graph.node}
    for p in problems:
        if p.kind == "node":  # a node of the file, named as it is, with its op type and the model's opset
            assert p.layer in nodes and p.cls == f"{nodes[p.layer]}, opset 17", p
    refused = [(nodes[p.layer], p.layer) for p in problems if p.kind == "node"]
    # the mask input (bool), the mask's Where, and each attention layer's products and norms
    assert str(problems[0]) == "input 'mask' (input): is not a float32 tensor; the C function takes float rows"
    assert {"Where", "MatMul", "LayerNormalization"} <= {op for op, _ in refused}, refused
    for layer in ("layers.0", "layers.1"):
        assert any(f"/{layer}/self_attn/" in n for _, n in refused), refused
        assert any(f"/{layer}/norm2/" in n for _, n in refused), refused
    code, _, err = run_cli(capsys, path, "-o", FIXTURES / "never-written.c")
    assert code == 2 and f"cannot export {len(problems)} " in err and "Traceback" not in err, err
    assert not (FIXTURES / "never-written.c").exists()
