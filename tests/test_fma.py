"""--math fma (issue 28): the network's sums in fused multiply-adds where the hardware has them.

The contract (docs/c-contract.md): x86-64-v3, x86-64-v4, aarch64 and a single-ISA build whose target has FMA
give the same bits as each other; the baseline without FMA multiplies then adds, and so computes the bits of
the bit-identical file's baseline; in every variant a batch gives the bits of its rows. Each variant this CPU
runs is forced (``-DSYMBOL_ISA``) and compared bit for bit; the fused ones must differ from the baseline
somewhere (else nothing was fused). A variant this CPU cannot run ends the test in a skip naming what ran.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from exporter import export_keras
from exporter.backend.isa import VARIANTS, missing_on_this_cpu
from exporter.build.toolchain import LAMARR_FLAGS, SHARED_FLAGS, CompiledModel
from exporter.check.batch_bits import build_and_run
from exporter.check.inputs import make_inputs

from helpers import STRICT_C, every_op, export_through_cli_and_manifest, residual_model, run_cli, saved

ROWS = 3000
FUSED = [v for v in VARIANTS["auto"] if v.fma]
BASELINE = VARIANTS["auto"][0]


@pytest.fixture(scope="module")
def models(keras, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fma")
    return {"residual": saved(residual_model(keras), folder, "small.keras"), "every_op": every_op(keras)}


def build(c_file: Path, symbol: str, flags: list[str], n_in: int, n_out: int, real: str) -> CompiledModel:
    library = c_file.with_name(f"lib{symbol}{''.join(f.strip('-=') for f in flags)}.so")
    subprocess.run(["gcc", *LAMARR_FLAGS, *SHARED_FLAGS, *flags, str(c_file), "-o", str(library), "-lm"], check=True)
    return CompiledModel(symbol, library, n_in, n_out, real=real)


def bits(values: np.ndarray) -> np.ndarray:
    return values.view(np.uint64 if values.dtype == np.float64 else np.uint32)


def rows_and_batch(model: CompiledModel, rows: np.ndarray) -> np.ndarray:
    """The bits of one call per row, checked equal to those of one batch call."""
    one = bits(model(rows))
    assert np.array_equal(bits(model.batch(rows)), one), "SYMBOL_batch differs from one call per row"
    return one


@pytest.mark.parametrize("name, dtype", [("residual", "float"), ("residual", "double"), ("every_op", "float")])
def test_fused_variants_agree_and_the_baseline_keeps_its_bits(models, tmp_path, name, dtype):
    fma = export_keras(models[name], name="fused", math="fma", dtype=dtype)
    plain = export_keras(models[name], name="plain", dtype=dtype)  # bit-identical: fast, or libm in double
    single = export_keras(models[name], name="single", math="fma", dtype=dtype, dispatch="none")
    n_in, n_out = fma.graph.n_inputs, fma.graph.n_outputs
    rows = make_inputs(n_in, ROWS)[:ROWS].astype(np.float64 if dtype == "double" else np.float32)
    files = {ex.symbol: ex.write(tmp_path / f"{ex.symbol}.c")[0] for ex in (fma, plain, single)}

    def run(symbol: str, *flags: str) -> np.ndarray:
        return rows_and_batch(build(files[symbol], symbol, list(flags), n_in, n_out, dtype), rows)

    baseline = run("fused", "-Dfused_ISA=1")
    assert np.array_equal(baseline, run("plain", "-Dplain_ISA=1")), "unfused, the baseline is the bit-identical one"
    assert np.array_equal(run("single"), baseline), "--dispatch none for the compiler's default target (no FMA)"
    ran = [BASELINE.name, "--dispatch none"]
    fused = None
    for variant in FUSED:
        if missing_on_this_cpu(variant):
            continue
        got = run("fused", f"-Dfused_ISA={variant.level}")
        assert not np.array_equal(got, baseline), f"{variant.name} gives the baseline's bits: its sums are not fused"
        fused = got if fused is None else fused
        assert np.array_equal(got, fused), f"{variant.name} differs from {ran[2]}"
        ran.append(variant.name)
    if fused is not None:  # a single-ISA file for a target with FMA: its baseline code fuses (SYMBOL_FUSED 1)
        assert np.array_equal(run("single", "-march=x86-64-v3"), fused), "--dispatch none -march=x86-64-v3"
        ran.append("--dispatch none -march=x86-64-v3")
    if (name, dtype) == ("residual", "float"):  # the export's batch check compares the same groups, and names them
        check = build_and_run(fma.source, tmp_path)
        names = [v.name for v in FUSED if not missing_on_this_cpu(v)]
        assert [r.reference for r in check.results] == [BASELINE.name] + names[:1] * len(names), check.results
        assert check.passed and "; fma contract: rows identical in " in check.verdict(), check.verdict()
    unavailable = [f"{v.name} (no {', '.join(missing_on_this_cpu(v))})" for v in FUSED if missing_on_this_cpu(v)]
    if unavailable:
        pytest.skip(f"checked {', '.join(ran)}; this CPU cannot run {', '.join(unavailable)}")


def test_aarch64_gives_the_bits_of_the_x86_fma_variants(models, tmp_path):
    """aarch64 always has FMA: the baseline code there (the only one) fuses, with the bits of x86-64-v3 and v4.
    Cross-compiled under the strict flags, run under qemu (.ci/run installs both), 3000 rows both ways."""
    for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64"):
        if shutil.which(tool) is None:
            assert os.environ.get("CI") != "true", f"{tool} is needed under CI=true (.ci/run installs it)"
            pytest.skip(f"{tool} is not installed")
    runnable = [v for v in FUSED if not missing_on_this_cpu(v)]
    if not runnable:
        pytest.skip(f"this CPU runs none of {', '.join(v.name for v in FUSED)} to compare aarch64 with")
    ex = export_keras(models["residual"], name="arm", math="fma")
    c_file = ex.write(tmp_path / "arm.c")[0]
    rows = make_inputs(12, ROWS)[:ROWS].astype(np.float32)
    rows.tofile(tmp_path / "in.f32")
    main = tmp_path / "main.c"
    main.write_text(
        '#include <stdio.h>\n#include "arm.c"\nint main(void)\n{\n    static float in[12], out[4];\n'
        '    FILE *i = fopen("in.f32", "rb"), *o = fopen("out.f32", "wb");\n'
        "    while (fread(in, sizeof in, 1, i) == 1) fwrite(arm(out, in), sizeof out, 1, o);\n"
        "    return arm_FUSED ? 0 : 3;\n}\n"
    )
    flags = [f for f in STRICT_C[1:] if f not in ("-shared", "-fPIC")]
    obj = tmp_path / "main.o"
    compiled = subprocess.run(["aarch64-linux-gnu-gcc", *flags, "-c", str(main), "-o", str(obj)], capture_output=True)
    assert compiled.returncode == 0, compiled.stderr
    undefined = subprocess.run(["aarch64-linux-gnu-nm", "-u", str(obj)], capture_output=True, text=True).stdout
    assert "fmaf" not in undefined, "GCC calls libm's fmaf instead of inlining fmadd"
    binary = tmp_path / "main"
    subprocess.run(["aarch64-linux-gnu-gcc", "-static", str(obj), "-o", str(binary), "-lm"], check=True)
    ran = subprocess.run(["qemu-aarch64", str(binary)], cwd=tmp_path, capture_output=True, timeout=120)
    assert ran.returncode == 0, "arm_FUSED is 0 on aarch64"
    got = np.fromfile(tmp_path / "out.f32", dtype=np.float32).reshape(ROWS, 4)
    x86 = build(c_file, "arm", [f"-Darm_ISA={runnable[0].level}"], 12, 4, "float")
    assert np.array_equal(bits(got), bits(x86(rows))), f"aarch64 differs from {runnable[0].name}"


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_fmaf_is_inlined_into_vfmadd_under_each_variants_target(models, tmp_path, compiler):
    """GCC and Clang inline fmaf into vfmadd in the x86-64-v3 and v4 code at -O2 (the PID models' level; -O3 too:
    checked by hand); nothing calls libm's fmaf; the baseline, for the default target (no FMA), has no FMA."""
    found = shutil.which(compiler)
    if found is None:
        assert os.environ.get("CI") != "true", f"{compiler} is needed under CI=true (.ci/run installs it)"
        pytest.skip(f"{compiler} is not installed")
    c_file = export_keras(models["every_op"], name="inlined", math="fma").write(tmp_path / "inlined.c")[0]
    obj = tmp_path / "inlined.o"
    flags = [f for f in STRICT_C[1:] if f not in ("-shared", "-O3")]
    result = subprocess.run([found, *flags, "-O2", "-c", str(c_file), "-o", str(obj)], capture_output=True)
    assert result.returncode == 0, result.stderr
    assert "fmaf" not in subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True).stdout
    functions = dict(_functions(subprocess.run(["objdump", "-d", str(obj)], capture_output=True, text=True).stdout))
    for suffix in ("_v3", "_v4"):
        assert "vfmadd" in functions[f"inlined{suffix}_rows1"], f"{compiler}: no vfmadd in the {suffix} code"
    assert "fmadd" not in functions["inlined_rows1"], f"{compiler}: the baseline fuses"


def _functions(asm: str):
    """(name, body) of each function of an ``objdump -d`` listing."""
    for block in asm.split("\n\n"):
        head, _, body = block.partition(">:\n")
        if body:
            yield head.rsplit("<", 1)[-1], body


def test_the_banner_the_info_and_the_manifest_key_state_the_contract(models, tmp_path, capsys):
    """`--math fma` and `math = "fma"` in a manifest pass parity (the float32 rule accepts FMA's rounding); the
    banner and SYMBOL_info say fma; the default says bit-identical."""
    export_through_cli_and_manifest(capsys, tmp_path, models["residual"], samples=300, math="fma")
    for c_file, symbol in ((tmp_path / "cli" / "model.c", "model"), (tmp_path / "set" / "models.c", "entry")):
        text = c_file.read_text()
        assert " * Contract: fma (--math fma). The network's sums are fused multiply-adds" in text
        assert f"#define {symbol}_FMA(w, x, acc) fmaf(w, x, acc)" in text
    assert _info(tmp_path / "set" / "strict.so", "entry")["contract"] == "fma"  # the helper's strict build of it
    code, _, err = run_cli(
        capsys, models["residual"], "--no-check", "-o", tmp_path / "plain.c", "--so", tmp_path / "p.so"
    )
    assert code == 0, err
    assert (
        " * Contract: bit-identical: the same bits in every instruction-set variant"
        in (tmp_path / "plain.c").read_text()
    )
    assert _info(tmp_path / "p.so", "plain")["contract"] == "bit-identical"


def _info(library: Path, symbol: str) -> dict:
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(f"const char *{symbol}_info(void);")
    return json.loads(ffi.string(getattr(ffi.dlopen(str(library)), f"{symbol}_info")()))
