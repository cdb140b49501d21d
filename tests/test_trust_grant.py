"""Trust stays where the person running the export puts it (issue 27, item 4).

``--trust M`` imports M from the working directory (a manifest's folder) and nothing else from there:
a file named like a library the exporter imports later (``joblib.py``) is never run. A manifest names the
modules it wants imported, but only the command line (or CMake's ``TRUST``) grants them. A trusted module
that does not exist is a typo, refused. Each case runs the installed command in a fresh process, where
no module is imported yet, with canary files that a payload would create.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from helpers import randomize, saved

EXPORTER = shutil.which("lamarr-export") or sys.executable  # the console script: sys.path[0] is its own folder


def canary_module(path, canary) -> None:
    """A Python file that leaves ``canary`` behind when anything imports it."""
    path.write_text(f"open({str(canary)!r}, 'w').close()\n")


def lamarr_export(folder, *args):
    """The command as a user runs it: Keras on the backend the tool picks (not the suite's TensorFlow, seconds to
    import); the libraries of ``LIBRARIES`` are imported all the same."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    command = [EXPORTER, *map(str, args)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def model_folder(tmp_path, keras):
    """A small network and a fitted scaler, as a colleague would send them, in tmp_path/models."""
    from sklearn.preprocessing import StandardScaler

    folder = tmp_path / "models"
    x = keras.Input((3,))
    saved(randomize(keras.Model(x, keras.layers.Dense(2)(x))), folder, "net.keras")
    scaler = StandardScaler().fit(np.random.default_rng(0).normal(size=(100, 3)))
    (folder / "tX.pkl").write_bytes(pickle.dumps(scaler))
    (folder / "mine.py").write_text("")  # the user's own module, trusted below
    return folder


LIBRARIES = ("joblib", "uuid", "sklearn", "psutil")  # imported by the export after the trusted module is looked up


def test_trusting_a_module_does_not_put_its_folder_on_the_path(tmp_path, model_folder):
    for library in LIBRARIES:
        canary_module(model_folder / f"{library}.py", tmp_path / f"{library}-ran")
    done = lamarr_export(model_folder, "net.keras", "--preprocess", "tX.pkl", "--trust", "mine", "-o", "exported.c")
    assert done.returncode == 0, done.stderr
    ran = [library for library in LIBRARIES if (tmp_path / f"{library}-ran").exists()]
    assert not ran, f"these files of the model's folder ran: {ran}"


def test_a_manifest_cannot_grant_trust_by_itself(tmp_path, model_folder):
    canary = tmp_path / "helper-ran"
    canary_module(model_folder / "lamarr_helpers.py", canary)
    (model_folder / "set.toml").write_text(
        '[models.net]\nmodel = "net.keras"\npreprocess = ["tX.pkl"]\ntrust = ["lamarr_helpers"]\n'
    )
    refused = lamarr_export(model_folder, "set.toml", "-o", "set.c")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "[models.net] trust: lamarr_helpers" in refused.stderr and "--trust lamarr_helpers" in refused.stderr
    assert not canary.exists() and not (model_folder / "set.c").exists()
    granted = lamarr_export(model_folder, "set.toml", "-o", "set.c", "--trust", "lamarr_helpers", "--samples", 200)
    assert granted.returncode == 0, granted.stderr


def test_a_manifests_flax_module_needs_the_same_grant(tmp_path, model_folder):
    canary = tmp_path / "flax-module-ran"
    canary_module(model_folder / "nets.py", canary)
    (model_folder / "p.msgpack").write_bytes(b"")
    (model_folder / "set.toml").write_text('[models.fl]\nflax = "nets:Net"\nparams = "p.msgpack"\nn_inputs = 3\n')
    refused = lamarr_export(model_folder, "set.toml", "-o", "set.c")
    assert refused.returncode == 2 and "[models.fl] flax: nets" in refused.stderr and "--trust nets" in refused.stderr
    assert not canary.exists()


def test_trusting_a_module_that_is_nowhere_is_refused(model_folder):
    done = lamarr_export(model_folder, "net.keras", "--trust", "nosuchmod", "-o", "exported.c")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--trust nosuchmod: no such module in" in done.stderr
    assert not (model_folder / "exported.c").exists()
