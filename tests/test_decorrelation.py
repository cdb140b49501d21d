"""Column mixing: Lamarr's DecorrTransformer and other (x - c) @ M steps, forward and inverse, in C.

The decorrelation is fitted on adversarial data (columns 1e7 apart in scale, a constant column,
duplicated columns whose covariance has repeated and zero eigenvalues, nearly collinear columns,
fewer rows than columns) and checked against the Python class itself. The C sums with fused
multiply-adds in numpy's BLAS order, so the float32 outputs must be equal, bit for bit.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler

from exporter.api import export_transformer
from exporter.common.errors import NotInvertible
from exporter.frontends.sklearn import reference
from exporter.frontends.sklearn.transformers import REGISTERED, register_transformer
from exporter.ir.column_formulas import Mix

from helpers import ROOT

sys.path.insert(0, str(ROOT / "examples"))
from lamarr_utils import DecorrTransformer  # the example's module, importable from examples/


def _fits() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 600
    base = rng.normal(size=(n, 5)) @ rng.normal(size=(5, 5))
    scales = base * np.array([1e-3, 1.0, 1e4, 30.0, 0.5])
    constant = base.copy()
    constant[:, 2] = 4.25
    duplicated = np.c_[base[:, :2], base[:, :2], rng.normal(size=n)]  # repeated and zero eigenvalues
    collinear = np.c_[base[:, :4], base[:, 0] + 1e-7 * rng.normal(size=n)]
    return {
        "scales": scales,
        "constant_column": constant,
        "duplicated_columns": duplicated,
        "collinear": collinear,
        "isotropic": rng.normal(size=(n, 5)),
        "fewer_rows_than_columns": base[:3],
    }


FITS = _fits()


class OldDecorr:
    """Lamarr's class without scikit-learn's base: ``eig_`` and no ``n_features_in_``."""

    def fit(self, x):
        self.eig_ = np.linalg.eig(np.cov(x.T))[1]
        return self

    def transform(self, x):
        return x.dot(self.eig_)

    def inverse_transform(self, x):
        return x.dot(self.eig_.T)


OldDecorr.__name__ = OldDecorr.__qualname__ = "DecorrTransformer"  # recognised by its name, from any module


def _rows(data: np.ndarray, ex) -> np.ndarray:
    """The fit's own rows, rows around them, and the exporter's edge rows."""
    rng = np.random.default_rng(3)
    spread = data.std(axis=0) + 1.0
    near = data[rng.integers(0, len(data), 2000)] + rng.normal(size=(2000, data.shape[1])) * spread
    return np.concatenate([data, near, ex.inputs(200)]).astype(np.float32)


@pytest.mark.parametrize("cls", [DecorrTransformer, OldDecorr], ids=["lamarr", "eig_"])
@pytest.mark.parametrize("fit", sorted(FITS))
def test_decorrelation_bit_for_bit(fit, cls, tmp_path):
    est = cls().fit(FITS[fit])
    ex = export_transformer(est, name="tr")
    assert ex.source.functions == ["tr", "tr_inverse"]
    assert isinstance(ex.chain.pre.ops[0], Mix)
    compiled = ex.compile(tmp_path, one_row=True)
    rows = _rows(FITS[fit], ex)
    expected = est.transform(rows.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(compiled(rows), expected)
    inverse = compiled.sibling("tr_inverse", 5, 5)
    back = est.inverse_transform(expected.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(inverse(expected), back)


def lamarr_target(data: np.ndarray) -> Pipeline:
    """Lamarr's covariance target transform, its step names included."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Pipeline(
            [
                ("minmax", StandardScaler()),
                ("decorr", DecorrTransformer()),
                ("quantile", QuantileTransformer(n_quantiles=100, output_distribution="normal")),
            ]
        ).fit(data)


def test_lamarr_pipeline_forward_and_inverse(tmp_path):
    data = FITS["scales"]
    est = lamarr_target(data)
    ex = export_transformer(est, name="tr")
    compiled = ex.compile(tmp_path, one_row=True)
    rows = _rows(data, ex)
    report = ex.check(compiled, rows)
    assert report.passed, report.table()
    np.testing.assert_array_equal(compiled(rows), reference.forward(est, rows.astype(np.float64)).astype(np.float32))
    gaussian = np.random.default_rng(0).normal(size=(3000, 5)).astype(np.float32)  # what a generator outputs
    expected = reference.inverse(est, gaussian.astype(np.float64)).astype(np.float32)
    got = compiled.sibling("tr_inverse", 5, 5)(gaussian)
    close = np.isclose(got, expected, rtol=1e-6, atol=1e-6)  # the normal CDF: libm's erfc against scipy's
    assert close.all(), f"{(~close).sum()} values differ, e.g. {got[~close][:5]} vs {expected[~close][:5]}"


def test_decorrelation_inside_a_column_transformer(tmp_path):
    data = FITS["scales"]
    est = ColumnTransformer(
        [("decorr", DecorrTransformer(), [3, 0, 4]), ("std", StandardScaler(), [1])], remainder="passthrough"
    ).fit(data)
    ex = export_transformer(est, name="tr")
    mix = ex.chain.pre.ops[1]
    assert isinstance(mix, Mix) and mix.columns == (0, 1, 2)
    compiled = ex.compile(tmp_path, one_row=True)
    rows = _rows(data, ex)
    np.testing.assert_array_equal(compiled(rows), est.transform(rows.astype(np.float64)).astype(np.float32))
    transformed = est.transform(rows.astype(np.float64)).astype(np.float32)
    back = reference.inverse(est, transformed.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(compiled.sibling("tr_inverse", 5, 5)(transformed), back)


class Whitening(TransformerMixin, BaseEstimator):
    """A user's transformer that centres and mixes: ``(X - mean_) @ w_``, inverted with ``inv(w_)``."""

    def fit(self, x, y=None):
        self.mean_ = x.mean(axis=0)
        self.w_ = np.linalg.cholesky(np.linalg.inv(np.cov(x.T) + 1e-9 * np.eye(x.shape[1])))
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, x):
        return (x - self.mean_).dot(self.w_)

    def inverse_transform(self, x):
        return x.dot(np.linalg.inv(self.w_)) + self.mean_


@pytest.fixture
def whitening():
    with REGISTERED.restored():

        @register_transformer(Whitening)
        def mapping(est, n, path, problems):
            return [Mix(path, tuple(range(n)), est.w_, est.mean_, 0.0)]  # no inverse given: computed

        yield mapping


def test_centred_mix_and_computed_inverse(whitening, tmp_path):
    data = FITS["scales"]
    est = Whitening().fit(data)
    ex = export_transformer(est, name="tr")
    compiled = ex.compile(tmp_path, one_row=True)
    rows = _rows(data, ex)
    expected = est.transform(rows.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(compiled(rows), expected)
    back = est.inverse_transform(expected.astype(np.float64))
    got = compiled.sibling("tr_inverse", 5, 5)(expected)
    assert np.allclose(got, back, rtol=1e-6, atol=1e-6 * np.abs(back).max(axis=0))  # inv(w) times x: BLAS order


def test_singular_mix_has_no_inverse():
    mix = Mix("m", (0, 1), np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(NotInvertible, match="singular"):
        mix.inverse()


@pytest.mark.parametrize(
    "eig, fragment",
    [
        (None, "not fitted"),
        (np.ones((5, 4)), "square"),
        (np.eye(4), "receives 5 columns"),
        (np.eye(5) * (1 + 1j), "complex"),
        (np.full((5, 5), np.nan), "NaN"),
    ],
)
def test_decorrelation_refusals(eig, fragment):
    from exporter.common.errors import ExportError

    est = DecorrTransformer()
    est.eig = eig
    est.n_features_in_ = 5
    with pytest.raises(ExportError, match=fragment):
        export_transformer(est, name="tr")


def test_register_transformer_takes_classes_and_names():
    with pytest.raises(TypeError):
        register_transformer(42)  # type: ignore[arg-type]
    assert "DecorrTransformer" in REGISTERED
