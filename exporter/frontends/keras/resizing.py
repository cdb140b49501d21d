"""Keras' Resizing layer (bilinear and nearest, ``crop_to_aspect_ratio``, ``pad_to_aspect_ratio`` with zeros),
mapped to ``exporter.ir.resize.Resize`` after a ``Pad`` that crops or pads the image to the target's aspect
ratio as Keras' backends do (the box's size and offset computed in float32 and truncated, the padding
``offset`` positions on both sides). UpSampling2D's bilinear form is in ``convolution.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.keras.convolution import _add, _spatial
from exporter.frontends.keras.layers import handles
from exporter.ir import Pad
from exporter.ir.ops import size
from exporter.ir.resize import METHODS, Resize


def _ratio(a: int, b: int, c: int) -> int:
    """``int(float32(a * b) / c)``: Keras' box side for the target's aspect ratio, as TensorFlow computes it."""
    return int(np.float32(a * b) / np.float32(c))


def aspect_pads(height: int, width: int, target: tuple[int, int], crop: bool) -> tuple[tuple[int, int], ...]:
    """The (before, after) amounts per spatial axis that crop (negative) or pad the image to the target's ratio."""
    th, tw = target
    if crop:
        box = (max(min(height, _ratio(width, th, tw)), 1), max(min(width, _ratio(height, tw, th)), 1))
        starts = [int(np.float32(n - k) / np.float32(2)) for n, k in zip((height, width), box, strict=True)]
        return tuple((-s, -(n - s - k)) for n, k, s in zip((height, width), box, starts, strict=True))
    box = (max(height, _ratio(width, th, tw)), max(width, _ratio(height, tw, th)))
    starts = [int(np.float32(k - n) / np.float32(2)) for n, k in zip((height, width), box, strict=True)]
    return tuple((s, s) for s in starts)


@handles("Resizing")
def resizing(layer: Any, b: Builder, inputs: list[str]) -> str:
    x, shape = _spatial(layer, b, inputs, 2)
    method = str(layer.interpolation).lower()
    if method not in METHODS:
        raise Unsupported(f"interpolation {method!r}: only {' and '.join(METHODS)} are supported")
    if getattr(layer, "antialias", False):
        raise Unsupported("antialias=True is not supported")
    crop, pad = bool(getattr(layer, "crop_to_aspect_ratio", False)), bool(getattr(layer, "pad_to_aspect_ratio", False))
    if pad and float(getattr(layer, "fill_value", 0.0)) != 0.0:
        raise Unsupported(f"pad_to_aspect_ratio with fill_value {layer.fill_value!r}: only zeros are supported")
    target = (int(layer.height), int(layer.width))
    if crop or pad:
        pads = aspect_pads(shape[0], shape[1], target, crop)
        if any(any(p) for p in pads):
            boxed = (*(n + a + c for n, (a, c) in zip(shape[:2], pads, strict=True)), shape[2])
            x, shape = _add(b, Pad, layer.name, x, size(boxed), in_shape=shape, pads=pads), boxed
    width = target[0] * target[1] * shape[2]
    return _add(b, Resize, layer.name, x, width, in_shape=shape, size=target, method=method)
