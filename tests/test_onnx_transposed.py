"""ONNX's ``ConvTranspose`` (1-D and 2-D) and ``InstanceNormalization``, built with onnx.helper, compiled to C
and compared with ONNX Runtime.

As in test_onnx_shaped.py, one graph per input shape holds a branch per case (one set of attributes), every
branch flattened side by side in the output, so that one compile serves them all; each case then asserts its
own output columns under the float32 rule against the float64 reference (onnx's reference evaluator). The
cases cover every way ConvTranspose states its output: ``pads``, each ``auto_pad``, ``output_padding``,
``output_shape`` (with SAME_UPPER and SAME_LOWER: which end takes the odd position), with strides, dilations
and groups, odd sizes throughout.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from test_onnx import Graph  # noqa: E402
from test_onnx_shaped import Case, _assert_case, _zoo  # noqa: E402

from exporter.api import export_chain  # noqa: E402

from helpers import assert_user_error  # noqa: E402


def _up(g: Graph, x: str, shape: tuple[int, ...], bias: bool = True, **attrs) -> str:
    """A ConvTranspose of a random weight of ``shape`` (C, M / group, *window), a bias of M values unless not
    ``bias``."""
    weight = g.const(g.rng.standard_normal(shape) / np.sqrt(shape[0] * np.prod(shape[2:])))
    filters = shape[1] * attrs.get("group", 1)
    inputs = [x, weight] + ([g.const(np.linspace(-0.5, 0.5, filters))] if bias else [])
    return g.op("ConvTranspose", *inputs, **attrs)


def _instance(g: Graph, x: str, channels: int, **attrs) -> str:
    scale, shift = g.const(g.rng.uniform(0.5, 1.5, channels)), g.const(g.rng.standard_normal(channels))
    return g.op("InstanceNormalization", x, scale, shift, **attrs)


# x: [batch, 3, 7]
CASES_1D: dict[str, Case] = {
    "ConvTranspose": lambda g, x: _up(g, x, (3, 4, 3)),
    "ConvTranspose pads strides": lambda g, x: _up(g, x, (3, 2, 4), pads=[2, 1], strides=[3]),
    "ConvTranspose output_padding dilations": lambda g, x: _up(
        g, x, (3, 2, 3), strides=[3], output_padding=[2], dilations=[2], pads=[1, 0]
    ),
    "ConvTranspose SAME_UPPER": lambda g, x: _up(g, x, (3, 3, 3), auto_pad="SAME_UPPER", strides=[2]),
    "ConvTranspose SAME_LOWER": lambda g, x: _up(g, x, (3, 3, 3), auto_pad="SAME_LOWER", strides=[2]),
    "ConvTranspose VALID no bias": lambda g, x: _up(g, x, (3, 2, 2), bias=False, auto_pad="VALID", strides=[2]),
    "ConvTranspose group": lambda g, x: _up(g, x, (3, 2, 3), group=3, strides=[2], pads=[1, 1]),
    "ConvTranspose output_shape SAME_UPPER": lambda g, x: _up(
        g, x, (3, 2, 4), strides=[2], output_shape=[13], auto_pad="SAME_UPPER"
    ),
    "ConvTranspose output_shape SAME_LOWER": lambda g, x: _up(
        g, x, (3, 2, 4), strides=[2], output_shape=[14], auto_pad="SAME_LOWER", output_padding=[1]
    ),
    "ConvTranspose window narrower than stride": lambda g, x: _up(g, x, (3, 2, 2), strides=[3], kernel_shape=[2]),
    "InstanceNormalization": lambda g, x: _instance(g, x, 3),
    "InstanceNormalization epsilon": lambda g, x: _instance(g, g.op("Mul", x, g.const(0.01)), 3, epsilon=0.1),
}

# x: [batch, 4, 3, 3]
CASES_2D: dict[str, Case] = {
    "ConvTranspose 2D strides pads": lambda g, x: _up(g, x, (4, 3, 2, 3), strides=[2, 3], pads=[0, 1, 1, 2]),
    "ConvTranspose 2D group dilations output_padding": lambda g, x: _up(
        g, x, (4, 1, 3, 2), group=2, dilations=[2, 1], strides=[1, 2], output_padding=[0, 1]
    ),
    "ConvTranspose 2D SAME_UPPER": lambda g, x: _up(g, x, (4, 2, 3, 3), auto_pad="SAME_UPPER", strides=[2, 1]),
    "ConvTranspose 2D SAME_LOWER": lambda g, x: _up(g, x, (4, 2, 2, 3), auto_pad="SAME_LOWER", strides=[2, 2]),
    "ConvTranspose 2D depthwise VALID": lambda g, x: _up(g, x, (4, 1, 2, 2), group=4, auto_pad="VALID"),
    "InstanceNormalization 2D": lambda g, x: _instance(g, x, 4),
}


@pytest.fixture(scope="module")
def zoo_1d(tmp_path_factory):
    return _zoo(tmp_path_factory.mktemp("up1d"), (3, 7), CASES_1D)


@pytest.fixture(scope="module")
def zoo_2d(tmp_path_factory):
    return _zoo(tmp_path_factory.mktemp("up2d"), (4, 3, 3), CASES_2D, opset=22)


@pytest.mark.parametrize("case", list(CASES_1D))
def test_transposed_1d_parity(zoo_1d, case):
    _assert_case(zoo_1d, case)


@pytest.mark.parametrize("case", list(CASES_2D))
def test_transposed_2d_parity(zoo_2d, case):
    _assert_case(zoo_2d, case)


def test_output_shape_without_auto_pad_matches_onnx_runtime(tmp_path):
    """``output_shape`` alone: onnx's reference evaluator cannot run it (no float64 twin), so the fixed rule
    decides against ONNX Runtime, and says so; the odd position goes first, as ONNX Runtime puts it."""
    g = Graph(opset=17, dims=(2, 5))
    g.branch("up", g.op("Flatten", _up(g, "x", (2, 3, 4), strides=[2], output_shape=[9]), axis=1))
    onnx.save(g.model(), tmp_path / "up.onnx")
    ex = export_chain(tmp_path / "up.onnx")
    report = ex.check(ex.compile(tmp_path, one_row=True), inputs=ex.inputs(samples=1000))
    assert report.fallback is not None and "reference evaluator" in report.fallback
    assert report.passed, report.table()


def test_what_stays_out_is_refused_by_name(tmp_path, capsys):
    g = Graph(opset=17, dims=(2, 4))
    g.branch("wide", g.op("Flatten", _up(g, "x", (2, 2, 2), strides=[2], output_padding=[2]), axis=1))
    g.branch("grown", g.op("Flatten", _up(g, "x", (2, 2, 2), strides=[3], auto_pad="SAME_UPPER"), axis=1))
    g.branch("same", g.op("Flatten", _up(g, "x", (2, 2, 3), strides=[2], auto_pad="SAME_UPPER", output_padding=[1]),
                          axis=1))  # fmt: skip
    g.branch("flat", g.op("InstanceNormalization", g.op("Flatten", "x", axis=1), g.const([1.0]), g.const([0.0])))
    path = tmp_path / "bad.onnx"
    onnx.save(g.model(), path)
    assert_user_error(
        capsys,
        tmp_path,
        [path, "-o", tmp_path / "m.c"],
        "(ConvTranspose, opset 17): output_padding [2] for strides [2]: each below its stride",
        "(ConvTranspose, opset 17): an output of [12] positions, more than the [11] the input reaches",
        "(ConvTranspose, opset 17): auto_pad SAME_UPPER with output_padding [1]: ONNX and ONNX Runtime disagree",
        "(InstanceNormalization, opset 17): an input of shape [batch, 8]: no positions to normalize over",
    )
