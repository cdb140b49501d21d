"""generated/ holds the exports of the shipped examples; they must be what the exporter makes today."""

from __future__ import annotations

import importlib.util

import pytest

from exporter.cli import main

from helpers import ROOT

spec = importlib.util.spec_from_file_location("regenerate", ROOT / "examples" / "regenerate.py")
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)


@pytest.mark.parametrize("name", sorted(regenerate.EXPORTS))
def test_generated_files_are_current(tmp_path, capsys, name):
    assert main(regenerate.arguments(name, tmp_path)) == 0
    for suffix in (".c", ".h"):
        committed = (ROOT / "generated" / f"{name}{suffix}").read_bytes()
        assert (tmp_path / f"{name}{suffix}").read_bytes() == committed, (
            f"generated/{name}{suffix} is stale: run python examples/regenerate.py"
        )
