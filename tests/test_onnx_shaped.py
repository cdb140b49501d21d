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


STEPS, FEATURES, HIDDEN = 7, 5, 4
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _recurrence(op: str, direction: str = "forward", output: int = 0, zero_state: bool = False, **attrs):
    """An ``op`` node over x [batch, STEPS, FEATURES] (transposed to [STEPS, batch, FEATURES]), random weights
    and biases (and a zero ``initial_h``); its output ``output`` (Y or Y_h) returned with the batch
    first."""

    def make(g: Graph, x: str) -> str:
        dirs, n = 1 + (direction == "bidirectional"), GATES[op] * HIDDEN
        seq = g.op("Transpose", x, perm=[1, 0, 2])
        w = g.const(g.rng.standard_normal((dirs, n, FEATURES)) * 0.6)
        r = g.const(g.rng.standard_normal((dirs, n, HIDDEN)) * 0.4)
        bias = g.const(g.rng.standard_normal((dirs, 2 * n)) * 0.3)
        more = []
        if zero_state:  # as PyTorch writes it: zeros of [dirs, batch, HIDDEN], the batch size read from x
            batch = g.op("Unsqueeze", g.op("Gather", g.op("Shape", x), g.const(0, np.int64)), g.const([0], np.int64))
            shape = g.op("Concat", g.const([dirs], np.int64), batch, g.const([HIDDEN], np.int64), axis=0)
            more = ["", g.op("ConstantOfShape", shape)]
        outs = g.op(op, seq, w, r, bias, *more, outputs=2, hidden_size=HIDDEN, direction=direction, **attrs)
        return g.op("Transpose", outs[output], perm=[2, 0, 1, 3] if output == 0 else [1, 0, 2])

    return make


# x: [batch, STEPS, FEATURES]
CASES_RNN: dict[str, Case] = {
    "GRU": _recurrence("GRU", output=1),
    "GRU linear_before_reset reverse Y": _recurrence("GRU", "reverse", linear_before_reset=1),
    "GRU bidirectional Y": _recurrence("GRU", "bidirectional"),
    "GRU bidirectional Y_h": _recurrence("GRU", "bidirectional", output=1, linear_before_reset=1),
    "LSTM Y_h": _recurrence("LSTM", output=1),
    "LSTM reverse Y_h, zero initial_h": _recurrence("LSTM", "reverse", output=1, zero_state=True),
    "LSTM bidirectional Y": _recurrence("LSTM", "bidirectional"),
    "RNN Y": _recurrence("RNN"),
    "RNN bidirectional Y_h": _recurrence("RNN", "bidirectional", output=1),
    "GRU zero initial_h": _recurrence("GRU", output=1, zero_state=True),
    "GRU default activations given": _recurrence("GRU", output=1, activations=["Sigmoid", "Tanh"]),
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


@pytest.fixture(scope="module")
def zoo_rnn(tmp_path_factory):
    return _zoo(tmp_path_factory.mktemp("zoornn"), (STEPS, FEATURES), CASES_RNN, opset=21)


@pytest.mark.parametrize("case", list(CASES_RNN))
def test_recurrence_parity(zoo_rnn, case):
    _assert_case(zoo_rnn, case)


@pytest.mark.parametrize("case", list(CASES_1D))
def test_shaped_1d_parity(zoo_1d, case):
    _assert_case(zoo_1d, case)


@pytest.mark.parametrize("case", list(CASES_2D))
def test_shaped_2d_parity(zoo_2d, case):
    _assert_case(zoo_2d, case)
