"""The IR's image resizing: an ``(H, W, C)`` tensor to ``(h, w, C)`` by bilinear or nearest-neighbour
interpolation (Keras' Resizing layer, UpSampling2D with ``interpolation="bilinear"``).

The coordinate rule is TensorFlow's ``tf.image.resize`` (half-pixel centres, no antialiasing), which Keras 3
calls, computed in float32 as its kernels compute it: along an axis of ``n`` inputs and ``m`` outputs,
``scale = n / m``; bilinear output ``o`` sits at ``x = (o + 0.5) * scale - 0.5``, between inputs
``max(floor(x), 0)`` and ``min(ceil(x), n - 1)``, weighted by ``x - floor(x)``; nearest output ``o`` is input
``min(floor((o + 0.5) * scale), n - 1)``. The op states these tables per axis (``table``); the template only
indexes them, and interpolates as TensorFlow's ``compute_lerp`` does: ``top = tl + (tr - tl) * xl``, the same
for the bottom row, then ``top + (bottom - top) * yl``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from exporter.ir.convolution import Spatial
from exporter.ir.ops import Shape

METHODS = ("bilinear", "nearest")


@dataclass(frozen=True)
class Table:
    """One axis' interpolation: for each output index the input indices below and above, and the weight of
    the one above (nearest: ``lower`` alone, ``upper`` equal, weights zero)."""

    lower: np.ndarray
    upper: np.ndarray
    lerp: np.ndarray


def table(n: int, m: int, method: str) -> Table:
    """TensorFlow's half-pixel table of an axis of ``n`` inputs resized to ``m``, in float32 as it computes."""
    scale = np.float32(n) / np.float32(m)
    o = np.arange(m, dtype=np.float32)
    if method == "nearest":
        index = np.minimum(np.floor((o + np.float32(0.5)) * scale).astype(np.int64), n - 1)
        index = np.maximum(index, 0)
        return Table(index, index, np.zeros(m, np.float32))
    x = (o + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(x)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(x).astype(np.int64), n - 1)
    return Table(lower, upper, (x - floor).astype(np.float32))


@dataclass
class Resize(Spatial):
    """An image resized to ``size`` (height, width), each channel apart, by ``method`` (bilinear, nearest)."""

    size: tuple[int, ...] = ()
    method: str = "bilinear"

    template: ClassVar[str] = "resize"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.size = tuple(int(n) for n in self.size)
        if self.rank != 2 or len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"a resize of {self.in_shape} to {self.size}: (height, width, channels) to (h, w)")
        if self.method not in METHODS:
            raise ValueError(f"interpolation {self.method!r}: only {' and '.join(METHODS)}")
        self._check_width()

    def result(self) -> Shape:
        return (*self.size, self.in_shape[-1])

    def table(self, axis: int) -> Table:
        """The interpolation table of spatial axis ``axis`` (0: rows, 1: columns)."""
        return table(self.in_shape[axis], self.size[axis], self.method)

    def describe(self) -> str:
        shape = "x".join(map(str, self.in_shape))
        return f"Resize {shape} to {'x'.join(map(str, self.size))}, {self.method}"

    def flops(self, in_widths: list[int]) -> int:
        return self.width * (9 if self.method == "bilinear" else 0)
