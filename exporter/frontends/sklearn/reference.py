"""scikit-learn's own forward and inverse transforms, the reference the C is checked against.

scikit-learn has no ``ColumnTransformer.inverse_transform``; when the layout is a
permutation (every column used once) its inverse is each block's inverse put back in
place, which is what is computed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.frontends.lean_imports import SKLEARN_OPTIONAL, without_optional_imports
from exporter.frontends.sklearn.transformers import _column_indices


def forward(est: Any, x: np.ndarray) -> np.ndarray:
    with without_optional_imports(SKLEARN_OPTIONAL):  # pandas: a sixth of a second, for a check of DataFrames
        return np.asarray(est.transform(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def inverse_steps(est: Any, path: str, y: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``inverse(est, y)`` one step at a time, each value labelled with its step's path (``path / name``,
    the prefix of the names of that step's column ops): the values the trace compares each step with.
    A transformer that is not a Pipeline is one step, labelled ``path``."""
    if type(est).__name__ != "Pipeline":
        return [(path, inverse(est, y))]
    values = []
    for name, step in reversed(est.steps):
        if step is not None and step != "passthrough":
            y = inverse(step, y)
            values.append((f"{path} / {name}", y))
    return values


def inverse(est: Any, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    cls = type(est).__name__
    if cls == "Pipeline":
        steps = inverse_steps(est, "", y)
        return steps[-1][1] if steps else y
    if cls == "ColumnTransformer":
        x = np.empty((y.shape[0], est.n_features_in_))
        offset = 0
        for _, trans, columns in est.transformers_:
            indices = _column_indices(columns, est.n_features_in_)
            if trans == "drop" or not indices:
                continue
            block = y[:, offset : offset + len(indices)]
            x[:, indices] = block if trans == "passthrough" else inverse(trans, block)
            offset += len(indices)
        return x
    with without_optional_imports(SKLEARN_OPTIONAL):
        return np.asarray(est.inverse_transform(y), dtype=np.float64)
