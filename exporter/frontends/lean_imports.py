"""Start-up imports of integrations an export never uses, hidden while a framework imports.

Keras imports pandas, matplotlib and its scikit-learn wrappers at start-up, and scikit-learn imports
pandas (for one version check): a third of a second or more each, for DataFrames and plots the
exporter never makes. Hidden only while the framework itself imports: afterwards they import as usual
(a user's trusted module may well use pandas).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
from collections.abc import Iterator
from typing import Any

# What scikit-learn imports for DataFrames and plots: at start-up, and on each ColumnTransformer.transform
# (a check of pandas outputs, for arrays that cannot be DataFrames unless pandas is imported already).
SKLEARN_OPTIONAL = ("pandas", "matplotlib")


class _Absent(importlib.abc.MetaPathFinder):
    """Fails the import of the packages ``names`` (and their modules) as if they were not installed."""

    def __init__(self, names: set[str]):
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


@contextlib.contextmanager
def without_optional_imports(names: tuple[str, ...]) -> Iterator[None]:
    """Make the packages ``names`` not yet imported look absent (the framework tries each and goes on).

    A finder fails their import rather than ``sys.modules[name] = None``: scikit-learn tells a
    DataFrame by ``"pandas" in sys.modules``, which such an entry would make true."""
    finder = _Absent({name for name in names if name not in sys.modules})
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
