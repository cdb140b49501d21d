"""generated/ holds the export of the shipped example; it must be what the exporter makes today."""

from __future__ import annotations

from exporter.cli import main

from helpers import ROOT


def test_generated_files_are_current(tmp_path, capsys):
    out = tmp_path / "efficiency.c"
    assert main([str(ROOT / "examples" / "efficiency.keras"), "-o", str(out)]) == 0
    for suffix in (".c", ".h"):
        committed = (ROOT / "generated" / f"efficiency{suffix}").read_bytes()
        assert out.with_suffix(suffix).read_bytes() == committed, (
            f"generated/efficiency{suffix} is stale: regenerate it (see README)"
        )
