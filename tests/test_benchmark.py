"""benchmarks/run.py --quick runs end to end (a smoke test: no timing is asserted).

Peers that are not installed (scikinC, ONNX Runtime: the `bench` extra) must show up as
unavailable with a reason, never as a crash.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow


def test_benchmark_quick_runs_and_reports():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--rows", "50", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line in (
        "lamarr-export --math fast -O3 -std=c99 (Lamarr)",
        "lamarr-export --math fast -O2 -std=c99 (PID models)",
        "lamarr-export --math fast -O3 -std=c99 -march=native",
        "lamarr-export --math libm -O3 -std=c99 (Lamarr)",
        "numpy",
        "FLOPs per row (residual model, Dense multiplies and adds): 167,936",
        "compute limit of this core",
        "per row at Lamarr's flags:",
        "-parameter model: export",
    ):
        assert line in out, out
    for peer in ("scikinC", "keras2c", "ONNX Runtime", "Keras"):
        assert peer in out, out  # measured, or "unavailable: <reason>"
    assert "Traceback" not in result.stderr
