"""Fuzz: hostile pickle opcode streams and hostile tree arrays, drawn by Hypothesis.

Pickles: protocol-0 opcode streams that GLOBAL dangerous callables (``os.system``, ``eval``, ``open``,
``pickle.loads``, numpy's constructors, copyreg's, a trusted module's helper...) and call them through
REDUCE, INST, OBJ, NEWOBJ, BUILD (once or twice), APPEND and SETITEM chains with a canary command, path or code as
arguments, in every container the loader reads (plain, gzip, bz2, zlib, joblib's legacy ZF). Trees:
random children, features and thresholds in a fitted tree's arrays, from a proper tree mutated a little
to arrays drawn at random. Either the file loads (and a tree exports and predicts) or an ExportError
says why; never another exception, never the canary, never a hang (an alarm, and a hard stop for
loops in compiled code). Derandomized and small: a few seconds.
"""

from __future__ import annotations

import bz2
import faulthandler
import functools
import gzip
import pickle
import signal
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.common.errors import ExportError
from exporter.frontends.sklearn import load_transformer_file
from exporter.frontends.sklearn.trees import tree_graph

import helpers

SETTINGS = settings(
    max_examples=100, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)
DANGEROUS = [
    ("os", "system"),
    ("posix", "system"),
    ("os", "popen"),
    ("os", "mkdir"),
    ("subprocess", "getoutput"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "open"),
    ("io", "open"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("pickle", "loads"),
    ("numpy", "save"),
    ("numpy", "load"),
    ("numpy", "ndarray"),
    ("numpy", "frombuffer"),
    ("numpy", "exp"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("copyreg", "_reconstructor"),
    ("copyreg", "__newobj__"),
    ("_codecs", "encode"),
    ("builtins", "set"),
    ("builtins", "object"),
    ("builtins", "slice"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("joblib.numpy_pickle_compat", "NDArrayWrapper"),
    ("sklearn.preprocessing._data", "StandardScaler"),
    ("sklearn.tree._tree", "Tree"),
    ("__main__", "Evil"),
    ("TRUSTED", "helper"),
    ("TRUSTED", "Sink"),
]
HELPER = """
import os


def helper(command="touch {marker}"):
    os.system(command)


class Sink:
    def append(self, command):
        os.system(command)
"""
CONTAINERS = [
    lambda d: d,
    gzip.compress,
    bz2.compress,
    zlib.compress,
    lambda d: b"ZF" + hex(len(d)).encode().ljust(19) + zlib.compress(d),
]


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """An alarm for Python code; a hard stop (with tracebacks) for loops in compiled code it cannot reach."""

    def expire(*_: Any) -> None:
        raise TimeoutError(f"no answer in {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    faulthandler.dump_traceback_later(6 * seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _streams(module: str, marker: Any) -> st.SearchStrategy[bytes]:
    """Protocol-0 snippets that each push one object: leaves (payloads among them), calls of dangerous globals."""
    globals_ = st.sampled_from(DANGEROUS).map(lambda g: f"c{g[0].replace('TRUSTED', module)}\n{g[1]}\n".encode())
    texts = [f"touch {marker}", str(marker), f"__import__('os').system('touch {marker}')", "w", "MT19937", "latin1"]
    cmd, code = f"touch {marker}", f"__import__('os').system('touch {marker}')"
    payloads = [  # each would create the canary if the call ran
        f"cos\nsystem\n(V{cmd}\ntR",
        f"cbuiltins\neval\n(V{code}\ntR",
        f"cbuiltins\nopen\n(V{marker}\nVw\ntR",
        f"(V{cmd}\nisubprocess\ngetoutput\n",
        f"c{module}\nhelper\n(V{cmd}\ntR",
        f"(c{module}\nhelper\no",
        f"cnumpy.random._pickle\n__randomstate_ctor\n(V{cmd}\nc{module}\nhelper\ntR",
        f"c{module}\nSink\n)\x81V{cmd}\na",
    ]
    leaves = st.one_of(
        st.sampled_from(payloads).map(lambda p: p.encode("latin1")),
        st.sampled_from(texts).map(lambda t: f"V{t}\n".encode()),
        st.sampled_from([b"I1\n", b"N", b"(t", b"}", b"]", b"F0.5\n"]),
        globals_,
    )

    def extend(inner: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
        args = st.lists(inner, max_size=3).map(b"".join)
        named = st.sampled_from(DANGEROUS).map(lambda g: f"{g[0].replace('TRUSTED', module)}\n{g[1]}\n".encode())
        return st.one_of(
            st.tuples(globals_, args).map(lambda t: t[0] + b"(" + t[1] + b"tR"),  # REDUCE
            st.tuples(args, named).map(lambda t: b"(" + t[0] + b"i" + t[1]),  # INST
            st.tuples(globals_, args).map(lambda t: b"(" + t[0] + t[1] + b"o"),  # OBJ
            st.tuples(globals_, args).map(lambda t: t[0] + b"(" + t[1] + b"t\x81"),  # NEWOBJ
            st.tuples(inner, inner).map(lambda t: t[0] + b"}Vk\n" + t[1] + b"sb"),  # BUILD with a state
            st.tuples(inner, inner).map(lambda t: t[0] + b"}sb" + t[1] + b"b"),  # BUILD twice
            st.tuples(inner, inner).map(lambda t: t[0] + t[1] + b"a"),  # APPEND to anything
            st.tuples(inner, inner).map(lambda t: b"}" + t[0] + t[1] + b"s"),  # SETITEM: hashes the key
        )

    return extend(st.recursive(leaves, extend, max_leaves=6))  # a call at the top: the payload's shape


def test_hostile_pickles_load_or_are_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    module = helpers.forget_module(
        monkeypatch, helpers.user_module(tmp_path, monkeypatch, HELPER.format(marker=marker))
    )

    @SETTINGS
    @given(stream=_streams(module, marker), container=st.sampled_from(CONTAINERS))
    def check(stream: bytes, container: Any) -> None:
        marker.unlink(missing_ok=True)  # each example on its own (shrinking replays them)
        path = tmp_path / "fuzz.pkl"
        path.write_bytes(container(stream + b"."))
        with time_limit(5), suppress(ExportError):
            load_transformer_file(path, [module])
        assert not marker.exists(), stream

    check()


def _proper_tree(rng: np.random.Generator, n_target: int) -> tuple[list[int], list[int]]:
    """Children of a random binary tree in scikit-learn's numbering (children after their parent)."""
    left, right, pending = [-1], [-1], [0]
    while pending and len(left) + 2 <= n_target:
        node = pending.pop(int(rng.integers(len(pending))))
        left[node], right[node] = len(left), len(left) + 1
        left += [-1, -1]
        right += [-1, -1]
        pending += [len(left) - 2, len(left) - 1]
    return left, right


@st.composite
def _tree_arrays(draw: Any) -> dict[str, np.ndarray]:
    """A proper tree (features and thresholds in range), mutated in a few entries, or arrays at random."""
    n = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    integers = st.integers(-3, n + 2)
    if draw(st.booleans()):
        left, right = _proper_tree(rng, n)
        n = len(left)
        arrays = {"left": np.array(left), "right": np.array(right)}
    else:
        arrays = {k: np.array(draw(st.lists(integers, min_size=n, max_size=n))) for k in ("left", "right")}
    arrays["feature"] = rng.integers(0, 3, n)
    arrays["threshold"] = rng.normal(size=n)
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from(["left", "right", "feature", "threshold"]))
        value = draw(st.sampled_from([np.nan, np.inf, -1, -5, 3, n, n + 7, 0]) | integers)
        arrays[field][draw(st.integers(0, n - 1))] = value if field == "threshold" or np.isfinite(value) else -2
    return arrays


@functools.cache
def _fitted(family: str) -> bytes:
    """A small model on 3 inputs, fitted once, pickled: each example edits its own copy."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.tree import DecisionTreeRegressor

    x = np.random.default_rng(0).normal(size=(60, 3))
    model = HistGradientBoostingRegressor(max_iter=1) if family == "hist" else DecisionTreeRegressor(max_depth=2)
    return pickle.dumps(model.fit(x, x[:, 0]))


def _with_nodes(family: str, arrays: dict[str, np.ndarray]) -> Any:
    """A fitted model on 3 inputs whose (first) tree holds ``arrays``, as a crafted pickle could."""
    est = pickle.loads(_fitted(family))
    n = arrays["left"].size
    if family == "hist":
        nodes = np.zeros(n, dtype=est._predictors[0][0].nodes.dtype)
        with np.errstate(all="ignore"):  # negative children wrap around in the unsigned fields
            nodes["left"], nodes["right"] = arrays["left"].astype(np.uint32), arrays["right"].astype(np.uint32)
            nodes["feature_idx"] = arrays["feature"].astype(nodes["feature_idx"].dtype)
        nodes["num_threshold"], nodes["is_leaf"], nodes["value"] = arrays["threshold"], arrays["left"] == -1, 0.5
        est._predictors[0][0].nodes = nodes
        return est
    state = est.tree_.__getstate__()
    nodes = np.zeros(n, dtype=state["nodes"].dtype)
    nodes["left_child"], nodes["right_child"] = arrays["left"], arrays["right"]
    nodes["feature"], nodes["threshold"] = arrays["feature"], arrays["threshold"]
    tree = type(est.tree_)(3, np.array([1], dtype=np.intp), 1)  # a fresh Tree, as unpickling builds one
    tree.__setstate__({**state, "node_count": n, "nodes": nodes, "values": np.ones((n, 1, 1))})
    est.tree_ = tree
    return est


@pytest.mark.parametrize("family", ["sklearn", "hist"])
def test_hostile_tree_arrays_export_or_are_refused(family):
    @SETTINGS
    @given(arrays=_tree_arrays())
    def check(arrays: dict[str, np.ndarray]) -> None:
        est = _with_nodes(family, arrays)
        with time_limit(5):
            try:
                tree_graph(est, "fuzz.pkl")
            except ExportError:
                return
            est.predict(np.random.default_rng(1).normal(size=(20, 3)))  # accepted: scikit-learn walks it safely

    check()
