"""lamarr-export: trained networks to standalone, dependency-free C functions, with proven parity.

Flow, one direction, one package per stage: frontends (read models) -> ir (typed ops, numpy weights) ->
backend (Jinja templates -> .c/.h) -> build (compile, cffi) -> check (parity, trace, report), with
``sets`` (manifests, composed pipelines), ``run`` (one export's steps) and ``cli`` on top; ``common``
is what all of them use. docs/architecture.md names every module.
Importing this package does not import any ML framework, and its public names load when first
used: the console command (``exporter.command``) starts inside this package, and until its own
``try`` is entered a Ctrl-C could only end in a traceback.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from exporter.common.version import __version__

if TYPE_CHECKING:
    from exporter.api import Export, export_chain, export_flax, export_keras, export_transformer
    from exporter.check.compare import ParityReport, check_parity
    from exporter.check.inputs import make_inputs
    from exporter.common.errors import ExportError, UnsupportedModelError
    from exporter.frontends.extend import register_layer, register_transformer
    from exporter.frontends.onnx import load_onnx
    from exporter.run.request import Checks, Outputs
    from exporter.run.steps import export_spec
    from exporter.run.summary import Result
    from exporter.sets.pipelines import PipelineSpec, StageSpec
    from exporter.spec import ModelSpec

_HOMES = {
    "exporter.api": "Export export_chain export_flax export_keras export_transformer",
    "exporter.sets.pipelines": "PipelineSpec StageSpec",
    "exporter.common.errors": "ExportError UnsupportedModelError",
    "exporter.frontends.extend": "register_layer register_transformer",
    "exporter.frontends.onnx": "load_onnx",
    "exporter.check.compare": "ParityReport check_parity",
    "exporter.check.inputs": "make_inputs",
    "exporter.run.request": "Checks Outputs",
    "exporter.run.summary": "Result",
    "exporter.run.steps": "export_spec",
    "exporter.spec": "ModelSpec",
}
_HOME = {name: module for module, names in _HOMES.items() for name in names.split()}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module the first time it is asked for (PEP 562)."""
    if name not in _HOME:
        raise AttributeError(f"module 'exporter' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "Checks",
    "Export",
    "ExportError",
    "ModelSpec",
    "Outputs",
    "ParityReport",
    "PipelineSpec",
    "Result",
    "StageSpec",
    "UnsupportedModelError",
    "__version__",
    "check_parity",
    "export_chain",
    "export_flax",
    "export_keras",
    "export_spec",
    "export_transformer",
    "load_onnx",
    "make_inputs",
    "register_layer",
    "register_transformer",
]
