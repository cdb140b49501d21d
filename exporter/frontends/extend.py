"""The extension API: your own transformers and Keras layers, looked up ahead of the built-in mappings.

    import exporter
    from exporter.ir.column_formulas import Mix

    @exporter.register_transformer(MyWhitening)          # or "MyWhitening": that name, from any module
    def whitening(est, n, path, problems):
        return [Mix(path, tuple(range(n)), est.w_, est.mean_)]   # (x - mean_) @ w_, inverse computed

    exporter.register_layer("Swish", c_expression="{x} / (1 + exp(-{x}))")

    @exporter.register_layer("ScaleShift")                # a custom layer as IR ops
    def scale_shift(layer, builder, inputs):
        return builder.add(Affine, layer.name, inputs, builder.widths[inputs[0]], scale=..., shift=...)

A mapping that cannot translate a particular fit raises ``exporter.frontends.extend.Unsupported`` (transformers
and layers alike) with the reason; the export then lists it with the step
or layer. Whatever a mapping produces is checked by parity against the Python object itself (the
transformer's ``transform``/``inverse_transform``, the layer's ``call``): a wrong translation fails
the export. See docs/custom-preprocessing.md for the worked example (tests/test_extension.py runs it).

Importing this module imports no ML framework; the registries load on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exporter.frontends.builder import Unsupported


def register_transformer(cls_or_name: type | str) -> Callable[[Any], Any]:
    """Decorator: ``mapping(est, n, path, problems) -> [ColumnOp, ...]`` for a transformer class
    (exactly that class) or class name (any class so named), ahead of the built-in mappings."""
    from exporter.frontends.sklearn.transformers import register_transformer as register

    return register(cls_or_name)


def register_layer(class_name: str, c_expression: str | None = None) -> Callable[[Any], Any]:
    """A custom Keras layer class: as a decorator, ``mapping(layer, builder, inputs) -> value`` adds
    IR ops; with ``c_expression`` (a C expression of ``{x}``) the layer is that elementwise formula."""
    from exporter.frontends.keras.layers import register_layer as register

    return register(class_name, c_expression)


__all__ = ["Unsupported", "register_layer", "register_transformer"]
