"""``pip install .`` plus h5py, no Keras (issue 27, item 14): ``inspect`` reads a ``.keras`` file from what
it stores and asks for nothing more; an export says what to install, exit 2, no traceback. Run in a
subprocess in which Keras (and h5py) cannot be imported and have no installed metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT, randomize, saved

# A lamarr-export run in which the packages named in argv[1] look uninstalled: their import fails (as
# exporter/frontends/lean_imports.py hides packages) and importlib.metadata knows no such distribution.
HIDING = """
import importlib.abc, importlib.metadata as md, sys
HIDDEN = set(sys.argv[1].split(","))
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Absent())
real = md.distribution
def distribution(name):
    if name.lower().replace("-", "_") in HIDDEN:
        raise md.PackageNotFoundError(name)
    return real(name)
md.distribution = distribution
from exporter.cli import main
sys.exit(main(sys.argv[2:]))
"""


def without(hidden: str, *args) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", HIDING, hidden, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def model_file(keras, tmp_path_factory):
    x = keras.Input((3,))
    h = keras.layers.Dense(8, activation="tanh")(x)
    return saved(randomize(keras.Model(x, keras.layers.Dense(2)(h))), tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def h5_file(keras, model_file):
    return saved(keras.saving.load_model(model_file), model_file.parent, "model.h5")


@pytest.mark.parametrize("flags", [[], ["--no-check"]])
def test_export_without_keras_says_what_to_install(model_file, h5_file, tmp_path, flags):
    for path in (model_file, h5_file):
        run = without("keras,tf_keras", path, "-o", tmp_path / "m.c", *flags)
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr
        assert f"{path.name}: exporting a Keras model" in run.stderr
        assert "needs Keras 3: pip install 'lamarr-export[keras]'" in run.stderr
        assert run.stderr.count("\n") <= 2, run.stderr
        assert not list(tmp_path.iterdir())


def test_inspect_of_an_h5_file_without_keras_says_keras_loads_it(h5_file):
    run = without("keras,tf_keras", "inspect", h5_file)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "model.h5: not a .keras file; loading it with Keras instead needs Keras 3: pip install" in run.stderr


def test_inspect_with_h5py_alone(model_file):
    run = without("keras,tf_keras", "inspect", model_file)
    assert run.returncode == 0, run.stderr
    assert "exportable: yes" in run.stdout and "keras]" not in run.stderr
    run = without("keras,tf_keras", "inspect", model_file, "--json")
    assert json.loads(run.stdout)["model"]["framework_version"].endswith("(saved the file)")


def test_inspect_without_h5py_asks_for_h5py(model_file):
    run = without("keras,tf_keras,h5py", "inspect", model_file)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "pip install h5py" in run.stderr


def test_inspect_json_names_the_keras_version_that_saved_the_file(capsys, keras, model_file, tmp_path):
    from helpers import run_cli

    code, out, _ = run_cli(capsys, "inspect", model_file, "--json")
    assert code == 0
    assert json.loads(out)["model"]["framework_version"] == f"{keras.__version__} (saved the file)"
