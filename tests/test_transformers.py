"""scikit-learn transformers in C: each forward and inverse against scikit-learn itself.

The transformers are fitted on adversarial data (constant columns, repeated values that
make plateaus of quantiles, few quantiles, more quantiles than samples, huge ranges) and
checked on rows drawn from where they were fitted, on their bounds and a little outside.
Computed in double precision like scikit-learn, the C agrees to the float32 output's last
bit; the tests still use the default tolerance, and the bit-exactness separately.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)

from exporter.api import export_transformer
from exporter.frontends.sklearn import reference

N = 5


def adversarial_data(seed: int = 0, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty((n, N))
    x[:, 0] = rng.lognormal(3.0, 1.0, n)  # positive, skewed (a momentum)
    x[:, 1] = np.round(rng.normal(0.0, 2.0, n))  # few distinct values: plateaus of quantiles
    x[:, 2] = 7.5  # constant column
    x[:, 3] = rng.normal(1e4, 5e3, n)  # large values
    x[:, 4] = rng.uniform(-1.0, 1.0, n)
    x[: n // 4, 4] = 0.25  # a quarter of the rows repeat one value
    return x


def positive_data() -> np.ndarray:
    x = adversarial_data()
    x[:, 1] = np.abs(x[:, 1]) + 0.5
    x[:, 3] = np.abs(x[:, 3]) + 1.0
    x[:, 4] = x[:, 4] + 1.5
    x[:, 2] += np.linspace(0.0, 1.0, len(x))  # Box-Cox cannot fit a constant column
    return x


TRANSFORMERS = {
    "standard": lambda: StandardScaler(),
    "standard_no_mean": lambda: StandardScaler(with_mean=False),
    "standard_no_std": lambda: StandardScaler(with_std=False),
    "minmax": lambda: MinMaxScaler(feature_range=(-1, 2)),
    "minmax_clip": lambda: MinMaxScaler(clip=True),
    "maxabs": lambda: MaxAbsScaler(),
    "robust": lambda: RobustScaler(quantile_range=(10, 90)),
    "robust_partial": lambda: RobustScaler(with_centering=False),
    "quantile_uniform": lambda: QuantileTransformer(n_quantiles=50),
    "quantile_normal": lambda: QuantileTransformer(n_quantiles=50, output_distribution="normal"),
    "quantile_few": lambda: QuantileTransformer(n_quantiles=5, output_distribution="normal"),
    "quantile_more_than_samples": lambda: QuantileTransformer(n_quantiles=1000, output_distribution="normal"),
    "yeo_johnson": lambda: PowerTransformer(),
    "yeo_johnson_raw": lambda: PowerTransformer(standardize=False),
    "box_cox": lambda: PowerTransformer(method="box-cox"),
    "log": lambda: FunctionTransformer(np.log, inverse_func=np.exp),
    "log1p": lambda: FunctionTransformer(np.log1p, inverse_func=np.expm1),
    "log10": lambda: FunctionTransformer(np.log10),
    "sqrt": lambda: FunctionTransformer(np.sqrt, inverse_func=np.square),
    "identity": lambda: FunctionTransformer(),
    "pipeline": lambda: make_pipeline(FunctionTransformer(np.log1p, inverse_func=np.expm1), StandardScaler()),
    "nested_pipeline": lambda: Pipeline(
        [
            ("outer", make_pipeline(MinMaxScaler(), Pipeline([("q", QuantileTransformer(n_quantiles=30))]))),
            ("skip", "passthrough"),
            ("std", StandardScaler()),
        ]
    ),
    "column_transformer": lambda: ColumnTransformer(
        [
            (
                "q",
                make_pipeline(QuantileTransformer(n_quantiles=40, output_distribution="normal"), StandardScaler()),
                [3, 0],
            ),
            ("p", PowerTransformer(), slice(1, 3)),
        ],
        remainder="passthrough",
    ),
    "column_transformer_drop": lambda: ColumnTransformer(
        [("mm", MinMaxScaler(), [4]), ("pass", "passthrough", [0]), ("gone", "drop", [1])], remainder="drop"
    ),
    "column_transformer_mask": lambda: ColumnTransformer(
        [("std", StandardScaler(), np.array([True, False, True, False, False]))], remainder=RobustScaler()
    ),
}
NEEDS_POSITIVE = {"box_cox", "log", "log10", "sqrt", "pipeline"}
HAS_INVERSE = set(TRANSFORMERS) - {"log10", "column_transformer_drop"}


def fitted(case: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_quantiles > n_samples warns; that is the point of the case
        return TRANSFORMERS[case]().fit(positive_data() if case in NEEDS_POSITIVE else adversarial_data())


@pytest.mark.parametrize("case", sorted(TRANSFORMERS))
def test_forward(case, tmp_path):
    ex = export_transformer(fitted(case), name="tr")
    compiled = ex.compile(tmp_path, one_row=True)
    rows = ex.inputs(3000)
    report = ex.check(compiled, rows)
    assert report.passed, report.table()
    expected = reference.forward(fitted(case), rows.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(compiled(rows), expected)  # double precision as sklearn: the same floats


@pytest.mark.parametrize("case", sorted(HAS_INVERSE))
def test_inverse(case, tmp_path):
    est = fitted(case)
    ex = export_transformer(est, name="tr")
    assert ex.source.functions == ["tr", "tr_inverse"]
    inverse = ex.compile(tmp_path, one_row=True).sibling("tr_inverse", ex.chain.n_outputs, ex.chain.n_inputs)
    transformed = reference.forward(est, ex.inputs(2000).astype(np.float64))
    noise = np.random.default_rng(1).normal(0.0, 0.3, transformed.shape)
    rows = np.concatenate([transformed, transformed + noise]).astype(np.float32)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference.inverse(est, rows.astype(np.float64)).astype(np.float32)
    got = inverse(rows)
    close = np.isclose(got, expected, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert close.all(), f"{(~close).sum()} values differ, e.g. {got[~close][:5]} vs {expected[~close][:5]}"


def test_not_invertible_has_no_inverse_function():
    ex = export_transformer(fitted("column_transformer_drop"), name="tr")
    assert ex.source.functions == ["tr"]


def test_column_transformer_output_order(tmp_path):
    """sklearn puts transformed blocks first, in transformer order, then the remainder."""
    est = fitted("column_transformer")
    ex = export_transformer(est, name="tr")
    assert ex.chain.pre.ops[0].columns == (3, 0, 1, 2, 4)
    rows = ex.inputs(200)
    expected = est.transform(rows.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(ex.compile(tmp_path, one_row=True)(rows), expected)


@pytest.mark.parametrize(
    "est, fragment",
    [
        (lambda: StandardScaler(), "not fitted"),
        (lambda: Pipeline([("scale", StandardScaler()), ("oops", _onehot())]).fit(adversarial_data()), "oops"),
        (lambda: FunctionTransformer(np.cumsum).fit(adversarial_data()), "'cumsum' cannot be translated"),
    ],
    ids=["unfitted", "unsupported step", "unsupported function"],
)
def test_refusals_name_the_step(est, fragment):
    from exporter.common.errors import ExportError

    with pytest.raises(ExportError) as err:
        export_transformer(est(), name="tX")
    assert fragment in str(err.value)


def _onehot():
    from sklearn.decomposition import PCA

    return PCA(n_components=2)


def test_string_columns_refused():
    import pandas as pd

    from exporter.common.errors import ExportError

    frame = pd.DataFrame(adversarial_data(), columns=list("abcde"))
    est = ColumnTransformer([("colcnv", make_pipeline(QuantileTransformer(n_quantiles=10)), ["a", "b"])]).fit(frame)
    with pytest.raises(ExportError) as err:
        export_transformer(est, name="tX")
    assert "no names" in str(err.value) and "'ColumnTransformer / colcnv' (Pipeline)" in str(err.value)
