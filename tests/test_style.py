"""The code base stays ruff clean (ruff is one of the test extras)."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT


def test_ruff_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "exporter", "tests", "examples", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
