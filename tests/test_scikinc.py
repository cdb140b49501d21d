"""scikinC's own classes in pickles: WeightedQuantileTransformer and FastQuantileLayer.

The classes are defined here as their packages define them (a QuantileTransformer fitted with
sample weights, as in LHCb's training code; FastQuantileLayer and its FixedBinInterpolator with
the fitted attributes and the TensorFlow graph of the fastquantilelayer package), and scikinC
converts them, which shows they are the objects its registry handles. Their pickles name a
module that does not exist: the exporter reads them by class name and attributes, never imports.
The C is checked against the live objects (scikit-learn's transform; the TensorFlow graph).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scikinC
from sklearn.preprocessing import QuantileTransformer

from exporter.api import export_chain, export_transformer
from exporter.common.errors import ExportError

from helpers import ROOT, strict_compile


class WeightedQuantileTransformer(QuantileTransformer):
    """A QuantileTransformer whose quantiles follow the sample weights."""

    def fit(self, X, y=None, sample_weight=None):
        super().fit(X)
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            columns = []
            for x in np.asarray(X, dtype=np.float64).T:
                order = np.argsort(x)
                cumulative = np.cumsum(w[order])
                columns.append(np.interp(self.references_, cumulative / cumulative[-1], x[order]))
            self.quantiles_ = np.stack(columns, axis=1)
        return self


class FixedBinInterpolator:
    """fastquantilelayer's interpolator: ``y_values`` on ``linspace(x_min, x_max, n)``, a TensorFlow graph."""

    def __init__(self, x_min, x_max, y_values, eps=1e-12):
        import tensorflow as tf

        self.y_values, self.x_min, self.x_max, self.eps = y_values, x_min, x_max, eps
        self.dtype = y_values.dtype
        self.tf_y_values = tf.constant(y_values, dtype=self.dtype)
        self.tf_x_min = tf.constant(x_min, dtype=self.dtype)
        self.tf_x_max = tf.constant(x_max, dtype=self.dtype)
        self.tf_eps = tf.constant(eps, dtype=self.dtype)

    def apply(self, x_values):
        import tensorflow as tf

        n = int(self.tf_y_values.shape[0])
        span = self.tf_x_max - self.tf_x_min
        x_id = (x_values / span - self.tf_x_min / span) * (n - 1)
        x_0f = tf.floor(x_id)
        x_0 = tf.clip_by_value(tf.cast(x_0f, tf.int64), 0, n - 2)
        y_0 = tf.gather(self.tf_y_values, x_0)
        y_1 = tf.gather(self.tf_y_values, x_0 + 1)
        return y_0 + tf.clip_by_value(x_id - x_0f, 0, 1) * (y_1 - y_0)


class FastQuantileLayer:
    """fastquantilelayer's fit (its _fit_column) and transform, without the Keras layer around them."""

    def __init__(self, n_quantiles=50, n_samples=200, output_distribution="uniform"):
        self._Nbins, self._Nsamples, self._outDist = n_quantiles, n_samples, output_distribution
        self.default_to_inverse, self.decorrelate = False, False
        self.fwdTransforms_, self.bwdTransforms_ = [], []

    def fit(self, X):
        from scipy.special import erfinv

        for x in X.T:
            y = np.linspace(0, 1, self._Nbins)
            xq = np.quantile(x, y)
            if self._outDist == "normal":
                y = erfinv(np.clip(2.0 * y - 1.0, -0.99999, 0.99999)) * np.sqrt(2)
            grid = np.interp(np.linspace(xq[0], xq[-1], self._Nsamples), xq, y).astype(np.float32)
            self.fwdTransforms_.append(FixedBinInterpolator(xq[0], xq[-1], grid))
            if self._outDist == "uniform":
                self.bwdTransforms_.append(FixedBinInterpolator(y[0], y[-1], xq.astype(np.float32)))
            else:
                back = np.interp(np.linspace(y[0], y[-1], self._Nsamples), y, xq).astype(np.float32)
                self.bwdTransforms_.append(FixedBinInterpolator(y[0], y[-1], back))
        return self

    def transform(self, X, inverse=False):
        import tensorflow as tf

        transforms = self.bwdTransforms_ if inverse else self.fwdTransforms_
        x = tf.constant(np.asarray(X, dtype=np.float32))
        return tf.stack([t.apply(x[:, i]) for i, t in enumerate(transforms)], axis=1).numpy()


def _data(n: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.c_[rng.lognormal(2.0, 1.0, n), rng.normal(0.0, 3.0, n), np.round(rng.normal(0.0, 2.0, n))]


def _pickled_elsewhere(obj, path):
    """Pickle ``obj`` as if its class lived in a module that is not installed (same-length name)."""
    data = pickle.dumps(obj)
    module = type(obj).__module__.encode()
    assert module in data
    path.write_bytes(data.replace(module, b"x" * len(module)))
    return path


def _rows(x: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = hi - lo
    return rng.uniform(lo - 0.2 * span, hi + 0.2 * span, (5000, x.shape[1])).astype(np.float32)


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_weighted_quantile_transformer(distribution, tmp_path):
    x = _data()
    weights = np.random.default_rng(2).uniform(0.1, 3.0, len(x))
    wqt = WeightedQuantileTransformer(n_quantiles=100, output_distribution=distribution).fit(x, sample_weight=weights)
    assert "QuantileTransformerConverter" in scikinC.convert({"wqt": wqt})  # scikinC's registry entry
    ex = export_transformer(_pickled_elsewhere(wqt, tmp_path / "wqt.pkl"))
    assert ex.source.functions == ["wqt", "wqt_inverse"]
    compiled = ex.compile(tmp_path, one_row=True)
    assert ex.check(compiled).passed
    rows = _rows(x)
    np.testing.assert_array_equal(compiled(rows), wqt.transform(rows.astype(np.float64)).astype(np.float32))
    inverse = compiled.sibling("wqt_inverse", 3, 3)
    u = np.random.default_rng(3).uniform(0.0, 1.0, (500, 3)).astype(np.float32)
    y = u if distribution == "uniform" else np.float32(2.0) * u - np.float32(1.0)
    np.testing.assert_array_equal(inverse(y), wqt.inverse_transform(y.astype(np.float64)).astype(np.float32))


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_fast_quantile_layer(distribution, tmp_path, keras):
    x = _data()
    fql = FastQuantileLayer(n_quantiles=40, n_samples=300, output_distribution=distribution).fit(x)
    assert "ql_interpolate_for_fql" in scikinC.convert({"fql": fql})  # scikinC's FastQuantileLayerConverter
    ex = export_chain(preprocess=[_pickled_elsewhere(fql, tmp_path / "fql.pkl")])
    compiled = ex.compile(tmp_path, one_row=True)
    assert ex.check(compiled).passed
    rows = np.concatenate([_rows(x), [[np.nan, 0.0, 1e30], [-1e30, np.inf, -np.inf]]]).astype(np.float32)
    np.testing.assert_array_equal(compiled(rows), fql.transform(rows))
    inverse = compiled.sibling("fql_inverse", 3, 3)
    y = fql.transform(_rows(x))
    np.testing.assert_array_equal(inverse(y), fql.transform(y, inverse=True))
    c_file, _ = ex.write(tmp_path / "fql.c")
    strict_compile(c_file, tmp_path)


def test_refusals_name_the_class(tmp_path, keras):
    fql = FastQuantileLayer().fit(_data(300))
    fql.decorrelate = True
    with pytest.raises(ExportError, match=r"'fql' \(FastQuantileLayer\): decorrelate=True"):
        export_transformer(_pickled_elsewhere(fql, tmp_path / "fql.pkl"))
    wqt = WeightedQuantileTransformer(n_quantiles=10)
    with pytest.raises(ExportError, match=r"WeightedQuantileTransformer.*not fitted"):
        export_transformer(_pickled_elsewhere(wqt, tmp_path / "wqt.pkl"))


def test_docs_table_lists_scikinc_registry_row_by_row():
    """docs/scikinc.md compares with every converter scikinC registers, and only those."""
    text = (ROOT / "docs" / "scikinc.md").read_text()
    rows = [line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `")]
    assert sorted(rows) == sorted(scikinC.get_converters()), rows
