"""Keras' own value of every IR value, for the trace: the Python side of a layer-by-layer comparison.

Each IR value was first carried by a Keras tensor of some (possibly nested) functional graph; the
walk records which (``Origin``). A ``keras.Model(graph.inputs, tensor)`` fed with the values of that
graph's inputs gives Keras' result for exactly that value, in inference mode and float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.frontends.keras.inputs import tensors
from exporter.frontends.keras.walk import Origin


class KerasIntermediates:
    """Callable ``(values, rows) -> {value: Keras' output rows}``; one small Keras model per value, cached."""

    def __init__(
        self,
        input_value: str,
        origins: dict[str, Origin],
        noise_value: str | None = None,
        joined: str | None = None,
        split: tuple[tuple[str, int, int], ...] = (),
    ):
        self.input_value = input_value
        self.split = split  # several inputs: the values holding one as it is, (value, offset, width) in the row
        self.origins = origins
        self.noise_value = noise_value  # a generator's noise input
        self.joined = joined  # a one-input generator: conditions and noise side by side, as the model reads them
        self._models: dict[str, Any] = {}

    def knows(self, value: str) -> bool:
        """Whether Keras computes this IR value (an output activation added at export does not exist there)."""
        return (
            value in (self.input_value, self.joined) or value in self.origins or any(v == value for v, *_ in self.split)
        )

    def __call__(self, values: list[str], rows: np.ndarray, noise: np.ndarray | None = None) -> dict[str, np.ndarray]:
        memo = {self.input_value: np.asarray(rows, dtype=np.float32)}
        for value, offset, width in self.split:
            memo[value] = memo[self.input_value][:, offset : offset + width]
        if self.noise_value is not None and noise is not None:
            memo[self.noise_value] = np.asarray(noise, dtype=np.float32)
            if self.joined is not None:
                memo[self.joined] = np.concatenate([memo[self.input_value], memo[self.noise_value]], axis=1)
        return {value: self._value(value, memo) for value in values}

    def _value(self, value: str, memo: dict[str, np.ndarray]) -> np.ndarray:
        if value in memo:
            return memo[value]
        import keras

        origin = self.origins.get(value)
        if origin is None:
            raise KeyError(f"no Keras tensor computes IR value {value!r}")
        feeds = [tensors(self._value(v, memo), t.shape) for v, t in zip(origin.feeds, origin.graph.inputs, strict=True)]
        model = self._models.get(value)
        if model is None:
            model = self._models[value] = keras.Model(origin.graph.inputs, origin.tensor)
        with np.errstate(all="ignore"):  # as the reference: no numpy overflow warnings on edge rows
            out = model(feeds, training=False)
        out = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)
        memo[value] = out.reshape(len(out), -1)  # as the C holds a tensor: flat, row-major
        return memo[value]
