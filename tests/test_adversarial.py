"""Regressions from the adversarial round (issue 14): each defect it found, as the user met it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from exporter.backend.naming import MAX_LENGTH, symbol_from_stem
from exporter.check import inputs
from exporter.cli import main
from exporter.common import interrupt
from exporter.common.progress import Progress

from helpers import ROOT, assert_user_error, randomize, run_cli, saved, strict_compile

EXAMPLE = ROOT / "examples" / "efficiency.keras"


def three_inputs(keras, tmp_path, layer: str):
    """Inputs of widths 2, 3 and 4; ``layer`` (BatchNormalization or Dense) sits on the second one."""
    L = keras.layers
    ins = [keras.Input((w,), name=f"in{w}") for w in (2, 3, 4)]
    side = L.BatchNormalization(name="side")(ins[1]) if layer == "bn" else L.Dense(5, name="side")(ins[1])
    merged = L.Concatenate(name="all")([ins[0], side, ins[2]])
    return saved(randomize(keras.Model(ins, L.Dense(2, name="head")(merged))), tmp_path)


@pytest.mark.parametrize("layer", ["bn", "dense"])
@pytest.mark.parametrize("command", ["export", "inspect"])
def test_three_inputs_of_different_widths_each_read_their_own(capsys, tmp_path, keras, layer, command):
    """Three inputs are one C row, side by side (docs/c-contract.md): each layer reads its own input's width,
    and the export passes parity against Keras fed the three inputs."""
    path = three_inputs(keras, tmp_path, layer)
    args = [path, "-o", tmp_path / "m.c", "--samples", 500] if command == "export" else ["inspect", path]
    code, out, err = run_cli(capsys, *args)
    assert code == 0 and "Traceback" not in err, out + err
    assert "does not match" not in out + err and "scale has" not in out + err
    if command == "export":
        assert "parity: passed" in out and "9 inputs -> 2 outputs" in out, out
        assert "#define m_model_N_INPUT_PARTS 3" in (tmp_path / "m.h").read_text()  # m: a name the C uses
    else:
        code, out, _ = run_cli(capsys, *args, "--json")
        side = next(step for step in json.loads(out)["steps"] if step["name"] == "side")
        assert side["supported"] and side["input_widths"] == [3]  # it reads its own 3-wide input


def test_nan_rows_in_inputs_pass_where_both_sides_are_nan(capsys, tmp_path, keras):
    """NaN rows through tanh and relu: NaN in C and in Keras, which is agreement (exit 0)."""
    L = keras.layers
    model = randomize(keras.Sequential([keras.Input((3,)), L.Dense(4, activation="relu"), L.Dense(2, "tanh")]))
    rows = tmp_path / "rows.npy"
    np.save(rows, np.array([[np.nan, 1, 2], [0, 0, 0], [np.nan] * 3], dtype=np.float32))
    code, out, _ = run_cli(capsys, saved(model, tmp_path), "-o", tmp_path / "m.c", "--inputs", rows, "--samples", 50)
    assert code == 0, out
    assert "parity: passed" in out


def test_rtol_inf_passes_the_zero_row(capsys, tmp_path, keras):
    model = randomize(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)]))
    code, out, _ = run_cli(capsys, saved(model, tmp_path), "-o", tmp_path / "m.c", "--rtol", "inf", "--samples", 20)
    assert code == 0, out


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("x" * 5000, "5000 characters, at most 100"),
        ("malloc", "C or POSIX library"),
        ("memcpy", "C or POSIX library"),
        ("write", "C or POSIX library"),
        ("", "an empty name"),
    ],
)
@pytest.mark.parametrize("command", ["export", "inspect"])
def test_name_refused_when_too_long_empty_or_a_library_function(capsys, tmp_path, name, fragment, command):
    args = [EXAMPLE, "--name", name, "-o", tmp_path / "m.c", "--no-check"]
    assert_user_error(capsys, tmp_path, args if command == "export" else ["inspect", EXAMPLE, "--name", name], fragment)


def test_library_names_from_a_file_stem_get_a_suffix():
    assert symbol_from_stem("malloc") == "malloc_model"
    assert len(symbol_from_stem("a" * 300)) <= MAX_LENGTH


@pytest.mark.parametrize("reads", ["noise", "conditions"])
def test_a_generator_that_ignores_an_input_compiles_strictly(capsys, tmp_path, keras, reads):
    """Keras accepts an input nothing reads; its C argument is cast away, so -Wall -Wextra -Werror stay clean."""
    L = keras.layers
    cond, noise = keras.Input((3,), name="conditions"), keras.Input((4,), name="noise")
    read = noise if reads == "noise" else cond
    model = randomize(keras.Model([cond, noise], L.Dense(2, activation="tanh")(L.Dense(5)(read))))
    code, out, _ = run_cli(capsys, saved(model, tmp_path), "-o", tmp_path / "g.c", "--samples", 200)
    assert code == 0 and "parity: passed" in out, out
    unread = "input" if reads == "noise" else "random"
    assert f"(void){unread};" in (tmp_path / "g.c").read_text()
    strict_compile(tmp_path / "g.c", tmp_path)


def refused_everywhere(keras, tmp_path):
    """Refused by its class (SpectralNormalization, a wrapper) with an unsupported activation string on two
    Dense layers, three inputs and two outputs: five problems."""
    L = keras.layers
    ins = [keras.Input((w,), name=f"in{w}") for w in (2, 3, 4)]
    h = L.SpectralNormalization(L.Dense(9), name="norm")(L.Concatenate(name="joined")(ins))
    heads = [L.Dense(3, activation="sparsemax", name="sparse"), L.Dense(3, activation="glu", name="gated")]
    return saved(keras.Model(ins, [head(h) for head in heads], name="everything"), tmp_path)


def test_every_refusal_listed_at_once(capsys, tmp_path, keras):
    path = refused_everywhere(keras, tmp_path)
    assert_user_error(
        capsys,
        tmp_path,
        [path, "-o", tmp_path / "m.c"],
        "cannot export 5 layers",
        "'norm' (SpectralNormalization)",
        "'sparse' (Dense): activation 'sparsemax' is not supported",
        "'gated' (Dense): activation 'glu' is not supported",
        "3 inputs; one, or two for a generator",
        "2 outputs; exactly one is supported",
    )
    code, out, _ = run_cli(capsys, "inspect", path, "--json")
    assert code == 2
    document = json.loads(out)
    status = {step["name"]: step["supported"] for step in document["steps"]}
    assert status == {"everything": False, "joined": True, "norm": False, "sparse": False, "gated": False}
    assert len(document["problems"]) == 5 and document["stage"] == "config"


def test_a_write_error_names_the_requested_path(capsys, tmp_path):
    """A file name the system takes, but not its temporary twin (longer): the message names the file asked for."""
    out = tmp_path / ("a" * 245 + ".c")
    code, _, err = run_cli(capsys, EXAMPLE, "-o", out, "--no-check")
    assert code == 2 and "Traceback" not in err
    assert f"{out}: cannot write (File name too long)" in err and ".tmp" not in err
    assert os.listdir(tmp_path) == []


@pytest.fixture
def own_model(tmp_path):
    """The user's model file, in the folder the outputs go to."""
    path = tmp_path / "model.keras"
    shutil.copy(EXAMPLE, path)
    return path


def collisions(tmp_path, model):
    """(extra flags, message fragment) of every way an output can land on an input or on another output."""
    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((3, 12), np.float32))
    report = tmp_path / "rep"
    report.mkdir()
    shutil.copy(ROOT / "examples" / "efficiency_tX.pkl", report / "report.json")
    os.link(model, tmp_path / "alias.keras")
    return [
        (["-o", tmp_path / "m.c", "--so", tmp_path / "alias.keras"], "the library (--so) would overwrite an input"),
        (["-o", tmp_path / "m.c", "--so", model], "the library (--so) would overwrite an input"),
        (["-o", tmp_path / "m.c", "--so", tmp_path / "m.c"], "both the C file (-o) and the library (--so)"),
        (["-o", tmp_path / "m.c", "--so", tmp_path / "m.h"], "both the header (beside -o) and the library"),
        (["-o", tmp_path / "m.c", "--inputs", rows, "--so", tmp_path / "x" / ".." / "rows.npy"], "overwrite an input"),
        (["-o", tmp_path / "m.c", "--preprocess", report / "report.json", "--report", report], "report.json"),
    ]


def test_outputs_on_inputs_or_on_each_other_are_refused(capsys, tmp_path, own_model):
    before = own_model.read_bytes()
    for flags, fragment in collisions(tmp_path, own_model):
        assert_user_error(capsys, tmp_path, [own_model, *flags], fragment)
        assert own_model.read_bytes() == before


def test_manifest_outputs_on_its_inputs_are_refused(capsys, tmp_path, own_model):
    manifest = tmp_path / "set.toml"
    manifest.write_text('[models.eff]\nmodel = "model.keras"\n')
    for flags, fragment in [
        (["--so", own_model], "the library (--so) would overwrite an input"),
        (["--so", manifest], "the library (--so) would overwrite an input (" + str(manifest)),
        (["-o", tmp_path / "set.c", "--so", tmp_path / "set.ref.txt"], "both the reference rows (beside -o)"),
    ]:
        assert_user_error(capsys, tmp_path, [manifest, *flags], fragment)


def test_ctrl_c_is_one_line_and_exit_130(capsys, tmp_path, monkeypatch):
    from exporter.api import Export

    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(Export, "check", interrupted)
    code, out, err = run_cli(capsys, EXAMPLE, "-o", tmp_path / "m.c", "--quiet", "--samples", 100)
    assert (code, out, err) == (130, "", "lamarr-export: interrupted\n")
    assert os.listdir(tmp_path) == []


def test_sigint_in_a_real_run(tmp_path):
    """A real Ctrl-C (SIGINT) during the parity check of a large --samples: one line, exit 130, no file."""
    command = [sys.executable, "-m", "exporter", EXAMPLE, "-o", tmp_path / "m.c", "--samples", "3000000"]
    command += ["--dispatch", "none"]  # the compile before the parity check: once, not once per x86-64 level
    # Keras on the backend the tool picks (not the tests' TensorFlow, 5 s to import): the signal is what is tested
    env = {**{k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as run:
        for line in run.stderr:
            if "reference on" in line:  # the parity check's first step: the frameworks on its rows
                break
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err.strip().splitlines()[-1] == "lamarr-export: interrupted" and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def _swallowed_ctrl_c() -> None:
    """A Ctrl-C that lands in a library's bare ``except:`` (Keras' model loading has them)."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # not reached: the signal is taken as soon as os.kill returns
    except BaseException:
        pass


def test_a_swallowed_ctrl_c_ends_the_step():
    ran_on = []
    with interrupt.recorded():
        interrupt.check()  # nothing recorded yet
        with pytest.raises(KeyboardInterrupt), Progress(enabled=False).step("load", "loading"):
            _swallowed_ctrl_c()
            ran_on.append(True)
    assert ran_on == [True]
    interrupt.check()  # forgotten once the command is over


def test_a_swallowed_ctrl_c_stops_a_long_computation_between_chunks(monkeypatch):
    calls = []

    def framework(x):
        calls.append(len(x))
        if len(calls) == 1:
            _swallowed_ctrl_c()
        return x

    monkeypatch.setattr(inputs, "CHUNK_ROWS", 10)
    with interrupt.recorded(), pytest.raises(KeyboardInterrupt):
        inputs.in_chunks(framework, np.zeros((100, 2), np.float32))
    assert calls == [10]


def test_ctrl_c_during_a_framework_import_waits_for_its_end():
    """Raised inside jaxlib's start-up, a KeyboardInterrupt crashed the process or became an ImportError."""
    finished = []
    with interrupt.recorded(), pytest.raises(KeyboardInterrupt), interrupt.deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        finished.append(True)
    assert finished == [True]


def test_inputs_empty_or_text_are_refused_plainly(capsys, tmp_path):
    empty, text = tmp_path / "empty.npy", tmp_path / "rows.txt"
    np.save(empty, np.zeros((0, 12), np.float32))
    text.write_text("1 2 3\n4 5 6\n")
    common = ["-o", tmp_path / "m.c", "--samples", 10]
    assert_user_error(capsys, tmp_path, [EXAMPLE, "--inputs", empty, *common], "holds no rows")
    assert_user_error(capsys, tmp_path, [EXAMPLE, "--inputs", text, *common], "not a .npy file", "numpy.save")
    _, _, err = run_cli(capsys, EXAMPLE, "--inputs", text, *common)
    assert "pickled" not in err


@pytest.mark.parametrize("bad", [["--samples", "-5"], ["--atol", "small"], ["--no-such-flag"], ["--dtype"]])
def test_argparse_errors_are_one_line_with_a_help_hint(capsys, bad):
    with pytest.raises(SystemExit) as exc:
        main([str(EXAMPLE), *bad])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("lamarr-export: error: ") and err.endswith("(see 'lamarr-export --help')\n")
    assert "usage:" not in err


def test_a_bad_option_value_is_one_line_naming_the_flag(capsys):
    """Option values are checked where every export's options are (exporter.common.options), not by argparse."""
    assert main([str(EXAMPLE), "--math", "fastest"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "lamarr-export: error: --math 'fastest': expected one of fast, libm, fma\n"
