"""Tensors in the IR: values of a static shape per row, flat in row-major order in the C.

Row ops (Dense, LayerNorm, softmax, BatchNormalization, Rescaling) on a tensor act on its last axis,
in a loop over the slices of the others; Concatenate joins along any axis; Flatten and Reshape relabel.
Each model is exported from its file, compiled and checked against Keras on 10,000 random rows plus the
edge rows, under the default parity rule; the header states the shapes; what does not fit is refused
by name; a network whose stack scratch would pass the documented limit is refused with the number.
"""

from __future__ import annotations

import numpy as np
import pytest

from exporter.backend import MAX_STACK_BYTES
from exporter.frontends.builder import Builder, Unsupported
from exporter.ir import Concatenate, Dense, Graph, LayerNorm, Reshape

from helpers import assert_user_error, export_and_check, header_values, randomize, run_cli, saved


def _sequence_head(keras):
    """Dense over each step, LayerNorm and softmax along features, concatenated along time, flattened."""
    L = keras.layers
    x = keras.Input((5, 4))
    h = L.Dense(6, activation="tanh")(x)
    h = L.LayerNormalization(epsilon=1e-3)(h)
    joined = L.Concatenate(axis=1)([h, L.Softmax()(h)])
    out = L.Dense(3, activation="softmax")(L.Flatten()(L.BatchNormalization()(joined)))
    return keras.Model(x, out)


def _image_like(keras):
    """(H, W, C) through per-channel maps, merges, a reshape and a residual Dense over the channels."""
    L = keras.layers
    x = keras.Input((3, 4, 2))
    a = L.Rescaling([0.5, 2.0], offset=[0.1, -0.2])(x)
    b = L.PReLU(shared_axes=[1, 2])(x)
    h = L.Concatenate(axis=-1)([L.Add()([a, b]), L.Multiply()([a, b])])  # (3, 4, 4)
    h = L.Add()([h, L.Dense(4)(h)])  # fused into the Dense: a skip per step
    h = L.Reshape((12, 4))(h)
    h = L.LayerNormalization(axis=[-2, -1])(h)
    return keras.Model(x, L.Dense(2)(L.Flatten()(h)))


def _tensor_out(keras):
    """A tensor output: (4, 3), softmax along its last axis."""
    L = keras.layers
    x = keras.Input((4, 5))
    h = L.Concatenate(axis=-1)([x, L.Dense(3, activation="relu")(x)])
    return keras.Model(x, L.Dense(3, activation="softmax")(L.Dropout(0.5)(h)))


MODELS = {"sequence head": _sequence_head, "image-like": _image_like, "tensor output": _tensor_out}


@pytest.mark.parametrize("kind", MODELS)
def test_tensor_models_match_keras(keras, tmp_path, kind):
    report = export_and_check(randomize(MODELS[kind](keras)), tmp_path)
    assert report.rows >= 10_000
    assert report.passed, report.table()


def test_the_header_states_the_shapes_and_a_c_program_reads_them(keras, tmp_path, capsys):
    path = saved(randomize(_tensor_out(keras)), tmp_path)
    code, _, err = run_cli(capsys, path, "-o", tmp_path / "seq.c", "--no-check")
    assert code == 0, err
    arrays = "in[] = seq_INPUT_SHAPE, out[] = seq_OUTPUT_SHAPE"
    values = "seq_INPUT_RANK, in[0] * in[1], seq_N_INPUTS, seq_OUTPUT_RANK, out[0] * out[1], seq_N_OUTPUTS"
    shown = header_values(tmp_path, "seq.h", arrays, values)
    assert shown == ["2", "20", "20", "2", "12", "12"]


def test_a_model_of_rows_states_no_shape(keras, tmp_path, capsys):
    model = randomize(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
    code, _, err = run_cli(capsys, saved(model, tmp_path), "-o", tmp_path / "rows.c", "--no-check")
    assert code == 0, err
    assert "INPUT_SHAPE" not in (tmp_path / "rows.h").read_text()


def test_what_does_not_fit_a_shape_is_refused_by_name(keras, tmp_path, capsys):
    L = keras.layers
    x = keras.Input((4, 3))
    h = L.Softmax(axis=1, name="over_time")(x)
    h = L.GroupNormalization(groups=1, axis=1, name="per_step")(h)  # BatchNormalization takes any axis now
    model = keras.Model(x, L.Dense(2, name="head")(L.Flatten()(h)))
    assert_user_error(
        capsys,
        tmp_path,
        [saved(model, tmp_path), "-o", tmp_path / "m.c"],
        "'over_time' (Softmax): axis 1; only the last axis (-1) is supported",
        "'per_step' (GroupNormalization): axis 1",
    )


def test_an_unknown_axis_length_is_refused(keras, tmp_path, capsys):
    x = keras.Input((None, 3), name="hits")
    model = keras.Model(x, keras.layers.Dense(2)(x))
    assert_user_error(capsys, tmp_path, [saved(model, tmp_path), "-o", tmp_path / "m.c"], "(None, None, 3)")


def test_scratch_beyond_the_stack_limit_is_refused_with_the_number(keras, tmp_path, capsys):
    model = keras.Sequential([keras.Input((1000, 100)), keras.layers.Dense(200), keras.layers.Flatten()])
    code, _, err = run_cli(capsys, saved(model, tmp_path), "-o", tmp_path / "big.c", "--no-check")
    assert code == 2
    assert f"more than the limit of {MAX_STACK_BYTES}" in err and "bytes of stack scratch" in err
    assert not (tmp_path / "big.c").exists()


@pytest.mark.parametrize(("features", "rows"), [(20, {"baseline": 2, "x86-64-v3": 4, "x86-64-v4": 6}), (100, None)])
def test_a_batch_block_holds_as_many_rows_as_fit_the_stack(keras, tmp_path, features, rows):
    """Dense over 1000 steps: 80 kB of scratch per row fits 6 rows of the limit (not AVX-512's default 8), 400 kB
    only one (SYMBOL_batch then calls the one-row code on each row); the banner says so; the batch gives the
    bits of one row per call, in every variant this CPU runs."""
    from exporter import export_keras
    from exporter.check.batch_bits import build_and_run

    model = keras.Sequential([keras.Input((1000, 10)), keras.layers.Dense(features), keras.layers.Flatten()])
    ex = export_keras(saved(randomize(model), tmp_path))
    rows = rows or {"baseline": 1, "x86-64-v3": 1, "x86-64-v4": 1}
    said = ", ".join(f"{n} ({name})" for name, n in rows.items())
    assert f"as many as fit the stack limit of\n * {MAX_STACK_BYTES} bytes: {said}." in ex.source.h
    assert ("model_v4_rows6(" in ex.source.c) == (features == 20) and "model_v4_rows8(" not in ex.source.c
    bits = build_and_run(ex.source, tmp_path)
    assert bits.passed and bits.results, bits.verdict()


def test_the_builder_refuses_an_op_whose_shapes_do_not_fit():
    b = Builder("test")
    x = b.value(12, (3, 4))
    with pytest.raises(Unsupported, match=r"does not take inputs of shape \(3, 4\)"):
        b.add(Dense, "flat", [x], 2, kernel=np.ones((12, 2)))  # a Dense over the whole tensor without a Flatten
    y = b.add(Dense, "steps", [x], 2, kernel=np.ones((4, 2)), steps=3)
    assert b.shape(y) == (3, 2)
    z = b.value(6, (3, 2))
    joined = b.add(Concatenate, "time", [y, z], 12, axis=-2)
    assert b.shape(joined) == (6, 2)
    other = b.value(8, (2, 4))
    with pytest.raises(Unsupported):
        b.add(Concatenate, "bad", [x, other], 8, steps=3)  # (3, 4) and (2, 4) along the last axis
    assert b.shape(b.add(Concatenate, "last", [x, y], 6, steps=3)) == (3, 6)


def test_graph_validation_catches_a_wrong_shape():
    norm = LayerNorm("n", ("x",), "y", 4, scale=np.ones(4), bias=np.zeros(4), steps=3)
    graph = Graph("x", "y", {"x": 12, "y": 12}, [norm], shapes={"x": (3, 4), "y": (3, 4)})
    graph.validate()
    graph.shapes["y"] = (4, 3)
    with pytest.raises(AssertionError, match="shapes"):
        graph.validate()
    with pytest.raises(ValueError, match="does not hold"):
        Reshape("r", ("x",), "z", 12, shape=(5, 2))
