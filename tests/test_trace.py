"""The trace: C against Keras after every step, naming the first step that drifts.

A test hook (``Export.c_edit`` with ``perturb_weight``, or ``perturb_column_step`` for a step of a target
transform) breaks the C of one step, as a backend bug would; the trace must name exactly that step and
find every step before it in agreement.
"""

from __future__ import annotations

import functools
import json
import pickle

import numpy as np
import pytest

from exporter import export_chain, export_keras
from exporter.check.trace import tapped, trace

from helpers import ROOT, every_op, perturb_column_step, perturb_weight, randomize, run_cli, saved

TARGET_STEPS = ["tY / minmax (inverse)", "tY / scale (inverse)"]  # the inverse runs the Pipeline backwards


@pytest.fixture(scope="module")
def branchy(keras, tmp_path_factory):
    """A DAG with a nested model and two branches: a step's value is still needed after later steps ran."""
    L = keras.layers
    inner = keras.Sequential(
        [keras.Input((8,)), L.Dense(8, activation="tanh", name="inner_a"), L.Dense(8, name="inner_b")], name="block"
    )
    x = keras.Input((5,))
    h = L.Dense(8, activation="relu", name="stem")(x)
    left = L.Dense(8, activation="sigmoid", name="left")(h)
    right = inner(h)
    merged = L.Add(name="join")([left, right])
    out = L.Dense(3, activation="softmax", name="head")(L.Dropout(0.3)(merged))
    model = randomize(keras.Model(x, out), seed=7)
    return saved(model, tmp_path_factory.mktemp("branchy"), "branchy.keras")


@pytest.fixture(scope="module")
def with_target(keras, tmp_path_factory):
    """A network ending in a Multiply (so the output activation is a step of its own), a sigmoid, and a
    target transform of two steps: the steps the framework's intermediates do not know."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    L = keras.layers
    x = keras.Input((5,))
    h = L.Dense(8, activation="tanh", name="stem")(x)
    out = L.Multiply(name="gate")([L.Dense(3, name="head")(h), L.Dense(3, activation="sigmoid", name="weight")(h)])
    folder = tmp_path_factory.mktemp("with_target")
    model = saved(randomize(keras.Model(x, out), seed=3), folder, "gated.keras")
    targets = np.random.default_rng(2).normal([10.0, -3.0, 0.5], [4.0, 0.5, 2.0], (400, 3))
    ty = Pipeline([("scale", StandardScaler()), ("minmax", MinMaxScaler((-1.0, 1.0)))]).fit(targets)
    (folder / "tY.pkl").write_bytes(pickle.dumps(ty))
    return model, folder / "tY.pkl"


def run_trace(path, broken: str | None = None, target=None):
    if target is None:
        ex = export_keras(path)
    else:
        ex = export_chain(path, target_transform=target, output_activation="sigmoid")
    if broken:
        hook = perturb_weight if target is None else perturb_column_step
        ex.c_edit = functools.partial(hook, op_name=broken)
    report = ex.check(inputs=ex.inputs(500))
    rows = [int(r) for r in report.worst_rows(5)]
    return ex, report, trace(ex, report.arrays.inputs, rows, report.atol, report.rtol)


def test_every_step_agrees_on_a_correct_export(branchy):
    ex, report, result = run_trace(branchy)
    assert report.passed
    assert [s.name for s in result.steps] == [op.name for op in ex.graph.ops]
    assert {"stem", "left", "inner_a", "inner_b+join", "head"} == {s.name for s in result.steps}
    assert result.first_drift is None and "every step agrees" in result.verdict()
    assert all(s.max_abs < 1e-5 for s in result.steps), result.table()


@pytest.mark.parametrize("broken", ["stem", "inner_a", "left"])
def test_trace_names_the_broken_step(branchy, broken):
    ex, report, result = run_trace(branchy, broken)
    assert not report.passed  # the hook really breaks the production build too
    drift = result.first_drift
    assert drift is not None and drift.name == broken, result.table()
    index = [op.name for op in ex.graph.ops].index(broken)
    assert not any(s.drifts for s in result.steps[:index])
    assert f"step {index} '{broken}'" in result.verdict()


def test_every_step_after_the_network_is_traced(with_target):
    """The output activation and each step of the target transform are steps of the trace, numbered as the
    inspect table numbers them and compared with the reference's values after that step: all agree."""
    ex, report, result = run_trace(with_target[0], target=with_target[1])
    assert report.passed
    network = [op.name for op in ex.graph.ops]
    assert network[-1] == "output sigmoid" and len(ex.chain.post.ops) == 2  # a step of its own, then the two
    assert [s.name for s in result.steps] == [*network, *TARGET_STEPS], result.table()
    assert [s.index for s in result.steps] == list(range(len(network) + 2))
    assert result.first_drift is None and "every step agrees" in result.verdict()
    assert all(s.max_abs < 1e-5 for s in result.steps), result.table()
    arrays, rows = report.arrays, result.rows  # the last step is the exported function's path: its error too
    assert result.steps[-1].max_abs == pytest.approx(np.abs(arrays.c_out[rows] - arrays.ref[rows]).max(), abs=1e-6)


@pytest.mark.parametrize("broken", TARGET_STEPS)
def test_trace_names_the_broken_target_transform_step(with_target, broken):
    _, report, result = run_trace(with_target[0], broken, target=with_target[1])
    assert not report.passed  # the hook breaks the exported function's target transform too
    drift = result.first_drift
    assert drift is not None and drift.name == broken, result.table()
    index = [s.name for s in result.steps].index(broken)
    assert not any(s.drifts for s in result.steps[:index]), result.table()
    assert f"step {index} '{broken}'" in result.verdict()


def test_target_transform_ops_are_cut_into_its_steps():
    """A step is the run of ops named after it (several for a ColumnTransformer inside); a step whose inverse is
    the identity has none; ops that do not line up with the steps are the whole transform, one step."""
    from exporter.check.trace import _target_steps
    from exporter.ir.columns import ColumnStage, Standardize

    def stage(*names):
        return ColumnStage(2, [Standardize(name, (0, 1), 0.0, 2.0) for name in names])

    values = {label: np.full((1, 2), k) for k, label in enumerate(["v9_sigmoid", "tY / ct", "tY / id", "tY / s"])}
    after = list(values.items())
    post = stage("tY / ct (columns) (inverse)", "tY / ct / a (inverse)", "tY / s (inverse)")
    cut = [(t.label, t.first, t.end, int(t.reference[0, 0])) for t in _target_steps(post, after)]
    assert cut == [("tY / ct", 0, 2, 1), ("tY / s", 2, 3, 3)]
    odd = _target_steps(stage("tY / s (inverse)", "tY / ct (inverse)"), after)  # not in the steps' order
    assert [(t.label, t.first, t.end, int(t.reference[0, 0])) for t in odd] == [("target transform", 0, 2, 3)]


def test_tapped_graph_outputs_every_step_and_leaves_the_model_alone(branchy):
    ex = export_keras(branchy)
    values = [op.output for op in ex.graph.ops]
    taps = tapped(ex.graph, values)
    assert taps.ops[:-1] == ex.graph.ops and taps.ops[-1].inputs == tuple(values)  # the steps as exported, then a copy
    assert taps.n_outputs == 8 + 8 + 8 + 8 + 3 and taps.output not in ex.graph.widths
    assert len(ex.graph.ops) == 5 and ex.graph.n_outputs == 3  # stem, left, inner_a, inner_b+join (Add fused), head


def test_every_op_traced_from_one_build_agrees(keras, tmp_path):
    """Every op and template, each step's output read from the one tapped build: all within tolerance (a value
    overwritten while the concatenation still needs it, or copied from the wrong place, would not be)."""
    ex = export_keras(saved(every_op(keras), tmp_path))
    report = ex.check(inputs=ex.inputs(500))
    result = trace(ex, report.arrays.inputs, [int(r) for r in report.worst_rows(5)], report.atol, report.rtol)
    assert [s.name for s in result.steps] == [op.name for op in ex.graph.ops] and len(result.steps) >= 8
    assert result.first_drift is None and all(s.max_abs < 1e-5 for s in result.steps), result.table()


def test_keras_intermediates_match_the_model(branchy, keras):
    """The Python side of the trace: each value's Keras tensor, through the nested model too."""
    ex = export_keras(branchy)
    rows = np.random.default_rng(1).standard_normal((7, 5)).astype(np.float32)
    model = keras.saving.load_model(branchy)
    by_name = {op.name: op.output for op in ex.graph.ops}
    values = ex.loaded.intermediates(list(by_name.values()), rows)
    np.testing.assert_allclose(values[by_name["head"]], model(rows), rtol=1e-6)
    stem = keras.Model(model.inputs, model.get_layer("stem").output)([rows])
    np.testing.assert_allclose(values[by_name["stem"]], stem, rtol=1e-6)
    inner = model.get_layer("block")
    inner_a = keras.Model(inner.inputs, inner.get_layer("inner_a").output)([stem])
    np.testing.assert_allclose(values[by_name["inner_a"]], inner_a, rtol=1e-6)


def test_trace_summary_and_inspect_number_steps_alike(capsys, tmp_path):
    """One numbering: the trace's step K is row K of the inspect table and line K of the summary's steps."""
    examples = ROOT / "examples"
    chain = ["--log-columns", 1, "--preprocess", examples / "tracking_scaler.pkl", "--output-activation", "sigmoid"]
    args = [examples / "tracking.keras", *chain, "--trace", "--samples", 300, "-o", tmp_path / "t.c"]
    args += ["--dispatch", "none"]  # the network's code written once, not once per x86-64 level
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    document = json.loads(out)
    rows = [row["name"] for row in document["inspection"]["steps"]]
    traced = document["trace"]["steps"]
    assert traced[0]["name"] == "preprocessing" and traced[0]["index"] == 1  # rows 0 (log) and 1 (scaler)
    assert traced[0]["op"] == "column steps 0-1"
    assert [rows[s["index"]] for s in traced[1:]] == [s["name"] for s in traced[1:]] == rows[2:]  # the sigmoid too
    _, summary, _ = run_cli(capsys, *args, "--quiet")
    table = run_cli(capsys, "inspect", examples / "tracking.keras", *chain)[1]
    for index, name in enumerate(rows):
        assert f"\n    {index}  {name}: " in summary
        assert f"\n       {index}  {name}  " in table
