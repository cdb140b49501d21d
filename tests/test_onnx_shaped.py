"""ONNX's shaped ops: convolutions, pooling, padding, transposes and recurrences on tensors, each compiled to C
and compared with ONNX Runtime.

As in test_onnx.py, one graph per input shape holds a branch per case (an op with one set of attributes),
every branch flattened and laid side by side in the output, so that one compile serves them all; each case
then asserts its own output columns under the float32 rule against the float64 reference. The inputs are
channels-first, as ONNX's are, and the C reads them flattened in that order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from test_onnx import Graph  # noqa: E402

from exporter.api import export_chain  # noqa: E402

ROWS = 1000
Case = Callable[[Graph, str], str]


def _conv(g: Graph, x: str, shape: tuple[int, ...], bias: bool = True, **attrs) -> str:
    """A Conv of a random weight of ``shape`` (M, C / group, *window), a bias of M values unless not ``bias``."""
    weight = g.const(g.rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:])))
    inputs = [x, weight] + ([g.const(np.linspace(-0.5, 0.5, shape[0]))] if bias else [])
    return g.op("Conv", *inputs, **attrs)


def _pads(g: Graph, *pads: int):
    return g.const(list(pads), np.int64)


# x: [batch, 3, 11]
CASES_1D: dict[str, Case] = {
    "Conv pads strides dilations": lambda g, x: _conv(g, x, (5, 3, 3), pads=[1, 2], strides=[2], dilations=[2]),
    "Conv SAME_UPPER": lambda g, x: _conv(g, x, (4, 3, 4), auto_pad="SAME_UPPER"),
    "Conv SAME_LOWER strides": lambda g, x: _conv(g, x, (4, 3, 4), auto_pad="SAME_LOWER", strides=[2]),
    "Conv VALID group no bias": lambda g, x: _conv(g, x, (6, 1, 2), bias=False, auto_pad="VALID", group=3),
    "Conv depthwise": lambda g, x: _conv(g, x, (3, 1, 5), group=3, pads=[2, 2]),
    "MaxPool": lambda g, x: g.op("MaxPool", x, kernel_shape=[3], strides=[2], pads=[1, 1]),
    "MaxPool dilations": lambda g, x: g.op("MaxPool", x, kernel_shape=[2], dilations=[3]),
    "MaxPool ceil_mode exact": lambda g, x: g.op("MaxPool", x, kernel_shape=[3], strides=[2], ceil_mode=1),
    "AveragePool pads": lambda g, x: g.op("AveragePool", x, kernel_shape=[3], pads=[1, 2]),
    "AveragePool count_include_pad": lambda g, x: g.op(
        "AveragePool", x, kernel_shape=[3], pads=[1, 2], count_include_pad=1
    ),
    "AveragePool SAME_UPPER": lambda g, x: g.op("AveragePool", x, kernel_shape=[4], auto_pad="SAME_UPPER"),
    "GlobalAveragePool": lambda g, x: g.op("GlobalAveragePool", x),
    "GlobalMaxPool": lambda g, x: g.op("GlobalMaxPool", x),
    "Pad": lambda g, x: g.op("Pad", x, _pads(g, 0, 0, 2, 0, 0, 1)),
    "Pad value 0": lambda g, x: g.op("Pad", x, _pads(g, 0, 0, 1, 0, 0, 3), g.const(0.0)),
    "Transpose": lambda g, x: g.op("Transpose", g.op("Relu", x), perm=[0, 2, 1]),
    "Unsqueeze Squeeze": lambda g, x: g.op(
        "Squeeze",
        g.op("MaxPool", g.op("Unsqueeze", x, g.const([2], np.int64)), kernel_shape=[1, 2]),
        g.const([2], np.int64),
    ),
    "Reshape": lambda g, x: g.op("Reshape", _conv(g, x, (2, 3, 3)), g.const([0, 3, -1], np.int64)),
}

# x: [batch, 4, 5, 6]
CASES_2D: dict[str, Case] = {
    "Conv 2D group pads strides dilations": lambda g, x: _conv(
        g, x, (6, 2, 2, 3), group=2, pads=[1, 0, 0, 2], strides=[1, 2], dilations=[2, 1]
    ),
    "Conv 2D depthwise SAME_UPPER": lambda g, x: _conv(g, x, (8, 1, 3, 3), group=4, auto_pad="SAME_UPPER"),
    "Conv 2D SAME_LOWER": lambda g, x: _conv(g, x, (3, 4, 2, 2), auto_pad="SAME_LOWER", strides=[2, 2]),
    "MaxPool 2D": lambda g, x: g.op("MaxPool", x, kernel_shape=[2, 2], strides=[2, 2]),
    "AveragePool 2D": lambda g, x: g.op("AveragePool", x, kernel_shape=[3, 2], pads=[1, 0, 1, 1]),
    "AveragePool 2D count_include_pad": lambda g, x: g.op(
        "AveragePool", x, kernel_shape=[3, 2], pads=[1, 0, 1, 1], count_include_pad=1, strides=[2, 1]
    ),
    "GlobalAveragePool 2D": lambda g, x: g.op("GlobalAveragePool", x),
    "GlobalMaxPool 2D": lambda g, x: g.op("GlobalMaxPool", x),
    "Pad 2D": lambda g, x: g.op("Pad", x, _pads(g, 0, 0, 1, 0, 0, 0, 2, 1)),
    "Transpose 2D": lambda g, x: g.op("Transpose", x, perm=[0, 2, 3, 1]),
}


def _zoo(tmp_path, dims: tuple[int, ...], cases: dict[str, Case], opset: int = 17):
    g = Graph(opset=opset, dims=dims)
    for name, make in cases.items():
        g.branch(name, g.op("Flatten", make(g, "x"), axis=1))
    model = g.model()
    columns = g.columns(model)
    path = tmp_path / "zoo.onnx"
    onnx.save(model, path)
    ex = export_chain(path)
    report = ex.check(ex.compile(tmp_path, one_row=True), inputs=ex.inputs(samples=ROWS))
    return report, columns


def _assert_case(zoo, case: str) -> None:
    report, columns = zoo
    assert report.fallback is None and report.judgement is not None, report.fallback
    judged = report.judgement
    mine = [c for c in judged.columns if c.column in columns[case]]
    assert len(mine) == len(columns[case])
    failing = [why for ok, why in (c.decided(judged.rows, False) for c in mine) if not ok]
    assert not failing, failing


@pytest.fixture(scope="module")
def zoo_1d(tmp_path_factory):
    return _zoo(tmp_path_factory.mktemp("zoo1d"), (3, 11), CASES_1D)


@pytest.fixture(scope="module")
def zoo_2d(tmp_path_factory):
    return _zoo(tmp_path_factory.mktemp("zoo2d"), (4, 5, 6), CASES_2D, opset=22)


@pytest.mark.parametrize("case", list(CASES_1D))
def test_shaped_1d_parity(zoo_1d, case):
    _assert_case(zoo_1d, case)


@pytest.mark.parametrize("case", list(CASES_2D))
def test_shaped_2d_parity(zoo_2d, case):
    _assert_case(zoo_2d, case)
