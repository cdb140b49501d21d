"""Keras 3 operation nodes (``x = x + x_``, ``keras.ops.*``, ``x[:, a:b]``): the IR of their layer twins."""

from __future__ import annotations

import re

import numpy as np
import pytest

from exporter import export_keras
from exporter.common.errors import UnsupportedModelError
from exporter.ir import Affine, Expand, Merge, Slice

from helpers import (
    assert_user_error,
    export_and_check,
    export_through_cli_and_manifest,
    randomize,
    run_cli,
    saved,
)


def residual(keras, as_operator: bool, width: int = 8):
    """A Lamarr residual block: ``x = x + x_`` as an operator (an operation node) or as ``layers.Add``."""
    L = keras.layers
    inputs = keras.Input((5,))
    x = L.Dense(width, activation="tanh", name="inner")(inputs)
    x_ = L.Dense(width, activation="tanh", name="branch")(x)
    x = x + x_ if as_operator else L.Add(name="add")([x, x_])
    return randomize(keras.Model(inputs, L.Dense(2, name="head")(x)), seed=4)


def without_comments(c: str) -> str:
    return re.sub(r"/\*.*?\*/", "", c, flags=re.DOTALL)


def test_operator_and_add_layer_give_identical_c(keras, tmp_path):
    sources = []
    for as_operator in (True, False):
        ex = export_keras(saved(residual(keras, as_operator), tmp_path / str(as_operator)), name="model")
        assert ex.check(ex.compile(tmp_path / str(as_operator), one_row=True)).passed
        sources.append(without_comments(ex.source.c))
    assert sources[0] == sources[1]
    assert "add" in export_keras(tmp_path / "True" / "model.keras").graph.ops[1].name  # the node's name is kept


# name -> function of a symbolic (batch, 6) tensor, mapped op expected in the IR (None: any)
CASES = {
    "x - 1.5": (lambda k, x: x - 1.5, Affine),
    "2 - x": (lambda k, x: 2.0 - x, Affine),
    "x * 3 + 1": (lambda k, x: x * 3.0 + 1.0, Affine),
    "x / 4": (lambda k, x: x / 4.0, Affine),
    "-x": (lambda k, x: -x, Affine),
    "x * per-feature": (lambda k, x: x * np.linspace(-2, 2, 6).astype("float32"), Affine),
    "ops.add": (lambda k, x: k.ops.add(x, k.ops.tanh(x)), Merge),
    "x - y": (lambda k, x: x - k.ops.sigmoid(x), Merge),
    "x * y": (lambda k, x: x * k.ops.tanh(x), Merge),
    "maximum": (lambda k, x: k.ops.maximum(x, k.ops.tanh(x)), Merge),
    "minimum": (lambda k, x: k.ops.minimum(x, k.ops.tanh(x)), Merge),
    "concatenate": (lambda k, x: k.ops.concatenate([x, k.ops.relu(x)], axis=-1), None),
    "exp": (lambda k, x: k.ops.exp(k.ops.tanh(x)), None),
    "log": (lambda k, x: k.ops.log(k.ops.sigmoid(x)), None),
    "log1p, abs": (lambda k, x: k.ops.log1p(k.ops.abs(x)), None),
    "sqrt, square": (lambda k, x: k.ops.sqrt(k.ops.square(x) + 1.0), None),
    "softplus, silu": (lambda k, x: k.ops.softplus(k.ops.silu(x)), None),
    "leaky_relu": (lambda k, x: k.ops.leaky_relu(x, negative_slope=0.05), None),
    "elu, selu": (lambda k, x: k.ops.selu(k.ops.elu(x, alpha=0.5)), None),
    "gelu": (lambda k, x: k.ops.gelu(x, approximate=False) + k.ops.gelu(x), None),
    "softmax": (lambda k, x: k.ops.softmax(x, axis=-1), None),
    "x + x[:, :1]": (lambda k, x: x + x[:, :1], Expand),  # broadcast: the column repeated over the row
    "x[:, 2:5]": (lambda k, x: x[:, 2:5], Slice),
    "x[..., :3], x[:, -2:]": (lambda k, x: k.ops.concatenate([x[..., :3], x[:, -2:]], axis=-1), Slice),
}


@pytest.mark.parametrize("case", list(CASES))
def test_operation_nodes_pass_parity(keras, tmp_path, case):
    fn, expected = CASES[case]
    inputs = keras.Input((4,))
    h = keras.layers.Dense(6, activation="elu", name="dense")(inputs)  # an activation: no Affine folds into it
    out = keras.layers.Dense(3, name="head")(fn(keras, h))
    model = randomize(keras.Model(inputs, out), seed=len(case))
    report = export_and_check(model, tmp_path)
    assert report.passed, report.table()
    walked = export_keras(tmp_path / "model.keras")
    if expected is not None:
        assert any(isinstance(op, expected) for op in walked.graph.ops), [op.describe() for op in walked.graph.ops]


def test_slice_splits_conditions_from_noise(keras, tmp_path):
    """One input, conditions then noise, split inside the model with x[:, a:b] as Lamarr's generators do."""
    L = keras.layers
    inputs = keras.Input((7,))
    cond, noise = inputs[:, :3], inputs[:, 3:]
    h = L.Dense(8, activation="relu")(L.Concatenate()([L.Dense(4)(cond), noise]))
    model = randomize(keras.Model(inputs, L.Dense(2)(h)))
    ex = export_keras(saved(model, tmp_path))
    slices = [op for op in ex.graph.ops if isinstance(op, Slice)]
    assert [(op.start, op.width) for op in slices] == [(0, 3), (3, 4)]
    rows = np.random.default_rng(0).standard_normal((400, 7))
    rows[:5] = [0.0, -0.0, 1e-30, -1e30, 3.4e38, -3.4e38, 1.0]  # edge values
    report = ex.check(ex.compile(tmp_path, one_row=True), rows)
    assert report.passed, report.table()


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda k, x: x[:, ::2], ["operation 'get_item", "(GetItem)", "step 1"]),
        (lambda k, x: x[:, 1], ["(GetItem)", "only (batch, features) tensors"]),
        (lambda k, x: 1.0 / x, ["operation 'true_divide", "(TrueDivide)", "divide of a constant and a tensor"]),
    ],
    ids=["strided slice", "one column", "c / x"],
)
def test_refused_operations_are_named(capsys, keras, tmp_path, make, fragments):
    inputs = keras.Input((3,))
    h = keras.layers.Dense(6)(inputs)
    y = make(keras, h)
    if len(y.shape) == 2:
        y = keras.layers.Dense(2)(y)
    path = saved(keras.Model(inputs, y), tmp_path)
    with pytest.raises(UnsupportedModelError) as info:
        export_keras(path)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert_user_error(capsys, tmp_path, [path, "-o", tmp_path / "m.c"], *fragments)


def inspect_rows(out: str) -> dict[str, str]:
    """The table rows of ``inspect`` by name, Keras' numbering of repeated names (``add_3``) dropped."""
    rows = [line for line in out.splitlines() if re.match(r"\s+\d+\s", line)]
    return {re.sub(r"_\d+$", "", line.split()[1]): line for line in rows}


def test_unknown_operation_refused_from_the_stored_configuration(capsys, keras, tmp_path):
    """keras.ops.erfinv has no mapping: refused before Keras loads the file; inspect shows every node as a row."""
    inputs = keras.Input((3,))
    h = keras.layers.Dense(4, name="dense")(inputs)
    y = keras.layers.Dense(2, name="head")(keras.ops.erfinv(h) + h)
    path = saved(keras.Model(inputs, y), tmp_path)
    assert_user_error(
        capsys, tmp_path, [path, "-o", tmp_path / "m.c"], "operation 'erfinv", "(Erfinv)", "no C translation"
    )
    code, out, _ = run_cli(capsys, "inspect", path)
    assert code == 2
    rows = inspect_rows(out)
    assert rows["add"].rstrip().endswith("ok") and " Add " in rows["add"]
    assert "REFUSED: operation Erfinv has no C translation" in rows["erfinv"]


def test_inspect_shows_operation_nodes_as_rows(capsys, keras, tmp_path):
    """An operation refused by its arguments: the walked rows show the other nodes ok, in place."""
    inputs = keras.Input((6,))
    h = keras.layers.Dense(6, name="dense")(inputs)
    y = keras.layers.Dense(2, name="head")(keras.ops.tanh(h[:, ::2] * 2.0))
    path = saved(keras.Model(inputs, y), tmp_path)
    code, out, _ = run_cli(capsys, "inspect", path)
    assert code == 2
    rows = inspect_rows(out)
    assert "REFUSED: slice slice(None, None, 2)" in rows["get_item"]
    assert rows["multiply"].rstrip().endswith("ok") and "Affine 3" in rows["multiply"]
    assert rows["tanh"].rstrip().endswith("ok") and "Activation tanh" in rows["tanh"]


def lamarr_resolution_generator(keras, n_cond=4, n_noise=16, n_out=3):
    """As Lamarr's Keras 3 tracking notebooks write them: conditions and noise concatenated, residual
    blocks ``x = x + x_`` with LeakyReLU layers."""
    L = keras.layers
    cond, noise = keras.Input((n_cond,), name="conditions"), keras.Input((n_noise,), name="noise")
    x = L.Dense(32)(L.Concatenate()([cond, noise]))
    x = L.LeakyReLU(0.1)(x)
    for _ in range(2):
        x_ = L.LeakyReLU(0.1)(L.Dense(32)(x))
        x = x + x_
    return randomize(keras.Model([cond, noise], L.Dense(n_out)(x)))


def test_residual_generator_cli_and_manifest(capsys, keras, tmp_path):
    path = saved(lamarr_resolution_generator(keras), tmp_path, "resolution.keras")
    out = export_through_cli_and_manifest(capsys, tmp_path, path, noise=16)
    assert "4 inputs + 16 noise -> 3 outputs" in out
    assert out.count("+ skip") == 2  # each x + x_ fused into its Dense, as layers.Add is
