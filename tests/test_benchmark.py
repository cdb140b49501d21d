"""benchmarks/run.py runs end to end (smoke tests: no timing is asserted), in two tests (pytest-xdist may run them at
once, each pinned to its own core): the default run (``--quick``: networks, trees, tree files, every verdict) and
``--trees`` (every layout of ours). ``--smoke 16``: a 16-wide residual model and tree models of two trees, so every
path runs once, in seconds.

Peers that are not installed (scikinC, ONNX Runtime: the `bench` extra) must show up as
unavailable with a reason, never as a crash. Run as a user runs it (``KERAS_BACKEND`` unset): without a peer
that needs TensorFlow, Keras builds the models on the backend the exporter picks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from exporter.common.options import TREE_LAYOUTS

from helpers import ROOT

pytestmark = pytest.mark.slow
SMOKE = ["--quick", "--rows", "50", "--repeats", "1", "--smoke", "16"]
TREE_MODELS = ("bdt", "hist", "forest", "gbdt10", "gbdt15")


def run_benchmark(*args: str, core: int) -> str:
    """``benchmarks/run.py`` with ``args`` pinned to the ``core``-th allowed core (0 or -1: the two parts on two
    cores, not both on the last one, run.py's default): its output, after checking it exited 0 without a
    traceback."""
    cpu = sorted(os.sched_getaffinity(0))[core]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), *args, "--cpu", str(cpu)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"},
        timeout=1200,  # minutes on a 2-core machine shared with other test runs
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_benchmark_quick_runs_and_reports():
    out = run_benchmark(*SMOKE, core=0)
    for line in (
        "lamarr-export --math fast -O3 -std=c99 (Lamarr)",
        "lamarr-export --math fast -O3 -std=c99 (Lamarr) baseline forced",
        "lamarr-export --math fast --dispatch none -O3 -std=c99 (Lamarr)",
        "numpy",
        "FLOPs per row (residual model, Dense multiplies and adds): 3,072",  # 2 (12*16 + 5*16*16 + 16*4)
        "compute limit of this core",
        "verdict (Lamarr's build line runs",
        "  per row: ",
        "benchmarks/stream.c: the weights read once",  # issue 28: the read, timed in the same rounds
        "  per row vs reading its weights once (",
        "verdict, trees",
    ):
        assert line in out, out
    assert "ONNX Runtime" in out and "mlp.onnx: per row ours" in out, out  # issue 26: the same file, C API
    for model in ("conv1d", "gru", "encoder"):  # issue 29: shaped models (toy sizes) against ONNX Runtime's C API
        assert f"  {model}: per row ours " in out, out
    for model in (*TREE_MODELS, "xgboost", "lightgbm"):
        assert f"lamarr-export --math fast -O3 -std=c99 (Lamarr)                  {model}" in out, out
    for peer in ("scikinC", "keras2c", "ONNX Runtime", "m2cgen", "scikit-learn", "tl2cgen"):
        assert peer in out, out  # measured, or "unavailable: <reason>"
    assert "per row vs scikinC" in out and "batch" in out, out  # a verdict, or "not measured"
    assert "NOT EXACT" not in out, out  # ours, bit for bit (a peer off by more than 1e-5 is marked WRONG: theirs)


def test_benchmark_trees_runs_every_layout():
    """``--trees``: ours in every layout on every tree model, each checked bit for bit against scikit-learn (its
    note says "0 ULP") or unavailable with the reason (a layout that cannot write the model), then the trees'
    verdict alone."""
    out = run_benchmark("--trees", *SMOKE, core=-1)
    for model in TREE_MODELS:
        for layout in TREE_LAYOUTS:
            name = "lamarr-export --math fast" if layout == "auto" else f"lamarr-export --trees {layout}"
            row = re.search(rf"^{re.escape(name)} -O3 -std=c99 \(Lamarr\) +{model} .*$", out, re.MULTILINE)
            assert row and ("(0 ULP, " in row[0] or " unavailable: " in row[0]), (model, layout, out)
    assert "verdict, trees" in out and "verdict (Lamarr" not in out, out
