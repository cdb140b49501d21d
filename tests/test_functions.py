"""FunctionTransformer with the user's own functions: scikinC's ``inC`` C expressions and traced functions.

The C expression grammar admits arithmetic and <math.h> functions of x and nothing else; each
refusal below is one a blacklist of characters would let through or a user could plausibly
write. The PID ProbNN target transform (a StandardScaler and logit/sigmoid in a ColumnTransformer)
is checked against the Python functions themselves, with ``inC`` and traced without it.
"""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from exporter.api import export_chain, export_transformer
from exporter.check.compare import ulp_distance
from exporter.common.errors import ExportError
from exporter.frontends.sklearn.symbolic import Untraceable, trace
from exporter.ir.column_formulas import Expression
from exporter.ir.expression import ExpressionError, parse

import helpers
from helpers import ROOT, assert_user_error, randomize, run_cli, saved

sys.path.insert(0, str(ROOT / "examples"))
import lamarr_utils  # the example's module: logit and sigmoid with their inC


@pytest.mark.parametrize(
    "text, c",
    [
        ("log({x} / (1 - {x}))", "log((x / (1.0 - x)))"),
        ("1 / (1 + exp(-{x}))", "(1.0 / (1.0 + exp((-x))))"),
        ("1/2*x", "((1.0 / 2.0) * x)"),  # numbers are doubles: 0.5 * x, as Python reads it, not C's 0 * x
        ("pow(x, 2.5e-1) - -x", "(pow(x, 0.25) - (-x))"),
        ("atan2(x, 1.) + fmax(x, .5)", "(atan2(x, 1.0) + fmax(x, 0.5))"),
        ("  +x  ", "x"),
    ],
)
def test_c_expressions_are_reprinted_from_their_tree(text, c):
    assert parse(text).c() == c


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('log({x}); system("rm -rf ~")', "';'"),
        ("x /* hidden */", "comment"),
        ("x // hidden", "comment"),
        ("system(x)", "'system' is neither x nor a <math.h> function"),
        ("exp(y)", "'y' is neither x"),
        ("M_PI * x", "'M_PI'"),
        ("x, exp(x)", "expected the end"),
        ("1.0f * x", "found 'f'"),
        ("x ? 1 : 0", "unexpected '?'"),
        ("x[0]", "unexpected '['"),
        ('"x"', "unexpected '\"'"),
        ("#include <stdlib.h>", "unexpected '#'"),
        ("{y}", "unexpected '{'"),
        ("0x1p3 * x", "found 'x1p3'"),
        ("exp x", "expected '(' after exp"),
        ("pow(x)", "pow is not a <math.h> function of 1 argument"),
        ("(x + 1", "expected ')'"),
        ("", "empty"),
        ("(" * 100 + "x" + ")" * 100, "nested deeper"),
        ("x" + " + x" * 1000, "longer than"),
    ],
)
def test_c_expressions_outside_the_grammar_are_refused(text, fragment):
    with pytest.raises(ExpressionError) as err:
        parse(text)
    assert fragment in str(err.value)


def test_tracing_records_ufuncs_and_arithmetic():
    import scipy.special

    assert trace(lambda x: 2 * x**2 - np.log1p(np.abs(x)) / 3).c() == "((2.0 * (x * x)) - (log1p(fabs(x)) / 3.0))"
    assert trace(scipy.special.expit).c() == "(1.0 / (1.0 + exp((-x))))"
    assert trace(lambda x: np.float32(0.5) + x ** np.int64(3)).c() == "(0.5 + pow(x, 3.0))"


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda x: np.where(x > 0, x, 0.0), "compares"),
        (lambda x: np.clip(x, 0, 1), "numpy.clip"),
        (lambda x: x * np.arange(3.0), "(only single numbers)"),
        (lambda x: np.maximum(x, 0), "maximum has no C translation"),
        (lambda x: x * np.inf, "not finite"),
        (lambda x: np.add.reduce(x), "reduce"),
        (lambda x: x.sum(), ".sum"),
        (lambda x: 1.0, "returns float"),
        (lambda x: float(x), "converts"),
    ],
)
def test_untraceable_functions_say_why(fn, fragment):
    with pytest.raises(Untraceable) as err:
        trace(fn)
    assert fragment in str(err.value)


def logit_traced(x):
    return np.log(x / (1 - x))


def sigmoid_traced(x):
    return 1 / (1 + np.exp(-x))


def probnn_data(n: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(4)
    probabilities = np.clip(rng.beta(0.4, 0.4, (n, 3)), 1e-6, 1 - 1e-6)  # piled up near 0 and 1, as ProbNN
    return np.c_[rng.normal(5.0, 2.0, n), rng.lognormal(0.0, 1.0, n), probabilities]


def probnn_target(func, inverse_func, **attributes) -> ColumnTransformer:
    """Lamarr's PID target transform: a StandardScaler, and logit/sigmoid on the ProbNN columns;
    ``attributes`` are set on the fitted FunctionTransformer (fitting clones it, dropping them)."""
    functions = FunctionTransformer(func=func, inverse_func=inverse_func, check_inverse=False)
    est = ColumnTransformer([("scale", StandardScaler(), [0, 1]), ("probnn", functions, [2, 3, 4])])
    est.fit(probnn_data())
    for key, value in attributes.items():
        setattr(est.named_transformers_["probnn"], key, value)
    return est


CASES = {
    "inC": lambda: probnn_target(lamarr_utils.logit, lamarr_utils.sigmoid),
    "traced": lambda: probnn_target(logit_traced, sigmoid_traced),
    "transformer_inC": lambda: probnn_target(
        logit_traced, sigmoid_traced, func_inC="log({x}) - log1p(-{x})", inverse_func_inC="0.5 + 0.5 * tanh({x} / 2)"
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_probnn_target_transform_against_the_python_functions(case, tmp_path, keras):
    est = CASES[case]()
    expression = next(op for op in export_transformer(est).chain.pre.ops if isinstance(op, Expression))
    assert expression.columns == (2, 3, 4)
    expected = {"inC": "log((x / (1.0 - x)))", "transformer_inC": "(log(x) - log1p((-x)))"}
    assert expression.forward.c() == expected.get(case, "log((x / (1.0 - x)))")
    x = keras.Input((5,))
    net = randomize(keras.Model(x, keras.layers.Dense(5)(keras.layers.Dense(16, activation="tanh")(x))))
    ex = export_chain(saved(net, tmp_path), target_transform=est, name="pid")
    compiled = ex.compile(tmp_path, one_row=True)
    report = ex.check(compiled, ex.inputs(5000))
    assert report.passed, report.table()

    alone = export_transformer(est, name="tr")
    both = alone.compile(one_row=True)
    rows = probnn_data()[:1500].astype(np.float32)
    forward = est.transform(rows.astype(np.float64)).astype(np.float32)
    limit = 8 if case == "transformer_inC" else 2  # libm against numpy; or another formula of the same function
    assert ulp_distance(both(rows), forward).max() <= limit
    logits = np.random.default_rng(0).normal(0.0, 6.0, (3000, 5)).astype(np.float32)
    inverse = est.named_transformers_["probnn"].inverse_transform(logits[:, 2:].astype(np.float64)).astype(np.float32)
    assert ulp_distance(both.sibling("tr_inverse", 5, 5)(logits)[:, 2:], inverse).max() <= limit


def test_a_wrong_inC_fails_parity(tmp_path):
    """Parity is the guard: a C expression that is valid but not the function is caught."""
    est = probnn_target(lamarr_utils.logit, lamarr_utils.sigmoid, func_inC="log({x} / (1 + {x}))")
    ex = export_transformer(est, name="tr")
    report = ex.check(ex.compile(tmp_path, one_row=True), probnn_data()[:500].astype(np.float32))
    assert not report.passed


def test_identity_forward_with_an_inverse_function(tmp_path):
    est = FunctionTransformer(func=None, inverse_func=sigmoid_traced).fit(np.zeros((2, 2)))
    ex = export_transformer(est, name="tr")
    logits = np.linspace(-30, 30, 200, dtype=np.float32).reshape(-1, 2)
    got = ex.compile(tmp_path, one_row=True).sibling("tr_inverse", 2, 2)(logits)
    assert ulp_distance(got, sigmoid_traced(logits.astype(np.float64)).astype(np.float32)).max() <= 2


MODULE = """
import numpy as np


def logit(x):
    return np.log(x / (1 - x))


def clipped(x):
    return np.clip(x, 0.0, 1.0)


logit.inC = "log({x} / (1 - {x})); system(\\"touch pwned\\")"
"""


@pytest.mark.parametrize(
    "func, fragments",
    [
        ("logit", ["func.inC", "';' (one expression, no statements) is not allowed"]),
        ("clipped", ["func 'clipped' cannot be translated to C", "numpy.clip", "inC", "func_inC"]),
    ],
)
def test_cli_refuses_bad_functions(capsys, tmp_path, monkeypatch, func, fragments):
    module = helpers.user_module(tmp_path, monkeypatch, MODULE)
    est = FunctionTransformer(getattr(module, func)).fit(np.full((3, 2), 0.5))
    (tmp_path / "t.pkl").write_bytes(pickle.dumps(est))
    name = helpers.forget_module(monkeypatch, module)
    assert_user_error(capsys, tmp_path, ["t.pkl", "--trust", name, "-o", "t.c"], "step 't'", *fragments)
    assert not (tmp_path / "pwned").exists()


def test_cli_exports_the_example_functions(capsys, tmp_path, monkeypatch):
    """The example module's logit/sigmoid from a pickle: loaded with --trust, exported from their inC."""
    monkeypatch.chdir(ROOT / "examples")
    (tmp_path / "tY.pkl").write_bytes(pickle.dumps(CASES["inC"]()))
    args = [tmp_path / "tY.pkl", "-o", tmp_path / "tY.c", "--samples", 2000]
    assert_user_error(capsys, tmp_path, args, "add --trust lamarr_utils")
    code, out, err = run_cli(capsys, *args, "--trust", "lamarr_utils")
    assert code == 0, out + err
    assert "y = log((x / (1.0 - x)));" in (tmp_path / "tY.c").read_text()


def test_python_api_refuses_with_the_function_named():
    est = FunctionTransformer(lambda x: np.clip(x, 0, 1)).fit(np.zeros((2, 2)))
    with pytest.raises(ExportError, match=r"func '.*<lambda>' cannot be translated"):
        export_transformer(est)
