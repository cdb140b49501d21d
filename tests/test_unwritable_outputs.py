"""An output that cannot be written is refused before any model is read (issue 27, item 15), with the
real reason: ``-o model.keras/x.c`` used to export, compile and check before saying "File exists", and
``-o /proc/m.c`` said "No such file or directory"."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.spec import ModelSpec

from helpers import ROOT, assert_user_error

EXAMPLE = ROOT / "examples" / "efficiency.keras"


@pytest.fixture(autouse=True)
def nothing_is_built(monkeypatch):
    def build(self):
        raise AssertionError("the model was read before the outputs were checked")

    monkeypatch.setattr(ModelSpec, "build", build)


def test_an_output_under_a_file(capsys, tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(EXAMPLE.read_bytes())
    args = [EXAMPLE, "-o", model / "x.c"]
    assert_user_error(capsys, tmp_path, args, f"cannot write there: {model} is a file, not a folder")


def test_a_report_under_a_file(capsys, tmp_path):
    (tmp_path / "taken").write_text("")
    args = [EXAMPLE, "-o", tmp_path / "m.c", "--so", tmp_path / "taken" / "deeper" / "m.so"]
    assert_user_error(capsys, tmp_path, args, "taken is a file, not a folder")


@pytest.mark.parametrize("clash", ["--report", "-o"])
def test_an_output_that_is_or_must_become_a_folder(capsys, tmp_path, clash):
    """``--report x.c`` beside ``-o x.c`` (the report's files would go inside the C file), or ``-o`` naming a folder."""
    (tmp_path / "folder.c").mkdir()
    args = [EXAMPLE, "-o", tmp_path / "x.c", "--report", tmp_path / "x.c"]
    if clash == "-o":
        args = [EXAMPLE, "-o", tmp_path / "folder.c"]
    assert_user_error(capsys, tmp_path, args, ": is a folder (or must become one), cannot write the file there")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="a Linux /proc file system")
def test_a_file_system_that_refuses_files(capsys, tmp_path):
    assert_user_error(capsys, tmp_path, [EXAMPLE, "-o", "/proc/m.c"], "cannot create files in /proc")
