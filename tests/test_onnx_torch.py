"""PyTorch's ONNX files: the committed fixtures of tests/fixtures/onnx/make_torch.py, read without PyTorch.

The dense ones (an MLP with LayerNorm and GELU from both of PyTorch's exporters, a residual MLP with
BatchNorm, SiLU and LayerNorm) are exported, compiled and checked against ONNX Runtime under the float32
rule. The shaped ones (a Conv1D net, a GRU, a TransformerEncoder with a padding mask) are refused, every
node that stands in the way named at once with its op type and opset; their parity tests come with the
shaped ONNX ops (issue 29's IR ops read by this frontend), which will turn these refusals into exports.
"""

from __future__ import annotations

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


# Every node each shaped fixture is refused for, as (op type, node name): op types and opset are in each line.
SHAPED = {
    "conv1d": [
        ("Conv", "/body/body.0/Conv"),
        ("MaxPool", "/body/body.2/MaxPool"),
        ("Conv", "/body/body.3/Conv"),
        ("GlobalAveragePool", "/body/body.4/GlobalAveragePool"),
    ],
    "gru": [("Transpose", "/gru/Transpose"), ("GRU", "/gru/GRU")],
}


@pytest.mark.parametrize("name", ["conv1d", "gru", "transformer"])
def test_shaped_fixtures_are_refused_naming_every_node(name, capsys):
    """Convolutions, recurrences and attention: refused, every node in the way listed at once (name, op
    type, opset 17), never a traceback; the parity tests come with the shaped ONNX ops."""
    import onnx

    from helpers import run_cli

    path = FIXTURES / f"{name}.onnx"
    with pytest.raises(UnsupportedModelError) as caught:
        load_onnx(path)
    problems = caught.value.problems
    nodes = {n.name: n.op_type for n in onnx.load(path).graph.node}
    for p in problems:
        if p.kind == "node":  # a node of the file, named as it is, with its op type and the model's opset
            assert p.layer in nodes and p.cls == f"{nodes[p.layer]}, opset 17", p
    refused = [(nodes[p.layer], p.layer) for p in problems if p.kind == "node"]
    if name in SHAPED:
        assert refused == SHAPED[name] and len(problems) == len(refused), caught.value
    else:  # the mask input (bool), the mask's Where, and each attention layer's products and norms
        assert str(problems[0]) == "input 'mask' (input): is not a float32 tensor; the C function takes float rows"
        kinds = {op for op, _ in refused}
        assert {"Where", "MatMul", "LayerNormalization", "Transpose"} <= kinds, refused
        for layer in ("layers.0", "layers.1"):
            assert any(f"/{layer}/self_attn/" in n for _, n in refused), refused
            assert any(f"/{layer}/norm2/" in n for _, n in refused), refused
    code, _, err = run_cli(capsys, path, "-o", FIXTURES / "never-written.c")
    assert code == 2 and f"cannot export {len(problems)} " in err and "Traceback" not in err, err
    assert not (FIXTURES / "never-written.c").exists()
