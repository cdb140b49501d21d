"""A user's elementwise function as an expression, found by calling it on a symbolic column.

``trace(logit)`` calls ``logit`` once with a :class:`Symbol` standing for the column: numpy
routes every ufunc applied to it (``np.log``, ``x / (1 - x)``, ``scipy.special.expit``...)
through ``__array_ufunc__``, which records it as an :class:`~exporter.ir.expression.Expr`
instead of computing. Anything else the function does with its argument (``np.where``,
comparisons, ``if x > 0``, indexing, reductions, whole-array constants) raises, and the
function is refused with the reason. The trace is what the function does for *these*
arguments, so the parity check against the function itself remains the proof.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from exporter.ir.expression import FUNCTIONS, Expr, ExpressionError, X, call, num


class Untraceable(Exception):
    """The function did something with its argument that is not an elementwise formula."""


def _neg(a: Expr) -> Expr:
    return Expr("neg", (a,))


def _power(a: Expr, b: Expr) -> Expr:
    """``x ** 2`` as numpy's ``**`` computes it: a square, a root, a reciprocal for those exponents."""
    if b.kind == "num" and b.value in _FAST_POWERS:
        return _FAST_POWERS[b.value](a)
    return call("pow", a, b)


_FAST_POWERS: dict[float, Callable[[Expr], Expr]] = {
    2.0: lambda a: Expr("*", (a, a)),
    0.5: lambda a: call("sqrt", a),
    1.0: lambda a: a,
    -1.0: lambda a: Expr("/", (num(1.0), a)),
}
# numpy (and scipy.special) ufunc name -> the expression it makes of its arguments
_UFUNCS: dict[str, Callable[..., Expr]] = {
    "add": lambda a, b: Expr("+", (a, b)),
    "subtract": lambda a, b: Expr("-", (a, b)),
    "multiply": lambda a, b: Expr("*", (a, b)),
    "divide": lambda a, b: Expr("/", (a, b)),
    "true_divide": lambda a, b: Expr("/", (a, b)),
    "negative": _neg,
    "positive": lambda a: a,
    "power": _power,
    "float_power": lambda a, b: call("pow", a, b),
    "square": lambda a: Expr("*", (a, a)),
    "reciprocal": lambda a: Expr("/", (num(1.0), a)),
    "absolute": lambda a: call("fabs", a),
    "fabs": lambda a: call("fabs", a),
    "arcsin": lambda a: call("asin", a),
    "arccos": lambda a: call("acos", a),
    "arctan": lambda a: call("atan", a),
    "arcsinh": lambda a: call("asinh", a),
    "arccosh": lambda a: call("acosh", a),
    "arctanh": lambda a: call("atanh", a),
    "arctan2": lambda a, b: call("atan2", a, b),
    "expit": lambda a: Expr("/", (num(1.0), Expr("+", (num(1.0), call("exp", _neg(a)))))),
    "logit": lambda a: call("log", Expr("/", (a, Expr("-", (num(1.0), a))))),
    **{name: functools.partial(call, name) for name in FUNCTIONS if name != "round"},
}


class Symbol:
    """The column a traced function receives: ufuncs and arithmetic on it build an expression."""

    def __init__(self, expr: Expr):
        self.expr = expr

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Symbol:
        if method != "__call__" or kwargs:
            raise Untraceable(f"numpy.{ufunc.__name__}.{method}{' with ' + ', '.join(kwargs) if kwargs else ''}")
        make = _UFUNCS.get(ufunc.__name__)
        if make is None:
            raise Untraceable(f"{ufunc.__name__} has no C translation here")
        return Symbol(make(*(_operand(v) for v in inputs)))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise Untraceable(f"numpy.{func.__name__} is not an elementwise ufunc")

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise Untraceable("the function turns its argument into an array (not elementwise arithmetic)")

    def _refuse(self, *args: Any) -> Any:
        raise Untraceable("it compares, branches on, indexes or converts its argument")

    __bool__ = __float__ = __int__ = __index__ = __getitem__ = __len__ = __iter__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _refuse  # type: ignore[assignment]
    __hash__ = None  # type: ignore[assignment]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # numpy's protocol probes (hasattr) must see a plain object
            raise AttributeError(name)
        raise Untraceable(f"it uses .{name} of its argument")

    def __add__(self, other: Any) -> Symbol:
        return np.add(self, other)

    def __radd__(self, other: Any) -> Symbol:
        return np.add(other, self)

    def __sub__(self, other: Any) -> Symbol:
        return np.subtract(self, other)

    def __rsub__(self, other: Any) -> Symbol:
        return np.subtract(other, self)

    def __mul__(self, other: Any) -> Symbol:
        return np.multiply(self, other)

    def __rmul__(self, other: Any) -> Symbol:
        return np.multiply(other, self)

    def __truediv__(self, other: Any) -> Symbol:
        return np.true_divide(self, other)

    def __rtruediv__(self, other: Any) -> Symbol:
        return np.true_divide(other, self)

    def __pow__(self, other: Any) -> Symbol:
        return np.power(self, other)

    def __rpow__(self, other: Any) -> Symbol:
        return np.power(other, self)

    def __neg__(self) -> Symbol:
        return np.negative(self)

    def __pos__(self) -> Symbol:
        return self

    def __abs__(self) -> Symbol:
        return np.absolute(self)


def _operand(value: Any) -> Expr:
    if isinstance(value, Symbol):
        return value.expr
    if isinstance(value, (bool, np.bool_)):
        raise Untraceable("it mixes booleans into arithmetic")
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "iuf":
        raise Untraceable(f"it combines its argument with {array.dtype} {array.shape} (only single numbers)")
    try:
        return num(float(array.reshape(-1)[0]))
    except ExpressionError as err:
        raise Untraceable(str(err)) from None


def trace(fn: Callable[[Any], Any]) -> Expr:
    """The expression ``fn`` computes of its one argument, or ``Untraceable`` saying why not."""
    try:
        result = fn(Symbol(X))
    except Untraceable:
        raise
    except ExpressionError as err:
        raise Untraceable(str(err)) from None
    except Exception as err:  # the user's code failed on a symbol: it does not only do arithmetic
        raise Untraceable(f"calling it on a symbolic column raised {type(err).__name__}: {err}") from None
    if not isinstance(result, Symbol):
        raise Untraceable(f"it returns {type(result).__name__}, not a formula of its argument")
    return result.expr
