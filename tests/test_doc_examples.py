"""Every code block of the README and docs/ is run or checked, so the examples cannot go stale.

A fenced block's language says how (docs/testing.md lists the rules):

- ``console``: each ``$ command`` runs in a scratch folder (a copy of ``examples/``, Keras backend
  left to the tool); the lines after it are its stdout, compared line by line once what may vary
  between runs is normalised (timings, versions, lines of error tables); a ``...`` line stands for
  any number of lines.
- ``bash``: every command runs there too. Setting up (``python3 -m venv``, activating it) is the
  environment the tests run in; ``pip install '.[X,Y]'`` checks that those extras exist; the test
  command is the one CI runs; commands of ``SLOW`` (training, benchmarks, whole builds that other
  tests run) are checked to exist instead; a command a ``console`` block shows is run (and its output
  compared) there.
- ``python``: a page's blocks run in order, as one script, in the scratch folder.
- ``c``: every declaration is in a generated header (``SYMBOL`` read as ``efficiency``).
- ``cpp``: compiled with the generated C, linked and run.
- ``toml``: a valid manifest (with ``[models.X]`` tables).
- ``cmake``: the lines of ``tests/cmake_project/CMakeLists.txt``, which tests/test_cmake.py builds.
- ``text``: not code (diagrams, formats, synopses); every ``--flag`` it names is a flag of the tool.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.cli.parser import inspect_parser, parser
from exporter.sets.manifest import _toml

from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
KINDS = {"console", "bash", "python", "c", "cpp", "toml", "cmake", "text"}
# Commands too slow for the suite, or run by other tests: the script or file they name must exist.
SLOW = {
    "examples/make_efficiency.py": "trains the example (minutes)",
    "examples/make_tracking.py": "trains the example",
    "examples/flax_tracking.py": "trains the example",
    "examples/make_lamarr_tracking.py": "trains the tracking set",
    "examples/regenerate.py": "tests/test_generated.py runs its exports",
    "benchmarks/run.py": "tests/test_benchmark.py runs it --quick",
    "benchmarks/startup.py": "times import tensorflow: a benchmark, not a test",
    "benchmarks/yardstick.py": "exports hundreds of peer models (minutes); tests/test_yardstick.py runs its harness",
    "cmake -S . -B build": "tests/test_cmake.py builds the committed exports and runs ctest",
    "cmake -S . -B build-asan": "tests/test_cmake.py builds with LAMARR_EXPORT_SANITIZE=ON",
}
SETUP = re.compile(r"python3? -m venv \S+ && |\. \S+/bin/activate && ")
PIP = re.compile(r"pip install '\.\[([\w,]+)\]'")


def blocks(kind: str) -> list[tuple[str, str]]:
    """(``page:line``, text) of every block of ``kind``."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            if m.group(1) == kind:
                found.append((f"{page.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}", m.group(2)))
    return found


def ids(items: list[tuple[str, str]]) -> list[str]:
    return [where for where, _ in items]


@pytest.fixture
def scratch(tmp_path):
    """A user's checkout, as far as the docs' commands go: a copy of examples/ (commands may write beside it)."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


def environment() -> dict[str, str]:
    """The user's environment: the tool on PATH, the checkout importable, Keras' backend the tool's choice."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-c", command], cwd=cwd, env=environment(), capture_output=True, text=True)


def normalise(line: str) -> str:
    """What may differ between runs and machines: timings, versions, the numbers of error tables."""
    line = re.sub(r"\d+\.\d+ s\b", "# s", line.rstrip())
    line = re.sub(r"\b\d+\.\d+\.\d+\b", "#.#.#", line)
    if re.search(r"\d\.\d+e[+-]\d+", line):  # a row of a parity or trace table: errors, ULPs, worst rows
        line = " ".join(re.sub(r"[-+]?\d[\d.,]*(?:e[-+]\d+)?", "#", line).split())
    return line


def matches(shown: list[str], printed: list[str]) -> bool:
    """``shown`` equals ``printed`` line by line, a ``...`` line standing for any number of lines."""
    if not shown:
        return not printed
    if shown[0].strip() == "...":
        return any(matches(shown[1:], printed[k:]) for k in range(len(printed) + 1))
    return bool(printed) and normalise(shown[0]) == normalise(printed[0]) and matches(shown[1:], printed[1:])


def sessions(text: str) -> list[tuple[str, list[str]]]:
    """The ``$ command`` lines of a console block, each with the output shown after it."""
    found: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            assert found, f"output before any command: {line!r}"
            found[-1][1].append(line)
    return found


def test_every_block_says_how_it_is_checked():
    unknown = [f"{where} ```{kind}" for page in PAGES for where, kind in _kinds(page) if kind not in KINDS]
    assert not unknown, f"give each block one of the languages {sorted(KINDS)}: {unknown}"


def _kinds(page: Path) -> list[tuple[str, str]]:
    text = page.read_text()
    return [(f"{page.name}:{text[: m.start()].count(chr(10)) + 1}", m.group(1)) for m in FENCE.finditer(text)]


@pytest.mark.parametrize("block", blocks("console"), ids=ids(blocks("console")))
def test_console_output_is_what_the_tool_prints(block, scratch):
    where, text = block
    for command, shown in sessions(text):
        run = shell(command, scratch)
        printed = run.stdout.splitlines()
        assert matches(shown, printed), (
            f"{where}: $ {command}\nshown:\n" + "\n".join(shown) + ("\nprinted:\n" + run.stdout + run.stderr)
        )


@functools.cache
def console_commands() -> frozenset[str]:
    """Every ``$ command`` of the console blocks."""
    return frozenset(command for _, text in blocks("console") for command, _ in sessions(text))


def _bash_lines(text: str) -> list[str]:
    joined = text.replace("\\\n", " ")
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("block", blocks("bash"), ids=ids(blocks("bash")))
def test_bash_commands_run(block, scratch):
    where, text = block
    extras = set(_toml().loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    ci = (ROOT / ".ci" / "run").read_text()
    for line in _bash_lines(text):
        command = SETUP.sub("", line.split(" # ")[0]).strip()
        for names in PIP.findall(command):
            assert set(names.split(",")) <= extras, f"{where}: {line}: no such extra in pyproject.toml"
        command = re.sub(r"^(?:" + PIP.pattern + r")(?: && |$)", "", command).strip()
        slow = next((key for key in SLOW if key in command), None)
        if slow:
            assert (ROOT / slow.split()[-1]).exists() or slow.startswith("cmake"), f"{where}: {slow} is missing"
            continue
        if command.startswith("python -m pytest"):
            assert command in ci, f"{where}: CI (.ci/run) must run the test command shown: {command}"
            continue
        if not command:
            continue
        if command in console_commands():
            continue  # run, and what it prints compared, by test_console_output_is_what_the_tool_prints
        run = shell(command, scratch)
        assert run.returncode == 0, f"{where}: {command}\n{run.stdout}\n{run.stderr}"


@pytest.mark.parametrize("page", sorted({where.split(":")[0] for where, _ in blocks("python")}), ids=lambda p: p)
def test_python_blocks_run(page, scratch):
    script = "\n".join(text for where, text in blocks("python") if where.startswith(page + ":"))
    run = subprocess.run([sys.executable, "-c", script], cwd=scratch, env=environment(), capture_output=True, text=True)
    assert run.returncode == 0, f"{page}:\n{run.stdout}\n{run.stderr}"


def _code(line: str) -> str:
    return " ".join(re.split(r"/\*|//", line)[0].split())


@pytest.mark.parametrize("block", blocks("c"), ids=ids(blocks("c")))
def test_c_declarations_are_in_a_generated_header(block):
    where, text = block
    wanted = [_code(line.replace("SYMBOL", "efficiency")) for line in text.splitlines() if _code(line)]
    headers = {h.name: " ".join(h.read_text().split()) for h in (ROOT / "generated").glob("*.h")}
    assert any(all(w in header for w in wanted) for header in headers.values()), f"{where}: {wanted}"


@pytest.mark.parametrize("block", blocks("cpp"), ids=ids(blocks("cpp")))
def test_cpp_block_compiles_links_and_runs(block, tmp_path):
    where, text = block
    lines = text.splitlines()
    top = [line for line in lines if line.startswith(("extern", "#include"))]
    body = [line for line in lines if line not in top]
    (tmp_path / "main.cpp").write_text("\n".join([*top, "int main() {", *body, "return 0;", "}"]) + "\n")
    library = ["gcc", "-std=c99", "-O0", "-c", ROOT / "generated/efficiency.c", "-o", tmp_path / "e.o"]
    subprocess.run(library, check=True)
    build = subprocess.run(
        ["g++", "-Wall", "-Werror", tmp_path / "main.cpp", tmp_path / "e.o", "-lm", "-o", tmp_path / "main"],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"{where}:\n{build.stderr}"
    assert subprocess.run([tmp_path / "main"]).returncode == 0


@pytest.mark.parametrize("block", blocks("toml"), ids=ids(blocks("toml")))
def test_toml_block_is_a_manifest(block):
    where, text = block
    shown = _toml().loads(text)  # a manifest shown must at least be valid TOML with models
    assert shown.get("models"), where


def _cmake_code(line: str) -> str:
    return " ".join(re.split(r"(?:^|\s)#", line)[0].split())


@pytest.mark.parametrize("block", blocks("cmake"), ids=ids(blocks("cmake")))
def test_cmake_block_is_what_the_consumer_project_builds(block):
    where, text = block
    project = [_cmake_code(line) for line in (ROOT / "tests/cmake_project/CMakeLists.txt").open()]
    for line in text.splitlines():
        code = _cmake_code(line)
        assert not code or code in project, f"{where}: {code!r} is not in tests/cmake_project/CMakeLists.txt"


@pytest.mark.parametrize("block", blocks("text"), ids=ids(blocks("text")))
def test_text_block_names_only_real_flags(block):
    where, text = block
    flags = set(parser()._option_string_actions) | set(inspect_parser()._option_string_actions)
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    assert named <= flags, f"{where}: not flags of lamarr-export: {sorted(named - flags)}"


def test_matching_rules():
    """The rules the blocks are held to: a stale row count or name fails, timings and error values may vary."""
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"]) and matches(["...", "x"], ["x"])
    assert not matches(["  12 inputs -> 4 outputs, 12 rows"], ["  12 inputs -> 4 outputs, 7 rows"])
    assert matches(["  time: compile 0.70 s"], ["  time: compile 3.21 s"])
    shown, printed = "     0    1.013e-06    3.513e-06        45        0      9710", "  0  2.1e-07  1e-06  3  0  17"
    assert matches([shown], [printed])
    assert not matches(["a", "b"], ["a"])
