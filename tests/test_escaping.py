"""Strings from files are inert where they are written (issue 27, items 3, 9 and 11).

A scikit-learn step name holding a backslash, CR and ``/`` closed the C comment it was printed in
(line splicing) and the rest of the name became C: a constructor that ran when the exporter loaded
the library for its parity check. A layer name holding ``ESC [2K`` and CR erased the terminal line
and printed its own ``lamarr-export: ok``. ``inC`` expressions of 1,000 terms or 1,990 unary minuses
ended in a RecursionError traceback. Each is tried here as the user meets it, and each escaping
function of ``exporter/common/escaping.py`` on every ASCII character and the known splices.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess

import numpy as np
import pytest

from exporter.backend.templates import environment
from exporter.check.reference_rows import format_rows

from helpers import STRICT_C, comment_symbols, randomize, run_cli, saved

ALL_ASCII = [chr(c) for c in range(128)]
NON_ASCII = ["\x85", "\x9b", "\xa0", "é", "€", "\u2028", "\u202e", "\u2066", "\ufeff", "😀", "\udcff"]
# backslash-newline (CR, LF, CRLF) joins lines in translation phase 2; ??/ is a backslash under -trigraphs
SPLICES = ["\\\r/", "\\\n", "\\\r\n", "??/\n", "??/\r", "*/", "/*", "*\\\n/", "*\\\r/", "*??/\n/", "/\\\r*", "//"]
PAYLOADS = [f"{s} int injected_{i} = 1; {s}" for i, s in enumerate(SPLICES)] + [
    "*/ int injected_x = 1; /*",
    "\r#define X 1\rint injected_cr = 1;\r",
    "\\\n#error spliced\\\n",
]
ORDINARY = ["dense_1", "pre / b / scale: MulAdd on columns [0, 1]", "Dense 3->2, linear", "a.b-c (x) = y + z, k:v"]


def c_comment(text: str) -> str:
    """What the templates' ``c_comment`` filter makes of ``text`` (the filter, not the module: the test
    holds for whatever the templates use)."""
    return environment().filters["c_comment"](text)


def compilers() -> list[str]:
    return [cc for cc in ("gcc", "clang") if shutil.which(cc)]


def test_c_comment_admits_printable_ascii_without_splices():
    texts = [*ALL_ASCII, *NON_ASCII, *SPLICES, *PAYLOADS, *(a + b for a in ALL_ASCII for b in ALL_ASCII)]
    for text in texts:
        out = c_comment(text)
        assert all(" " <= ch <= "~" for ch in out), repr(text)
        assert "\\" not in out and "*/" not in out and "/*" not in out and "??" not in out, repr(text)
    for name in ORDINARY:
        assert c_comment(name) == name  # generated/ stays byte for byte what it was


@pytest.mark.parametrize("cc", compilers())
def test_hostile_comments_compile_and_stay_comments(tmp_path, cc):
    """Every ASCII character, the splices and payloads that would define a symbol, in a comment inside a
    function and in a banner at file scope, then ``int x = 1;``: compiles under -trigraphs -Werror and
    defines ``x`` alone."""
    assert sorted(comment_symbols([*ALL_ASCII, *NON_ASCII, *SPLICES, *PAYLOADS], tmp_path, cc)) == ["f", "x"]


def attack_name(canary) -> str:
    """The issue's step name: closes the comment by splicing ``*`` and ``/`` across a CR, defines a
    constructor that creates ``canary`` (once, however many comments quote the name), reopens a comment."""
    body = f'__attribute__((constructor)) static void p(void) {{ if (system("touch {canary}")) {{}} }}'
    return f"x *\\\r/\r#ifndef P_DONE\r#define P_DONE\r#include <stdlib.h>\r{body}\r#endif\r/\\\r*"


def test_a_step_name_cannot_become_c(capsys, tmp_path, keras):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    canary = tmp_path / "CANARY"
    pre = Pipeline([("s", StandardScaler())]).fit(np.random.default_rng(0).normal(size=(50, 3)))
    pre.steps[0] = (attack_name(canary), pre.steps[0][1])  # after fitting: scikit-learn checks names only there
    (tmp_path / "pre.pkl").write_bytes(pickle.dumps(pre))
    model = saved(randomize(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])), tmp_path)
    c_file = tmp_path / "m.c"
    args = [model, "--preprocess", tmp_path / "pre.pkl", "-o", c_file, "--samples", 100, "--dispatch", "none"]
    code, out, err = run_cli(capsys, *args)
    assert not canary.exists(), "the step name ran as C"
    assert code == 0 and "Traceback" not in err, out + err
    assert "\r" not in out + err and "x *\\\\x0d/\\x0d#ifndef" in out  # the name shown, escaped
    subprocess.run([*STRICT_C, "-trigraphs", c_file, "-o", tmp_path / "m.so"], check=True, capture_output=True)
    assert not canary.exists()


HOSTILE = "\x1b[2K\rlamarr-export: ok\u202e"


def hostile_model(keras, tmp_path, refused: bool):
    """A layer named ``HOSTILE``: the refused ConvLSTM1D (its name in the error), or an exported Dense."""
    L = keras.layers
    x = keras.Input((4,))
    if refused:
        y = L.Flatten()(L.ConvLSTM1D(2, 1, name=HOSTILE)(L.Reshape((2, 2, 1), name="to_3d")(L.Dense(4)(x))))
    else:
        y = L.Dense(3, name=HOSTILE, activation="tanh")(x)
    return saved(randomize(keras.Model(x, L.Dense(1, name="head")(y))), tmp_path, "hostile.keras")


@pytest.mark.parametrize("refused", [True, False], ids=["refused", "exported"])
@pytest.mark.parametrize("command", ["inspect", "export"])
def test_control_characters_from_files_are_shown_not_obeyed(capsys, tmp_path, keras, refused, command):
    model = hostile_model(keras, tmp_path, refused)
    export = [model, "-o", tmp_path / "m.c", "--dispatch", "none", "--samples", 100]
    args = ["inspect", model] if command == "inspect" else export
    code, out, err = run_cli(capsys, *args)
    assert code == (2 if refused else 0), out + err
    for raw in ("\x1b", "\r", "\u202e"):
        assert raw not in out + err
    assert "\\x1b[2K\\x0dlamarr-export: ok\\u202e" in out + err
    code, out, _ = run_cli(capsys, *args, "--json")  # JSON escapes them itself, and keeps the name
    assert "\x1b" not in out and "\\u001b[2K\\rlamarr-export: ok" in out


def test_reference_rows_title_stays_one_line():
    """CMake's registry reads the lines that start with ``function``: a file name cannot add one."""
    text = format_rows("set\nfunction system 1 1 0\r", [], [])
    assert [line for line in text.splitlines() if line.startswith("function")] == []
    assert "set<0a>function system 1 1 0<0d>" in text


def test_depends_refuses_a_path_cmake_would_split(capsys, tmp_path):
    (tmp_path / "a;b.keras").write_bytes(b"")
    (tmp_path / "set.toml").write_text('[models.mixed]\nmodel = "a;b.keras"\n')
    code, out, err = run_cli(capsys, tmp_path / "set.toml", "--depends")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "a;b.keras" in err and "CMake cannot read a path with ';'" in err


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("+".join(["x"] * 1000), "nested deeper than 100 levels (the limit"),
        ("-" * 1990 + "x", "nested deeper than 100 levels (the limit"),
        (" + ".join(["x"] * 1000), "3997 characters, longer than 2000 (the limit)"),
    ],
    ids=["1000 terms", "1990 minuses", "long"],
)
def test_huge_inc_expressions_are_refused_in_one_line(capsys, tmp_path, text, fragment):
    from sklearn.preprocessing import FunctionTransformer

    est = FunctionTransformer(func=None).fit(np.zeros((3, 2)))
    est.func_inC = text
    (tmp_path / "t.pkl").write_bytes(pickle.dumps(est))
    code, _, err = run_cli(capsys, tmp_path / "t.pkl", "-o", tmp_path / "t.c")
    assert code == 2 and "Traceback" not in err and "RecursionError" not in err, err
    (line,) = [line for line in err.splitlines() if fragment in line]
    assert "step 't'" in line and "func_inC" in line and len(line) < 250, line
    assert not (tmp_path / "t.c").exists()


def test_a_one_line_error_stays_one_line(capsys, tmp_path):
    """A pickle naming a module ``evil ESC [2K CR ... LF lamarr-export: ok`` (protocol 4 takes any string):
    the refusal quotes it on its one line, every control character shown, the newline too."""

    def text(value: str) -> bytes:  # SHORT_BINUNICODE
        return b"\x8c" + bytes([len(value.encode())]) + value.encode()

    module = "evil\x1b[2K\rlamarr-export: ok\nlamarr-export: ok"
    (tmp_path / "evil.pkl").write_bytes(b"\x80\x04" + text(module) + text("f") + b"\x93)R.")  # STACK_GLOBAL, call
    code, out, err = run_cli(capsys, tmp_path / "evil.pkl", "-o", tmp_path / "e.c")
    assert code == 2 and out == "" and "Traceback" not in err
    (error,) = [line for line in err.splitlines() if line.startswith("lamarr-export: error:")]
    assert "refusing to load evil\\x1b[2K\\x0dlamarr-export: ok\\x0alamarr-export: ok.f" in error
    assert "\x1b" not in err and "\r" not in err and not err.splitlines()[-1].startswith("lamarr-export: ok")


@pytest.mark.parametrize("long", [False, True])
def test_c_string_gives_back_every_byte(tmp_path, long):
    """``c_string`` (SYMBOL_info's JSON, which quotes file names): each ASCII character alone and after every
    other (hex and octal escapes swallow the digits after them), the splices and trigraphs, UTF-8 and a
    lone surrogate come back byte for byte from a library compiled with the strict flags, -trigraphs and as
    C++; past C99's 4095 characters as a brace list (``-pedantic`` refuses longer literals)."""
    import ctypes

    from exporter.common.escaping import c_string

    text = "".join(ALL_ASCII) + "".join(a + b for a in "\\?\"'0x" for b in ALL_ASCII) + "".join(SPLICES + NON_ASCII)
    text = text * (3 if long else 1)
    assert (len(text) >= 4095) == long
    source = tmp_path / "s.c"
    lines = ["#include <stddef.h>", "const char *s(void);", f"static const char s_text[] =\n{c_string(text)};"]
    source.write_text("\n".join([*lines, "const char *s(void) { return s_text; }", ""]))
    library = tmp_path / "s.so"
    for cmd in (
        [*STRICT_C, "-trigraphs", str(source), "-o", str(library)],
        [
            "g++",
            "-x",
            "c++",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-Wconversion",
            "-c",
            str(source),
            "-o",
            str(tmp_path / "s.o"),
        ],
    ):
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    fn = ctypes.CDLL(str(library)).s
    fn.restype = ctypes.c_void_p
    expected = text.encode("utf-8", "surrogateescape")
    assert ctypes.string_at(fn(), len(expected) + 1) == expected + b"\0"  # chr(0) included: the whole array
