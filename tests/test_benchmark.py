"""benchmarks/run.py --quick runs end to end (a smoke test on a 16-wide residual model: no timing is asserted).

Peers that are not installed (scikinC, ONNX Runtime: the `bench` extra) must show up as
unavailable with a reason, never as a crash. Run as a user runs it (``KERAS_BACKEND`` unset): without a peer
that needs TensorFlow, Keras builds the models on the backend the exporter picks.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow


def test_benchmark_quick_runs_and_reports():
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--rows",
            "50",
            "--repeats",
            "1",
            "--smoke",
            "16",
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"},
        timeout=1200,  # minutes on a 2-core machine shared with other test runs
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line in (
        "lamarr-export --math fast -O3 -std=c99 (Lamarr)",
        "lamarr-export --math fast -O3 -std=c99 (Lamarr) baseline forced",
        "lamarr-export --math fast --dispatch none -O3 -std=c99 (Lamarr)",
        "numpy",
        "FLOPs per row (residual model, Dense multiplies and adds): 3,072",  # 2 (12*16 + 5*16*16 + 16*4)
        "compute limit of this core",
        "verdict (Lamarr's build line runs",
        "  per row: ",
    ):
        assert line in out, out
    assert "ONNX Runtime" in out and "mlp.onnx: per row ours" in out, out  # issue 26: the same file, C API
    for model in ("bdt", "forest"):
        assert f"lamarr-export --math fast -O3 -std=c99 (Lamarr)                  {model}" in out, out
    for peer in ("scikinC", "keras2c", "ONNX Runtime", "m2cgen", "scikit-learn"):
        assert peer in out, out  # measured, or "unavailable: <reason>"
    assert "per row vs scikinC" in out and "batch" in out, out  # a verdict, or "not measured"
    assert "Traceback" not in result.stderr
