"""The generated C compiles wherever Lamarr's users build it: GCC and Clang, -O0 -g to -O3, -march=x86-64-v2
to v4 and native, and for aarch64, under Lamarr's strict flags; -ffast-math is refused with the reason.

GCC 12 refused the file under -march=x86-64-v4 and -march=native ("inlining failed in call to
'always_inline' 'SYMBOL_min': target specific option mismatch"): the x86-64-v3 variant called the math
helpers, compiled for the command line's wider target (issue 27). Each variant now has its own copies.
One small model that goes through every op template (tests/helpers.py ``every_op``), compiled once per
combination, compile only (``-c``; no ``-shared``, which Clang reports unused for an object). A
-march the compiler does not know skips that combination. The default run compiles a representative
row of the matrix; the rest is marked slow (CI runs it: about 10 s of CPU in all).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from exporter import export_keras

from helpers import every_op

STRICT = ["-std=c99", "-Wall", "-Wextra", "-pedantic-errors", "-Werror", "-fPIC"]  # Lamarr's, less -shared
LEVELS = {"O0g": ["-O0", "-g"], "O2": ["-O2"], "O3": ["-O3"]}
MARCHES = ["x86-64-v2", "x86-64-v3", "x86-64-v4", "native"]
DEFAULT = {("gcc", "O2", "x86-64-v4"), ("gcc", "O3", "native"), ("gcc", "O0g", "x86-64-v3"), ("clang", "O2", "native")}
MATRIX = [
    pytest.param(cc, level, march, marks=() if (cc, level, march) in DEFAULT else pytest.mark.slow)
    for cc in ("gcc", "clang")
    for level in LEVELS
    for march in MARCHES
]


@pytest.fixture(scope="module")
def every_op_c(keras, tmp_path_factory) -> Path:
    ex = export_keras(every_op(keras), name="matrix")
    return ex.write(tmp_path_factory.mktemp("matrix") / "matrix.c")[0]


@functools.cache
def compiler(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        assert os.environ.get("CI") != "true", f"{name} is needed under CI=true (.ci/run installs it)"
        pytest.skip(f"{name} is not installed")
    return found


@functools.cache
def knows_march(cc: str, march: str) -> bool:
    probe = subprocess.run([cc, f"-march={march}", "-x", "c", "-E", "-"], input="", capture_output=True, text=True)
    return probe.returncode == 0


def compile_object(cc: str, flags: list[str], c_file: Path) -> subprocess.CompletedProcess[str]:
    obj = c_file.with_name("_".join([Path(cc).name, *(f.strip("-") for f in flags)]) + ".o")
    return subprocess.run([cc, *STRICT, *flags, "-c", str(c_file), "-o", str(obj)], capture_output=True, text=True)


@pytest.mark.parametrize("cc, level, march", MATRIX)
def test_compiles_strictly(every_op_c, cc, level, march):
    path = compiler(cc)
    if not knows_march(path, march):
        pytest.skip(f"{cc} does not know -march={march}")
    result = compile_object(path, [*LEVELS[level], f"-march={march}"], every_op_c)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def every_op_fma_c(keras, tmp_path_factory) -> Path:
    ex = export_keras(every_op(keras), name="matrix", math="fma")
    return ex.write(tmp_path_factory.mktemp("matrix_fma") / "matrix.c")[0]


@pytest.mark.parametrize(
    "cc, level, march", [("gcc", "O3", "native"), ("clang", "O2", "x86-64-v3"), ("gcc", "O0g", "")]
)
def test_fma_file_compiles_strictly(every_op_fma_c, cc, level, march):
    """--math fma: the baseline's SYMBOL_FMA calls fmaf under a target with FMA (-march), adds products without one;
    at -O0 GCC calls libm's fmaf. aarch64 and the inlining: tests/test_fma.py."""
    path = compiler(cc)
    if march and not knows_march(path, march):
        pytest.skip(f"{cc} does not know -march={march}")
    result = compile_object(path, [*LEVELS[level], *([f"-march={march}"] if march else [])], every_op_fma_c)
    assert result.returncode == 0, result.stderr


def test_cross_compiles_for_aarch64(every_op_c):
    """No x86 target attributes there: the preprocessor keeps the baseline alone."""
    result = compile_object(compiler("aarch64-linux-gnu-gcc"), ["-O2"], every_op_c)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("cc, flag", [("gcc", "-ffast-math"), ("gcc", "-Ofast"), ("clang", "-ffast-math")])
def test_fast_math_is_refused_with_the_reason(every_op_c, cc, flag):
    """-ffast-math folds (x + 1.5 * 2^23) - 1.5 * 2^23 to x (the rounding of the inline exp and tanh), drops the
    NaN checks and reorders sums: the file says so and stops, rather than compute other numbers."""
    result = compile_object(compiler(cc), ["-O2", flag], every_op_c)
    assert result.returncode != 0
    assert "matrix: compiled with -ffast-math or -Ofast, which this file refuses" in result.stderr, result.stderr
