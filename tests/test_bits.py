"""The same bits in every instruction-set variant, one call per row or SYMBOL_batch, whatever the C mode.

GCC 12 fused the Dense sums of a network with weights of both signs into FMA instructions (FMADDSUB,
one rounding instead of two) in its AVX2 and AVX-512 code even under ``-std=c99``, where contraction is
off: the x86-64-v3 variant then gave other bits than the baseline, and its blocks of rows other bits
than its one-row code (issue 27). In GCC's GNU modes (its default ``-std=gnu17``) every ``a * b + c``
of those variants was contracted. ``mixed_signs`` is a network that showed both, and the batch check
(``exporter.check.batch_bits``) compares every variant this CPU runs, bit for bit; the object code is also
searched for FMA instructions, which no variant may hold. Exact comparisons: no tolerance.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess

import numpy as np
import pytest

import exporter.api
from exporter import export_chain, export_keras
from exporter.backend.isa import VARIANTS, missing_on_this_cpu
from exporter.check.batch_bits import build_and_run

from helpers import randomize, run_cli, saved

RUNNABLE = [v.name for v in VARIANTS["auto"] if not missing_on_this_cpu(v)]
FMA = re.compile(r"\bvfn?m(add|sub)")  # vfmadd213ps, vfnmsub231ss, vfmaddsub132ps, vfmsubadd...


def mixed_signs(keras):
    """Three inputs, then 7 and 2 (GCC unrolls the loops over so few inputs and sees each weight), weights and
    biases of alternating signs: GCC 12 turned `acc + w * x` with w < 0 into `acc - |w| * x` and fused the mix."""
    L = keras.layers
    x = keras.Input((3,))
    h = L.Dense(7, activation="tanh")(x)
    h = L.Add()([h, L.Dense(7, activation="sigmoid")(h)])
    h = L.Dense(2)(h)
    h = L.Add()([h, L.Dense(2, activation="gelu")(h)])
    model = keras.Model(x, L.Dense(5)(h))
    for k, w in enumerate(model.weights):
        n = int(np.prod(w.shape))
        signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        w.assign(((0.3 + 0.05 * (np.arange(n) % 7)) * signs * (1 + 0.1 * k)).reshape(tuple(w.shape)).astype("float32"))
    return model


@pytest.fixture(scope="module")
def mixed(keras):
    return export_keras(mixed_signs(keras), name="mixed")


@pytest.mark.parametrize("compiler, std", [("gcc", "c99"), ("gcc", "gnu99"), ("clang", "c99"), ("clang", "gnu99")])
def test_every_variant_and_every_batch_give_the_baseline_bits(mixed, tmp_path, monkeypatch, compiler, std):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    monkeypatch.setenv("CC", compiler)
    monkeypatch.setenv("CFLAGS", f"-std={std} -O3")
    check = build_and_run(mixed.source, tmp_path)
    assert check.passed, check.verdict()
    assert [r.variant for r in check.results] == RUNNABLE
    if platform.machine() == "x86_64":
        library = tmp_path / "libmixed_batch_check.so"
        asm = subprocess.run(["objdump", "-d", str(library)], capture_output=True, text=True)
        fused = [line.strip() for line in asm.stdout.splitlines() if FMA.search(line)]
        assert not fused, f"{len(fused)} FMA instructions, e.g. {fused[:3]}"


@pytest.mark.parametrize("kind", ["generator", "double"])
def test_the_batch_check_calls_generators_and_double(keras, tmp_path, kind):
    """The check's C passes a generator's noise rows along, and runs --dtype double networks."""
    L = keras.layers
    if kind == "generator":
        cond, noise = keras.Input((3,)), keras.Input((5,))
        h = L.Dense(9, activation="tanh")(L.Concatenate()([cond, noise]))
        ex = export_chain(saved(randomize(keras.Model([cond, noise], L.Dense(2)(h))), tmp_path), name="gen")
    else:
        x = keras.Input((4,))
        model = randomize(keras.Model(x, L.Dense(3)(L.Dense(9, activation="elu")(x))))
        ex = export_keras(model, name="dbl", math="libm", dtype="double")
    check = build_and_run(ex.source, tmp_path)
    assert check.passed and [r.variant for r in check.results] == RUNNABLE, check.verdict()
    assert "the same bits as one call per row in " + ", ".join(RUNNABLE) in check.verdict()


def test_parity_fails_when_the_batch_differs_from_one_call_per_row(keras, tmp_path, capsys, monkeypatch):
    """The export's own check: a batch block that differs (here the baseline's, by one ULP on one value per block,
    through the test hook) fails parity (exit 1), with a verdict naming the variant, in the summary and the banner."""
    monkeypatch.setenv("LAMARR_EXPORT_BATCH_CHECK", "1")
    model = saved(mixed_signs(keras), tmp_path, "bx.keras")
    block = "        bx_rows2(output + r * 5, input + r * 3);"

    def broken_export(*args, **kwargs):
        ex = original(*args, **kwargs)
        ex.c_edit = lambda c: c.replace(block, "        { " + block.strip() + " output[r * 5] *= 1.0000001f; }")
        return ex

    original = exporter.api.export_chain
    monkeypatch.setattr(exporter.api, "export_chain", broken_export)
    code, out, err = run_cli(capsys, model, "-o", tmp_path / "bx.c", "--samples", 200)
    assert code == 1, (out, err)
    verdict = "FAILED: baseline: bx_batch differs from one call per row in "
    assert f"parity: {verdict}" in out and "; parity passed against Keras" in out, out
    assert "trace:" not in out  # no step drifts from Keras: nothing to trace
    assert verdict in (tmp_path / "bx.c").read_text()
    monkeypatch.setattr(exporter.api, "export_chain", original)
    code, out, err = run_cli(capsys, model, "-o", tmp_path / "ok.c", "--samples", 200)
    assert code == 0 and "batch: the same bits as one call per row in " + ", ".join(RUNNABLE) in out, (out, err)


def test_every_tree_layout_gives_the_same_bits_in_a_batch_and_every_variant(tmp_path):
    """Each layout's SYMBOL_batch runs the rows in blocks, in each variant: the bits of one call per row."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    from exporter.backend import render_set
    from exporter.backend.trees import CAPS

    rng = np.random.default_rng(2)
    x = rng.standard_normal((400, 5))
    y = np.digitize(x[:, 0] + x[:, 1] * x[:, 2], [-0.5, 0.5])
    x[rng.random(x.shape) < 0.1] = np.nan
    hist = HistGradientBoostingClassifier(max_iter=8, max_depth=4).fit(x, y)  # offsets per class, NaN routed
    forest = RandomForestClassifier(6, max_depth=5, random_state=0).fit(x, y)  # leaves of 3 values, a mean
    parts = [export_chain(m, name=f"{n}_{t}", trees=t) for n, m in (("hist", hist), ("rf", forest)) for t in CAPS]
    check = build_and_run(render_set("layouts", "test", [ex.source for ex in parts]), tmp_path)
    assert check.passed, check.verdict()
    assert {r.function for r in check.results} == {ex.symbol for ex in parts}


def dirty_calls(asm: str, callee: re.Pattern[str]) -> tuple[int, list[str]]:
    """The calls to ``callee`` in GCC's assembly ``asm`` that may run with the upper halves of the vector registers
    dirty (a ymm or zmm register written on some path since the function's entry or the last vzeroupper), by a
    forward pass over each function's basic blocks until nothing changes: (calls seen, the dirty ones)."""
    blocks: dict[str, list[str]] = {}  # label -> its instructions; a function's entry is its own name
    order: list[str] = []
    for line in asm.splitlines():
        if re.match(r"^[.\w]+:", line):
            order.append(line[:-1])
            blocks[order[-1]] = []
        elif order and line.startswith("\t") and not line.startswith("\t."):
            blocks[order[-1]].append(line.strip())
    entries = {name for name in order if not name.startswith(".")}
    dirty_in = {name: False for name in order}
    seen, dirty, changed = set(), set(), True
    while changed:
        changed = False
        for k, name in enumerate(order):
            state = dirty_in[name] and name not in entries
            for ins in blocks[name]:
                if ins.startswith(("vzeroupper", "vzeroall")):
                    state = False
                elif re.search(r"%[yz]mm", ins):
                    state = True
                elif (call := re.match(r"call\s+(\S+)", ins)) and callee.fullmatch(call.group(1)):
                    seen.add((name, ins))
                    if state:
                        dirty.add(f"{name}: {ins}")
                jump = re.match(r"j\w+\s+(\.L\w+)$", ins)
                if jump and state and not dirty_in[jump.group(1)]:
                    dirty_in[jump.group(1)] = changed = True
            ends = blocks[name] and re.match(r"(jmp|ret)\b", blocks[name][-1])
            if not ends and k + 1 < len(order) and state and not dirty_in[order[k + 1]]:
                dirty_in[order[k + 1]] = changed = True
    return len(seen), sorted(dirty)


@pytest.mark.skipif(platform.machine() != "x86_64" or shutil.which("gcc") is None, reason="x86-64 GCC's code")
@pytest.mark.parametrize("layout", ["walk", "branches", "complete", "bitvector"])
def test_the_variants_call_the_shared_tree_sums_with_clean_vector_registers(tmp_path, layout):
    """A tree ensemble's sums are one function, compiled for the baseline (SSE), that every variant calls. GCC 12
    left out the vzeroupper before those calls from AVX code (its interprocedural register allocation saw the
    function keep most vector registers): the SSE code then merged with dirty upper halves, and a walk's batch
    took 3.4 times as long as one call per row (docs/speed.md, "Trees"). Every such call now runs clean."""
    from sklearn.ensemble import GradientBoostingClassifier

    major = subprocess.run(["gcc", "-dumpversion"], capture_output=True, text=True).stdout.split(".")[0]
    if int(major) < 12:
        pytest.skip("the variants are compiled by GCC 12 and later only")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 4))
    model = GradientBoostingClassifier(n_estimators=12, max_depth=3, random_state=0).fit(x, x[:, 0] * x[:, 1] > 0)
    ex = export_chain(model, name=f"sums_{layout}", trees=layout)
    c_file, _ = ex.write(tmp_path / f"{ex.symbol}.c")
    for level in (3, 4):
        flags = ["-std=c99", "-O3", f"-D{ex.symbol}_ISA={level}", "-S", "-o", "-"]
        asm = subprocess.run(["gcc", *flags, str(c_file)], capture_output=True, text=True, check=True).stdout
        calls, dirty = dirty_calls(asm, re.compile(rf"{ex.symbol}_\d+_sums"))
        assert calls >= 2 and not dirty, f"x86-64-v{level}: {calls} calls, dirty at {dirty}"
