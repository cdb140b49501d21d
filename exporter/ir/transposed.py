"""The transposed convolution (Keras' Conv1DTranspose/Conv2DTranspose, Flax's ConvTranspose, ONNX's
ConvTranspose), one op for every framework's way of stating it.

Along each spatial axis, input position ``i`` and kernel position ``k`` add ``x[i] * kernel[k]`` to output
position ``i * stride + k * dilation - before``: the gradient of a convolution with respect to its input, the
kernel not flipped. Every output starts from the bias; positions no input reaches keep it. Unpadded, an axis of
``n`` positions gives ``(n - 1) * stride + (window - 1) * dilation + 1``; ``padding`` (before, after) crops that
many positions from each end, and a negative amount adds positions instead (Keras' and ONNX's
``output_padding``, JAX's padding beyond the kernel's reach). So each framework's padding rule becomes two
numbers per axis in its frontend, and the template needs only this one rule.

The kernel has the layout of ``Conv``'s, ``(*window, in_channels / groups, filters)``, and the op renders through
the convolution's template (``conv``): the same blocks of filters, the same order of sums (kernel position by
kernel position, then the input channels), only the input position each kernel position reads differs
(``Grid.transposed``), so a row and a block of rows give the same bits as for a convolution.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from exporter.ir.convolution import Conv, Grid, Pairs
from exporter.ir.ops import Shape


def transposed_positions(lengths: Shape, window: Shape, strides: Shape, dilation: Shape, padding: Pairs) -> Shape:
    """The output's positions along each spatial axis (< 1: the crop leaves nothing)."""
    return tuple(
        (n - 1) * s + (k - 1) * d + 1 - a - b
        for n, k, s, d, (a, b) in zip(lengths, window, strides, dilation, padding, strict=True)
    )


@dataclass
class ConvTranspose(Conv):
    """``y = act(conv_transpose(x, kernel) + bias)``, channels last; ``padding`` crops (negative: extends)."""

    crops: ClassVar[bool] = True

    def positions(self) -> tuple[int, ...]:
        return transposed_positions(self.in_shape[:-1], self.window, self.strides, self.dilation, self.padding)

    @property
    def grid(self) -> Grid:
        return dataclasses.replace(super().grid, transposed=True)

    def describe(self) -> str:
        return super().describe().replace("Conv", "ConvTranspose", 1).replace("padding", "crop")

    def flops(self, in_widths: list[int]) -> int:
        """Every input position meets every kernel position (products landing in a cropped position counted)."""
        per_input = 2 * math.prod(self.window) * self.in_shape[-1] // self.groups * self.filters
        return math.prod(self.in_shape[:-1]) * per_input + self.width + self.activation.flops(self.width)
