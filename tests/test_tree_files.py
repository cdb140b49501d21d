"""XGBoost (JSON, UBJSON) and LightGBM (text) model files in C against the libraries' own ``predict``.

Each model is trained here on a few hundred rows with missing values and exact zeros, saved as the
library saves it, read by the exporter without the library, compiled, and compared with the
library's ``Booster.predict`` on the export's parity rows (10,000 random rows, edge rows, rows
exactly on every threshold and the float after it, NaN rows; for LightGBM the edges of its band
around zero): 0 ULP, XGBoost computing in float32 and LightGBM in double as the C does. Hostile
files (truncated, wrong types, huge counts, deep nesting, cycles) end in one clear error, quickly.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
import time

import lightgbm
import numpy as np
import pytest
import xgboost

from exporter.api import export_chain
from exporter.common.errors import ExportError, UnsupportedModelError
from exporter.frontends.trees import file_kind
from exporter.frontends.trees.ubjson import MAX_DEPTH, UBJSONError, decode
from exporter.ir.trees import TreeEnsemble

from helpers import assert_user_error, run_cli, strict_compile

N = 4
K_ZERO = np.float32(1e-35)


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows with NaN and exact zeros (both routed by the libraries' missing-value rules), and a raw target."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((400, N)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = 0.0
    x[rng.random(x.shape) < 0.1] = np.nan
    z = np.nan_to_num(x)
    return x, z[:, 0] + z[:, 1] * z[:, 2] + (x[:, 3] == 0)


def labels(task: str, raw: np.ndarray) -> np.ndarray:
    if task == "binary":
        return (raw > 0.2).astype(float)
    if task == "multiclass":
        return np.digitize(raw, [-0.5, 0.7]).astype(float)
    if task == "positive":
        return np.exp(raw / 3.0)
    return raw


XGBOOST = {  # name: (params, task)
    "binary_logistic": ({"objective": "binary:logistic"}, "binary"),
    "base_score": ({"objective": "binary:logistic", "base_score": 0.3}, "binary"),
    "reg_logistic": ({"objective": "reg:logistic"}, "binary"),
    "logitraw": ({"objective": "binary:logitraw"}, "binary"),
    "squarederror": ({"objective": "reg:squarederror", "base_score": 0.77}, "regression"),
    "absoluteerror": ({"objective": "reg:absoluteerror"}, "regression"),
    "pseudohuber": ({"objective": "reg:pseudohubererror"}, "regression"),
    "poisson": ({"objective": "count:poisson"}, "positive"),
    "gamma": ({"objective": "reg:gamma"}, "positive"),
    "tweedie": ({"objective": "reg:tweedie"}, "positive"),
    "softprob": ({"objective": "multi:softprob", "num_class": 3}, "multiclass"),
    "softmax": ({"objective": "multi:softmax", "num_class": 3}, "multiclass"),
    "dart": ({"objective": "reg:squarederror", "booster": "dart", "rate_drop": 0.5, "skip_drop": 0.0}, "regression"),
    "forest": ({"objective": "binary:logistic", "num_parallel_tree": 3, "subsample": 0.7}, "binary"),
}

LIGHTGBM = {
    "regression": ({"objective": "regression"}, "regression"),
    "l1": ({"objective": "regression_l1"}, "regression"),
    "huber": ({"objective": "huber"}, "regression"),
    "poisson": ({"objective": "poisson"}, "positive"),
    "binary_sigmoid": ({"objective": "binary", "sigmoid": 0.7}, "binary"),
    "cross_entropy": ({"objective": "cross_entropy"}, "binary"),
    "multiclass": ({"objective": "multiclass", "num_class": 3}, "multiclass"),
    "zero_as_missing": ({"objective": "multiclass", "num_class": 3, "zero_as_missing": True}, "multiclass"),
    "no_missing": ({"objective": "regression", "use_missing": False}, "regression"),
    "random_forest": ({"objective": "binary", "boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.6}, "binary"),
}


def xgboost_file(tmp_path, key: str, suffix: str = ".json", rounds: int = 8):
    params, task = XGBOOST[key]
    x, raw = data()
    booster = xgboost.train(
        {"max_depth": 4, "nthread": 1, **params}, xgboost.DMatrix(x, label=labels(task, raw)), rounds
    )
    path = tmp_path / f"{key}{suffix}"
    booster.save_model(path)
    return path, booster


def lightgbm_file(tmp_path, key: str, rounds: int = 8, **extra):
    params, task = LIGHTGBM[key]
    x, raw = data()
    settings = {"num_leaves": 12, "min_data_in_leaf": 5, "verbose": -1, "num_threads": 1, **params, **extra}
    booster = lightgbm.train(settings, lightgbm.Dataset(x, labels(task, raw)), rounds)
    path = tmp_path / f"{key}.txt"
    booster.save_model(path)
    return path, booster


def assert_exact(path, tmp_path, predict) -> TreeEnsemble:
    """Parity on the export's rows at 0 ULP, and the compiled C equal to ``predict`` bit for bit."""
    ex = export_chain(path)
    (op,) = ex.chain.net.ops
    rows = ex.inputs()
    assert np.isin(rows, op.threshold[np.isfinite(op.threshold)]).any() and np.isnan(rows).any()
    compiled = ex.compile(tmp_path, one_row=True)
    report = ex.check(compiled, rows)
    assert report.passed and max(c.max_ulp for c in report.columns) == 0, report.table()
    expected = np.asarray(predict(rows), dtype=np.float32).reshape(len(rows), -1)
    np.testing.assert_array_equal(compiled(rows), expected)
    return op


@pytest.mark.parametrize("key", list(XGBOOST))
def test_xgboost_parity(key, tmp_path):
    path, booster = xgboost_file(tmp_path, key, ".ubj" if key in ("softprob", "dart", "poisson") else ".json")
    if key == "softmax":
        booster.set_param({"objective": "multi:softprob"})  # the export gives the probabilities
    op = assert_exact(path, tmp_path, lambda rows: booster.predict(xgboost.DMatrix(rows)))
    assert op.precision == "float" and op.routes_missing


def test_xgboost_json_and_ubjson_give_the_same_c(tmp_path):
    json_path, booster = xgboost_file(tmp_path, "softprob")
    ubj_path = tmp_path / "softprob.ubj"
    booster.save_model(ubj_path)
    assert file_kind(json_path) == file_kind(ubj_path) == "xgboost"
    unnamed = tmp_path / "softprob.model"  # told by its bytes, not its suffix
    unnamed.write_bytes(ubj_path.read_bytes())
    sources = [export_chain(p, name="same").source.c for p in (json_path, ubj_path, unnamed)]
    assert sources[0].split("*/", 1)[1] == sources[1].split("*/", 1)[1] == sources[2].split("*/", 1)[1]


def test_an_older_xgboost_file_with_one_base_score(tmp_path):
    """Before XGBoost 3.1 ``base_score`` was one number, not a bracketed vector: the same margin."""
    path, _ = xgboost_file(tmp_path, "base_score", rounds=2)
    doc = json.loads(path.read_text())
    assert doc["learner"]["learner_model_param"]["base_score"] == "[3E-1]"
    doc["learner"]["learner_model_param"]["base_score"] = "3E-1"
    (tmp_path / "old.json").write_text(json.dumps(doc))
    ops = [export_chain(p).chain.net.ops[0] for p in (path, tmp_path / "old.json")]
    assert ops[0].baseline.tolist() == ops[1].baseline.tolist()  # the margin test_xgboost_parity checks


@pytest.mark.parametrize("key", list(LIGHTGBM))
def test_lightgbm_parity(key, tmp_path):
    path, booster = lightgbm_file(tmp_path, key)
    op = assert_exact(path, tmp_path, booster.predict)
    assert op.routes_zero == (key == "zero_as_missing")
    if key == "random_forest":
        assert op.divisor == 8.0


def test_lightgbm_zero_band_and_nan_edges(tmp_path):
    """Values within 1e-35f of zero are zero to LightGBM (its thresholds sit at +-1e-35 often), NaN is
    0 for a None split, the default way for NaN and Zero splits: every such edge on every feature."""
    edges = [0.0, -0.0, 1e-36, -1e-36, K_ZERO, -K_ZERO, np.nextafter(K_ZERO, 1), -np.nextafter(K_ZERO, 1), np.nan]
    for key in ("regression", "zero_as_missing", "no_missing"):
        path, booster = lightgbm_file(tmp_path, key)
        rng = np.random.default_rng(1)
        rows = rng.standard_normal((len(edges) ** 2 * 20, N)).astype(np.float32)
        for j in range(N):
            rows[:, j] = np.where(rng.random(len(rows)) < 0.7, rng.choice(np.float32(edges), len(rows)), rows[:, j])
        (tmp_path / key).mkdir()
        compiled = export_chain(path).compile(tmp_path / key, one_row=True)
        np.testing.assert_array_equal(compiled(rows), booster.predict(rows).astype(np.float32).reshape(len(rows), -1))


def test_strict_c_and_double(tmp_path):
    """XGBoost's float sums and links and LightGBM's zero band under the strict flags (C and C++), and
    with ``--dtype double`` (outputs as doubles, parity passing)."""
    files = [xgboost_file(tmp_path, key, rounds=3)[0] for key in ("softprob", "binary_logistic", "poisson")]
    files.append(lightgbm_file(tmp_path, "zero_as_missing", rounds=3)[0])
    for path in files:
        (tmp_path / path.stem).mkdir()
        c_file, _ = export_chain(path).write(tmp_path / path.stem / f"{path.stem}.c")
        strict_compile(c_file, tmp_path / path.stem)
    for path in files[::3]:
        ex = export_chain(path, dtype="double")
        report = ex.check(ex.compile(tmp_path / path.stem, one_row=True))
        assert report.passed, report.table()


def test_a_lightgbm_tree_of_one_leaf(tmp_path):
    x, _ = data()
    booster = lightgbm.train({"verbose": -1, "min_data_in_leaf": 1000}, lightgbm.Dataset(x, np.arange(len(x))), 2)
    booster.save_model(tmp_path / "flat.txt")
    rows = x[:50]
    compiled = export_chain(tmp_path / "flat.txt").compile(tmp_path, one_row=True)
    np.testing.assert_array_equal(compiled(rows)[:, 0], booster.predict(rows).astype(np.float32))


def _refused(path, fragment: str) -> None:
    with pytest.raises(UnsupportedModelError, match=fragment):
        export_chain(path)


def test_refused_by_name(tmp_path):
    x, raw = data()
    linear = lightgbm.train({"linear_tree": True, "verbose": -1}, lightgbm.Dataset(x, raw), 2)
    linear.save_model(tmp_path / "linear.txt")
    _refused(tmp_path / "linear.txt", "linear tree")
    xgboost.train({"booster": "gblinear"}, xgboost.DMatrix(x, label=raw), 2).save_model(tmp_path / "linear.json")
    _refused(tmp_path / "linear.json", "booster 'gblinear'")
    xgboost.train({"objective": "rank:pairwise"}, xgboost.DMatrix(x, label=raw > 0), 2).save_model(tmp_path / "r.json")
    _refused(tmp_path / "r.json", "objective 'rank:pairwise'")
    multiclassova = lightgbm.train({"objective": "multiclassova", "num_class": 3, "verbose": -1},
                                   lightgbm.Dataset(x, labels("multiclass", raw)), 2)  # fmt: skip
    multiclassova.save_model(tmp_path / "ova.txt")
    _refused(tmp_path / "ova.txt", "objective 'multiclassova")


def test_cli_inspect_manifest_and_a_chain(capsys, tmp_path):
    from sklearn.preprocessing import StandardScaler

    path, _ = lightgbm_file(tmp_path, "binary_sigmoid")
    code, out, err = run_cli(capsys, path, "-o", tmp_path / "out" / "gbm.c")
    assert code == 0 and "passed" in out and "LightGBM" in out, err
    code, out, err = run_cli(capsys, "inspect", path)
    assert code == 0 and "8 trees" in out, err
    x, raw = data()
    scaler = StandardScaler().fit(np.nan_to_num(x) * 3.0 + 1.0)
    booster = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(scaler.transform(x * 3.0 + 1.0),
                            label=labels("binary", raw)), 4)  # fmt: skip
    booster.save_model(tmp_path / "bdt.ubj")
    import pickle

    (tmp_path / "scaler.pkl").write_bytes(pickle.dumps(scaler))
    (tmp_path / "models.toml").write_text(
        textwrap.dedent("""
        [models.gbm]
        model = "binary_sigmoid.txt"
        [models.bdt]
        model = "bdt.ubj"
        preprocess = ["scaler.pkl"]
        """)
    )
    code, out, err = run_cli(capsys, tmp_path / "models.toml", "-o", tmp_path / "set" / "set.c")
    assert code == 0 and out.count("passed") >= 2, (out, err)


def test_without_the_library_no_parity_is_claimed(capsys, tmp_path, monkeypatch):
    path, _ = xgboost_file(tmp_path, "binary_logistic", rounds=2)
    monkeypatch.setitem(sys.modules, "xgboost", None)  # import xgboost now fails
    assert export_chain(path).chain.net.ops[0].n_trees == 2  # reading needs no xgboost
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert_user_error(capsys, out_dir, [path, "-o", out_dir / "m.c"], "needs xgboost installed", "pip install")


def _xgboost_doc(tmp_path) -> dict:
    path, _ = xgboost_file(tmp_path, "binary_logistic", rounds=2)
    return json.loads(path.read_text())


def _tree0(doc: dict) -> dict:
    return doc["learner"]["gradient_booster"]["model"]["trees"][0]


HOSTILE_JSON = {
    "a split on a string": (lambda d: _tree0(d).update(split_indices=["a"] * len(_tree0(d)["split_indices"])), "not"),
    "arrays of other lengths": (lambda d: _tree0(d)["right_children"].pop(), "holds"),
    "a cycle": (lambda d: _tree0(d)["left_children"].__setitem__(1, 0), "child"),
    "a child outside": (lambda d: _tree0(d)["right_children"].__setitem__(0, 10**9), "outside the tree"),
    "a feature outside": (lambda d: _tree0(d)["split_indices"].__setitem__(0, 99), "feature 99"),
    "no learner": (lambda d: d.update(learner=[]), "learner"),
    "a huge count": (lambda d: d["learner"]["learner_model_param"].update(num_feature="99999999999"), "outside"),
    "a child beyond integers": (lambda d: _tree0(d)["right_children"].__setitem__(0, 1e300), "beyond 2^53"),
    "a threshold beyond float32": (lambda d: _tree0(d)["split_conditions"].__setitem__(0, 1e300), "float32's range"),
    "a NaN base": (lambda d: d["learner"]["learner_model_param"].update(base_score="[NaN]"), "base_score"),
}


@pytest.mark.parametrize("case", list(HOSTILE_JSON))
def test_hostile_xgboost_files(capsys, tmp_path, case):
    change, fragment = HOSTILE_JSON[case]
    doc = _xgboost_doc(tmp_path)
    change(doc)
    (tmp_path / "bad").mkdir()
    path = tmp_path / "bad" / "bad.json"
    path.write_text(json.dumps(doc))
    assert_user_error(capsys, tmp_path / "bad", [path, "-o", tmp_path / "bad" / "m.c"], "bad.json", fragment)


def test_hostile_bytes_end_quickly_in_one_clear_error(tmp_path):
    path, _ = xgboost_file(tmp_path, "binary_logistic", ".ubj", rounds=2)
    data = path.read_bytes()
    text, _ = lightgbm_file(tmp_path, "regression", rounds=2)
    lines = text.read_text()
    head = b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner"  # as XGBoost's files begin
    cases = {
        "truncated.ubj": data[: len(data) // 2],
        "truncated.json": json.dumps(_xgboost_doc(tmp_path))[:500].encode(),
        "count.ubj": head + b"[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff" + bytes(64),
        "nested.ubj": head + b"[" * 100_000,
        "nested.json": b'{"learner": ' + b"[" * 1_000_000,
        "nulls.ubj": head + b"[$Z#L\x00\x00\x00\xff\xff\xff\xff\xff",
        "leaves.txt": lines.replace("num_leaves=12", "num_leaves=999999999", 1).encode(),
        "tokens.txt": lines.replace("decision_type=", "decision_type=x ", 1).encode(),
        "cycle.txt": re.sub(r"left_child=\d+", "left_child=0", lines, count=1).encode(),
        "binary.txt": b"tree\nversion=v4\n\xff\xfe",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        start = time.perf_counter()
        with pytest.raises(ExportError) as caught:
            export_chain(tmp_path / name)
            pytest.fail(f"{name} was read")
        assert name in str(caught.value).split("\n")[0], (name, str(caught.value))
        assert time.perf_counter() - start < 2.0, name


def test_ubjson_decoder_bounds():
    assert decode(b"[$l#i\x02\x00\x00\x00\x01\x00\x00\x00\x02").tolist() == [1, 2]
    assert decode(b"{i\x01aSi\x02hi}") == {"a": "hi"}
    for bad, fragment in [
        (b"[" * (MAX_DEPTH + 1), "nested"),
        (b"[#L\x00\x00\x00\x01\x00\x00\x00\x00", "length"),
        (b"Si\x05ab", "length 5 with 2 bytes left"),
        (b"[$d#i\x01\x00", "4 bytes wanted"),
        (b"[]]", "after the end"),
        (b"[$Z#i\x05", "no bytes"),
    ]:
        with pytest.raises(UBJSONError, match=fragment):
            decode(bad)


def test_every_layout_gives_the_library_s_bits(tmp_path, monkeypatch):
    """XGBoost's float sums and links, LightGBM's double ones and its band around zero, in every tree layout
    (exporter/backend/trees.py) that can write them: one library for all, at -O1 (the level changes no bit)."""
    from exporter.backend import render_set
    from exporter.backend.trees import CAPS
    from exporter.build.toolchain import CompiledModel, compile_shared

    monkeypatch.setenv("CFLAGS", "-O1")
    files = [xgboost_file(tmp_path, "softprob"), xgboost_file(tmp_path, "binary_logistic")]
    files += [lightgbm_file(tmp_path, "zero_as_missing"), lightgbm_file(tmp_path, "binary_sigmoid")]
    parts, calls = [], []
    for k, (path, booster) in enumerate(files):
        xgb = isinstance(booster, xgboost.Booster)
        predict = (lambda b: lambda r: b.predict(xgboost.DMatrix(r)))(booster) if xgb else booster.predict
        for layout in CAPS:
            try:
                ex = export_chain(path, name=f"m{k}_{layout}", trees=layout)
            except ExportError as err:
                assert layout in ("complete", "bitvector") and "zero_as_missing" in str(err), err
                continue
            parts.append(ex)
            calls.append(predict)
    assert len(parts) == 4 * len(CAPS) - 2
    library = compile_shared(render_set("layouts", "test", [ex.source for ex in parts]), tmp_path, True, True)
    for ex, predict in zip(parts, calls, strict=True):
        rows = ex.inputs(samples=2000)
        compiled = CompiledModel(ex.symbol, library, ex.chain.n_inputs, ex.chain.n_outputs)
        expected = np.asarray(predict(rows), dtype=np.float32).reshape(len(rows), -1)
        np.testing.assert_array_equal(compiled(rows), expected, err_msg=ex.symbol)
