"""The machine-readable report: one JSON document per run, the same for ``--json`` and ``report.json``.

Every document has ``kind`` (``export``, ``set``, ``inspect`` or ``error``), ``schema_version`` and ``tool``;
``schema.json`` beside this file describes all four and is what CI pipelines may validate against. A
model's fields are the same in an ``export`` document (one model) and in a ``set``'s ``models`` (a
manifest's); a set's ``pipelines`` hold each pipeline's four comparisons and what each stage amplifies.
JSON has no infinity or NaN, so such values are written as the strings ``"inf"``, ``"-inf"``, ``"nan"``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from exporter.check.compare import RULE
from exporter.common.errors import EXIT_PARITY, EXIT_USER, ExportError, UnsupportedModelError
from exporter.common.progress import in_order
from exporter.common.version import __version__

if TYPE_CHECKING:
    from exporter.check.compare import ParityReport
    from exporter.check.inspect import Inspection
    from exporter.check.pipeline_parity import PipelineReport
    from exporter.check.subject import Exported, ExportedModel, ExportedPipeline, Report
    from exporter.check.trace import Traced

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


def _file(source: Any) -> dict[str, Any]:
    """A file's path, name and hash; something else (a live model, a pipeline written in Python) has its name only."""
    is_file = isinstance(source, (str, os.PathLike)) and Path(source).is_file()
    return {
        "path": str(source) if is_file else None,
        "file": Path(source).name if is_file else str(getattr(source, "name", source)),
        "sha256": file_sha256(source) if is_file else None,
    }


def model_info(model: Any, framework: str = "", framework_version: str = "") -> dict[str, Any]:
    """The model's file name and hash (a live model has neither path nor hash)."""
    return {**_file(model), "framework": framework, "framework_version": framework_version}


def comparison_dict(report: ParityReport) -> dict[str, Any]:
    """One comparison of C against its reference: the rule that decided and why, its measurements, per output
    the errors (a model's parity, a pipeline's end to end and each of its stages' comparisons)."""
    return {
        "reference": report.reference,
        "passed": report.passed,
        "rows": report.rows,
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
    }


def parity_dict(report: ParityReport, samples: int, user_rows: int) -> dict[str, Any]:
    """A model's (or a pipeline's end to end) parity: the comparison, the rows it was made on, the worst row."""
    assert report.arrays is not None, "a report made by check_parity keeps its input rows"
    inputs = report.arrays.inputs
    return {
        **comparison_dict(report),
        "samples": samples,
        "edge_rows": max(report.rows - samples - user_rows, 0),  # the rows drawn at the edges of every input
        "user_rows": user_rows,
        "row_order": "random samples, then edge rows, then user rows; worst_row indexes this order",
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


def _model_fields(
    ex: ExportedModel, report: ParityReport | None, samples: int, user_rows: int, traced: Traced | None
) -> dict[str, Any]:
    """What a model's export established: its widths, parity, trace and inspect table."""
    from exporter.check.inspect import inspect_export

    trace = None if traced is None else traced.trace
    return {
        "symbol": ex.symbol,
        "n_inputs": ex.chain.n_inputs,
        "n_outputs": ex.chain.n_outputs,
        "n_noise": ex.chain.n_noise,
        "passed": None if report is None else report.passed,
        "parity": None if report is None else parity_dict(report, samples, user_rows),
        "trace": None if trace is None else trace.to_dict(),
        "trace_error": None if traced is None else traced.error,
        "inspection": inspect_export(ex.chain, ex.symbol, ex.source.stack_bytes, ex.options.dtype).to_dict(),
    }


def _closing(passed: bool | None, files: dict[str, str | None], timings: dict[str, float]) -> dict[str, Any]:
    """A run's outcome: its exit code (1: a parity check failed), the files it wrote, its timings."""
    return {
        "files": files,
        "exit_code": EXIT_PARITY if passed is False else 0,
        "timings": {k: round(v, 4) for k, v in in_order(timings).items()},
    }


def export_document(
    *,
    model: Any,
    ex: ExportedModel,
    report: ParityReport | None,
    samples: int,
    user_rows: int,
    traced: Traced | None,
    files: dict[str, str | None],
    timings: dict[str, float],
) -> dict[str, Any]:
    """Everything one export run established, as plain JSON-able values."""
    fields = _model_fields(ex, report, samples, user_rows, traced)
    return {
        **_head("export"),
        "model": model_info(model, ex.framework, ex.framework_version),
        **fields,
        **_closing(fields["passed"], files, timings),
    }


def _made_of(ex: Exported) -> dict[str, Any]:
    """What a set's entry was computed from: the frameworks of its reference and its files with their SHA-256."""
    sources = dict(pair for part in ex.parts for pair in part.chain.sources)
    return {
        "framework": ex.framework,
        "framework_version": ex.framework_version,
        "sources": [{"file": name, "sha256": digest} for name, digest in sources.items()],
    }


def pipeline_entry(
    pipe: ExportedPipeline, report: PipelineReport | None, samples: int, traced: Sequence[Traced]
) -> dict[str, Any]:
    """A pipeline of a set: its stages and their routing; its verdict, the diagnosis and the four comparisons;
    per stage what it amplifies and adds (``Amplification``); the traces of the stages the diagnosis names."""
    chain = pipe.pipeline
    stages = [
        {"name": s.name, "reads": [str(r) for r in s.reads], "n_noise": s.n_noise, "noise_offset": s.noise_offset}
        for s in chain.stages
    ]
    parity = None
    if report is not None:
        parity = {
            "verdict": report.verdict(),
            "diagnosis": report.diagnosis(),
            "routing_ok": report.routing_ok,
            "wrong_stages": report.wrong_stages(),
            "end_to_end": parity_dict(report.end_to_end, samples, 0),
            "stages": [
                {
                    "name": name,
                    "alone": comparison_dict(report.stages[name]),
                    "conditional": comparison_dict(report.conditional[name]),
                    "amplification": report.amplification(name).to_dict(),
                }
                for name in report.stages
            ],
        }
    return {
        "symbol": pipe.symbol,
        "n_inputs": chain.n_inputs,
        "n_outputs": chain.n_outputs,
        "n_noise": chain.n_noise,
        **_made_of(pipe),
        "stages": stages,
        "output": [str(r) for r in chain.output],
        "passed": None if report is None else report.passed,
        "parity": parity,
        "traces": [t.to_dict() for t in traced],
    }


def set_document(
    *,
    manifest: str,
    library: str | None,
    exports: Sequence[Exported],
    reports: dict[str, Report],
    traces: Sequence[Traced],
    samples: int,
    files: dict[str, str | None],
    timings: dict[str, float],
) -> dict[str, Any]:
    """Everything a manifest's run established: one entry per model (as an export document's fields) and per
    pipeline (``pipeline_entry``), in the manifest's order; ``passed`` only if every checked one passed."""
    models, pipelines = [], []
    for ex in exports:
        report = reports.get(ex.symbol)
        mine = [t for t in traces if t.symbol == ex.symbol]
        if ex.model is not None:
            fields = _model_fields(ex.model, cast("ParityReport | None", report), samples, 0, (mine or [None])[0])
            models.append({**fields, **_made_of(ex)})
        else:
            pipe = cast("ExportedPipeline", ex)
            pipelines.append(pipeline_entry(pipe, cast("PipelineReport | None", report), samples, mine))
    passed = None if not reports else all(r.passed for r in reports.values())
    return {
        **_head("set"),
        "manifest": _file(manifest),
        "library": library,
        "passed": passed,
        "models": models,
        "pipelines": pipelines,
        **_closing(passed, files, timings),
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
