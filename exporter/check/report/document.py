"""The machine-readable report: one JSON document per run, the same for ``--json`` and ``report.json``.

Every document has ``kind`` (``export``, ``inspect`` or ``error``), ``schema_version`` and ``tool``;
``schema.json`` beside this file describes all three and is what CI pipelines may validate against.
JSON has no infinity or NaN, so such values are written as the strings ``"inf"``, ``"-inf"``, ``"nan"``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from exporter.check.compare import RULE
from exporter.check.inputs import edge_rows
from exporter.common.errors import EXIT_USER, ExportError, UnsupportedModelError
from exporter.common.progress import in_order
from exporter.common.version import __version__

if TYPE_CHECKING:
    from exporter.check.compare import ParityReport
    from exporter.check.inspect import Inspection
    from exporter.check.subject import ExportedModel
    from exporter.check.trace import Trace

SCHEMA_VERSION = 1
SCHEMA = Path(__file__).with_name("schema.json")


def _head(kind: str) -> dict[str, Any]:
    return {"kind": kind, "schema_version": SCHEMA_VERSION, "tool": {"name": "lamarr-export", "version": __version__}}


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_info(model: Any, framework: str = "", framework_version: str = "") -> dict[str, Any]:
    """The model's file name and hash (a live model has neither path nor hash)."""
    is_file = isinstance(model, (str, os.PathLike)) and Path(model).is_file()
    return {
        "path": str(model) if is_file else None,
        "file": Path(model).name if is_file else str(getattr(model, "name", model)),
        "sha256": file_sha256(model) if is_file else None,
        "framework": framework,
        "framework_version": framework_version,
    }


def parity_dict(report: ParityReport, samples: int, user_rows: int) -> dict[str, Any]:
    assert report.arrays is not None, "a report made by check_parity keeps its input rows"
    inputs = report.arrays.inputs
    return {
        "reference": report.reference,
        "passed": report.passed,
        "rows": report.rows,
        "samples": samples,
        "edge_rows": len(edge_rows(inputs.shape[1])),
        "user_rows": user_rows,
        "row_order": "random samples, then edge rows, then user rows; worst_row indexes this order",
        "criterion": "fixed" if report.judgement is None else "float32",
        "rule": report.verdict(),
        "fallback": report.fallback,
        "judgement": None if report.judgement is None else report.judgement.to_dict(),
        "tolerance": {"atol": report.atol, "rtol": report.rtol, "rule": RULE},
        "outputs": [
            {
                "index": c.column,
                "max_abs": c.max_abs,
                "max_rel": c.max_rel,
                "max_ulp": c.max_ulp,
                "failures": c.failures,
                "worst_row": c.worst_row,
                "nan_mismatches": c.nan_mismatches,
            }
            for c in report.columns
        ],
        "worst_input": report.worst_input,
        "batch": None if getattr(report, "batch", None) is None else report.batch.verdict(),  # vs one row per call
        # one column in float64 at a time: a float64 copy of millions of rows would be the run's largest array
        "input_ranges": [_input_range(j, inputs[:, j].astype(np.float64)) for j in range(inputs.shape[1])],
    }


def _input_range(index: int, column: np.ndarray) -> dict[str, Any]:
    return {
        "index": index,
        "min": float(column.min()),
        "max": float(column.max()),
        "mean": float(column.mean()),
        "std": float(column.std()),
    }


def export_document(
    *,
    model: Any,
    ex: ExportedModel,
    inspection: Inspection,
    report: ParityReport | None,
    samples: int,
    user_rows: int,
    trace: Trace | None,
    trace_error: str | None,
    files: dict[str, str | None],
    timings: dict[str, float],
) -> dict[str, Any]:
    """Everything one export run established, as plain JSON-able values."""
    passed = None if report is None else report.passed
    return {
        **_head("export"),
        "model": model_info(model, ex.framework, ex.framework_version),
        "symbol": ex.symbol,
        "n_inputs": ex.chain.n_inputs,
        "n_outputs": ex.chain.n_outputs,
        "n_noise": ex.chain.n_noise,
        "files": files,
        "passed": passed,
        "exit_code": 1 if passed is False else 0,
        "parity": None if report is None else parity_dict(report, samples, user_rows),
        "trace": None if trace is None else trace.to_dict(),
        "trace_error": trace_error,
        "inspection": inspection.to_dict(),
        "timings": {k: round(v, 4) for k, v in in_order(timings).items()},
    }


def inspect_document(model: Any, inspection: Inspection, framework: str = "", version: str = "") -> dict[str, Any]:
    exit_code = 0 if inspection.exportable else 2
    info = model_info(model, framework, version)
    return {**_head("inspect"), "model": info, "exit_code": exit_code, **inspection.to_dict()}


def error_document(err: ExportError | str, exit_code: int = EXIT_USER) -> dict[str, Any]:
    """An error, for ``--json`` callers: the message, and each refused layer when there are some
    (``exit_code`` 3 for the exporter's own bugs)."""
    problems = err.problems if isinstance(err, UnsupportedModelError) else []
    return {
        **_head("error"),
        "exit_code": exit_code,
        "error": str(err),
        "problems": [{"layer": p.layer, "class": p.cls, "reason": p.reason} for p in problems],
    }


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_json(document: dict[str, Any]) -> str:
    """Strict JSON (no NaN or Infinity literals), indented for people, stable key order."""
    return json.dumps(_finite(document), indent=2, allow_nan=False) + "\n"
