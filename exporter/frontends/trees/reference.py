"""The parity reference of an XGBoost or LightGBM file: the library's own ``Booster.predict``, imported
only when first called (reading the file never needs the library; checking it does).

XGBoost computes in float32, so its predictions are the reference as they are (0 ULP expected); rows are
given the model's feature names and types (a model fitted on a data frame wants its column names, and its
categorical columns read as category codes);
LightGBM computes in double, rounded to float32 once, like scikit-learn's trees (0 ULP expected too),
and gives a float64 reference. Without the library nothing can confirm that the C computes what it
does: the export stops with the command that installs it, and claims no parity.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path

import numpy as np

from exporter.common.errors import ExportError

PACKAGES = {"xgboost": "xgboost-cpu", "lightgbm": "lightgbm"}


def _installed(kind: str) -> str:
    """The library's version, read from its metadata without importing it; "" when not installed."""
    for package in (kind, PACKAGES[kind]):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


def _booster(kind: str, path: Path, objective: str) -> Callable[[np.ndarray, type], np.ndarray]:
    """The library's predict on rows of a given dtype (the library imported here, on first use)."""
    try:
        module = __import__(kind)
    except ImportError:
        raise ExportError(
            f"{path}: checking the C against {kind} needs {kind} installed (pip install {PACKAGES[kind]}, or "
            f"lamarr-export[trees]); it computes the parity check and the reference rows, so nothing is exported "
            f"without it"
        ) from None
    if kind == "xgboost":
        booster = module.Booster(model_file=str(path))
        if objective == "multi:softmax":  # its predict gives the class: compare the probabilities it picks from
            booster.set_param({"objective": "multi:softprob"})
        names, types = booster.feature_names, booster.feature_types  # a model fitted on a data frame names its
        categorical = types is not None and "c" in types  # columns and marks categorical ones "c": rows say the same

        def predict(x: np.ndarray, dtype: type) -> np.ndarray:
            rows = np.asarray(x, dtype)
            return booster.predict(
                module.DMatrix(
                    rows, missing=np.nan, feature_names=names, feature_types=types, enable_categorical=categorical
                )
            )

        return predict
    booster = module.Booster(model_file=str(path))
    return lambda x, dtype: booster.predict(np.asarray(x, dtype))


def library_reference(
    kind: str, path: Path, objective: str
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray] | None, str]:
    """The float32 reference, the float64 one (LightGBM only) and the library's version ("not installed")."""
    cache: dict[str, Callable[[np.ndarray, type], np.ndarray]] = {}

    def predict(x: np.ndarray, dtype: type, out: type) -> np.ndarray:
        if "booster" not in cache:
            cache["booster"] = _booster(kind, path, objective)
        return np.asarray(cache["booster"](x, dtype), dtype=out).reshape(len(x), -1)

    reference = lambda x: predict(x, np.float32, np.float32)  # noqa: E731
    reference64 = (lambda x: predict(x, np.float64, np.float64)) if kind == "lightgbm" else None
    return reference, reference64, _installed(kind) or "not installed"
