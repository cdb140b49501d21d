"""Tree ensembles in C against scikit-learn's own ``predict_proba`` / ``predict``.

Each family is fitted on a small problem (binary, three classes, regression; with missing values
where the family learns where they go) and checked on the parity rows the export makes: 10,000
random rows, the edge rows, rows exactly on thresholds (the last float sent left and the first
sent right) and, where the model routes NaN, rows with NaNs. Sums and links are computed in
double as scikit-learn computes them, so the float32 outputs agree to the bit; the tests check
the default tolerance and the bit-exactness separately.

Each family is also written in each layout of exporter/backend/trees.py (those a layout cannot write are
refused, with the reason) and checked the same way, one library per layout holding every family, built at -O1:
the level changes no bit (no contraction, no fast math), and the parity test builds at -O3. Then the rule of
``auto``, the caps on the C's size, and ``--trees`` on the command line, in a manifest and in Python.
"""

from __future__ import annotations

import pickle
import subprocess
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

import exporter.backend.trees as layouts
from exporter.api import export_chain
from exporter.backend import render_set
from exporter.backend.trees import Shape, lay_out
from exporter.build.toolchain import CompiledModel, compile_shared
from exporter.common.errors import ExportError, UnsupportedModelError
from exporter.ir.trees import TreeEnsemble, float32_floor

from helpers import STRICT_CFLAGS, STRICT_CXX, assert_user_error, run_cli, strict_compile

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


LAYOUTS = ("walk", "branches", "complete", "bitvector")
# Every link, NaN routing, per-class offsets, leaves of several values, the forest mean; the trees of unlimited
# depth stay with test_trees.py (their C is the largest, and complete and bitvector refuse most of them).
CHECKED = [
    k for k in MODELS if k not in ("tree_multiclass", "forest_multiclass", "extra_regressor", "forest_regressor")
]
REFUSED = {"bitvector": {"tree_regressor", "extra_multiclass"}}  # trees of more than 64 leaves


@pytest.fixture(scope="module")
def models():
    return {key: fitted(key) for key in CHECKED}


def expected(model, rows: np.ndarray) -> np.ndarray:
    out = model.predict_proba(rows) if hasattr(model, "classes_") else model.predict(rows).reshape(-1, 1)
    return out.astype(np.float32)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_decides_as_scikit_learn(layout, models, tmp_path, monkeypatch):
    """Also under the strict warnings, as C (built) and as C++ (its syntax and warnings only: the build is C's)."""
    monkeypatch.setenv("CFLAGS", " ".join("-O1" if flag == "-O3" else flag for flag in STRICT_CFLAGS))
    exports, refused = {}, set()
    for key, model in models.items():
        try:
            exports[key] = export_chain(model, name=key, trees=layout)
        except ExportError as err:
            assert f"the {layout} layout cannot write" in str(err) and "choose another layout" in str(err)
            refused.add(key)
    assert refused == REFUSED.get(layout, set())
    source = render_set("layouts", "test", [ex.source for ex in exports.values()])
    library = compile_shared(source, tmp_path, True, True)
    cxx = subprocess.run([*STRICT_CXX[:-1], "-fsyntax-only", str(tmp_path / "layouts.c")], capture_output=True)
    assert cxx.returncode == 0, cxx.stderr.decode()
    for key, ex in exports.items():
        assert f"; {layout} layout (as asked)" in ex.source.c
        compiled = CompiledModel(key, library, ex.chain.n_inputs, ex.chain.n_outputs)
        rows = ex.inputs(samples=3000)
        np.testing.assert_array_equal(compiled(rows), expected(models[key], rows), err_msg=f"{key} in {layout}")


def _rule(model) -> str:
    (op,) = export_chain(model).chain.net.ops
    return layouts.choose(op, Shape.of(op))[0]


def test_auto_follows_the_documented_rule(monkeypatch):
    """docs/trees.md: branches for tiny ensembles, complete where padding at most doubles the nodes, bitvector for
    trees of at most 64 leaves, then branches while the code is small, walk beyond."""
    x, y = data("binary", False)
    z = data("regression", True)[1]
    assert _rule(GradientBoostingClassifier(n_estimators=10, max_depth=3).fit(x, y)) == "branches"
    assert _rule(GradientBoostingClassifier(n_estimators=100, max_depth=3).fit(x, y)) == "complete"
    hist = HistGradientBoostingRegressor(max_iter=60, early_stopping=False).fit(x, z)
    assert _rule(hist) == "bitvector"
    forest = RandomForestRegressor(20, random_state=0).fit(x, z)  # unlimited depth: > 64 leaves, far from complete
    assert _rule(forest) == "branches"
    monkeypatch.setattr(layouts, "AUTO_BRANCHES", 1000)
    assert _rule(forest) == "walk"


def test_a_layout_that_cannot_write_the_ensemble_is_refused_with_the_reason(capsys, tmp_path, monkeypatch):
    """Named with --trees: refused when it does not apply or its C would pass its cap, the layouts that fit
    suggested; auto never picks such a layout, and with every cap passed the export is refused, numbers named."""
    forest = RandomForestRegressor(5, random_state=0).fit(*data("regression", False))
    (tmp_path / "rf.pkl").write_bytes(pickle.dumps(forest))
    args = [tmp_path / "rf.pkl", "-o", tmp_path / "rf.c", "--trees", "bitvector"]
    assert_user_error(capsys, tmp_path, args, "the bitvector layout cannot write 5 trees", "at most 64", "--trees")
    (op,) = export_chain(forest).chain.net.ops
    shape = Shape.of(op)
    size = layouts.estimated_bytes(op, shape, "branches")
    monkeypatch.setitem(layouts.CAPS, "branches", size - 1)
    with pytest.raises(
        ExportError, match=rf"about {size / 2**20:.1f} MiB of C, over its cap of {size - 1:,} bytes; .*walk"
    ):
        lay_out(op, "branches")
    for name in layouts.CAPS:
        monkeypatch.setitem(layouts.CAPS, name, 1000)
    with pytest.raises(ExportError, match="over its cap of 1,000 bytes; no layout fits it"):
        lay_out(op, "auto")


def test_the_option_from_the_command_line_a_manifest_and_python(capsys, tmp_path):
    model = fitted("hist_binary")
    (tmp_path / "bdt.pkl").write_bytes(pickle.dumps(model))
    code, out, err = run_cli(
        capsys, tmp_path / "bdt.pkl", "-o", tmp_path / "bdt.c", "--trees", "walk", "--samples", 300
    )
    assert code == 0 and "passed" in out, err
    assert "; walk layout (as asked)" in (tmp_path / "bdt.c").read_text()
    (tmp_path / "models.toml").write_text(
        textwrap.dedent("""
        [defaults]
        trees = "complete"

        [models.bdt]
        model = "bdt.pkl"
        trees = "branches"

        [models.other]
        model = "bdt.pkl"
        """)
    )
    code, out, err = run_cli(capsys, tmp_path / "models.toml", "-o", tmp_path / "set.c", "--samples", 300)
    assert code == 0 and "passed" in out, err
    text = (tmp_path / "set.c").read_text()
    assert "; branches layout (as asked)" in text and "; complete layout (as asked)" in text
    with pytest.raises(ExportError, match="trees 'unrolled': expected one of auto, walk, branches, complete"):
        export_chain(model, trees="unrolled")
