"""lamarr-export: trained networks to standalone, dependency-free C functions, with proven parity.

Flow, one direction: frontends (read models) -> ir (typed ops, numpy weights) ->
backend (Jinja templates -> .c/.h) -> toolchain (compile, cffi) -> parity (check).
Importing this package does not import any ML framework.
"""

from exporter.api import Export, export_chain, export_flax, export_keras, export_transformer
from exporter.composed import PipelineSpec, StageSpec
from exporter.errors import ExportError, UnsupportedModelError
from exporter.extend import register_layer, register_transformer
from exporter.parity import ParityReport, check_parity, make_inputs
from exporter.pipeline import Checks, Outputs, Result, export_spec
from exporter.spec import ModelSpec
from exporter.version import __version__

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
    "make_inputs",
    "register_layer",
    "register_transformer",
]
