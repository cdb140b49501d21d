"""The C contract Lamarr relies on: strict compiles, in-place calls, threads, visibility, reproducibility."""

from __future__ import annotations

import getpass
import re
import subprocess
import threading

import numpy as np
import pytest

from exporter import export_keras
from exporter.check.inputs import make_inputs

from helpers import ROOT, every_op, randomize, residual_model, saved, strict_compile

EXAMPLE = ROOT / "examples" / "efficiency.keras"


@pytest.fixture(scope="module")
def every_op_model(keras):
    return every_op(keras)


@pytest.fixture(scope="module")
def residual(keras):
    """The example's kinds of step and code shapes (AVX-512 loops and tails), compiled in a fraction of its time."""
    return residual_model(keras)


@pytest.mark.parametrize("math, dtype", [("fast", "float"), ("libm", "float"), ("libm", "double")])
@pytest.mark.parametrize("model_name", ["every_op", "residual"])
def test_strict_flags_c_and_cxx(every_op_model, residual, tmp_path, model_name, math, dtype):
    model = residual if model_name == "residual" else every_op_model
    ex = export_keras(model, name="strict_model", math=math, dtype=dtype)
    c_file, _ = ex.write(tmp_path / "strict_model.c")
    strict_compile(c_file, tmp_path)


def test_header_links_from_c_and_cxx_callers(tmp_path):
    """A C and a C++ program include the header, link the C object and call the model in place."""
    ex = export_keras(EXAMPLE)
    c_file, h_file = ex.write(tmp_path / "efficiency.c")
    obj = tmp_path / "efficiency.o"
    subprocess.run(["gcc", "-std=c99", "-O0", "-c", str(c_file), "-o", str(obj)], check=True)
    caller = (
        '#include "efficiency.h"\n'
        "int main(void) {\n"
        "  float b[efficiency_N_INPUTS > efficiency_N_OUTPUTS ? efficiency_N_INPUTS : efficiency_N_OUTPUTS] = {0};\n"
        "  float rows[3 * efficiency_N_INPUTS] = {0}, outs[3 * efficiency_N_OUTPUTS];\n"
        "  float *out = efficiency(b, b);\n"
        "  float sum = out[0] + out[1] + out[2] + out[3];\n"
        "  if (efficiency_batch(outs, rows, 3) != outs || outs[8] != out[0]) return 1;\n"
        "  return out == b && sum > 0.999f && sum < 1.001f ? 0 : 1;\n"
        "}\n"
    )
    for compiler, suffix in (("gcc", ".c"), ("g++", ".cpp")):
        source = tmp_path / f"caller{suffix}"
        source.write_text(caller)
        exe = tmp_path / f"caller{suffix}.exe"
        result = subprocess.run(
            [compiler, "-Wall", "-Wextra", "-Werror", str(source), str(obj), "-o", str(exe), "-lm"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert subprocess.run([str(exe)]).returncode == 0
    assert "#define efficiency_N_INPUTS 12" in h_file.read_text()


def test_only_the_symbol_is_exported(every_op_model, tmp_path):
    ex = export_keras(every_op_model, name="only_me")
    c_file, _ = ex.write(tmp_path / "only_me.c")
    so = tmp_path / "libonly.so"
    subprocess.run(
        ["gcc", "-std=c99", "-O2", "-fvisibility=hidden", "-shared", "-fPIC", str(c_file), "-o", str(so), "-lm"],
        check=True,
    )
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True).stdout.split()
    assert "only_me" in symbols and "only_me_batch" in symbols
    assert not [s for s in symbols if s.startswith("only_me_") and s != "only_me_batch"]


@pytest.mark.parametrize("dtype", ["float", "double"])
@pytest.mark.parametrize("widths", [(6, 3), (3, 8), (4, 4)], ids=["shrinking", "growing", "equal"])
def test_in_place_call(keras, tmp_path, widths, dtype):
    n_in, n_out = widths
    L = keras.layers
    x = keras.Input((n_in,))
    h = L.Dense(10, activation="relu")(x)
    model = randomize(keras.Model(x, L.Dense(n_out, activation="softmax")(L.Add()([h, L.Dense(10)(h)]))))
    compiled = export_keras(model, name="inplace", dtype=dtype).compile(tmp_path, one_row=True)
    rows = make_inputs(n_in, 500)
    np.testing.assert_array_equal(compiled.call_in_place(rows), compiled(rows))


def test_in_place_when_last_op_reads_the_input(keras, tmp_path):
    """The final op reads the caller's input directly: it must not write into it."""
    L = keras.layers
    x = keras.Input((4,))
    model = randomize(keras.Model(x, L.Concatenate()([L.Dense(2)(x), x])))
    compiled = export_keras(model, name="lastreads").compile(tmp_path, one_row=True)
    rows = make_inputs(4, 200)
    np.testing.assert_array_equal(compiled.call_in_place(rows), compiled(rows))


def test_eight_threads_agree(every_op_model, tmp_path):
    """Every variant and the run-time dispatch, called from eight threads at once: no shared state."""
    ex = export_keras(every_op_model, name="threads")
    compiled = ex.compile(tmp_path, one_isa=False, one_row=True)
    rows = make_inputs(ex.graph.n_inputs, 2000)
    expected = compiled(rows)
    results: list[np.ndarray] = [None] * 8  # type: ignore[list-item]

    def work(i: int) -> None:
        results[i] = compiled(rows)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results:
        np.testing.assert_array_equal(got, expected)


def test_reproducible_and_free_of_machine_details(every_op_model, tmp_path, monkeypatch):
    """Two exports are byte-identical, and neither the model's folder nor the user appears in them:
    the folder and the user (getpass reads $LOGNAME/$USER first) get names that cannot occur by chance."""
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, "lamarr_user_7f3a9c")
    folder = tmp_path / "private_folder_51d2e8"
    folder.mkdir()
    first = tmp_path / "a" / "m.c"
    second = tmp_path / "b" / "m.c"
    path = saved(every_op_model, folder)
    export_keras(path, name="mm").write(first)
    export_keras(path, name="mm").write(second)
    assert first.read_bytes() == second.read_bytes()
    assert first.with_suffix(".h").read_bytes() == second.with_suffix(".h").read_bytes()
    assert getpass.getuser() == "lamarr_user_7f3a9c"
    for text in (first.read_text(), first.with_suffix(".h").read_text()):
        assert "lamarr_user_7f3a9c" not in text and "private_folder_51d2e8" not in text and str(tmp_path) not in text
    assert "from model.keras" in first.read_text()


def test_weights_round_trip_exactly(tmp_path):
    """Every weight in the C equals the Keras float32 weight bit for bit."""
    from exporter.backend.literals import c_array

    values = np.random.default_rng(0).standard_normal(5000).astype(np.float32) * np.float32(
        10.0
    ) ** np.random.default_rng(1).integers(-40, 38, 5000).astype(np.float32)
    values = np.concatenate([values, np.array([0.0, -0.0, 1.0, 3.4028235e38, 1.4e-45, -1.17549435e-38], np.float32)])
    c_file = tmp_path / "w.c"
    c_file.write_text(f"const float w[{values.size}] = {{\n{c_array(values)}\n}};\n")
    obj = tmp_path / "w.so"
    subprocess.run(["gcc", "-std=c99", "-shared", "-fPIC", str(c_file), "-o", str(obj)], check=True)
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(f"extern const float w[{values.size}];")
    lib = ffi.dlopen(str(obj))
    back = np.frombuffer(ffi.buffer(lib.w), dtype=np.float32)
    np.testing.assert_array_equal(back.view(np.uint32), values.view(np.uint32))


@pytest.mark.parametrize("model_name", ["every_op", "residual"])
@pytest.mark.parametrize("math, dtype", [("fast", "float"), ("libm", "float"), ("libm", "double")])
def test_batch_gives_the_same_bits_as_rows(every_op_model, residual, tmp_path, model_name, math, dtype):
    """SYMBOL_batch computes rows in blocks; each row's bits must be those of one SYMBOL call,
    for every n: 0, 1, a remainder after full blocks, and many rows."""
    model = residual if model_name == "residual" else every_op_model
    ex = export_keras(model, name="batched", math=math, dtype=dtype)
    compiled = ex.compile(tmp_path)  # every variant's batch against its rows: tests/test_dispatch.py
    rows = make_inputs(ex.graph.n_inputs, 1000)
    expected = compiled(rows)
    bits = np.uint64 if dtype == "double" else np.uint32
    for n in (0, 1, 2, 3, 7, len(rows)):
        got = compiled.batch(rows[:n])
        assert got.shape == (n, ex.graph.n_outputs)
        np.testing.assert_array_equal(got.view(bits), expected[:n].view(bits))


def test_one_row_build_has_no_blocks_and_the_same_bits(every_op_model, tmp_path):
    """-DSYMBOL_ONE_ROW (the parity check's and the trace's builds): SYMBOL_batch runs the one-row code."""
    ex = export_keras(every_op_model, name="rowwise")
    c_file, _ = ex.write(tmp_path / "rowwise.c")
    seen = {}
    for define in ([], ["-Drowwise_ONE_ROW"]):
        cpp = subprocess.run(["gcc", "-E", *define, str(c_file)], capture_output=True, text=True, check=True)
        seen[bool(define)] = set(re.findall(r"rowwise(?:_v\d)?_rows[2-9]\b", cpp.stdout))
    assert seen[False] and not seen[True], seen  # the blocks are there, and left out
    rows = make_inputs(ex.graph.n_inputs, 500)
    one_row = ex.compile_source(ex.source, ex.graph.n_inputs, ex.graph.n_outputs, tmp_path, one_row=True)
    expected = ex.compile()(rows)  # with its blocks
    np.testing.assert_array_equal(one_row.batch(rows).view(np.uint32), expected.view(np.uint32))
    np.testing.assert_array_equal(one_row(rows).view(np.uint32), expected.view(np.uint32))


def test_batch_leaves_memory_beyond_n_rows_alone(residual, tmp_path):
    compiled = export_keras(residual, name="beyond").compile(tmp_path)  # 12 -> 4, as the example
    rows = make_inputs(12, 10)
    out = np.full((12, 4), 7.0, dtype=np.float32)
    ffi = compiled._ffi
    compiled._batch(ffi.from_buffer("float[]", out), ffi.from_buffer("float[]", rows), 5)
    np.testing.assert_array_equal(out[:5], compiled(rows[:5]))
    assert (out[5:] == 7.0).all()


@pytest.mark.parametrize("name", ["efficiency", "calo_set", "lamarr_pid", "flax_tracking"])
def test_the_stated_stack_covers_every_variants_one_row_arrays(name):
    """The banner's "at most N bytes of scratch on the stack per call" holds whichever variant the CPU runs: the
    local arrays of every one-row function of the committed file fit in it. The AVX-512 one-row code keeps a
    Dense's sums for the next layer's activation in working memory the baseline does not have; the bound once
    stated the baseline's alone (1,072 bytes for efficiency, whose AVX-512 network declares 1,536)."""
    c = (ROOT / "generated" / f"{name}.c").read_text()
    stated = [int(n) for n in re.findall(r"at most (\d+) bytes of\s*\n?\s*\*?\s*scratch on the stack", c)]
    assert stated, "no stated stack bound in the banner"
    for function in re.finditer(r"static void (\w+_rows1)\((.*?)\n}\n", c, re.S):
        arrays = re.findall(r"^    (float|double) \w+\[(\d+)\];", function.group(2), re.M)
        used = sum((4 if kind == "float" else 8) * int(n) for kind, n in arrays)
        assert used <= max(stated), (function.group(1), used, stated)
