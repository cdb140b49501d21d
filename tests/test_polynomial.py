"""PolynomialFeatures as a forward-only column step, against scikit-learn's own transform.

Each output column is one product of an earlier column and an input, in scikit-learn's order,
so the doubles agree to the bit; the tests check that, the default tolerance through the
parity check, and that every way of asking for an inverse is refused by name.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from exporter.api import export_chain, export_transformer
from exporter.common.errors import ExportError, NotInvertible

from helpers import assert_user_error, run_cli, strict_compile

X = np.random.default_rng(0).standard_normal((200, 3)) * 4.0

SETTINGS = [
    {"degree": 2},
    {"degree": 3},
    {"degree": 4, "include_bias": False},
    {"degree": 3, "interaction_only": True},
    {"degree": (2, 4)},
    {"degree": (2, 3), "include_bias": False, "interaction_only": True},
    {"degree": (3, 3), "interaction_only": True},
    {"degree": 1, "include_bias": False},
    {"degree": 0},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_parity_with_scikit_learn(settings, tmp_path):
    poly = PolynomialFeatures(**settings).fit(X)
    ex = export_transformer(poly)
    assert ex.chain.n_outputs == poly.n_output_features_
    compiled = ex.compile(tmp_path, one_row=True)
    report = ex.check(compiled)
    assert report.passed, report.table()
    rows = ex.inputs()
    np.testing.assert_array_equal(compiled(rows), poly.transform(rows.astype(np.float64)).astype(np.float32))
    assert ex.source.functions == [ex.symbol], "no _inverse function for a forward-only step"


def test_in_a_pipeline_before_a_scaler_strict_and_in_place(tmp_path):
    chain = make_pipeline(StandardScaler(), PolynomialFeatures(3), StandardScaler()).fit(X)
    ex = export_chain(preprocess=[chain], name="poly")
    compiled = ex.compile(tmp_path, one_row=True)
    assert ex.check(compiled).passed
    rows = ex.inputs()[:300]
    np.testing.assert_array_equal(compiled.call_in_place(rows), compiled(rows))
    c_file, _ = ex.write(tmp_path / "poly.c")
    strict_compile(c_file, tmp_path)


def test_inverse_is_refused_by_name(capsys, tmp_path):
    poly = PolynomialFeatures(2).fit(X)
    with pytest.raises(NotInvertible, match="PolynomialFeatures has no inverse"):
        export_transformer(poly).chain.pre.inverse()
    path = tmp_path / "poly.pkl"
    path.write_bytes(pickle.dumps(poly))
    code, _, err = run_cli(capsys, path, "-o", tmp_path / "out" / "poly.c")
    assert code == 0, err
    assert not (tmp_path / "out" / "poly_inverse.h").exists()
    model = tmp_path / "bdt.pkl"  # a network for the target transform to follow: a tree model
    model.write_bytes(pickle.dumps(DecisionTreeRegressor(max_depth=2).fit(X, X @ [1.0, 2.0, 3.0])))
    args = [model, "--target-transform", path, "-o", tmp_path / "t.c"]
    assert_user_error(capsys, tmp_path, args, "PolynomialFeatures has no inverse")


def test_inside_a_column_transformer_is_refused():
    ct = ColumnTransformer([("poly", PolynomialFeatures(2), [0, 1])], remainder="passthrough").fit(X)
    with pytest.raises(ExportError, match="changes the number of columns"):
        export_transformer(ct)
