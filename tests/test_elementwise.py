"""Every elementwise Keras 3 activation and operation, and their jax.nn and JAX twins: compiled C against the framework.

One model holds them all as parallel branches of the same input (one export and one compile per math mode, not
one per function): the shrinks, thresholds, squareplus, sparse_plus and sparse_sigmoid as Keras activations (by
name in a stored file, with their parameters as operations), and keras.ops' elementwise math functions as
operation nodes. The rows are random values of every magnitude, and the edge values of each function: 0 and -0,
its thresholds and the floats beside them, the ends of its domain, huge values, ±inf and NaN. Finite values are
judged by the parity criterion (errors from a float64 Keras within what float32 itself does there); non-finite
ones must be the framework's own (both NaN, or the same infinity). The functions that are not elementwise (glu,
sparsemax) are refused by name.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from exporter import export_keras
from exporter.common.errors import UnsupportedModelError

from helpers import STRICT_CFLAGS, randomize, saved

WIDTH = 8
# the thresholds of the branches below, each with the floats just beside it
EDGES = [0.5, 0.3, 1.2, 0.4, 1.0, 3.0, 2.5]
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 3e38, -3e38, 1e-30, -1e-30, 1e-3, 50.0, -50.0, 89.0]


def edge_rows(width: int, seed: int = 0) -> np.ndarray:
    """The special values and every threshold (both signs, one float either side) in every column, then random
    rows of every magnitude from 1e-6 to 1e6 and standard normal rows."""
    f32 = np.float32
    edges = [f32(e) for e in EDGES]
    values = [*SPECIAL, *(v for e in edges for v in (e, np.nextafter(e, f32(0)), np.nextafter(e, f32(9))))]
    values += [-v for v in values if v == v and v > 0]
    values = np.array(values, dtype=np.float32)
    grid = np.resize(values, (-(-len(values) // width) * width,)).reshape(-1, width)
    rotated = np.concatenate([np.roll(grid, k, axis=1) for k in range(width)])
    rng = np.random.default_rng(seed)
    spread = rng.choice([-1, 1], (1500, width)) * 10.0 ** rng.uniform(-6, 6, (1500, width))
    return np.concatenate([rotated, spread, 2.0 * rng.standard_normal((1500, width))]).astype(np.float32)


# Keras activations given by name (a stored file holds them as strings)
BY_NAME = ["hard_shrink", "soft_shrink", "tanh_shrink", "squareplus", "sparse_plus", "sparse_sigmoid"]


def operations(k):
    """(name, function of a tensor) of every elementwise operation with its parameters as a model holds them."""
    o = k.ops
    unary = "sin cos tan arcsin arccos arctan sinh cosh arcsinh arccosh arctanh exp2 log2 log10 cbrt floor ceil"
    cases = [(name, getattr(o, name)) for name in (unary + " trunc round sign reciprocal rsqrt erf erfc").split()]
    return [
        *cases,
        ("hard_shrink(0.3)", lambda x: o.hard_shrink(x, threshold=0.3)),
        ("soft_shrink(1.2)", lambda x: o.soft_shrink(x, threshold=1.2)),
        ("threshold(0.4, -2)", lambda x: o.threshold(x, 0.4, -2.0)),
        ("squareplus(2.5)", lambda x: o.squareplus(x, b=2.5)),
        ("tanh_shrink", o.tanh_shrink),
        ("sparse_plus", o.sparse_plus),
        ("sparse_sigmoid", o.sparse_sigmoid),
        ("clip(-1, 3)", lambda x: o.clip(x, -1.0, 3.0)),
        ("x ** 3", lambda x: x**3),
        ("power(x, -2)", lambda x: o.power(x, -2)),
        ("power(x, 0.5)", lambda x: o.power(x, 0.5)),
        ("power(x, 1.7)", lambda x: o.power(x, 1.7)),
        ("power(x, 11)", lambda x: o.power(x, 11)),
        ("sinc", o.sinc),
        ("nan_to_num", o.nan_to_num),
        ("nan_to_num(1, 5, -6)", lambda x: o.nan_to_num(x, nan=1.0, posinf=5.0, neginf=-6.0)),
        ("deg2rad", o.deg2rad),
        ("rad2deg", o.rad2deg),
        ("copy, fabs", lambda x: o.fabs(o.copy(x))),
    ]


@pytest.fixture(scope="module")
def stored(keras, tmp_path_factory):
    """The model of every branch, saved (the names of the branches, the file)."""
    L = keras.layers
    x = keras.Input((WIDTH,))
    names = [f"Activation('{n}')" for n in BY_NAME] + [name for name, _ in operations(keras)]
    outs = [L.Activation(n, name=f"act_{n}")(x) for n in BY_NAME] + [fn(x) for _, fn in operations(keras)]
    fused = ["squareplus", "tanh_shrink", "soft_shrink"]  # fused into the Dense's C: the same expression there
    names += [f"Dense(activation='{n}')" for n in fused]
    outs += [L.Dense(WIDTH, activation=n, name=f"dense_{n}")(x) for n in fused]
    model = randomize(keras.Model(x, L.Concatenate(name="all")(outs)), seed=2)
    return names, saved(model, tmp_path_factory.mktemp("elementwise"))


@pytest.mark.parametrize("math", ["fast", "libm", "double"])
def test_every_elementwise_function_matches_keras(stored, tmp_path, math):
    """--dtype double computes squareplus's x * x without the overflow float32 Keras has beyond 1.8e19 (where Keras
    gives inf, for -1e30 too): its rows stop at 1e18."""
    names, path = stored
    x = edge_rows(WIDTH)
    if math == "double":
        x = np.where(np.isfinite(x), np.clip(x, -1e18, 1e18), x)
    ex = export_keras(path, math="libm" if math == "double" else math, dtype="double" if math == "double" else "float")
    c_file = tmp_path / "strict.c"
    c_file.write_text(ex.source.c)
    for cc in ("gcc", "clang"):  # the strict warnings (-Wfloat-equal, -Wdouble-promotion...) in both compilers
        strict = subprocess.run([cc, "-std=c99", *STRICT_CFLAGS, "-fsyntax-only", str(c_file)], capture_output=True)
        assert strict.returncode == 0, strict.stderr.decode()
    compiled = ex.compile(tmp_path, one_row=math != "fast")
    report = ex.check(compiled, x)
    # a hint for the message: the branches off the fixed tolerance (the verdict is the criterion's)
    failing = sorted({names[c.column // WIDTH] for c in report.columns if c.failures or c.nan_mismatches})
    assert report.passed, f"{failing}\n{report.table()}"
    if math == "fast":  # the blocks of rows (vectorized loops) give the bits of one call per row
        np.testing.assert_array_equal(compiled.batch(x).view(np.uint32), compiled(x).view(np.uint32))


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda k, x: k.layers.Activation("glu")(x), ["'glu' is not supported: not elementwise", "two halves"]),
        (
            lambda k, x: k.layers.Activation("sparsemax")(x),
            ["'sparsemax' is not supported: not elementwise", "simplex"],
        ),
        (lambda k, x: k.ops.glu(x), ["(Glu)", "operation Glu is not elementwise"]),
        (lambda k, x: k.ops.sparsemax(x), ["(Sparsemax)", "operation Sparsemax is not elementwise"]),
        (lambda k, x: k.ops.round(x, decimals=2), ["(Round)", "only decimals=0"]),
        (lambda k, x: k.ops.power(x, x), ["(Power)", "only a tensor to a constant power"]),
        (lambda k, x: k.ops.power(2.0, x), ["(Power)", "only a tensor to a constant power"]),
        (lambda k, x: k.ops.clip(x, 2.0, 1.0), ["(Clip)", "the first not above the second"]),
        (lambda k, x: k.ops.threshold(x, 0.5, float("nan")), ["default_value = nan is not a finite number"]),
    ],
    ids=["glu", "sparsemax", "ops.glu", "ops.sparsemax", "round(2)", "x ** x", "2 ** x", "clip(2, 1)", "nan"],
)
def test_refused_by_name(keras, tmp_path, make, fragments):
    x = keras.Input((WIDTH,))
    path = saved(keras.Model(x, make(keras, keras.layers.Dense(WIDTH)(x))), tmp_path)
    with pytest.raises(UnsupportedModelError) as info:
        export_keras(path)
    for fragment in fragments:
        assert fragment in str(info.value)


def jax_functions():
    """(name, function of a row) of every jax.nn function and JAX primitive that is one IR kind."""
    import jax
    import jax.numpy as jnp

    unary = "sin cos tan arcsin arccos arctan sinh cosh arcsinh arccosh arctanh exp2 cbrt floor ceil round sign square"
    return [(name, getattr(jnp, name)) for name in unary.split()] + [
        ("squareplus", jax.nn.squareplus),
        ("squareplus(1.5)", lambda x: jax.nn.squareplus(x, 1.5)),
        ("sparse_plus", jax.nn.sparse_plus),
        ("sparse_sigmoid", jax.nn.sparse_sigmoid),
        ("mish", jax.nn.mish),
    ]


def test_jax_functions_match_jax(tmp_path):
    """Each function on its own slice of the row, concatenated: one export; parity against JAX in float32 (the C is
    the Keras functions' C, whose --math modes the test above covers)."""
    import jax.numpy as jnp

    from exporter import export_flax

    functions = jax_functions()

    def model(params, x):
        h = jnp.maximum(x, -jnp.inf)  # the identity, as the network's input: the raw row feeds the network once
        return jnp.concatenate([fn(h) for _, fn in functions])

    ex = export_flax(model, {}, n_inputs=WIDTH, name="elementwise")
    kinds = {op.activation.kind for op in ex.graph.ops if hasattr(op, "activation")}
    assert {"squareplus", "sparse_plus", "sparse_sigmoid", "mish", "asin", "round", "integer_pow"} <= kinds
    report = ex.check(ex.compile(tmp_path, one_row=True), edge_rows(WIDTH))
    failing = sorted({functions[c.column // WIDTH][0] for c in report.columns if c.failures or c.nan_mismatches})
    assert report.passed, f"{failing}\n{report.table()}"


def test_non_finite_parameters_refused_in_every_frontend(keras, tmp_path):
    """A parameter the C has no number for (NaN, an infinite slope) is refused by name, never a traceback: Keras
    layers, ONNX attributes, jax.nn arguments."""
    import jax
    import onnx
    from onnx import TensorProto, helper

    from exporter import export_chain, export_flax

    for layer in (keras.layers.ELU(alpha=float("nan")), keras.layers.LeakyReLU(negative_slope=float("inf"))):
        with pytest.raises(UnsupportedModelError, match="is not a finite number"):
            export_keras(keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), layer]))
    node = helper.make_node("LeakyRelu", ["x"], ["y"], alpha=float("nan"))
    row = [helper.make_tensor_value_info(v, TensorProto.FLOAT, [None, 3]) for v in "xy"]
    path = tmp_path / "nan.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", row[:1], row[1:])), path)
    with pytest.raises(UnsupportedModelError, match="negative_slope = nan is not a finite number"):
        export_chain(path)
    with pytest.raises(UnsupportedModelError, match="b = inf is not a finite number"):
        export_flax(lambda params, x: jax.nn.squareplus(x, float("inf")), {}, n_inputs=3)


def test_every_keras_activation_is_mapped_or_refused_by_name(keras):
    """Enumerated from the installed Keras: each function of keras.activations (and its operation class in
    keras.ops) maps to an IR activation with its defaults (0.5 for a parameter without one), or is refused as not
    elementwise; a Keras release that adds one fails here until it is one or the other."""
    import inspect

    from keras.src.ops import nn

    from exporter.frontends.builder import Unsupported
    from exporter.frontends.keras.activations import NOT_ELEMENTWISE, keras_activation
    from exporter.frontends.keras.operations import OPERATIONS, operation_reason

    names = [
        n for n in dir(keras.activations) if not n.startswith("_") and n not in ("get", "serialize", "deserialize")
    ]
    assert len(names) >= 30
    for name in names:
        parameters = list(inspect.signature(getattr(keras.activations, name)).parameters.values())[1:]
        required = {p.name: 0.5 for p in parameters if p.default is inspect.Parameter.empty}
        if name in NOT_ELEMENTWISE:
            with pytest.raises(Unsupported, match="not elementwise"):
                keras_activation(name)
        else:
            assert keras_activation(name, **required).kind, name
    spelled = {name.replace("_", "") for name in names}
    classes = [cls for cls, value in vars(nn).items() if isinstance(value, type) and cls.lower() in spelled]
    assert len(classes) >= 25
    for cls in classes:
        assert cls in OPERATIONS or "not elementwise" in str(operation_reason(cls)), cls
