"""Run-time instruction-set dispatch: every variant gives the same bits, and the file stays portable.

Each variant is forced with -DSYMBOL_ISA=<level> (the file otherwise asks the CPU), built with
Lamarr's line, and run on 10k rows, one call per row and in one SYMBOL_batch call; all must
equal the baseline bit for bit. A variant this CPU cannot run is skipped, naming the missing
features. The widths (130, 37, 70) leave tails at every block size.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from exporter import export_keras
from exporter.backend.isa import VARIANTS, missing_on_this_cpu, running_level
from exporter.build.toolchain import LAMARR_FLAGS, SHARED_FLAGS, CompiledModel
from exporter.check.inputs import make_inputs
from exporter.common.errors import ExportError

from helpers import ROOT, STRICT_C, randomize, residual_model, run_cli, saved

EXAMPLE = ROOT / "examples" / "efficiency.keras"
ROWS = 10_000


@pytest.fixture(scope="module")
def odd_widths_model(keras):
    L = keras.layers
    x = keras.Input((7,))
    a = L.Dense(130, activation="gelu")(x)
    b = L.Dense(37, activation="tanh")(a)
    c = L.Dense(70, activation="silu")(b)
    d = L.Add()([c, L.Dense(70, activation="elu")(c)])
    y = L.Dense(5, activation="softmax")(d)
    return randomize(keras.Model(x, y), seed=3)


@pytest.fixture(scope="module")
def small(keras, tmp_path_factory):
    return saved(residual_model(keras), tmp_path_factory.mktemp("small"), "small.keras")


def build(c_file: Path, symbol: str, defines: list[str], n_in: int, n_out: int, real: str) -> CompiledModel:
    library = c_file.with_name(f"lib{symbol}{''.join(d.replace('=', '') for d in defines)}.so")
    cmd = ["gcc", *LAMARR_FLAGS, *SHARED_FLAGS, *defines, str(c_file), "-o", str(library), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return CompiledModel(symbol, library, n_in, n_out, real=real)


def bits(values: np.ndarray) -> np.ndarray:
    return values.view(np.uint64 if values.dtype == np.float64 else np.uint32)


@pytest.mark.parametrize(
    "model_name, math, dtype",
    [("example", "fast", "float"), ("odd", "fast", "float"), ("odd", "libm", "float"), ("odd", "libm", "double")],
)
def test_every_variant_gives_the_same_bits(odd_widths_model, tmp_path, model_name, math, dtype):
    model = EXAMPLE if model_name == "example" else odd_widths_model
    ex = export_keras(model, name="variants", math=math, dtype=dtype)
    c_file, _ = ex.write(tmp_path / f"{ex.symbol}.c")
    n_in, n_out = ex.graph.n_inputs, ex.graph.n_outputs
    rows = make_inputs(n_in, ROWS)[:ROWS].astype(np.float64 if dtype == "double" else np.float32)
    baseline = build(c_file, ex.symbol, [f"-D{ex.symbol}_ISA=1"], n_in, n_out, dtype)
    expected = bits(baseline(rows))
    assert np.array_equal(bits(baseline.batch(rows)), expected)
    ran = []
    for variant in VARIANTS["auto"][1:]:
        if missing_on_this_cpu(variant):
            continue
        forced = build(c_file, ex.symbol, [f"-D{ex.symbol}_ISA={variant.level}"], n_in, n_out, dtype)
        assert np.array_equal(bits(forced(rows)), expected), f"{variant.name}, one call per row"
        assert np.array_equal(bits(forced.batch(rows)), expected), f"{variant.name}, SYMBOL_batch"
        ran.append(variant.name)
    unavailable = [
        f"{v.name} (no {', '.join(missing_on_this_cpu(v))})" for v in VARIANTS["auto"][1:] if v.name not in ran
    ]
    if unavailable:
        pytest.skip(f"checked {', '.join(['baseline', *ran])}; this CPU cannot run {', '.join(unavailable)}")


def test_banner_names_the_variants_and_none_writes_one(tmp_path, capsys, small):
    code, _, err = run_cli(capsys, small, "--no-check", "-o", tmp_path / "chosen.c", "--name", "chosen")
    assert code == 0, err
    auto = (tmp_path / "chosen.c").read_text()
    assert " * Instruction sets: baseline, x86-64-v3, x86-64-v4; each call runs the best one" in auto
    assert 'chosen_TARGET("arch=x86-64-v4") static void chosen_v4_rows1(' in auto
    code, _, err = run_cli(capsys, small, "--no-check", "--dispatch", "none", "-o", tmp_path / "one.c", "--name", "one")
    assert code == 0, err
    one = (tmp_path / "one.c").read_text()
    assert " * Instruction set: one, what the compiler targets (--dispatch none)." in one
    assert "_TARGET" not in one and "_isa()" not in one and "_v3_" not in one
    rows = make_inputs(12, 2000)
    single = build(tmp_path / "one.c", "one", [], 12, 4, "float")  # the compiler's default target: the baseline
    chosen = build(tmp_path / "chosen.c", "chosen", [], 12, 4, "float")  # the CPU's own choice, as Lamarr builds it
    assert np.array_equal(bits(single(rows)), bits(chosen(rows)))
    assert np.array_equal(bits(single.batch(rows)), bits(chosen.batch(rows)))


def test_dispatch_refuses_other_values():
    with pytest.raises(ExportError, match=r"dispatch .avx2.: expected one of auto, none"):
        export_keras(EXAMPLE, dispatch="avx2")


ALL = {"baseline", "_v3", "_v4"}


@pytest.mark.parametrize(
    "compiler, extra, variants",
    [
        ("gcc", [], ALL),
        ("gcc", ["-Dstrict_model_DISPATCH=0"], {"baseline"}),  # the guards off: the baseline alone, as elsewhere
        ("gcc", ["-Dstrict_model_ISA=1"], {"baseline"}),  # a forced variant is compiled alone
        ("gcc", ["-Dstrict_model_ISA=3"], {"_v3"}),
        ("gcc", ["-Dstrict_model_ISA=4"], {"_v4"}),
        ("clang", [], ALL),
        ("aarch64-linux-gnu-gcc", [], {"baseline"}),  # no x86 targets there: the guards keep the baseline alone
    ],
)
def test_other_compilers_and_platforms_compile_it_strictly(tmp_path, compiler, extra, variants, small):
    found = shutil.which(compiler) or next(
        filter(None, (shutil.which(f"{compiler}-{v}") for v in range(20, 13, -1))), None
    )
    if found is None:
        assert os.environ.get("CI") != "true", f"{compiler} is needed under CI=true (.ci/run installs it)"
        pytest.skip(f"{compiler} is not installed")
    ex = export_keras(small, name="strict_model")
    c_file, _ = ex.write(tmp_path / "strict_model.c")
    flags = [f for f in STRICT_C[1:] if f != "-shared"]  # an object: clang warns of an unused -shared
    cmd = [found, *flags, *extra, "-c", str(c_file), "-o", str(tmp_path / "strict.o")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"
    assert compiled_variants(tmp_path / "strict.o", "strict_model") == variants


def compiled_variants(binary: Path, symbol: str) -> set[str]:
    """Which variants' row functions a compiled file holds (static functions keep their names in nm)."""
    symbols = subprocess.run(["nm", str(binary)], capture_output=True, text=True).stdout
    found = {suffix for suffix in ("_v3", "_v4") if f"{symbol}{suffix}_rows1" in symbols}
    return found | ({"baseline"} if re.search(rf"\b{symbol}_rows1\b", symbols) else set())


def test_the_parity_build_holds_the_running_variant_and_the_written_library_all(tmp_path, capsys, small):
    """The export's own compile checks the variant this CPU runs (a third of the compile); ``--so`` writes all."""
    running = {1: "baseline", 3: "_v3", 4: "_v4"}[running_level()]
    ex = export_keras(small, name="parity_build")
    assert compiled_variants(ex.compile_source(ex.source, 12, 4, one_isa=True).library, "parity_build") == {running}
    code, _, err = run_cli(capsys, small, "-o", tmp_path / "pb.c", "--so", tmp_path / "pb.so", "--samples", 100)
    assert code == 0, err
    assert compiled_variants(tmp_path / "pb.so", "pb") == ALL
