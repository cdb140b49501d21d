"""The ONNX frontend's face: which files are ONNX models, ``input_shape`` as the user writes it, and
``load_onnx``, the model as IR plus ONNX Runtime's forward pass.

Importing this module imports neither onnx nor ONNX Runtime (the command line asks it which files it
handles); ``load_onnx`` does, and says how to install them when they are missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exporter.common.errors import InputError
from exporter.frontends.loaded import LoadedModel

SUFFIX = ".onnx"
# A serialized ModelProto starts with its ir_version (field 1, a small varint), then one of its next
# fields in number order: producer_name, producer_version, domain, model_version, doc_string, graph,
# opset_import, metadata_props
_NEXT_FIELDS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72})


def is_onnx_file(path: Any) -> bool:
    """A path ending in ``.onnx``, or a file whose first bytes are those of an ONNX model (any other name)."""
    if not isinstance(path, (str, os.PathLike)):
        return type(path).__name__ == "ModelProto" and type(path).__module__.startswith("onnx")
    path = Path(path)
    if path.suffix.lower() == SUFFIX:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(3)
    except OSError:  # a folder (a SavedModel), a missing file: not for this frontend to say
        return False
    return len(head) == 3 and head[0] == 0x08 and 1 <= head[1] < 0x80 and head[2] in _NEXT_FIELDS


def _dims(name: str, values: Any) -> tuple[int, ...]:
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise InputError("input_shape", f"{name}: expected a list of dimensions (integers), got {values!r}")
    return tuple(values)


def _text(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=D1,D2`` or ``D1,D2`` (the only input), as the command line writes it."""
    name, _, dims = text.rpartition("=")
    try:
        return name.strip(), tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise InputError("input_shape", f"{text!r}: expected NAME=D1,D2,... (the dimensions after the batch)") from None


def input_shapes(value: Any) -> dict[str, tuple[int, ...]]:
    """``input_shape`` however it was given: flags (``["x=8,4"]``), a manifest's list (the only input) or table
    (by input name), Python's tuple or mapping; "" names the only input."""
    if value is None or value == [] or value == {}:
        return {}
    if isinstance(value, Mapping):
        return {str(name): _dims(str(name), dims) for name, dims in value.items()}
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        shapes = dict(_text(v) for v in value)
        if len(shapes) != len(value):
            raise InputError("input_shape", f"{list(value)}: an input is given twice")
        return shapes
    return {"": _dims("the input", list(value) if isinstance(value, tuple) else value)}


def load_onnx(model: Any, input_shape: Any = None, noise: int = 0) -> LoadedModel:
    """An ONNX model (a file, or an ``onnx.ModelProto``) as IR plus ONNX Runtime's forward pass.

    ``input_shape`` fixes the dynamic dimensions after the batch (``{"x": (8, 4)}``, or ``(8, 4)`` for the
    only input); ``noise`` > 0: a generator whose one input ends with that many noise entries (a model
    with two inputs is a generator anyway: conditions, noise).
    """
    from exporter.frontends.onnx.read import prepare, require_onnx
    from exporter.frontends.onnx.reference import Feeds, Intermediates, OnnxReference
    from exporter.frontends.onnx.walk import walk_onnx

    source = source_name(model)
    onnx = require_onnx(f"{source}: exporting an ONNX model (ONNX Runtime computes the reference)")
    import onnxruntime

    prepared = prepare(model, input_shapes(input_shape), source)
    walked = walk_onnx(prepared, source, noise)
    graph = walked.graph()
    reference = OnnxReference(
        prepared.runnable,
        Feeds(walked.feeds, prepared.batch_one, bool(walked.parts), walked.bools),
        walked.origins,
        source,
    )
    version = f"{onnxruntime.__version__} (onnx {onnx.__version__}, opset {prepared.opsets['']})"
    return LoadedModel(
        graph,
        reference,
        "ONNX Runtime",
        version,
        intermediates=Intermediates(reference),
        reference64=reference.reference64,
        reference64_nudged=reference.reference64_nudged,
    )


def source_name(model: Any) -> str:
    """How messages and generated files name a model: its file's name, or an in-memory graph's name."""
    if isinstance(model, (str, os.PathLike)):
        return Path(model).name
    return f"{getattr(getattr(model, 'graph', None), 'name', '') or 'model'} (in memory)"
