"""Categorical splits of XGBoost and LightGBM model files in C, in every tree layout, against the libraries' predict.

The models are trained here on rows with three categorical features of 3, 40 and 100 categories (XGBoost's
one-hot splits below ``max_cat_to_onehot``, partitions above it; LightGBM's bitsets of one, two and four
32-bit words), NaN among them, and checked at 0 ULP: on the export's parity rows (per categorical split a
listed and an unlisted category, each plus a fraction, -0, -1, the least value read as a category and the
float below it, the last category of the set's words and the first beyond, 2^24 and 3e38, NaN) and on rows
of such values drawn anew, in every layout (one library at -O1, the level changes no bit; strict C and C++).
The two libraries read a float as a category differently (XGBoost: a negative value is no category, so
-0.5 goes where an unlisted one does; LightGBM: -0.5 truncates to category 0): both rules are exercised.
"""

from __future__ import annotations

import json
import re

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost

from exporter.api import export_chain
from exporter.backend import render_set
from exporter.backend.trees import CAPS
from exporter.build.toolchain import CompiledModel, compile_shared
from exporter.common.errors import ExportError
from exporter.frontends.trees import ensemble

from helpers import strict_compile

CATEGORIES = (3, 40, 100)  # per categorical feature (columns 2, 3, 4): one word, two, four
EDGES = np.float32([0, 1, 2, 31, 32, 33, 63, 64, 99, 100, 127, 128, 1.5, 2.999, -0.0, -0.5, -0.99, -1, -3, 1e6, 3e38])


def categorical_data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two numerical columns, then the categorical ones as codes (NaN: missing), and a target that depends
    on categories scattered through each range (so splits list many of them)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2 + len(CATEGORIES))).astype(np.float32)
    for j, k in enumerate(CATEGORIES):
        x[:, 2 + j] = rng.integers(0, k, n)
    x[:, 2:][rng.random((n, len(CATEGORIES))) < 0.08] = np.nan
    z = np.nan_to_num(x, nan=-1.0)
    y = x[:, 0] + (z[:, 2] == 1) + 1.5 * (z[:, 3] % 3 == 0) + (z[:, 4] % 5 < 2) + (z[:, 4] > 70) - np.isnan(x[:, 3])
    return x, y


def xgboost_model(tmp_path, name: str, params: dict):
    x, y = categorical_data()
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(x.shape[1])])
    for j, k in enumerate(CATEGORIES):
        codes = np.where(np.isnan(x[:, 2 + j]), -1, np.nan_to_num(x[:, 2 + j])).astype(int)
        frame[f"f{2 + j}"] = pd.Categorical.from_codes(codes, categories=range(k))
    label = (y > 1.0).astype(float) if params.get("objective") == "binary:logistic" else y
    matrix = xgboost.DMatrix(frame, label=label, enable_categorical=True)
    booster = xgboost.train({"max_depth": 4, "nthread": 1, **params}, matrix, 6)
    path = tmp_path / f"{name}.json"
    booster.save_model(path)

    def predict(rows: np.ndarray) -> np.ndarray:
        types = booster.feature_types
        return booster.predict(xgboost.DMatrix(rows, feature_names=booster.feature_names, feature_types=types,
                                               enable_categorical=True))  # fmt: skip

    return path, predict


def lightgbm_model(tmp_path, name: str, params: dict):
    x, y = categorical_data()
    label = (y > 1.0).astype(float) if params.get("objective") == "binary" else y
    settings = {"num_leaves": 12, "min_data_in_leaf": 5, "min_data_per_group": 5, "cat_smooth": 1, "verbose": -1,
                "num_threads": 1, **params}  # fmt: skip
    booster = lightgbm.train(settings, lightgbm.Dataset(x, label, categorical_feature=[2, 3, 4]), 6)
    path = tmp_path / f"{name}.txt"
    booster.save_model(path)
    return path, booster.predict


MODELS = {  # name: (trainer, params)
    "xgb_partition": (xgboost_model, {"objective": "binary:logistic", "max_cat_to_onehot": 4}),
    "xgb_onehot": (xgboost_model, {"objective": "reg:squarederror", "max_cat_to_onehot": 128}),
    "lgb_regression": (lightgbm_model, {"objective": "regression", "max_cat_to_onehot": 4}),
    "lgb_binary": (lightgbm_model, {"objective": "binary", "max_cat_threshold": 64}),
}


def category_rows(n_inputs: int, n: int = 3000) -> np.ndarray:
    """Rows whose categorical columns hold categories, their fractions, negative and huge values and NaN."""
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((n, n_inputs)).astype(np.float32)
    pool = np.concatenate([EDGES, np.float32([np.nan]), np.arange(130, dtype=np.float32)])
    for j in range(2, n_inputs):
        rows[:, j] = rng.choice(pool, n)
    return rows


def test_every_layout_gives_the_library_s_bits(tmp_path, monkeypatch):
    """Each model in every layout, one library; the export's own parity check passes at 0 ULP, and the C equals
    the library's predict bit for bit on the parity rows and on rows of category edges."""
    monkeypatch.setenv("CFLAGS", "-O1")
    parts, calls = [], []
    for name, (train, params) in MODELS.items():
        path, predict = train(tmp_path, name, params)
        for layout in CAPS:
            parts.append(export_chain(path, name=f"{name}_{layout}", trees=layout))
            calls.append(predict)
    ubj = tmp_path / "xgb_partition.ubj"  # UBJSON's typed integer arrays hold the same categories
    xgboost.Booster(model_file=str(tmp_path / "xgb_partition.json")).save_model(ubj)
    assert export_chain(ubj, name="xgb_partition_walk", trees="walk").source.c.split("*/", 1)[1] == next(
        ex.source.c.split("*/", 1)[1] for ex in parts if ex.symbol == "xgb_partition_walk"
    )
    ops = [ex.chain.net.ops[0] for ex in parts]
    assert all(op.categorical for op in ops) and all("categorical splits" in op.describe() for op in ops)
    sizes = {int(n) for op in ops for n in np.diff(op.category_at)}
    assert {1, 2, 4} <= sizes, sizes  # sets of up to 32, 64 and 128 categories
    assert any(op.routes_missing for op in ops[: 2 * len(CAPS)])  # XGBoost: NaN sent left at some split
    library = compile_shared(render_set("layouts", "test", [ex.source for ex in parts]), tmp_path, True, True)
    for ex, predict in zip(parts, calls, strict=True):
        compiled = CompiledModel(ex.symbol, library, ex.chain.n_inputs, ex.chain.n_outputs)
        rows = ex.inputs(samples=1000)
        report = ex.check(compiled, rows)
        assert report.passed and max(c.max_ulp for c in report.columns) == 0, (ex.symbol, report.table())
        rows = np.concatenate([rows, category_rows(ex.chain.n_inputs)])
        expected = np.asarray(predict(rows), dtype=np.float32).reshape(len(rows), -1)
        np.testing.assert_array_equal(compiled(rows), expected, err_msg=ex.symbol)
    strict_compile(tmp_path / "layouts.c", tmp_path)


def _xgboost_doc(tmp_path) -> tuple[dict, dict]:
    path, _ = xgboost_model(tmp_path, "doc", MODELS["xgb_partition"][1])
    doc = json.loads(path.read_text())
    return doc, next(t for t in doc["learner"]["gradient_booster"]["model"]["trees"] if t["categories_nodes"])


def _refused(tmp_path, name: str, content: str, fragment: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(ExportError, match=fragment):
        export_chain(tmp_path / name)


def test_hostile_categorical_files(tmp_path, monkeypatch):
    """A categorical split that names what the file does not hold, or categories past 2^24 - 1, is one clear
    error; so are bitsets larger in all than ``MAX_SET_WORDS`` (a small file cannot ask for gigabytes)."""
    cases = [
        (lambda t: t["categories_nodes"].__setitem__(0, 0), "does not name its categorical splits"),
        (lambda t: t["categories_segments"].__setitem__(0, 10**6), "point outside"),
        (lambda t: t["categories"].__setitem__(0, 1 << 24), "categories are 0 to 16777215"),
        (lambda t: t["split_type"].__setitem__(t["categories_nodes"][0], 2), "split_type 2"),
    ]
    for k, (change, fragment) in enumerate(cases):
        doc, tree = _xgboost_doc(tmp_path)
        change(tree)
        _refused(tmp_path, f"bad{k}.json", json.dumps(doc), fragment)
    text = lightgbm_model(tmp_path, "text", MODELS["lgb_regression"][1])[0].read_text()
    block = text[text.index("Tree=0") : text.index("Tree=1")]
    index = next(m for m in re.finditer(r"threshold=(.*)", block))
    types = re.search(r"decision_type=(.*)", block).group(1).split()
    first = types.index(next(t for t in types if int(t) & 1))
    wrong = index.group(1).split()
    wrong[first] = "99"
    _refused(tmp_path, "index.txt", text.replace(index.group(0), "threshold=" + " ".join(wrong), 1), "bitsets outside")
    words = re.search(r"cat_threshold=(\d+)", text)
    _refused(tmp_path, "word.txt", text.replace(words.group(0), "cat_threshold=4294967296", 1), "32-bit words")
    monkeypatch.setattr(ensemble, "MAX_SET_WORDS", 3)
    _refused(tmp_path, "budget.txt", text, "over 3 words")
    doc, _ = _xgboost_doc(tmp_path)
    _refused(tmp_path, "budget.json", json.dumps(doc), "over 3 words")


def test_lightgbm_sends_nan_right_at_every_categorical_split(tmp_path):
    """LightGBM's categorical splits send NaN (and negative and unlisted categories) right whatever missing
    type and default side the node states: a trained model's categorical splits rewritten to every
    combination (default left or not; missing type None, Zero, NaN) give the library's bits still."""
    path, _ = lightgbm_model(tmp_path, "cats", MODELS["lgb_regression"][1])

    def every_combination(match: re.Match) -> str:
        types = [int(t) for t in match.group(1).split()]
        return "decision_type=" + " ".join(str(1 | (k % 2) << 1 | (k // 2 % 3) << 2 if t & 1 else t)
                                           for k, t in enumerate(types))  # fmt: skip

    edited = tmp_path / "edited.txt"
    text = re.sub(r"tree_sizes=.*\n", "", path.read_text())  # the trees' byte counts: read in order without them
    edited.write_text(re.sub(r"decision_type=(.*)", every_combination, text))
    booster = lightgbm.Booster(model_file=str(edited))
    rows = category_rows(2 + len(CATEGORIES))
    compiled = export_chain(edited).compile(tmp_path, one_row=True)
    np.testing.assert_array_equal(compiled(rows), booster.predict(rows).astype(np.float32).reshape(len(rows), -1))
