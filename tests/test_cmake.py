"""CMake and C++ consumers: the committed exports built and checked by ctest (and the C++ test program shown to fail
on a wrong reference), a small set with every kind of function under ASan/UBSan (and shown to catch an overrun and
a wrong macro), and lamarr_export_models() in a consumer project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from exporter.cli import main

from helpers import ROOT, randomize, saved, small_model_set

pytestmark = pytest.mark.slow

EXPORTER = Path(sys.executable).parent / "lamarr-export"


def run(*cmd: object, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd)
    if check:
        assert result.returncode == 0, f"{' '.join(map(str, cmd))}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def cmake() -> str:
    found = shutil.which("cmake")
    assert found, "cmake is needed (CI installs it): the C++ consumers are part of what is tested"
    return found


def build_and_test(
    cmake: str, build: Path, *options: str, source: Path = ROOT, build_type: str = "Release"
) -> subprocess.CompletedProcess[str]:
    run(cmake, "-S", source, "-B", build, f"-DCMAKE_BUILD_TYPE={build_type}", *options)
    run(cmake, "--build", build, "-j2")
    return run("ctest", "--output-on-failure", cwd=build, check=False)  # cwd: --test-dir needs CMake 3.20


def test_committed_exports_pass_ctest(cmake, tmp_path):
    """One library and one test program per generated file; each checks every function its reference file lists,
    and fails on a reference row it does not reproduce.

    Built as CMakeLists.txt says (no build type: the compiler's default -O0, a fifth of -O3's time for the 5 MB of
    lamarr_pid.c); the same C code at Lamarr's -O3 is checked against the frameworks by tests/test_generated.py
    (the variant this CPU runs) and compiled with the strict warnings at -O3 by tests/test_c_contract.py,
    test_composed.py and test_manifest.py (a model, a pipeline, a model set)."""
    build = tmp_path / "build"
    result = build_and_test(cmake, build, build_type="")
    assert result.returncode == 0, result.stdout + result.stderr
    refs = sorted((ROOT / "generated").glob("*.ref.txt"))
    assert f"0 tests failed out of {len(refs)}" in result.stdout and "lamarr_tracking" in result.stdout
    assert "lamarr_pid" in result.stdout  # the PID pipelines: three-argument functions with N_RANDOM noise values
    assert "static_assert(full_muon_pipe_N_RANDOM == 256" in (build / "registry_lamarr_pid.cpp").read_text()
    for ref in refs:
        stem = ref.name.removesuffix(".ref.txt")
        functions = sum(line.startswith("function ") for line in ref.open())
        program = run(build / f"test_{stem}", build / f"lib{stem}.so", ref)
        assert f"{functions} functions" in program.stdout and program.stdout.rstrip().endswith(": ok")

    # The same program given reference rows with one output changed by far more than the tolerance: it fails,
    # naming the output, linked and through dlsym, one row per call and in a batch.
    lines = (ROOT / "generated" / "tracking.ref.txt").read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("out "))
    lines[row] = f"out {float(lines[row].split()[1]) + 0.01:.9g}"
    wrong = tmp_path / "tracking.ref.txt"
    wrong.write_text("\n".join(lines) + "\n")
    failed = run(build / "test_tracking", build / "libtracking.so", wrong, check=False)
    assert failed.returncode != 0
    for call in ("linked tracking", "dlsym tracking", "dlsym tracking_batch"):
        assert f"FAIL: {call}: row 0 output 0" in failed.stdout + failed.stderr, failed.stdout + failed.stderr


# The small set's pipeline: a second generator reads the conditions and the first one's outputs; scikinC's names on.
PIPELINE = """
[models.b2]
model = "nets/b.keras"

[pipelines.chain]
n_inputs = 3
scikinc_names = true
stages = [{ model = "gen", reads = ["input"] }, { model = "b2", reads = ["input", "gen"] }]
"""


@pytest.fixture(scope="module")
def small_set(keras, tmp_path_factory) -> Path:
    """A generated folder holding one small export with every kind of function the committed sets have: a
    classifier (softmax) and generators (noise) with preprocessing (a log column, a scaler) and target
    transforms (a quantile transformer) and their steps, and a pipeline (three arguments, N_RANDOM noise values,
    scikinC's names); widths 130 and 37 take the dense kernels through full blocks and every tail, as the
    committed sets' 128-wide layers do. Exported once; tests copy it before changing it."""
    folder = small_model_set(keras, tmp_path_factory.mktemp("small_set"))
    L = keras.layers
    cond, noise = keras.Input((5,)), keras.Input((4,))
    h = L.Dense(130, activation="tanh")(L.Concatenate()([cond, noise]))  # the dense kernels' full blocks and tails
    h = L.Dense(37, activation="relu")(h)
    saved(randomize(keras.Model([cond, noise], L.Dense(2)(h)), seed=2), folder / "nets", "b.keras")
    manifest = folder / "models.toml"
    manifest.write_text(manifest.read_text() + PIPELINE)
    generated = folder / "generated"
    assert main([str(manifest), "-o", str(generated / "small.c"), "--samples", "300", "--quiet"]) == 0
    return generated


def copy_folder(generated: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(generated, tmp_path / "generated"))


def test_every_kind_of_function_under_sanitizers(cmake, small_set, tmp_path):
    """In-place calls and exact-size heap buffers, under -fsanitize=address,undefined: nothing reported; a write
    past the outputs is; a header macro that disagrees with the reference rows stops the build.

    The memory behaviour of the generated C depends on the kinds of functions and steps (per row, in place,
    generators, pipelines, preprocessing and target transforms, the run-time dispatch), not on the size of the
    networks: the small set has each of them, so the committed sets (minutes under ASan) need not be rebuilt
    this way; their strict build and reference rows are checked by test_committed_exports_pass_ctest.
    """
    build = tmp_path / "build"
    generated = copy_folder(small_set, tmp_path)
    functions = (generated / "small.ref.txt").read_text()
    for name in ("gen_preprocess_inverse", "gen_postprocess", "cls_dnn", "chain", "gen_tY_inverse", "b2_dnn_random"):
        assert f"function {name} " in functions, name  # each kind is really there, and listed for the test program
    options = ("-DLAMARR_EXPORT_SANITIZE=ON", f"-DLAMARR_EXPORT_GENERATED_DIR={generated}")
    result = build_and_test(cmake, build, *options, build_type="")  # the library at -O1 -g, as ASan advises
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 tests failed out of 1" in result.stdout and "small" in result.stdout
    assert "runtime error" not in result.stdout + result.stderr and "AddressSanitizer" not in result.stdout
    linked = run("ldd", build / "test_small").stdout
    assert "libasan" in linked and "libubsan" in linked

    # Only the library is instrumented: one float written past a model's outputs must still be caught.
    c_file = generated / "small.c"
    n_outputs = next(line.split()[3] for line in functions.splitlines() if line.startswith("function cls "))
    entry = "cls_EXPORT float *cls(float *output, const float *input)\n{\n"
    assert entry in c_file.read_text()
    c_file.write_text(c_file.read_text().replace(entry, f"{entry}    output[{n_outputs}] = 0.0f;\n"))
    run(cmake, "--build", build, "-j2")
    caught = run("ctest", "--output-on-failure", cwd=build, check=False)
    assert caught.returncode != 0 and "heap-buffer-overflow" in caught.stdout, caught.stdout

    # The registry checks the header's macros against the reference rows: a pipeline's NAME_N_RANDOM that
    # differs stops the test program's build, naming the macro.
    assert "gen_dnn_random" in (build / "registry_small.cpp").read_text()
    header = generated / "small.h"
    assert "#define chain_N_RANDOM 8" in header.read_text()
    header.write_text(header.read_text().replace("#define chain_N_RANDOM 8", "#define chain_N_RANDOM 9"))
    rebuilt = run(cmake, "--build", build, check=False)
    assert rebuilt.returncode != 0 and "chain_N_RANDOM" in rebuilt.stdout + rebuilt.stderr


def consumer_outputs(build: Path) -> dict[str, np.ndarray]:
    lines = run(build / "consumer").stdout.split("\n")
    return {k: np.array([float(line.split()[1]) for line in lines if line.startswith(k)]) for k in ("cls", "gen")}


def test_lamarr_export_models_in_a_project(cmake, keras, tmp_path, monkeypatch):
    """A C++ project exports a manifest at build time, includes the header, links the library, and re-exports
    when a model file changes."""
    monkeypatch.delenv("KERAS_BACKEND", raising=False)  # the build's lamarr-export picks its own, as in Lamarr
    L = keras.layers
    models = tmp_path / "models"
    cond, noise = keras.Input((3,)), keras.Input((4,))
    gen = randomize(
        keras.Model([cond, noise], L.Dense(2)(L.Dense(8, activation="tanh")(L.Concatenate()([cond, noise]))))
    )
    saved(gen, models, "gen.keras")
    x = keras.Input((3,))
    cls = randomize(keras.Model(x, L.Dense(4)(L.Dense(8, activation="relu")(x))))
    saved(cls, models, "cls.keras")
    manifest = models / "models.toml"
    (models / "lamarr_cmake_utils.py").write_text("")  # a module of the manifest's folder, trusted by the project
    manifest.write_text(
        '[models.cls]\nmodel = "cls.keras"\noutput_activation = "softmax"\ntrust = ["lamarr_cmake_utils"]\n\n'
        '[models.gen]\nmodel = "gen.keras"\n'
    )
    build = tmp_path / "build"
    cmake_dir = Path(run(EXPORTER, "--cmake-dir").stdout.strip())  # from the installed package, as Lamarr finds it
    assert (cmake_dir / "LamarrExport.cmake").is_file()
    options = [f"-DMODELS_MANIFEST={manifest}", f"-DLAMARR_EXPORT_EXECUTABLE={EXPORTER}"]
    run(cmake, "-S", ROOT / "tests" / "cmake_project", "-B", build, *options)
    refused = subprocess.run([cmake, "--build", build], capture_output=True, text=True)  # TRUST not given
    assert refused.returncode != 0 and "--trust lamarr_cmake_utils" in refused.stdout + refused.stderr
    options.append("-DMODELS_TRUST=lamarr_cmake_utils")
    run(cmake, "-S", ROOT / "tests" / "cmake_project", "-B", build, *options)
    run(cmake, "--build", build, "-j2")
    assert (build / "lamarr_models" / "lamarr_models.ref.txt").is_file()

    row = np.array([[0.5, 1.5, -1.0]], np.float32)
    random = np.array([[0.1, -0.2, 0.3, -0.4]], np.float32)

    def expected(cls_model):
        logits = cls_model(row).numpy()[0].astype(np.float64)
        return np.exp(logits) / np.exp(logits).sum()

    got = consumer_outputs(build)
    np.testing.assert_allclose(got["cls"], expected(cls), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(got["gen"], gen([row, random]).numpy()[0], atol=1e-5, rtol=1e-4)

    saved(randomize(cls, seed=5), models, "cls.keras")  # a retrained model: the build exports again
    rebuilt = run(cmake, "--build", build, "-j2")
    assert "lamarr-export" in rebuilt.stdout
    got = consumer_outputs(build)
    np.testing.assert_allclose(got["cls"], expected(cls), atol=1e-5, rtol=1e-4)
    assert os.path.getmtime(build / "lamarr_models" / "lamarr_models.c") >= os.path.getmtime(models / "cls.keras")


def test_consumer_project_says_when_lamarr_export_is_missing(cmake, tmp_path):
    """Not on PATH and not given: configuring stops with what to do, not with a missing include."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "lamarr-export").exists())
    project = ROOT / "tests" / "cmake_project"
    result = subprocess.run(
        [cmake, "-S", project, "-B", tmp_path / "build", f"-DMODELS_MANIFEST={tmp_path}/m.toml"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
    )
    assert result.returncode != 0
    message = " ".join(result.stderr.split())  # CMake wraps long messages
    assert "lamarr-export not found: activate its Python environment, or set LAMARR_EXPORT_EXECUTABLE" in message
