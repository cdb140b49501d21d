"""A Keras model of several inputs as the C sees it: one input row, the model's inputs side by side.

The C contract stays one input row per call (docs/c-contract.md#several-inputs): the model's inputs in the
order of ``model.inputs``, each flat in row-major order, the header stating each one's offset and shape.
The IR takes that row and slices each input out of it (a ``Slice``, then a ``Reshape`` for a tensor); the
references split the same row back into the model's inputs. A generator (conditions, noise) keeps its own
contract, a second C argument for the noise: a model of two row inputs, or one with ``noise``, is one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder
from exporter.ir import Reshape, Slice
from exporter.ir.attention import mask_feeds
from exporter.ir.graph import InputPart
from exporter.ir.ops import Shape


def row_shape(shape: Any) -> tuple[int, ...]:
    """A Keras tensor's shape per row (without the batch axis; an unknown axis counts as 1 for messages)."""
    return tuple(int(n or 1) for n in shape[1:]) or (1,)


def tensors(rows: np.ndarray, shape: Any) -> np.ndarray:
    """Flat rows (as the C takes them) as the batch of tensors of ``shape`` a Keras input takes."""
    return rows.reshape((len(rows), *row_shape(shape))) if len(shape) > 2 else rows


def is_several(shapes: list[Shape], noise: bool) -> bool:
    """Whether inputs of these shapes per row make one concatenated input row: more than one, no noise, and
    not two rows (a generator's conditions and noise, read as before)."""
    return len(shapes) > 1 and not noise and (len(shapes) > 2 or any(len(s) > 1 for s in shapes))


def _input_name(tensor: Any, index: int) -> str:
    history = getattr(tensor, "_keras_history", None)
    return str(getattr(getattr(history, "operation", None), "name", "") or f"input_{index}")


def several_inputs(b: Builder, model: Any) -> tuple[str, list[str], list[tuple[str, int, Shape]]]:
    """The IR input (the model's inputs side by side), the values fed to the model's inputs, and each input's
    (name, offset, shape) for ``parts``."""
    shapes = [row_shape(t.shape) for t in model.inputs]
    x = b.value(sum(math.prod(s) for s in shapes))
    feeds, layout, offset = [], [], 0
    for index, (tensor, shape) in enumerate(zip(model.inputs, shapes, strict=True)):
        name, width = _input_name(tensor, index), math.prod(shape)
        part = b.add(Slice, f"input {name}", [x], width, start=offset)
        feeds.append(part if len(shape) == 1 else b.add(Reshape, name, [part], width, shape=shape))
        layout.append((name, offset, shape))
        offset += width
    return x, feeds, layout


def input_parts(b: Builder, feeds: list[str], layout: list[tuple[str, int, Shape]]) -> tuple[InputPart, ...]:
    """The header's and the check's view of the inputs, once the walk knows which are attention masks."""
    masks = mask_feeds(b.ops, feeds)
    return tuple(InputPart(n, o, s, feed in masks) for (n, o, s), feed in zip(layout, feeds, strict=True))


def split_values(
    b: Builder, feeds: list[str], layout: list[tuple[str, int, Shape]]
) -> tuple[tuple[str, int, int], ...]:
    """Each IR value that holds one input as it is (its slice, its reshape): (value, offset, width), for the trace."""
    out = []
    for feed, (_, offset, shape) in zip(feeds, layout, strict=True):
        values = [feed] + [op.inputs[0] for op in b.ops if op.output == feed and isinstance(op, Reshape)]
        out += [(v, offset, math.prod(shape)) for v in values]
    return tuple(out)


def model_rows(model: Any, x: np.ndarray, noise: np.ndarray | None, dtype: type) -> Any:
    """What the Keras model is called on for C input rows ``x`` (and a generator's ``noise``): the row split
    into the model's inputs, or one input (with the noise beside it or appended, as the walk reads it)."""
    x = np.asarray(x, dtype=dtype)
    shapes = [row_shape(t.shape) for t in model.inputs]
    if is_several(shapes, noise is not None):
        ends = np.cumsum([0, *(math.prod(s) for s in shapes)])
        return [x[:, a:e].reshape(len(x), *s) for a, e, s in zip(ends[:-1], ends[1:], shapes, strict=True)]
    rows: Any = tensors(x, model.inputs[0].shape)
    if noise is not None:
        noise = np.asarray(noise, dtype=dtype)
        rows = [rows, noise] if len(model.inputs) == 2 else np.concatenate([rows, noise], axis=1)
    as_list = isinstance(getattr(model, "_inputs_struct", None), (list, tuple))  # Model(inputs=[x], ...)
    return [rows] if as_list and not isinstance(rows, list) else rows
