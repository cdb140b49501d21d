"""What a Flax module call marked for the trace is (``modules.py``): its arrays' keys and shapes, its other
arguments, and the mapping's signature; ``as_shape`` relabels the walk's flat rows as the tensors a call saw."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.frontends.builder import Builder
from exporter.ir import Reshape


@dataclass(frozen=True)
class Call:
    """One marked call as the trace saw it."""

    keys: list[Any]  # its array arguments: positions (int) and keywords (str), in the order they are passed
    shapes: dict[Any, tuple[int, ...]]  # each array argument's shape
    static: dict[str, Any]  # the other keyword arguments (None, flags)


# a marked call: (walker, its array arguments' values by key, its parameters by name) -> the IR value of its output
Marked = Callable[[Any, dict[Any, Any], dict[str, np.ndarray]], str]


def as_shape(b: Builder, label: str, x: str, shape: tuple[int, ...]) -> str:
    """``x`` under ``shape`` (the same floats in order; a relabel, flat rows stay flat)."""
    shape = shape if len(shape) > 1 else (b.widths[x],)
    same = b.shape(x) == shape
    return x if same else b.add(Reshape, label, [x], b.widths[x], shape=shape)
