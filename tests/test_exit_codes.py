"""What the command's exit code and last words say (issue 27, items 10 and 16): a bug of the exporter is
exit 3 with one line, never exit 1 (a failed parity check) or a traceback; Ctrl-C is exit 130 from the
command's first statement on; no model at all is asked for plainly."""

from __future__ import annotations

import json
import sys

import pytest

from exporter import command
from exporter.common.errors import EXIT_INTERNAL, EXIT_INTERRUPTED
from exporter.run import steps

from helpers import ROOT, run_cli

EXAMPLE = ROOT / "examples" / "efficiency.keras"


def broken(*args, **kwargs):
    raise RuntimeError("an invariant of the exporter broke\nsecond line of detail")


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_an_internal_error_is_exit_3_with_one_line(capsys, tmp_path, monkeypatch, json_flag):
    monkeypatch.setattr(steps, "export_spec", broken)
    monkeypatch.delenv("LAMARR_EXPORT_TRACEBACK", raising=False)
    code, out, err = run_cli(capsys, EXAMPLE, "-o", tmp_path / "m.c", *json_flag)
    assert code == EXIT_INTERNAL == 3
    assert "Traceback" not in err and "second line" not in err
    (line,) = err.strip().splitlines()
    assert "internal error (RuntimeError: an invariant of the exporter broke)" in line
    assert "bug of lamarr-export" in line and "LAMARR_EXPORT_TRACEBACK=1" in line
    assert list(tmp_path.iterdir()) == []
    if json_flag:
        document = json.loads(out)
        assert document["kind"] == "error" and document["exit_code"] == 3


def test_the_traceback_is_shown_when_asked_for(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(steps, "export_spec", broken)
    monkeypatch.setenv("LAMARR_EXPORT_TRACEBACK", "1")
    code, _, err = run_cli(capsys, EXAMPLE, "-o", tmp_path / "m.c")
    assert code == 3 and "Traceback" in err and "RuntimeError" in err


class _InterruptedImport:
    """Stands for ``exporter.cli`` while it is being imported when Ctrl-C lands."""

    def __getattr__(self, name):
        raise KeyboardInterrupt


def test_ctrl_c_while_the_command_starts_is_exit_130_without_traceback(capsys, monkeypatch):
    exits = []
    monkeypatch.setitem(sys.modules, "exporter.cli", _InterruptedImport())
    monkeypatch.setattr(command.os, "_exit", exits.append)
    command.entry_point()
    assert exits == [EXIT_INTERRUPTED] == [130]
    assert capsys.readouterr().err == "lamarr-export: interrupted\n"


@pytest.mark.parametrize("args", [[], ["inspect"], ["--json"]])
def test_no_model_at_all_asks_for_one(capsys, args):
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "give the model to export" in err and "not both" not in err
