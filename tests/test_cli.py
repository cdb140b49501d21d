"""The command line: outputs, exit codes (0 ok, 1 parity failure, 2 user error), and no stray files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from exporter.check import inputs
from exporter.check.inputs import edge_rows
from exporter.cli import main
from exporter.common.progress import STEPS, Progress, in_order

from helpers import ROOT, assert_user_error, randomize, refused_model, run_cli, saved

EXAMPLE = ROOT / "examples" / "efficiency.keras"
# The network's code once instead of once per x86-64 level: a quarter of the compile time, where what a test checks
# is not the dispatch (tests/test_dispatch.py; test_default_names_and_summary exports with the default).
SINGLE = ["--dispatch", "none"]


def test_default_names_and_summary(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(inputs, "CHUNK_ROWS", 512)  # more rows than a chunk: compared chunk by chunk
    code, out, _ = run_cli(capsys, EXAMPLE, "--samples", 2000)
    assert code == 0
    assert (tmp_path / "efficiency.c").is_file() and (tmp_path / "efficiency.h").is_file()
    assert "parity: passed" in out and "84,740 parameters" in out
    assert "Parity: passed against Keras" in (tmp_path / "efficiency.c").read_text()


def test_output_name_so_and_user_inputs(capsys, tmp_path):
    rows = tmp_path / "rows.npy"
    np.save(rows, np.random.default_rng(0).uniform(-3, 3, (50, 12)).astype(np.float32))
    out_c = tmp_path / "sub" / "eff.c"
    code, out, _ = run_cli(
        capsys,
        EXAMPLE,
        "-o",
        out_c,
        "--name",
        "eff_v2",
        "--so",
        tmp_path / "eff.so",
        "--inputs",
        rows,
        "--samples",
        100,
        *SINGLE,
    )
    assert code == 0, out
    header = out_c.with_suffix(".h").read_text()
    assert "float *eff_v2(float *output, const float *input);" in header
    assert "#define eff_v2_N_OUTPUTS 4" in header
    assert f"on {100 + len(edge_rows(12)) + 50} rows" in out  # random, edge and the user's rows
    symbols = subprocess.run(["nm", "-D", "--defined-only", tmp_path / "eff.so"], capture_output=True, text=True).stdout
    assert " eff_v2\n" in symbols


@pytest.mark.parametrize("dtype", ["float", "double"])
def test_symbol_from_the_output_file(capsys, tmp_path, dtype):
    out_c = tmp_path / "out" / "resolution.c"
    code, out, err = run_cli(capsys, EXAMPLE, "-o", out_c, "--no-check", "--dtype", dtype)
    assert code == 0, err
    assert "symbol resolution:" in out
    assert f"{dtype} *resolution({dtype} *output, const {dtype} *input);" in out_c.with_suffix(".h").read_text()


def test_abbreviated_flags_are_refused(capsys, tmp_path):
    tx = ROOT / "examples" / "efficiency_tX.pkl"
    with pytest.raises(SystemExit) as exc:
        main([str(EXAMPLE), "--preproces", str(tx), "-o", str(tmp_path / "e.c")])
    assert exc.value.code == 2
    assert "unrecognized arguments: --preproces" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_no_check_writes_without_compiling(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    code, _, _ = run_cli(capsys, EXAMPLE, "-o", tmp_path / "e.c", "--no-check")
    assert code == 0
    assert "Parity: not checked" in (tmp_path / "e.c").read_text()


def test_parity_failure_exits_1_with_report(capsys, tmp_path, keras):
    """Zero tolerance cannot hold for tanh (libm and TensorFlow round differently): exit 1, report, files marked."""
    model = randomize(
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(2)])
    )
    code, out, _ = run_cli(capsys, saved(model, tmp_path), "-o", tmp_path / "m.c", "--atol", 0, "--rtol", 0)
    assert code == 1
    assert "parity: FAILED" in out and "worst input row" in out
    assert "Parity: FAILED" in (tmp_path / "m.c").read_text()


def test_missing_model(capsys, tmp_path):
    assert_user_error(capsys, tmp_path, [tmp_path / "nope.keras", "-o", tmp_path / "x.c"], "nope.keras", "no such")


def test_corrupt_model(capsys, tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"this is not a zip archive")
    assert_user_error(capsys, tmp_path, [bad, "-o", tmp_path / "x.c"], "broken.keras", "not a readable Keras model")


def test_wrong_file_type(capsys, tmp_path):
    bad = tmp_path / "weights.npy"
    np.save(bad, np.zeros(3))
    assert_user_error(capsys, tmp_path, [bad, "-o", tmp_path / "x.c"], "weights.npy", ".keras")


def test_unsupported_layers_all_named_at_once(capsys, tmp_path, keras):
    path = refused_model(keras, tmp_path, "odd.keras")
    assert_user_error(
        capsys,
        tmp_path,
        [path, "-o", tmp_path / "odd.c"],
        "odd.keras",
        "plus_one",
        "Lambda",
        "arbitrary Python code",
        "doubler",
        "custom layer",
        "recurrent",
        "ConvLSTM1D",
    )


def test_live_walk_refusals_named(capsys, tmp_path, keras):
    """Problems only visible on the built model: two outputs, an axis of unknown length."""
    L = keras.layers
    x = keras.Input((4,))
    two = keras.Model(x, [L.Dense(1, name="a")(x), L.Dense(2, name="b")(x)], name="two_heads")
    assert_user_error(
        capsys, tmp_path, [saved(two, tmp_path, "two.keras"), "-o", tmp_path / "t.c"], "two_heads", "2 outputs"
    )
    x2 = keras.Input((None, 4))
    steps = keras.Model(x2, L.Dense(2, name="per_row")(x2))
    assert_user_error(
        capsys, tmp_path, [saved(steps, tmp_path, "steps.keras"), "-o", tmp_path / "f.c"], "per_row", "(None, None, 2)"
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--name", "double"], "keyword"),
        (["--name", "9lives"], "not a C identifier"),
        (["--name", "expf"], "<math.h>"),
        (["-o", "out.txt"], ".c file"),
        (["--inputs", "missing.npy"], "cannot read"),
    ],
)
def test_bad_flags(capsys, tmp_path, args, fragment):
    args = [str(tmp_path / a) if a.endswith((".txt", ".npy")) else a for a in args]
    assert_user_error(capsys, tmp_path, [EXAMPLE, *args], fragment)


def test_inputs_of_wrong_width(capsys, tmp_path):
    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((5, 3), np.float32))
    os.chdir(tmp_path)
    assert_user_error(capsys, tmp_path, [EXAMPLE, "--inputs", rows, "-o", tmp_path / "x.c"], "takes 12 inputs")


def test_argparse_errors_are_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(EXAMPLE), "--samples", "-5"])
    assert exc.value.code == 2
    for bad in (["--math", "fastest"], ["--dtype", "half"]):  # checked as every export's options are, by name
        assert main([str(EXAMPLE), *bad]) == 2
        assert f"{bad[0]} '{bad[1]}': expected one of" in capsys.readouterr().err


def test_dtype_double(capsys, tmp_path, monkeypatch):
    """--dtype double: double buffers and arithmetic, symbol <stem>_double, libm's double functions."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, EXAMPLE, "--dtype", "double", "--samples", 500, *SINGLE)
    assert code == 0 and "parity: passed" in out, out
    header = (tmp_path / "efficiency.h").read_text()
    assert "double *efficiency_double(double *output, const double *input);" in header
    assert "double *efficiency_double_batch(double *output, const double *input, size_t n);" in header
    source = (tmp_path / "efficiency.c").read_text()
    assert "tanh(x)" in source and "tanhf" not in source and "static const double" in source
    assert "float" not in source.replace("floats", "").replace("float32", "").replace("float64", "")  # the banner
    assert_user_error(
        capsys, tmp_path, [EXAMPLE, "--dtype", "double", "--math", "fast", "-o", tmp_path / "f.c"], "float only"
    )


def test_math_libm_calls_libm_and_passes_parity(capsys, tmp_path):
    """--math libm: tanhf and expf from libm, no inline approximation; the default is --math fast."""
    libm_c, fast_c = tmp_path / "libm" / "efficiency.c", tmp_path / "fast" / "efficiency.c"
    code, out, _ = run_cli(capsys, EXAMPLE, "-o", libm_c, "--math", "libm", "--samples", 500, *SINGLE)
    assert code == 0 and "parity: passed" in out
    libm = libm_c.read_text()
    assert "tanhf(x)" in libm and "expf(" in libm and "efficiency_tanh(" not in libm
    assert " * Math: libm" in libm
    code, _, _ = run_cli(capsys, EXAMPLE, "-o", fast_c, "--no-check")
    fast = fast_c.read_text()
    assert code == 0 and "tanhf(" not in fast and "efficiency_tanh(x)" in fast and " * Math: fast" in fast


def test_console_script(tmp_path):
    """The installed entry point: --version, --help and a real export, in a fresh process."""
    exe = shutil.which("lamarr-export")
    command = [exe] if exe else [sys.executable, "-m", "exporter"]
    version = subprocess.run([*command, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("lamarr-export ")
    assert "--no-check" in subprocess.run([*command, "--help"], capture_output=True, text=True).stdout
    missing = subprocess.run([*command, str(tmp_path / "none.keras")], capture_output=True, text=True)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    export = [*command, str(EXAMPLE), "-o", str(tmp_path / "e.c"), "--samples", "500", *SINGLE]
    user = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # the tool picks the Keras backend
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run(export, capture_output=True, text=True, env={**user, "TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    # the process ends without the interpreter's teardown (exporter.cli.entry_point): the summary is
    # flushed whole, and the compiled library's temporary folder is removed all the same
    assert done.stdout.rstrip().splitlines()[-1].lstrip().startswith("time (compile and parity overlap): ")
    left = [p.name for p in scratch.iterdir() if not p.name.startswith("_jinja2-cache")]  # that one is kept
    assert not left, left


def test_cc_and_cflags_are_used(capsys, tmp_path, monkeypatch):
    log = tmp_path / "cc.log"
    wrapper = tmp_path / "mycc"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec gcc "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    monkeypatch.setenv("CFLAGS", "-O1 -DLAMARR_TEST_FLAG")
    code, _, _ = run_cli(capsys, EXAMPLE, "-o", tmp_path / "eff.c", "--samples", 100, *SINGLE)
    assert code == 0
    args = log.read_text().split()
    assert "-DLAMARR_TEST_FLAG" in args and "-O1" in args and "-O3" not in args
    assert {"-std=c99", "-shared", "-fPIC", "-lm"} <= set(args)
    assert "-Deff_ONE_ROW" in args  # parity calls one row at a time: the batch blocks are left out


def test_progress_lines_on_stderr_and_quiet(capsys, tmp_path):
    code, out, err = run_cli(capsys, EXAMPLE, "-o", tmp_path / "e.c", "--samples", 100, *SINGLE)
    assert code == 0
    for step in ("reading", "compiling the C", "checking parity against Keras on 165 rows"):
        assert f"lamarr-export: {step}" in err
    assert "lamarr-export: compiling" not in out  # stdout keeps the summary only
    code, out, err = run_cli(capsys, EXAMPLE, "-o", tmp_path / "e.c", "--samples", 100, "--quiet", *SINGLE)
    assert code == 0 and err == "" and "parity: passed" in out


def test_trace_on_request_prints_every_step(capsys, tmp_path):
    code, out, _ = run_cli(capsys, EXAMPLE, "-o", tmp_path / "e.c", "--samples", 200, "--trace", "--quiet", *SINGLE)
    assert code == 0
    assert "trace: every step agrees within tolerance on the 5 worst rows" in out
    assert "   6  " in out and "logits+probabilities: Dense 128->4, softmax" in out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--pt-column", "3"], "add --report DIR"),
        (["--report", "{tmp}/r", "--pt-column", "12"], "inputs 0 to 11"),
        (["--trace", "--no-check"], "cannot run with --no-check"),
        (["--report", "{tmp}/x.c"], "is a folder"),
    ],
)
def test_report_and_trace_flag_errors(capsys, tmp_path, args, fragment):
    args = [a.format(tmp=tmp_path) for a in args]
    assert_user_error(capsys, tmp_path, [EXAMPLE, "-o", tmp_path / "x.c", *args, *SINGLE], fragment)


def test_timings_are_printed_in_the_steps_order():
    """The compile runs beside the parity's reference: whichever ends first, the time line reads alike."""
    progress = Progress(enabled=False)
    for key in ("parity", "compile", "load+export"):
        with progress.step(key, key):
            pass
    assert list(in_order(progress.timings)) == ["load+export", "compile", "parity"]
    sources = [path.read_text() for path in (ROOT / "exporter").rglob("*.py")]
    used = {key for text in sources for key in re.findall(r"\.step\(\"([^\"]+)\"", text)}
    assert used and used <= set(STEPS), used - set(STEPS)


def test_time_line_says_that_compile_and_parity_overlap():
    """The compile runs in its own process beside the reference (timed under parity): the line says they
    overlap when both ran, so nobody adds them up; a run without one of them has nothing to overlap."""
    from exporter.run.summary import time_line

    both = {"parity": 0.31, "load+export": 1.5, "compile": 0.74}
    assert time_line(both) == "time (compile and parity overlap): load+export 1.50 s, compile 0.74 s, parity 0.31 s"
    assert time_line({"load+export": 1.5, "reference rows": 0.01}) == "time: load+export 1.50 s, reference rows 0.01 s"
    assert time_line({"load+export": 1.5, "compile": 0.74}) == "time: load+export 1.50 s, compile 0.74 s"  # --so only
