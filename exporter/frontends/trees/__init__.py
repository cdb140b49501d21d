"""Tree model files that are not pickles, read without their libraries: XGBoost (JSON, UBJSON) and LightGBM
(text). Told apart by their first bytes, not their suffix; each becomes one ``TreeEnsemble`` op with the
library's own ``predict`` as the reference (``reference.py``: imported only when parity runs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from exporter.common.errors import ExportError
from exporter.frontends.loaded import LoadedModel
from exporter.frontends.trees.ensemble import Ensemble, ensemble_graph
from exporter.frontends.trees.lightgbm_model import read_lightgbm
from exporter.frontends.trees.reference import library_reference
from exporter.frontends.trees.ubjson import UBJSONError, decode
from exporter.frontends.trees.xgboost_model import FileError, read_xgboost

KINDS = {"xgboost": "XGBoost", "lightgbm": "LightGBM"}
_AN = {"xgboost": "an", "lightgbm": "a"}


def file_kind(path: str | os.PathLike[str]) -> str | None:
    """``"xgboost"`` (JSON or UBJSON with a ``learner``), ``"lightgbm"`` (text starting ``tree``, ``version=``)
    or None, from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:  # a folder (a SavedModel), a missing file: not a tree file
        return None
    if head.startswith((b"tree\nversion=", b"tree\r\nversion=")):
        return "lightgbm"
    if _ubjson(head) and b"learner" in head[:32]:
        return "xgboost"
    return "xgboost" if head.lstrip().startswith(b"{") and b'"learner"' in head else None


def _ubjson(data: bytes) -> bool:
    """An object whose first key's length has a UBJSON integer marker (JSON has a quote or a space there)."""
    return data[:1] == b"{" and len(data) > 1 and data[1:2] in (b"i", b"U", b"I", b"l", b"L")


def _document(kind: str, data: bytes, path: str) -> tuple[Ensemble, int, str]:
    """The file read into an ensemble; what is not as the library writes it is one clear error naming the file."""
    try:
        if kind == "lightgbm":
            return read_lightgbm(data.decode("utf-8"))
        doc = decode(data) if _ubjson(data) else json.loads(data)
        return read_xgboost(doc)
    except UnicodeDecodeError:
        raise ExportError(f"{path}: not a LightGBM text model (not UTF-8 text)") from None
    except (FileError, UBJSONError, ValueError, RecursionError) as err:
        reason = "nested too deep" if isinstance(err, RecursionError) else str(err)
        raise ExportError(f"{path}: not {_AN[kind]} {KINDS[kind]} model as {KINDS[kind]} writes it: {reason}") from None


def load_tree_file(path: str | os.PathLike[str]) -> LoadedModel:
    """An XGBoost or LightGBM model file as a network, with the library's predict as its reference."""
    kind = file_kind(path)
    if kind is None:
        raise ExportError(f"{path}: neither an XGBoost (JSON, UBJSON) nor a LightGBM (text) model file")
    data = Path(path).read_bytes()
    found: dict[str, str] = {}

    def read() -> Ensemble:
        ensemble, _, found["objective"] = _document(kind, data, str(path))
        return ensemble

    graph = ensemble_graph(Path(path).name, KINDS[kind], read)
    reference, reference64, version = library_reference(kind, Path(path), found["objective"])
    return LoadedModel(graph, reference, KINDS[kind], version, reference64=reference64)
