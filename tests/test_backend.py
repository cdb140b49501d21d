"""Export without TensorFlow: Keras on the lightest installed backend unless KERAS_BACKEND asks for one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from exporter.common.errors import ExportError
from exporter.frontends.keras import backend
from exporter.frontends.lean_imports import without_optional_imports

from helpers import ROOT

# Runs the command line in a fresh interpreter (Keras not yet imported) and reports what it imported.
PROBE = """
import sys
from exporter.cli import main
code = main(sys.argv[1:])
print("CODE", code, "TENSORFLOW", "tensorflow" in sys.modules, "PANDAS", "pandas" in sys.modules)
import pandas, sklearn  # hidden from Keras and scikit-learn while they ran, importable afterwards
"""


def _probe(tmp_path, *args, env_backend=None):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = str(ROOT)
    if env_backend:
        env["KERAS_BACKEND"] = env_backend
    return subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True, env=env, cwd=tmp_path
    )


def test_export_without_tensorflow_names_the_backend(tmp_path):
    run = _probe(
        tmp_path,
        ROOT / "examples/efficiency.keras",
        "--preprocess",
        ROOT / "examples/efficiency_tX.pkl",
        "-o",
        tmp_path / "eff.c",
        "--quiet",
        "--dispatch",
        "none",  # the compile is not what is tested: once, not once per x86-64 level
    )
    assert "CODE 0 TENSORFLOW False PANDAS False" in run.stdout, run.stdout + run.stderr  # pandas: 0.15 s
    assert "(numpy backend)" in run.stdout
    assert "parity: passed" in run.stdout
    assert (tmp_path / "eff.c").is_file()


def test_inspect_without_tensorflow(tmp_path):
    run = _probe(tmp_path, "inspect", ROOT / "examples/tracking.keras")
    assert "CODE 0 TENSORFLOW False" in run.stdout, run.stdout + run.stderr
    assert "exportable: yes" in run.stdout


def test_keras_backend_asked_for_is_kept(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert backend.choose_backend() == "tensorflow"


def test_lightest_installed_backend_is_chosen(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backend.choose_backend() == "numpy"
    assert os.environ["KERAS_BACKEND"] == "numpy"  # set for Keras to read when it imports


def test_no_backend_installed_names_the_extras(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ExportError, match=r"lamarr-export\[keras\]"):
        backend.choose_backend()


def test_optional_packages_hidden_only_while_a_framework_imports(monkeypatch, tmp_path):
    (tmp_path / "optional_probe.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(tmp_path)
    with without_optional_imports(("optional_probe", "json")):  # json: imported already, left alone
        with pytest.raises(ImportError):
            import optional_probe
        assert "optional_probe" not in sys.modules  # scikit-learn tells DataFrames by this
        import json  # noqa: F401
    import optional_probe

    assert optional_probe.VALUE == 1
