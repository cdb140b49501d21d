"""ONNX graphs of preprocessing made by sklearn-onnx (skl2onnx), read as column ops with ``--preprocess
file.onnx`` (and as a target transform), compiled with an ONNX network and checked against ONNX Runtime.

One export covers every form sklearn-onnx writes for the scalers: ``Scaler`` (ai.onnx.ml: StandardScaler,
RobustScaler, MaxAbsScaler), the plain ``Cast``, ``Mul``, ``Add`` of a MinMaxScaler (clipped too), and a
Pipeline of them; the network is PyTorch's MLP fixture. Other ``ai.onnx.ml`` ops are refused by name.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler  # noqa: E402

from exporter.api import export_chain  # noqa: E402
from exporter.common.errors import UnsupportedModelError  # noqa: E402
from exporter.frontends.onnx.columns import load_preprocessing  # noqa: E402

from helpers import ROOT, assert_user_error  # noqa: E402

MLP = ROOT / "tests" / "fixtures" / "onnx" / "mlp.onnx"  # 12 inputs -> 4 outputs


def _onnx(est, x: np.ndarray, path) -> str:
    """``est`` fitted on ``x`` and written by sklearn-onnx (float32 input, as its users call it)."""
    est.fit(x)
    path.write_bytes(skl2onnx.to_onnx(est, x[:1].astype(np.float32)).SerializeToString())
    return str(path)


def test_scaler_graphs_as_preprocessing_and_target(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(3.0, 2.0, (400, 12)) * rng.uniform(0.1, 10.0, 12)
    pipeline = make_pipeline(StandardScaler(), RobustScaler(), MaxAbsScaler(), MinMaxScaler((-1, 2), clip=True))
    first = _onnx(pipeline, x, tmp_path / "pipeline.onnx")
    minmax = MinMaxScaler()
    second = _onnx(minmax, pipeline.transform(x), tmp_path / "minmax.onnx")
    target = _onnx(StandardScaler(), rng.normal(1.0, 3.0, (300, 4)), tmp_path / "target.onnx")
    ops = [op for est in (first, second) for op in load_preprocessing(est).steps]
    assert len(ops) == 6, ops  # three Scalers, a Mul+Add clipped (two steps), a Mul+Add: Casts pass the row on
    ex = export_chain(MLP, preprocess=[first, second], target_transform=target)
    assert [type(op).__name__ for op in ex.chain.pre.ops] == ["Standardize"] * 3 + ["MulAdd"] * 3
    assert [type(op).__name__ for op in ex.chain.post.ops] == ["MulAdd"]
    report = ex.check(ex.compile(tmp_path, one_row=True), inputs=ex.inputs(samples=2000))
    assert report.passed and report.fallback is None, report.table()
    # the reference of the preprocessing is ONNX Runtime running the files, which computes scikit-learn's values
    rows = x[:50]
    pre = load_preprocessing(second).transform(load_preprocessing(first).transform(rows))
    np.testing.assert_allclose(pre, minmax.transform(pipeline.transform(rows)), rtol=1e-5, atol=1e-5)


def test_other_ml_ops_refused_by_name(tmp_path, capsys):
    """An imputer and a normalizer (ai.onnx.ml) in a pipeline: both named at once, with op type, domain, opset."""
    x = np.random.default_rng(6).normal(size=(100, 12))
    path = _onnx(make_pipeline(SimpleImputer(), StandardScaler(), Normalizer()), x, tmp_path / "pre.onnx")
    with pytest.raises(UnsupportedModelError) as caught:
        load_preprocessing(path)
    problems = caught.value.problems
    assert [p.cls.split(",")[0] for p in problems] == ["Imputer", "Normalizer"], caught.value
    assert all("ai.onnx.ml, opset 1" in p.cls and "not read as preprocessing" in p.reason for p in problems)
    assert_user_error(capsys, tmp_path, [MLP, "--preprocess", path, "-o", tmp_path / "out.c"], "Imputer", "Normalizer")
