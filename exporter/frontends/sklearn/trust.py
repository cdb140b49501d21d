"""Trusting the user's own modules, by name, and nothing they drag in.

Unpickling a class or function runs the code of the module that defines it, so a pickle
that names one of the user's modules (Lamarr's ``DecorrTransformer``, a ProbNN ``logit``)
loads only if the user named that module (``--trust MODULE``, ``trust = [...]`` in a
manifest entry, ``trust=[...]`` in Python). Even then only classes and functions *defined*
in a trusted module resolve: a name the module imported (``from os import system``) is
refused like ``os.system`` itself, and standard-library modules cannot be trusted at all.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from exporter.common.errors import ExportError, InputError, UntrustedError

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
# packages the loader already reads under its own rules; trusting them would widen those rules
_NEVER = {"builtins", "numpy", "sklearn", "scipy", "joblib", "skops", "exporter"}
# packages that are not the user's: a reference to them is refused outright, not offered for trust
_LIBRARIES = {"numpy", "sklearn", "scipy", "joblib", "skops", "pandas", "keras", "tensorflow", "torch", "jax"}


def _top(module: str) -> str:
    return module.partition(".")[0]


def is_library(module: str) -> bool:
    """A module of the standard library or of a known package, never the user's own code."""
    top = _top(module)
    return top in sys.stdlib_module_names or top in _LIBRARIES or top.startswith("_")


@dataclass(frozen=True)
class Trust:
    """The user's modules whose classes and functions may be unpickled (and their submodules)."""

    modules: tuple[str, ...] = ()

    @classmethod
    def of(cls, modules: Iterable[str] | Trust | None) -> Trust:
        """Checked module names: dotted Python names, none of the standard library or the loader's own."""
        if isinstance(modules, Trust):
            return modules
        names = list(modules or ())
        for name in names:
            if not isinstance(name, str) or not _MODULE.fullmatch(name):
                raise InputError("trust", f"{name!r}: not a module name (like lamarr_utils or pkg.module)")
            if _top(name) in _NEVER or is_library(name):
                raise InputError(
                    "trust", f"{name}: only your own modules can be trusted, not the standard library or {_top(name)}"
                )
        return cls(tuple(names))

    def covers(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.modules)

    def resolve(self, path: str, module: str, name: str) -> Any:
        """``module.name`` if the user trusts ``module`` and it defines a class or function of that name."""
        if not self.covers(module):
            if is_library(module):
                return None  # the caller refuses it as it refuses any other name
            raise UntrustedError(path, module, name)
        try:
            found = importlib.import_module(module)
        except Exception as err:  # the user's module failed to import: any error is theirs to see
            raise ExportError(
                f"{path}: cannot import the trusted module {module} ({type(err).__name__}: {err}); it is imported "
                "from the working directory (a manifest's: from its folder), and only the modules you trust are taken "
                "from there: a file of that folder it imports must be trusted too"
            ) from None
        obj = found
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if obj is None:
            raise ExportError(f"{path}: the trusted module {module} has no {name}")
        defined_here = getattr(obj, "__module__", None) == module
        if not (defined_here and (inspect.isclass(obj) or inspect.isfunction(obj))):
            raise ExportError(
                f"{path}: refusing to load {module}.{name}: trusting {module} admits the classes and functions "
                f"defined in it, and {name} is not one (it is a {type(obj).__name__} from "
                f"{getattr(obj, '__module__', None) or 'elsewhere'})"
            )
        return obj
