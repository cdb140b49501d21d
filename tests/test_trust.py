"""Trust: pickles naming the user's own modules load only when the user names the module.

Refused: a module nobody trusted (the message names the class and the setting to add, in the
words of the command line, the manifest or Python), and, even in a trusted module, anything not
defined there (``from os import system``), ``os.system`` and ``builtins.eval`` themselves, and
trusting the standard library. Each refusal exits 2 with one message, runs nothing, writes nothing.
"""

from __future__ import annotations

import pickle
import sys
import textwrap

import numpy as np
import pytest

from exporter.api import export_chain, export_transformer
from exporter.common.errors import ExportError

import helpers
from helpers import assert_user_error, run_cli

MODULE = """
import numpy as np
from os import system  # a trusted module may import anything: only what it defines loads
from sklearn.base import BaseEstimator, TransformerMixin


class DecorrTransformer(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        _, self.eig = np.linalg.eig(np.cov(np.asarray(X).T))
        return self

    def transform(self, X):
        return np.asarray(X).dot(self.eig)

    def inverse_transform(self, X):
        return np.asarray(X).dot(self.eig.T)
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user module defining DecorrTransformer in the working directory, a fitted pickle of it in
    tmp_path/tY.pkl; the module is forgotten again, so the exporter must import it from there."""
    module = helpers.user_module(tmp_path, monkeypatch, MODULE)
    est = module.DecorrTransformer().fit(np.random.default_rng(0).normal(size=(200, 3)) @ np.diag([1.0, 5.0, 0.1]))
    (tmp_path / "tY.pkl").write_bytes(pickle.dumps(est))
    return helpers.forget_module(monkeypatch, module)


def _crafted(path, module: str, name: str, argument: str) -> None:
    """A pickle calling ``module.name(argument)`` while it loads (protocol 0, written by hand)."""
    path.write_bytes(f"c{module}\n{name}\n(V{argument}\ntR.".encode())


def test_untrusted_module_is_refused_naming_class_and_flag(capsys, tmp_path, user_module):
    assert_user_error(
        capsys,
        tmp_path,
        ["tY.pkl", "-o", "t.c"],
        f"refusing to load {user_module}.DecorrTransformer from your module {user_module}",
        f"add --trust {user_module}",
    )
    assert user_module not in sys.modules  # refused before its code ran


def test_trusted_module_loads_from_the_working_directory(capsys, tmp_path, user_module):
    code, out, err = run_cli(capsys, "tY.pkl", "--trust", user_module, "-o", "t.c", "--samples", 500)
    assert code == 0, out + err
    assert "mix 3 columns" in (tmp_path / "t.c").read_text()


def test_untrusted_in_python_names_the_argument(tmp_path, user_module):
    with pytest.raises(ExportError, match=rf'add trust=\["{user_module}"\]'):
        export_transformer(tmp_path / "tY.pkl")
    monkey_path = str(tmp_path)
    sys.path.insert(0, monkey_path)
    try:
        ex = export_transformer(tmp_path / "tY.pkl", trust=[user_module])
    finally:
        sys.path.remove(monkey_path)
    assert ex.chain.n_inputs == 3 and ex.source.functions == ["tY", "tY_inverse"]


def test_manifest_trust_imports_from_its_folder_once_granted(capsys, tmp_path, user_module, keras):
    from helpers import randomize, saved

    folder = tmp_path / "set"
    folder.mkdir()
    (tmp_path / f"{user_module}.py").rename(folder / f"{user_module}.py")
    (tmp_path / "tY.pkl").rename(folder / "tY.pkl")
    x = keras.Input((3,))
    saved(randomize(keras.Model(x, keras.layers.Dense(3)(x))), folder, "net.keras")
    entry = '[models.cov]\nmodel = "net.keras"\ntarget_transform = "tY.pkl"\n'
    (folder / "models.toml").write_text(entry)
    assert_user_error(
        capsys, tmp_path, [folder / "models.toml", "-o", "out.c"], f'add trust = ["{user_module}"] to', "[models.cov]"
    )
    (folder / "models.toml").write_text(entry + f'trust = ["{user_module}"]\n')
    assert_user_error(  # the manifest's word alone is not enough: the person running it grants trust
        capsys, tmp_path, [folder / "models.toml", "-o", "out.c"], "[models.cov] trust:", f"--trust {user_module}"
    )
    assert user_module not in sys.modules
    code, out, err = run_cli(capsys, folder / "models.toml", "-o", "out.c", "--samples", 300, "--trust", user_module)
    assert code == 0, out + err


@pytest.mark.parametrize(
    "module, name, fragment",
    [
        ("os", "system", "refusing to load os.system"),
        ("posix", "system", "refusing to load posix.system"),
        ("builtins", "eval", "refusing to load builtins.eval"),
        ("subprocess", "getoutput", "refusing to load subprocess.getoutput"),
        ("TRUSTED", "system", "system is not one (it is a builtin_function_or_method from posix)"),
    ],
)
def test_trusted_module_still_refuses_what_it_does_not_define(capsys, tmp_path, user_module, module, name, fragment):
    marker = tmp_path / "pwned"
    _crafted(tmp_path / "bad.pkl", module.replace("TRUSTED", user_module), name, f"touch {marker}")
    assert_user_error(capsys, tmp_path, ["bad.pkl", "--trust", user_module, "-o", "t.c"], fragment)
    assert not marker.exists()


@pytest.mark.parametrize(
    "trust, fragment",
    [
        ("os", "--trust os: only your own modules can be trusted"),
        ("subprocess", "--trust subprocess: only your own modules"),
        ("numpy", "--trust numpy: only your own modules"),
        ("os;rm", "--trust 'os;rm': not a module name"),
    ],
)
def test_trust_refuses_libraries_and_non_names(capsys, tmp_path, user_module, trust, fragment):
    assert_user_error(capsys, tmp_path, ["tY.pkl", "--trust", trust, "-o", "t.c"], fragment)


def test_manifest_trust_must_be_a_list_of_names(capsys, tmp_path):
    (tmp_path / "m.toml").write_text(
        textwrap.dedent("""
        [models.tr]
        model = "t.pkl"
        trust = "lamarr_utils"
        """)
    )
    (tmp_path / "t.pkl").write_bytes(b"")
    assert_user_error(capsys, tmp_path, [tmp_path / "m.toml", "-o", tmp_path / "x.c"], "trust: expected a list")


def test_trust_needs_a_file_not_a_live_object():
    """Live objects are the caller's already: trust only governs files, and bad names fail early."""
    with pytest.raises(ExportError, match="not a module name"):
        export_chain(preprocess=[np.zeros(1)], trust=["not a name"])


def test_skops_files_follow_the_same_trust(capsys, tmp_path, monkeypatch):
    import skops.io as sio

    module = helpers.user_module(tmp_path, monkeypatch, MODULE)
    sio.dump(module.DecorrTransformer().fit(np.random.default_rng(1).normal(size=(100, 4))), tmp_path / "tY.skops")
    name = helpers.forget_module(monkeypatch, module)
    assert_user_error(capsys, tmp_path, ["tY.skops", "-o", "t.c"], f"{name}.DecorrTransformer", f"add --trust {name}")
    code, out, err = run_cli(capsys, "tY.skops", "--trust", name, "-o", "t.c", "--samples", 300)
    assert code == 0, out + err
