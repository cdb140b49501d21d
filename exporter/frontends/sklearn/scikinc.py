"""scikinC's own preprocessing classes, read from pickles by class name and fitted attributes.

scikinC (0.2.9) converts two classes scikit-learn does not have: ``WeightedQuantileTransformer``
(a QuantileTransformer fitted with sample weights, defined in the user's training code) and
``FastQuantileLayer`` (the fastquantilelayer package: a Keras layer interpolating each column on
a fixed grid). Neither package is imported: the safe loader builds these stand-ins instead of the
pickled classes (any module), keeping only their attributes, and the stand-ins compute what the
originals compute (scikit-learn's QuantileTransformer; FastQuantileLayer's float32 interpolation)
to check the C against.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class StandIn:
    """An object of a class read by name: its pickled attributes, no code of its own module."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class WeightedQuantileTransformer(StandIn):
    """A QuantileTransformer subclass: scikit-learn's transform on its fitted quantiles and references."""

    def _sklearn(self) -> Any:
        from sklearn.preprocessing import QuantileTransformer

        twin = QuantileTransformer.__new__(QuantileTransformer)
        twin.__dict__.update(self.__dict__)
        return twin

    def transform(self, x: np.ndarray) -> np.ndarray:
        return self._sklearn().transform(x)

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        return self._sklearn().inverse_transform(y)


class FixedBinInterpolator(StandIn):
    """``y`` sampled on ``linspace(x_min, x_max, len(y_values))``, interpolated in float32 as the layer does."""

    def apply(self, x: np.ndarray) -> np.ndarray:
        f32 = np.float32
        y = np.asarray(self.y_values, dtype=f32)
        n = y.size
        lo, hi = f32(self.x_min), f32(self.x_max)
        span = hi - lo
        with np.errstate(all="ignore"):
            position = (np.asarray(x, dtype=f32) / span - lo / span) * f32(n - 1)
            start = np.floor(position)
            k = np.clip(start.astype(np.int64), 0, n - 2)  # cast first, as the layer does
            fraction = np.clip(position - start, f32(0), f32(1))
            return y[k] + fraction * (y[k + 1] - y[k])


class FastQuantileLayer(StandIn):
    """One interpolator per column, forward (``fwdTransforms_``) and backward (``bwdTransforms_``)."""

    @property
    def n_features_in_(self) -> int:
        return len(self.fwdTransforms_)

    def _apply(self, x: np.ndarray, inverse: bool) -> np.ndarray:
        if getattr(self, "default_to_inverse", False):
            inverse = not inverse
        transforms = self.bwdTransforms_ if inverse else self.fwdTransforms_
        x = np.asarray(x, dtype=np.float32)
        return np.stack([t.apply(x[:, i]) for i, t in enumerate(transforms)], axis=1)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return self._apply(x, inverse=False)

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        return self._apply(y, inverse=True)


STAND_INS: dict[str, type[StandIn]] = {
    cls.__name__: cls for cls in (WeightedQuantileTransformer, FastQuantileLayer, FixedBinInterpolator)
}


def _constant(value: Any, *args: Any, **kwargs: Any) -> np.ndarray:
    """A pickled TensorFlow constant (FixedBinInterpolator's ``tf_*`` copies), kept as the numpy array it holds."""
    return np.asarray(value)


def stand_in(module: str, name: str) -> Any:
    """What stands in for a pickled ``module.name`` of scikinC's classes (and the TensorFlow constants
    FastQuantileLayer holds), else None."""
    if module.split(".")[0] == "tensorflow" and name == "convert_to_tensor":
        return _constant
    return STAND_INS.get(name)
