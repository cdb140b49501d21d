"""Flax / JAX models in C: linen and nnx modules, plain functions, preprocessing in jnp, refusals.

Parity compares the compiled C with the JAX function itself (jit, vmap, float32).
"""

from __future__ import annotations

import os
import re
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx, serialization

from exporter.api import export_flax, export_keras
from exporter.common.errors import ExportError

from helpers import ROOT, randomize, run_cli

KEY = jax.random.PRNGKey(0)
sys.path.insert(0, str(ROOT / "examples"))
from flax_tracking import Model as TrackingModel  # noqa: E402  (the Flax example's model)


class OneActivation(nn.Module):
    fn: str
    kwargs: tuple = ()

    @nn.compact
    def __call__(self, x):
        h = getattr(nn, self.fn)(nn.Dense(8)(x), **dict(self.kwargs))
        return nn.Dense(3)(h)


ACTIVATIONS = [
    ("relu", ()),
    ("tanh", ()),
    ("sigmoid", ()),
    ("softmax", ()),
    ("log_sigmoid", ()),
    ("log_softmax", ()),
    ("leaky_relu", (("negative_slope", 0.1),)),
    ("elu", ()),
    ("selu", ()),
    ("gelu", ()),
    ("gelu", (("approximate", False),)),
    ("silu", ()),
    ("softplus", ()),
    ("relu6", ()),
    ("celu", ()),
    ("hard_tanh", ()),
    ("soft_sign", ()),
]


def init(model, x, seed=0):
    """Random params of the shapes ``model.init`` gives (traced, not run: run, it compiles every op of the model
    with XLA): kernels with the spread of a trained network (std 1/sqrt(fan-in)), biases std 0.5."""
    rng = np.random.default_rng(seed)

    def draw(leaf):
        spread = 1 / np.sqrt(leaf.shape[0]) if len(leaf.shape) > 1 else 0.5
        return (spread * rng.standard_normal(leaf.shape)).astype(leaf.dtype)

    return jax.tree_util.tree_map(draw, jax.eval_shape(model.init, KEY, x))


def assert_parity(ex, rows=None):
    report = ex.check(ex.compile(one_row=True), inputs=rows)
    assert report.passed, report.table()
    return report


@pytest.mark.parametrize("fn, kwargs", ACTIVATIONS, ids=[f"{f}{dict(k)}" for f, k in ACTIVATIONS])
def test_linen_activation(fn, kwargs):
    model = OneActivation(fn, kwargs)
    params = init(model, jnp.zeros(4))
    assert_parity(export_flax(model, params, n_inputs=4, name="act"))


def test_named_activations_become_ir_activations():
    """leaky_relu and friends are recognised by name (one op, fused into the Dense), not inlined."""
    model = OneActivation("leaky_relu", (("negative_slope", 0.05),))
    ex = export_flax(model, init(model, jnp.zeros(4)), n_inputs=4, name="act")
    first = ex.graph.ops[0]
    assert first.activation.kind == "leaky_relu" and first.activation.params["negative_slope"] == pytest.approx(0.05)


def test_tracking_model_with_sigmoid():
    model = TrackingModel((32, 32, 32))
    params = init(model, jnp.zeros(3))
    ex = export_flax(model, params, n_inputs=3, name="tracking", output_activation="sigmoid")
    assert [op.describe() for op in ex.graph.ops] == [
        "Dense 3->32, relu",
        "Dense 32->32, relu",
        "Dense 32->32, relu",
        "Dense 32->1, sigmoid",
    ]
    assert_parity(ex)


class Residual(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.tanh(nn.Dense(16)(x))
        h = h + nn.tanh(nn.Dense(16)(h))  # residual addition in plain jnp
        h = jnp.concatenate([h, x, h * h])  # concatenation, a product of two network values
        return nn.Dense(2)(h) / 3.0 - 1.0


def test_residual_concatenation_and_arithmetic():
    model = Residual()
    assert_parity(export_flax(model, init(model, jnp.zeros(5)), n_inputs=5, name="res"))


class Preprocessed(nn.Module):
    """The Flax example's preprocessing written in jnp: log(pT), then (x - mean) / scale."""

    @nn.compact
    def __call__(self, x):
        x = x.at[1].set(jnp.log(x[1]))
        x = (x - jnp.array([3.5, 5.0, 0.0])) / jnp.array([0.9, 1.5, 1.8])
        return nn.Dense(1)(nn.relu(nn.Dense(16)(x))).flatten()


def test_preprocessing_in_jnp_becomes_column_ops():
    model = Preprocessed()
    ex = export_flax(model, init(model, jnp.ones(3)), n_inputs=3, name="pre", output_activation="sigmoid")
    kinds = [type(op).__name__ for op in ex.chain.pre.ops]
    assert "Function" in kinds and "Standardize" in kinds
    assert "pre_preprocess" in ex.source.functions
    rng = np.random.default_rng(0)
    rows = np.stack(
        [rng.uniform(2, 5, 3000), np.exp(rng.uniform(np.log(10), np.log(1e4), 3000)), rng.uniform(-np.pi, np.pi, 3000)],
        axis=1,
    ).astype(np.float32)
    assert_parity(ex, rows)


class NnxModel(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.a = nnx.Linear(4, 8, rngs=rngs)
        self.bn = nnx.BatchNorm(8, use_running_average=True, rngs=rngs)
        self.drop = nnx.Dropout(0.3, deterministic=True, rngs=rngs)
        self.b = nnx.Linear(8, 8, rngs=rngs)
        self.c = nnx.Linear(16, 2, rngs=rngs)

    def __call__(self, x):
        h = self.drop(self.bn(jax.nn.gelu(self.a(x), approximate=False)))
        h2 = jax.nn.silu(self.b(h)) + h
        return jax.nn.softmax(self.c(jnp.concatenate([h, h2])))


def test_nnx_module():
    model = NnxModel(nnx.Rngs(0))
    model.bn.mean[...] = jnp.linspace(-0.5, 0.5, 8)
    model.bn.var[...] = jnp.linspace(0.5, 2.0, 8)
    assert_parity(export_flax(model, n_inputs=4, name="nnxm"))


def test_plain_function():
    w = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)

    def f(params, x):
        return jax.nn.elu(x @ params["w"] + params["b"])

    assert_parity(export_flax(f, {"w": w, "b": np.ones(3, np.float32)}, n_inputs=4, name="plain"))


def test_same_ir_and_code_as_keras(keras):
    """A Keras and a Flax network with the same weights give the same IR and the same C (comments aside)."""
    L = keras.layers
    k_model = randomize(
        keras.Sequential([keras.Input((3,)), L.Dense(8, activation="relu"), L.Dense(8, activation="relu"), L.Dense(1)])
    )
    f_model = TrackingModel((8, 8))
    params = {
        "params": {
            f"Dense_{i}": {"kernel": layer.kernel.numpy(), "bias": layer.bias.numpy()}
            for i, layer in enumerate(k_model.layers)
        }
    }
    k_ex, f_ex = export_keras(k_model, name="same"), export_flax(f_model, params, n_inputs=3, name="same")
    assert [op.describe() for op in k_ex.graph.ops] == [op.describe() for op in f_ex.graph.ops]
    for k_op, f_op in zip(k_ex.graph.ops, f_ex.graph.ops, strict=True):
        np.testing.assert_array_equal(k_op.kernel, f_op.kernel)
        np.testing.assert_array_equal(k_op.bias, f_op.bias)

    def code(ex):
        body = ex.source.c[ex.source.c.index("#include") :]
        return re.sub(r"/\*.*?\*/", "", body, flags=re.S)

    assert code(k_ex) == code(f_ex)


class Convolution(nn.Module):
    @nn.compact
    def __call__(self, x):  # channels first: channels-last convolutions are supported (tests/test_convolution.py)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (2, 1, 2))
        numbers = ("NCH", "OIH", "NCH")
        y = jax.lax.conv_general_dilated(x.reshape(1, 1, 4), kernel, (1,), "VALID", dimension_numbers=numbers)
        return y.ravel()


class DataDependent(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.Dense(4)(x)
        return jax.lax.cond(jnp.sum(h) > 0, lambda v: v * 2.0, lambda v: v, h)


class Noisy(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(x) + jax.random.normal(jax.random.PRNGKey(1), (2,))


@pytest.mark.parametrize(
    "model, primitive", [(Convolution(), "conv_general_dilated"), (DataDependent(), "'gt at "), (Noisy(), "random_")]
)
def test_refusals_name_the_primitive_and_line(model, primitive):
    params = init(model, jnp.zeros(4))
    with pytest.raises(ExportError) as err:
        export_flax(model, params, n_inputs=4, name="refused")
    assert primitive in str(err.value) and "test_flax.py" in str(err.value)


MODULE = textwrap.dedent(
    """
    from flax import linen as nn

    class Model(nn.Module):
        layer: tuple

        @nn.compact
        def __call__(self, x):
            for k in self.layer:
                x = nn.relu(nn.Dense(k)(x))
            return nn.Dense(1)(x).flatten()
    """
)


@pytest.fixture
def flax_package(tmp_path, monkeypatch):
    (tmp_path / "mymodels.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mymodels", None)
    params = init(TrackingModel((16, 16)), jnp.zeros(3))
    (tmp_path / "params.msgpack").write_bytes(serialization.to_bytes(params))
    return tmp_path


def test_cli_flax(flax_package, capsys):
    out_c = flax_package / "eff.c"
    code, out, err = run_cli(
        capsys,
        "--flax",
        "mymodels:Model",
        "--flax-kwargs",
        '{"layer": [16, 16]}',
        "--params",
        flax_package / "params.msgpack",
        "--n-inputs",
        3,
        "--output-activation",
        "sigmoid",
        "--name",
        "eff",
        "-o",
        out_c,
        "--samples",
        2000,
    )
    assert code == 0, err
    assert "parity: passed against Flax" in out
    assert "float *eff(float *output, const float *input);" in out_c.with_suffix(".h").read_text()


def test_cli_flax_symbol_from_the_params_file(flax_package, capsys, monkeypatch):
    monkeypatch.chdir(flax_package)
    flags = ["--flax", "mymodels:Model", "--flax-kwargs", '{"layer": [16, 16]}', "--n-inputs", 3]
    code, out, err = run_cli(capsys, *flags, "--params", flax_package / "params.msgpack", "--no-check")
    assert code == 0, err
    assert "symbol params:" in out
    assert "float *params(float *output, const float *input);" in (flax_package / "params.h").read_text()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--flax", "nowhere:Model"], "cannot import"),
        (["--flax", "mymodels:Model", "--flax-kwargs", '{"layer": [8]}'], "match"),
        (["--flax", "mymodels:Model", "--n-inputs", "5"], "match"),
        (["--flax", "mymodels:Model", "--flax-kwargs", "{oops"], "not valid JSON"),
        (["model.keras", "--flax", "mymodels:Model"], "not both"),
    ],
)
def test_cli_flax_errors(flax_package, capsys, args, fragment):
    defaults = {
        "--flax-kwargs": '{"layer": [16, 16]}',
        "--n-inputs": "3",
        "--params": str(flax_package / "params.msgpack"),
    }
    for flag, value in defaults.items():
        if flag not in args:
            args = [*args, flag, value]
    before = set(os.listdir(flax_package))
    code, _, err = run_cli(capsys, *args, "-o", flax_package / "x.c")
    assert code == 2 and fragment in err and "Traceback" not in err, err
    assert set(os.listdir(flax_package)) == before
