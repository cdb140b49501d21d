"""--math fast: the inline activations are accurate to the stated ULPs over the whole float range.

A C harness (tests/c/fast_math_harness.c) evaluates each activation as the exporter generates
it, for one-feature models exported with --math fast and --math libm, on about a million
floats spread over every binade, millions more in [-20, 20], and the edge cases (signed zeros,
infinities, NaN, FLT_MIN, subnormals, FLT_MAX, the points where the functions saturate or
overflow), and compares both with the exact function evaluated in double by libm.
The generated models are compiled with the strict flags, so the helpers pass them too.
"""

from __future__ import annotations

import subprocess

import pytest

from exporter.backend import render
from exporter.common.options import Options
from exporter.ir import Activate, Activation, Graph
from exporter.ir.activations import ACCURACY

from helpers import ROOT, STRICT_C

pytestmark = pytest.mark.slow

# case -> (activation, features per row); softmax cases run over the row (x, 0)
CASES = {
    "exponential": (Activation("exponential"), 1),
    "tanh": (Activation("tanh"), 1),
    "sigmoid": (Activation("sigmoid"), 1),
    "silu": (Activation("silu"), 1),
    "elu": (Activation("elu", {"alpha": 1.0}), 1),
    "elu_half": (Activation("elu", {"alpha": 0.5}), 1),
    "selu": (Activation("selu"), 1),
    "celu_2": (Activation("celu", {"alpha": 2.0}), 1),
    "softplus": (Activation("softplus"), 1),
    "log_sigmoid": (Activation("log_sigmoid"), 1),
    "mish": (Activation("mish"), 1),
    "gelu_erf": (Activation("gelu_erf"), 1),
    "gelu_tanh": (Activation("gelu_tanh"), 1),
    "softmax": (Activation("softmax"), 2),
    "log_softmax": (Activation("log_softmax"), 2),
}


def one_activation(case: str, math: str) -> str:
    act, width = CASES[case]
    graph = Graph(
        input="x",
        output="y",
        widths={"x": width, "y": width},
        ops=[Activate(name=case, inputs=("x",), output="y", width=width, activation=act)],
        source="test",
    )
    return render(graph, f"{math}_{case}", options=Options(math=math)).c


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory):
    """{case: (max ULP fast, worst x, max ULP libm, worst x, special failures)} from one harness run."""
    tmp = tmp_path_factory.mktemp("fast_math")
    models = tmp / "models.c"
    models.write_text("\n".join(one_activation(case, math) for case in CASES for math in ("fast", "libm")))
    strict = [f for f in STRICT_C if f not in ("-shared", "-fPIC")]
    build = subprocess.run([*strict, "-c", str(models), "-o", str(tmp / "models.o")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    decls = "".join(f"float *{m}_{c}_batch(float *, const float *, size_t);\n" for c in CASES for m in ("fast", "libm"))
    rows = ",\n".join(f'    {{"{c}", fast_{c}_batch, libm_{c}_batch, ref_{c}, {CASES[c][1]}}}' for c in CASES)
    (tmp / "cases.c").write_text(f"{decls}static const struct test_case CASES[] = {{\n{rows}\n}};\n")
    exe = tmp / "harness"
    harness = ROOT / "tests" / "c" / "fast_math_harness.c"
    cmd = [
        "gcc",
        "-std=c99",
        "-O2",
        "-Wall",
        "-Werror",
        f"-I{tmp}",
        str(harness),
        str(tmp / "models.o"),
        "-o",
        str(exe),
    ]
    cmd.append("-lm")
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = {}
    for line in run.stdout.splitlines():
        name, fast, fast_at, libm, libm_at, special = line.split()
        result[name] = (float(fast), float(fast_at), float(libm), float(libm_at), int(special))
    assert set(result) == set(CASES)
    return result


@pytest.mark.parametrize("case", sorted(CASES))
def test_within_stated_ulps(accuracy, case):
    fast, at, _, _, special = accuracy[case]
    kind = CASES[case][0].kind
    assert special == 0, f"{case}: NaN, infinity or signed zero wrong on {special} inputs"
    assert fast <= ACCURACY[kind], f"{case}: {fast:.2f} ULP at x = {at!r}, stated {ACCURACY[kind]}"


def test_libm_mode_calls_libm_and_fast_mode_does_not():
    fast, libm = one_activation("tanh", "fast"), one_activation("tanh", "libm")
    assert "tanhf(" in libm and "fast_tanh_tanh(" not in libm
    assert "tanhf(" not in fast and "fast_tanh_tanh(" in fast


def test_only_used_helpers_are_emitted():
    relu = render(Graph("x", "y", {"x": 3, "y": 3}, [Activate("r", ("x",), "y", 3, Activation("relu"))], "t"), "m").c
    assert "m_max(" in relu and "m_pick(" in relu and "m_exp(" not in relu and "m_tanh(" not in relu
