"""The parts ``export_chain`` is made of: transformer files loaded safely, the network loaded (Keras,
ONNX or trees), log columns as a column stage, and the output activation as the numpy reference computes it.

Apart from ``exporter.api`` so that the API module reads as the steps of an export, not their parts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from exporter.common.errors import InputError
from exporter.frontends.loaded import LoadedModel
from exporter.ir.columns import ColumnStage, Function


def name_of(thing: Any) -> str:
    if isinstance(thing, LoadedModel):
        return thing.graph.source
    return Path(thing).name if isinstance(thing, (str, os.PathLike)) else f"{type(thing).__name__} (in memory)"


def load_transformer(thing: Any, trust: Sequence[str] = ()) -> tuple[Any, str]:
    """A fitted transformer and its name: a pickle loaded safely, an ONNX graph of preprocessing read (sklearn-onnx's
    scalers), or the object itself."""
    from exporter.frontends.onnx import is_onnx_file
    from exporter.frontends.sklearn import load_transformer_file

    if is_onnx_file(thing):
        from exporter.frontends.onnx.columns import load_preprocessing

        est = load_preprocessing(thing)
        return est, Path(thing).stem if isinstance(thing, (str, os.PathLike)) else est.source
    if isinstance(thing, (str, os.PathLike)):
        return load_transformer_file(thing, tuple(trust)), Path(thing).stem
    return thing, type(thing).__name__


def recorded_width(est: Any, given: int) -> int:
    """The number of columns a transformer was fitted on, or ``given`` when it records none."""
    from exporter.frontends.sklearn.transformers import n_columns

    return n_columns(est) or given


def step_label(thing: Any, est: Any) -> str:
    """A transformer as width messages name it: its file and its class (the step)."""
    return f"{name_of(thing)}: {type(est).__name__}"


def log_stage(columns: Sequence[int], n_inputs: int) -> ColumnStage:
    bad = [c for c in columns if not 0 <= c < n_inputs]
    if bad:
        raise InputError("log_columns", f"{bad}: the chain takes {n_inputs} inputs (columns count from 0)")
    return ColumnStage(n_inputs, [Function("log columns", tuple(sorted(set(columns))), "log", "exp")])


def load_network(model: Any, noise: int = 0) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    from exporter.frontends.sklearn.safe_load import SUFFIXES
    from exporter.frontends.sklearn.trees import is_tree_model, load_trees

    if is_tree_model(model) or (isinstance(model, (str, os.PathLike)) and Path(model).suffix in SUFFIXES):
        return load_trees(model)  # a tree model is the network of its chain
    from exporter.frontends.trees import file_kind, load_tree_file

    if isinstance(model, (str, os.PathLike)) and file_kind(model) is not None:
        return load_tree_file(model)  # an XGBoost or LightGBM file, told by its first bytes
    from exporter.frontends.onnx import is_onnx_file, load_onnx

    if is_onnx_file(model):
        return load_onnx(model, noise=noise)
    from exporter.frontends.keras.load import load_keras

    return load_keras(model, noise)


def activate(y: np.ndarray, kind: str | None) -> np.ndarray:
    if kind == "sigmoid":
        with np.errstate(over="ignore"):  # exp(-y) is inf for y < -709: the output 0, no numpy warning
            return 1.0 / (1.0 + np.exp(-y))
    if kind == "softmax":
        e = np.exp(y - y.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return y
