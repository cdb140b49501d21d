"""Keras activation functions -> IR activations, with Keras' own defaults made explicit."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from exporter.frontends.builder import Unsupported
from exporter.frontends.registry import Registry
from exporter.ir import LINEAR, Activation
from exporter.ir.activations import KINDS


def relu_activation(negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0) -> Activation:
    """Keras' ``relu`` and ``ReLU`` layer; the plain and leaky cases get their own, cheaper kinds."""
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return Activation("relu")
    if max_value is None and threshold == 0.0:
        return Activation("leaky_relu", {"negative_slope": negative_slope})
    return Activation(
        "relu_general",
        {
            "negative_slope": negative_slope,
            "max_value": math.inf if max_value is None else max_value,
            "threshold": threshold,
        },
    )


def _vector(kind: str) -> Callable[..., Activation]:
    def make(axis: int = -1) -> Activation:
        if axis not in (-1, 1):
            raise Unsupported(f"{kind} over axis {axis}; only the feature axis (-1) is supported")
        return Activation(kind)

    return make


# Keras functions whose IR kind has another name, parameters or Keras' defaults, as makers taking the
# function's keyword arguments; any other Keras activation named like a plain IR kind maps to it by name.
KERAS_ACTIVATIONS: Registry[str, Callable[..., Activation]] = Registry(
    "Keras activation",
    {
        "linear": lambda: LINEAR,
        "relu": relu_activation,
        "relu6": lambda: relu_activation(max_value=6.0),
        "leaky_relu": lambda negative_slope=0.2: Activation("leaky_relu", {"negative_slope": negative_slope}),
        "elu": lambda alpha=1.0: Activation("elu", {"alpha": alpha}),
        "celu": lambda alpha=1.0: Activation("celu", {"alpha": alpha}),
        "gelu": lambda approximate=False: Activation("gelu_tanh" if approximate else "gelu_erf"),
        "softmax": _vector("softmax"),
        "log_softmax": _vector("log_softmax"),
        "swish": lambda: Activation("silu"),
        "hard_swish": lambda: Activation("hard_silu"),
        "hard_shrink": lambda threshold=0.5: Activation("hard_shrink", {"threshold": threshold}),
        "soft_shrink": lambda threshold=0.5: Activation("soft_shrink", {"threshold": threshold}),
        "threshold": lambda threshold, default_value: Activation(
            "threshold", {"threshold": threshold, "default_value": default_value}
        ),
        "squareplus": lambda b=4.0: Activation("squareplus", {"b": b}),
    },
)
# Keras activations that couple the features of a row otherwise than softmax does: refused by name.
NOT_ELEMENTWISE = {
    "glu": "splits the feature axis in two halves and gates one by the other",
    "sparsemax": "projects the whole row onto the simplex",
}


def keras_activation(name: str, **kwargs: Any) -> Activation:
    """The IR activation of the Keras activation function ``name`` called with ``kwargs``."""
    maker = KERAS_ACTIVATIONS.get(name)
    kind = KINDS.get(name)
    if maker is None and kind is not None and not kind.params and not kind.vector:
        maker = functools.partial(Activation, name)
    if maker is None and name in NOT_ELEMENTWISE:
        raise Unsupported(f"activation {name!r} is not supported: not elementwise (it {NOT_ELEMENTWISE[name]})")
    if maker is None:
        raise Unsupported(f"activation {name!r} is not supported")
    try:
        return maker(**kwargs)
    except TypeError as err:
        raise Unsupported(f"activation {name!r} with arguments {kwargs}: {err}") from None
    except ValueError as err:  # a parameter that is not a finite number
        raise Unsupported(str(err)) from None


def from_keras(fn: Any) -> Activation:
    """Map ``layer.activation``: a Keras function, possibly a ``functools.partial`` of one, or the name
    a stored configuration gives a built-in one (a custom function is stored as a dict: refused)."""
    if isinstance(fn, str):
        return keras_activation(fn)
    kwargs: dict[str, Any] = {}
    if isinstance(fn, functools.partial):
        kwargs = dict(fn.keywords)
        fn = fn.func
    name = getattr(fn, "__name__", repr(fn))
    module = getattr(fn, "__module__", "") or ""
    by_name = name not in KERAS_ACTIVATIONS
    if not module.startswith("keras.") or (by_name and "activations" not in module):
        raise Unsupported(f"activation {name!r} is not supported")
    return keras_activation(name, **kwargs)
