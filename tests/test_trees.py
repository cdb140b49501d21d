"""Tree ensembles in C against scikit-learn's own ``predict_proba`` / ``predict``.

Each family is fitted on a small problem (binary, three classes, regression; with missing values
where the family learns where they go) and checked on the parity rows the export makes: 10,000
random rows, the edge rows, rows exactly on thresholds (the last float sent left and the first
sent right) and, where the model routes NaN, rows with NaNs. Sums and links are computed in
double as scikit-learn computes them, so the float32 outputs agree to the bit; the tests check
the default tolerance and the bit-exactness separately.
"""

from __future__ import annotations

import pickle
import textwrap

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from exporter.api import export_chain
from exporter.common.errors import ExportError, UnsupportedModelError
from exporter.ir.trees import TreeEnsemble, float32_floor

from helpers import assert_user_error, run_cli, strict_compile

N = 4


def data(task: str, missing: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((600, N))
    if task == "binary":
        y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    elif task == "multiclass":
        y = np.digitize(x[:, 2] + 0.5 * x[:, 0], [-0.5, 0.5])
    else:
        y = 2.0 * x[:, 0] + np.sin(3.0 * x[:, 1]) + 0.1 * rng.standard_normal(len(x))
    if missing:
        x[rng.random(x.shape) < 0.1] = np.nan
    return x, y


MODELS = {
    "tree_binary": (lambda: DecisionTreeClassifier(max_depth=7, random_state=0), "binary", True),
    "tree_multiclass": (lambda: DecisionTreeClassifier(random_state=0), "multiclass", False),
    "tree_regressor": (lambda: DecisionTreeRegressor(max_depth=9, random_state=0), "regression", True),
    "forest_binary": (lambda: RandomForestClassifier(20, max_depth=6, random_state=0), "binary", True),
    "forest_multiclass": (lambda: RandomForestClassifier(10, random_state=0), "multiclass", False),
    "forest_regressor": (lambda: RandomForestRegressor(10, max_depth=8, random_state=0), "regression", False),
    "extra_multiclass": (lambda: ExtraTreesClassifier(15, max_depth=8, random_state=0), "multiclass", True),
    "extra_regressor": (lambda: ExtraTreesRegressor(10, random_state=0), "regression", False),
    "gb_binary": (lambda: GradientBoostingClassifier(n_estimators=40, random_state=0), "binary", False),
    "gb_exponential": (lambda: GradientBoostingClassifier(loss="exponential", n_estimators=20), "binary", False),
    "gb_multiclass": (lambda: GradientBoostingClassifier(n_estimators=20, max_depth=4), "multiclass", False),
    "gb_zero_init": (lambda: GradientBoostingClassifier(n_estimators=10, init="zero"), "multiclass", False),
    "gb_regressor": (lambda: GradientBoostingRegressor(n_estimators=30, loss="huber"), "regression", False),
    "hist_binary": (lambda: HistGradientBoostingClassifier(max_iter=30), "binary", True),
    "hist_multiclass": (lambda: HistGradientBoostingClassifier(max_iter=15), "multiclass", True),
    "hist_regressor": (lambda: HistGradientBoostingRegressor(max_iter=30), "regression", True),
    "hist_poisson": (lambda: HistGradientBoostingRegressor(loss="poisson", max_iter=20), "poisson", True),
}


def fitted(key: str):
    make, task, missing = MODELS[key]
    x, y = data("regression" if task == "poisson" else task, missing)
    if task == "poisson":
        y = np.exp(y / 3.0)
    return make().fit(x, y)


@pytest.mark.parametrize("key", list(MODELS))
def test_parity_with_scikit_learn(key, tmp_path):
    model = fitted(key)
    ex = export_chain(model)
    (op,) = ex.chain.net.ops
    assert isinstance(op, TreeEnsemble)
    rows = ex.inputs()
    assert len(rows) > 10_000
    on_threshold = np.isin(rows, op.threshold[np.isfinite(op.threshold)])
    assert on_threshold.any(), "no row sits exactly on a threshold"
    assert np.isnan(rows).any() == op.missing  # NaN rows where scikit-learn takes them
    assert op.missing or not MODELS[key][2]
    compiled = ex.compile(tmp_path, one_row=True)
    report = ex.check(compiled, rows)
    assert report.passed, report.table()
    assert max(c.max_ulp for c in report.columns) == 0, report.table()
    expected = model.predict_proba(rows) if hasattr(model, "classes_") else model.predict(rows).reshape(-1, 1)
    np.testing.assert_array_equal(compiled(rows), expected.astype(np.float32))


def test_models_that_learned_missing_values_route_them_as_fitted(tmp_path):
    """Hist* sends NaN where training did (left at some nodes): the C tests for NaN there."""
    model = fitted("hist_binary")
    ex = export_chain(model)
    (op,) = ex.chain.net.ops
    assert op.missing and op.routes_missing
    rows = np.full((64, N), 0.25, dtype=np.float32)
    rows[np.random.default_rng(1).random(rows.shape) < 0.5] = np.nan
    expected = model.predict_proba(rows).astype(np.float32)
    np.testing.assert_array_equal(ex.compile(tmp_path, one_row=True)(rows), expected)


def test_float32_floor_decides_like_the_float64_threshold():
    rng = np.random.default_rng(0)
    t = np.concatenate([rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000), [0.1, -0.1, 1e39, -1e39]])
    floor = float32_floor(t)
    with np.errstate(over="ignore"):
        near = t.astype(np.float32)
    for x in (near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(-np.inf))):
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(x.astype(np.float64) <= t, x <= floor)


def test_a_threshold_between_two_floats_is_compared_as_scikit_learn_does(tmp_path):
    """0.1 lies between two floats: float32(0.1) is above it, so scikit-learn sends 0.1f right."""
    x = np.array([[0.0], [1.0]] * 10)
    tree = DecisionTreeRegressor(max_depth=1).fit(x, x[:, 0])
    tree.tree_.threshold[0] = 0.1
    rows = np.array([[0.1], [np.nextafter(np.float32(0.1), np.float32(0))], [0.0], [1.0]], dtype=np.float32)
    expected = tree.predict(rows)
    assert list(expected) == [1.0, 0.0, 0.0, 1.0]
    np.testing.assert_array_equal(export_chain(tree).compile(tmp_path, one_row=True)(rows)[:, 0], expected)


def test_strict_compile_in_place_and_batch(tmp_path):
    ex = export_chain(fitted("gb_multiclass"), name="bdt")
    c_file, _ = ex.write(tmp_path / "bdt.c")
    strict_compile(c_file, tmp_path)
    compiled = ex.compile(tmp_path)
    rows = ex.inputs()[:501]
    one_by_one = compiled(rows)
    np.testing.assert_array_equal(compiled.call_in_place(rows), one_by_one)
    np.testing.assert_array_equal(compiled.batch(rows), one_by_one)


def test_double_and_a_chain_with_preprocessing(tmp_path):
    """A tree model as the network of a chain: preprocessing before it, --dtype double."""
    x, y = data("multiclass", False)
    scaler = StandardScaler().fit(x * 3.0 + 1.0)
    model = HistGradientBoostingClassifier(max_iter=10).fit(scaler.transform(x * 3.0 + 1.0), y)
    for dtype in ("float", "double"):
        ex = export_chain(model, preprocess=[scaler], dtype=dtype)
        (tmp_path / dtype).mkdir()
        report = ex.check(ex.compile(tmp_path / dtype, one_row=True))
        assert report.passed, report.table()


def _refused(model, fragment: str) -> None:
    with pytest.raises(ExportError, match=fragment):
        export_chain(model)


def test_refusals_name_the_model_and_the_reason():
    x, y = data("regression", False)
    _refused(DecisionTreeRegressor(max_depth=2).fit(x, np.c_[y, y]), "2 outputs")
    _refused(GradientBoostingRegressor(n_estimators=2, init=LinearRegression()).fit(x, y), "init estimator")
    _refused(RandomForestRegressor(), "not fitted")
    cats = np.c_[np.random.default_rng(0).integers(0, 3, len(x)), x[:, 1:]]
    _refused(HistGradientBoostingRegressor(max_iter=2, categorical_features=[0]).fit(cats, y), "categorical")


def test_a_refused_tree_model_is_reported_as_any_refused_model():
    """The builder's refusal path, as for a network: ``UnsupportedModelError`` listing the model as a problem."""
    with pytest.raises(UnsupportedModelError) as caught:
        export_chain(RandomForestRegressor())
    (problem,) = caught.value.problems
    assert (problem.layer, problem.cls, problem.kind) == (
        "RandomForestRegressor (in memory)",
        "RandomForestRegressor",
        "model",
    )
    assert str(caught.value).startswith("RandomForestRegressor (in memory): cannot export 1 model:\n  - model ")


def test_cli_manifest_and_inspect(capsys, tmp_path):
    model = fitted("forest_binary")
    (tmp_path / "bdt.pkl").write_bytes(pickle.dumps(model))
    code, out, err = run_cli(capsys, tmp_path / "bdt.pkl", "-o", tmp_path / "out" / "bdt.c")
    assert code == 0, err
    assert "20 trees" in out and "passed" in out
    code, out, err = run_cli(capsys, "inspect", tmp_path / "bdt.pkl")
    op = export_chain(model).chain.net.ops[0]
    assert code == 0, err
    assert f"20 trees, {op.n_nodes:,} nodes ({op.n_leaves:,} leaves), depth {op.depth}" in out
    (tmp_path / "models.toml").write_text(
        textwrap.dedent("""
        [models.bdt]
        model = "bdt.pkl"
        """)
    )
    code, out, err = run_cli(capsys, tmp_path / "models.toml", "-o", tmp_path / "set" / "set.c")
    assert code == 0, err
    assert "passed" in out and (tmp_path / "set" / "set.h").is_file()


def test_a_tree_model_refuses_what_needs_a_transformer(capsys, tmp_path):
    (tmp_path / "bdt.pkl").write_bytes(pickle.dumps(fitted("gb_binary")))
    args = [tmp_path / "bdt.pkl", "--noise", "3", "-o", tmp_path / "bdt.c"]
    assert_user_error(capsys, tmp_path, args, "noise")
    (tmp_path / "scaler.pkl").write_bytes(pickle.dumps(StandardScaler().fit(np.ones((3, 2)))))
    with pytest.raises(ExportError, match="holds a StandardScaler, not a tree model"):
        export_chain(tmp_path / "scaler.pkl")
    with pytest.raises(ExportError, match=r"none\.pkl: no such model file"):
        export_chain(tmp_path / "none.pkl")


def _hostile_tree(tmp_path, family: str, change):
    """A fitted tree model's file whose node arrays ``change(nodes)`` has edited (as a crafted file would
    store them); the exporter must refuse it before scikit-learn's own predict walks them."""
    if family == "hist":
        est = HistGradientBoostingRegressor(max_iter=2, max_depth=3).fit(*data("regression", False))
        change(est._predictors[1][0].nodes, "left", "right", "feature_idx", "num_threshold")
    else:
        est = GradientBoostingRegressor(n_estimators=3, max_depth=3).fit(*data("regression", False))
        state = est.estimators_[2, 0].tree_.__getstate__()
        nodes = state["nodes"].copy()
        change(nodes, "left_child", "right_child", "feature", "threshold")
        est.estimators_[2, 0].tree_.__setstate__({**state, "nodes": nodes})
    (tmp_path / "bdt.pkl").write_bytes(pickle.dumps(est))


def _set(field: int, node: int, value):
    def change(nodes, *fields):
        column = nodes[fields[field]]
        with np.errstate(all="ignore"):  # Hist* stores children unsigned: -5 wraps around, as a file could
            column[node] = np.array(value).astype(column.dtype)

    return change


def _cycle(nodes, left, right, feature, threshold):
    """The root's left child's left child points back to the root's left child."""
    first = nodes[left][0]
    nodes[left][nodes[left][first]] = first


@pytest.mark.parametrize("family", ["sklearn", "hist"])
@pytest.mark.parametrize(
    "change, fragment",
    [
        (_set(0, 0, -5), "node 0: left child"),  # sklearn's predict segfaulted
        (_set(1, 0, 10**6), "node 0: right child 1000000 is not a later node"),  # traceback, or reads anywhere
        (_cycle, "child 1 is not a later node"),  # sklearn's predict looped forever, deaf to Ctrl-C
        (_set(2, 0, 99), "node 0 splits on feature 99, but the model has 4"),
        (_set(2, 0, -3), "node 0 splits on feature"),
        (_set(3, 0, np.nan), "node 0 has the threshold NaN"),
    ],
    ids=["negative_child", "child_out_of_range", "cycle", "feature_too_large", "feature_negative", "nan_threshold"],
)
def test_hostile_tree_arrays_are_refused_before_anything_walks_them(capsys, tmp_path, family, change, fragment):
    _hostile_tree(tmp_path, family, change)
    which = "tree 1 (of _predictors)" if family == "hist" else "tree 2 (of estimators_)"
    assert_user_error(capsys, tmp_path, [tmp_path / "bdt.pkl", "-o", tmp_path / "b.c"], "bdt.pkl", which, fragment)


def test_a_shared_child_and_a_one_sided_leaf_are_refused(capsys, tmp_path):
    def shared(nodes, left, right, *_):  # both children of a node are the same node, its right subtree orphaned
        nodes[right][0] = nodes[left][0]

    def one_sided(nodes, left, right, *_):
        nodes[right][np.flatnonzero(nodes[left] == -1)[0]] = 1

    for change, fragment in ((shared, "is the child of"), (one_sided, "has a left child -1 (a leaf) but a right")):
        _hostile_tree(tmp_path, "sklearn", change)
        assert_user_error(capsys, tmp_path, [tmp_path / "bdt.pkl", "-o", tmp_path / "b.c"], fragment)
