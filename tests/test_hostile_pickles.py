"""Hostile pickles: every container a pickle comes in, and every way a pickle calls code while it loads.

Each crafted file carries a payload that would create a canary file; each must be refused with exit
2 and a message naming the file and what it tried, the canary absent. joblib's legacy "ZF" format
ran ``os.system`` (alone, as preprocessing of a Keras model, with an unrelated ``--trust``); a
``--trust``ed module's helper ran when a pickle called it (through REDUCE, INST, OBJ, numpy's
random-state constructor, an ``append`` method, a joblib object array, a skops node). Legitimate
files of every protocol and compression still load.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import pickle
import zipfile
import zlib

import joblib
import numpy as np
import pytest
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from exporter.frontends.sklearn import load_transformer_file

import helpers
from helpers import assert_user_error, randomize, run_cli, saved

HELPER = """
import os


def helper(command="touch {marker}"):
    os.system(command)  # a utility module's helper: harmless to name, harmful to call


class Sink:
    def append(self, command):
        os.system(command)
"""


def _system(marker) -> bytes:
    """Protocol 0, by hand: ``os.system("touch marker")`` while loading."""
    return f"cos\nsystem\n(Vtouch {marker}\ntR.".encode()


def _zf(data: bytes) -> bytes:
    """joblib < 0.10's container: ``ZF``, the length in hex padded to 19 bytes, zlib data."""
    return b"ZF" + hex(len(data)).encode().ljust(19) + zlib.compress(data)


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Files are given by name, from the working directory, as a user would."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def trusted(tmp_path, monkeypatch):
    """A user module (in the working directory, to be ``--trust``ed) whose helper would touch the canary."""
    module = helpers.user_module(tmp_path, monkeypatch, HELPER.format(marker=tmp_path / "pwned"))
    return helpers.forget_module(monkeypatch, module)


CONTAINERS = {
    "zf": _zf,
    "gzip": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    "zlib": zlib.compress,
}


@pytest.mark.parametrize("how", ["alone", "preprocess", "unrelated_trust"])
def test_legacy_joblib_zf_file_is_refused_and_runs_nothing(capsys, tmp_path, keras, trusted, how):
    marker = tmp_path / "pwned"
    (tmp_path / "t.pkl").write_bytes(_zf(_system(marker)))
    args = {
        "alone": ["t.pkl"],
        "preprocess": [saved(randomize(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])), tmp_path)],
        "unrelated_trust": ["t.pkl", "--trust", trusted],
    }[how]
    if how == "preprocess":
        args += ["--preprocess", "t.pkl"]
    assert_user_error(capsys, tmp_path, [*args, "-o", "x.c"], "t.pkl: a joblib file in the format of joblib before")
    assert not marker.exists()


@pytest.mark.parametrize("container", sorted(CONTAINERS))
def test_every_container_goes_through_the_restricted_unpickler(capsys, tmp_path, container):
    marker = tmp_path / "pwned"
    (tmp_path / "t.joblib").write_bytes(CONTAINERS[container](_system(marker)))
    fragment = "joblib before 0.10" if container == "zf" else "refusing to load os.system"
    assert_user_error(capsys, tmp_path, ["t.joblib", "-o", "x.c"], "t.joblib", fragment)
    assert not marker.exists()


@pytest.mark.parametrize("compress", [0, "zlib", "gzip", "bz2", "lzma", "xz"])
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_legitimate_files_of_every_protocol_and_compression_load(tmp_path, compress, protocol):
    """With an object array (feature names from a DataFrame), which joblib stores as a nested pickle."""
    import pandas as pd

    est = StandardScaler().fit(pd.DataFrame(np.arange(12.0).reshape(6, 2) ** 2, columns=["pt", "eta"]))
    path = tmp_path / "t.joblib"
    if compress:
        joblib.dump(est, path, compress=compress, protocol=protocol)
    else:
        path.write_bytes(pickle.dumps(est, protocol=protocol))
    loaded = load_transformer_file(path)
    assert list(loaded.feature_names_in_) == ["pt", "eta"]
    np.testing.assert_array_equal(loaded.scale_, est.scale_)


def test_joblib_companion_npy_arrays_are_refused(capsys, tmp_path):
    """joblib < 0.10 kept arrays in .npy files it read with ``allow_pickle=True``: an object array runs code."""
    from joblib.numpy_pickle_compat import NDArrayWrapper

    marker = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(f"touch {marker}")
    np.save(tmp_path / "a.npy", payload, allow_pickle=True)
    (tmp_path / "t.pkl").write_bytes(pickle.dumps(NDArrayWrapper("a.npy", np.ndarray)))
    assert_user_error(capsys, tmp_path, ["t.pkl", "-o", "x.c"], "t.pkl: a joblib file in the format of joblib before")
    assert not marker.exists()


class _Payload:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def _calls(module: str, marker) -> dict[str, bytes]:
    """Pickles calling ``module.helper`` (or a ``Sink``'s append) with ``touch marker`` as they load."""
    cmd = f"touch {marker}"
    return {
        "reduce": f"c{module}\nhelper\n(V{cmd}\ntR.".encode(),
        "inst": f"(V{cmd}\ni{module}\nhelper\n.".encode(),
        "obj": f"(c{module}\nhelper\nV{cmd}\no.".encode(),
        "random_state_ctor": f"cnumpy.random._pickle\n__randomstate_ctor\n(V{cmd}\nc{module}\nhelper\ntR.".encode(),
        "append": f"c{module}\nSink\n)\x81V{cmd}\na.".encode("latin1"),
        "object_array": b"",  # written by joblib below
    }


class _Calls:
    def __init__(self, helper, command: str):
        self.helper, self.command = helper, command

    def __reduce__(self):
        return self.helper, (self.command,)


@pytest.mark.parametrize("how", sorted(_calls("m", "x")))
def test_trusted_module_functions_are_never_called_while_loading(capsys, tmp_path, monkeypatch, trusted, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "t.joblib"
    if how == "object_array":  # joblib's nested pickle of an object array: its own unpickler ran it
        monkeypatch.syspath_prepend(str(tmp_path))
        helper = __import__(trusted).helper
        array = np.empty(1, dtype=object)
        array[0] = _Calls(helper, f"touch {marker}")
        joblib.dump(array, path)
    else:
        path.write_bytes(_calls(trusted, marker)[how])
    args = ["t.joblib", "--trust", trusted, "-o", "x.c"]
    assert_user_error(capsys, tmp_path, args, "t.joblib: refusing to load", f"{trusted}.")  # the module named
    assert not marker.exists()


def test_skops_never_calls_a_trusted_function(capsys, tmp_path, trusted):
    marker = tmp_path / "pwned"
    _edit_skops(tmp_path / "t.skops", {}, {"__module__": trusted, "__class__": "helper"})  # a DictNode: called
    assert_user_error(
        capsys, tmp_path, ["t.skops", "--trust", trusted, "-o", "x.c"], f"calls {trusted}.helper while loading"
    )
    assert not marker.exists()


def test_a_trusted_function_is_still_referenced(tmp_path, monkeypatch, trusted):
    """Trust keeps what a FunctionTransformer names: the real function, not a stand-in."""
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(trusted)
    (tmp_path / "f.pkl").write_bytes(pickle.dumps(FunctionTransformer(module.helper)))
    monkeypatch.delitem(__import__("sys").modules, trusted)
    loaded = load_transformer_file(tmp_path / "f.pkl", [trusted])
    assert loaded.func.__qualname__ == "helper" and loaded.func.__module__ == trusted


@pytest.mark.parametrize("suffix", [".pkl", ".skops"])
def test_a_main_class_says_how_to_fix_it(capsys, tmp_path, suffix):
    if suffix == ".pkl":
        (tmp_path / "t.pkl").write_bytes(b"c__main__\nMyScaler\n)\x81.")
    else:
        _edit_skops(tmp_path / "t.skops", StandardScaler(), {"__module__": "__main__", "__class__": "MyScaler"})
    assert_user_error(
        capsys, tmp_path, [f"t{suffix}", "-o", "x.c"], "__main__.MyScaler", "Move MyScaler into a module", "--trust"
    )


def _edit_skops(path, obj, changes: dict[str, str]) -> None:
    """A .skops file of ``obj`` whose top node says ``changes`` instead (as a crafted file could)."""
    import skops.io as sio

    sio.dump(obj, path)
    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))
    schema.update(changes)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))


def test_a_target_transform_without_inverse_func_is_refused(capsys, tmp_path, keras):
    x = keras.Input((2,))
    net = saved(randomize(keras.Model(x, keras.layers.Dense(2)(x))), tmp_path)
    (tmp_path / "tY.pkl").write_bytes(pickle.dumps(FunctionTransformer(np.log).fit(np.ones((3, 2)))))
    assert_user_error(
        capsys,
        tmp_path,
        [net, "--target-transform", "tY.pkl", "-o", "x.c"],
        "FunctionTransformer(log) has no inverse_func",
        "--target-transform",
    )
    (tmp_path / "tY.pkl").write_bytes(pickle.dumps(FunctionTransformer().fit(np.ones((3, 2)))))  # truly identity
    code, out, err = run_cli(capsys, net, "--target-transform", "tY.pkl", "-o", "x.c", "--samples", 300)
    assert code == 0, out + err


def test_a_state_set_twice_is_refused(tmp_path):
    """A second BUILD on scikit-learn's Tree freed its node memory twice: heap corruption, then a crash."""
    import subprocess
    import sys

    from sklearn.tree import DecisionTreeRegressor

    x = np.random.default_rng(0).normal(size=(40, 2))
    tree = DecisionTreeRegressor(max_depth=3).fit(x, x[:, 0]).tree_
    small = DecisionTreeRegressor(max_depth=1).fit(x, x[:, 0]).tree_.__getstate__()
    # the Tree, built; then a second state for the same object on the stack, and BUILD again
    (tmp_path / "t.pkl").write_bytes(
        pickle.dumps(tree, protocol=3)[:-1] + pickle.dumps(small, protocol=3)[2:-1] + b"b."
    )
    run = subprocess.run(
        [sys.executable, "-m", "exporter", "t.pkl", "-o", "x.c"], cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 2, run.stderr
    assert "t.pkl: refusing to load: the file sets the state of a sklearn.tree._tree.Tree twice" in run.stderr


def test_a_record_dtype_with_fields_outside_its_items_is_refused(capsys, tmp_path):
    """numpy's dtype ``__setstate__`` takes any field offset: an array of it reads (and writes) outside itself."""
    import pickletools

    dtype = np.dtype([("left", "<u4"), ("value", "<f8")])
    stream = pickletools.optimize(pickle.dumps(np.zeros(4, dtype=dtype), protocol=3))
    stream = stream.replace(pickle.dumps(4, protocol=3)[2:-1] + b"\x86", b"J\xa0\x86\x01\x00\x86", 1)  # offset 100000
    (tmp_path / "t.pkl").write_bytes(stream)
    assert_user_error(capsys, tmp_path, ["t.pkl", "-o", "x.c"], "t.pkl: refusing to load: a numpy dtype with fields")
