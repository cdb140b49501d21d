"""How a model's C is written and how its parity is judged: one value, checked once, where it is made.

The command line's flags, a manifest's keys (a model's, a pipeline's, ``[defaults]``) and the Python
API's keywords all become an :class:`Options`, which then travels unchanged: to the backend (``math``,
``dtype``, ``dispatch``, ``trees``), to the checks (``criterion``, ``atol``, ``rtol``) and to the column names of
``SYMBOL_info`` (``inputs``, ``outputs``). It lives below every stage, with the choices it checks
against, so that the backend, the checks and every way of describing a model share one list of them.

A bad value is an ``InputError`` naming its field; the caller words it as the user wrote it (``--math``
on the command line, the key ``math`` in a manifest, the keyword ``math`` in Python).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from numbers import Real
from typing import Any

from exporter.common.errors import InputError

# exporter/backend/mathlib.py: our inline helpers, libm's functions, or the inline helpers and network sums in fused
# multiply-adds where the hardware has them (a weaker contract: exporter/backend/isa.py)
MATH_MODES = ("fast", "libm", "fma")
DEFAULT_MATH = "fast"
REALS = ("float", "double")  # the C type of inputs, outputs and the network's arithmetic
DEFAULT_REAL = "float"
DISPATCH_MODES = ("auto", "none")  # exporter/backend/isa.py: once per x86-64 level, or once
DEFAULT_DISPATCH = "auto"
TREE_LAYOUTS = ("auto", "walk", "branches", "complete", "bitvector")  # exporter/backend/trees.py; auto: its rule
DEFAULT_TREES = "auto"
CRITERIA = ("float32", "fixed")  # exporter/check/verdicts.py: the rules that decide parity
DEFAULT_CRITERION = "float32"
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4

CHOICES: Mapping[str, tuple[str, ...]] = {
    "math": MATH_MODES,
    "dtype": REALS,
    "dispatch": DISPATCH_MODES,
    "trees": TREE_LAYOUTS,
    "criterion": CRITERIA,
}
TOLERANCES = ("atol", "rtol")  # the fixed rule's numbers
NAMES = ("inputs", "outputs")  # the columns' names, in the function's order


# A value of the wrong type is told as "expected ..., got VALUE", a wrong value of the right type starts with
# the value (as every InputError does): "'half': expected one of float, double".


def check_choice(name: str, value: object) -> str:
    """``value`` if it is one of the choices of field ``name``, else an ``InputError`` listing them."""
    choices = ", ".join(CHOICES[name])
    if not isinstance(value, str):
        raise InputError(name, f"expected one of {choices}, got {value!r}")
    if value not in CHOICES[name]:
        raise InputError(name, f"{value!r}: expected one of {choices}")
    return value


def check_tolerance(name: str, value: object) -> float:
    """``value`` as a float if it is a number >= 0 (``inf`` accepts any difference; NaN is refused)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputError(name, f"expected a number >= 0, got {value!r}")
    if not value >= 0:
        raise InputError(name, f"{value!r}: expected a number >= 0")
    return float(value)


def _check_names(name: str, value: object) -> tuple[str, ...] | None:
    """A list of column names as a tuple; whether each is a good name, and their count, are checked against the
    model's widths once it is loaded (``exporter.backend.column_names``)."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InputError(name, f"expected a list of column names (strings), got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class Options:
    """The export's options, each checked against its choices, and the rules between them.

    ``Options(...)`` states values outright (nothing marked given); ``Options.of(...)`` makes them from what
    a user gave (a missing or None value: not given) and records those in ``given``: ``math`` then follows ``dtype``
    (libm for double), and a tolerance given without a criterion chooses ``fixed``. ``over`` combines
    the levels a manifest has (a model's keys, ``[defaults]``, the command line's flags).
    """

    math: str = DEFAULT_MATH  # "fast": inline vectorizable approximations; "libm": libm's functions; "fma": see above
    dtype: str = DEFAULT_REAL  # the C type computed in: "float" or "double"
    dispatch: str = DEFAULT_DISPATCH  # "auto": the network once per x86-64 level, chosen at run time; "none": once
    trees: str = DEFAULT_TREES  # how a tree ensemble's C is laid out: "auto" (a rule on its shape) or one layout
    criterion: str = DEFAULT_CRITERION  # "float32" (exporter/check/criteria.py) or "fixed" (atol, rtol)
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL
    inputs: tuple[str, ...] | None = None  # None: the preprocessing's fitted names, else x0, x1...
    outputs: tuple[str, ...] | None = None  # None: the target transform's fitted names, else y0, y1...
    given: frozenset[str] = field(default=frozenset(), repr=False)  # the fields the user set (``of``)

    def __post_init__(self) -> None:
        for name in CHOICES:
            check_choice(name, getattr(self, name))
        for name in TOLERANCES:
            object.__setattr__(self, name, check_tolerance(name, getattr(self, name)))
        for name in NAMES:
            object.__setattr__(self, name, _check_names(name, getattr(self, name)))
        if self.dtype == "double" and self.math == "fast":
            raise InputError(
                "dtype",
                "'double' needs {math} libm or fma: the inline approximations are float only",
                others=("math",),
            )

    @classmethod
    def of(cls, **values: Any) -> Options:
        """The options a user gave (None: not given); the others are the defaults."""
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise TypeError(f"Options.of() got an unexpected keyword argument {unknown[0]!r}")
        given = {k: v for k, v in values.items() if v is not None}
        tolerances = [k for k in TOLERANCES if k in given]
        if given.get("criterion") == "float32" and tolerances:
            raise InputError(
                "criterion",
                "'float32' with {atol} or {rtol}: {atol} and {rtol} are the fixed rule's tolerances: drop them, or "
                "choose the criterion fixed",
                others=TOLERANCES,
            )
        if tolerances and "criterion" not in given:
            given["criterion"] = "fixed"
        derived = {"math": "libm"} if given.get("dtype") == "double" and "math" not in given else {}
        return cls(**derived, **given, given=frozenset(given))

    @classmethod
    def whole_or_keywords(cls, options: Options | None, **keywords: Any) -> Options:
        """``options`` (a spec's, made and checked already), or options made from loose keywords (None: not
        given); both at once would leave one of them unused, so that is refused."""
        if options is None:
            return cls.of(**keywords)
        given = [k for k, v in keywords.items() if v is not None]
        if given:
            raise InputError(given[0], "given twice: as a keyword and in options=; give it once")
        return options

    def values(self) -> dict[str, Any]:
        """The fields given, with their values (what ``of`` would make these options from again)."""
        return {name: getattr(self, name) for name in FIELDS if name in self.given}

    def only(self, names: tuple[str, ...]) -> Options:
        """These options with only the fields ``names`` given: what applies where the others do not."""
        return Options.of(**{k: v for k, v in self.values().items() if k in names})

    def over(self, lower: Options) -> Options:
        """These options where given, else ``lower``'s where it gave them, else the defaults.

        A criterion given here keeps ``lower``'s tolerances only if it is ``fixed``: they are that rule's
        numbers, and ``float32`` with a tolerance is refused as contradicting itself.
        """
        kept = lower.values()
        if "criterion" in self.given and self.criterion != "fixed":
            kept = {k: v for k, v in kept.items() if k not in TOLERANCES}
        return Options.of(**{**kept, **self.values()})


FIELDS = tuple(f.name for f in fields(Options) if f.name != "given")
DEFAULTS = Options()  # every option at its default, nothing given: one shared value, being frozen
