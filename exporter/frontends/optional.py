"""Start-up imports of integrations an export never uses, hidden while a framework imports.

Keras imports pandas, matplotlib and its scikit-learn wrappers at start-up, and scikit-learn imports
pandas (for one version check): a third of a second or more each, for DataFrames and plots the
exporter never makes. Hidden only while the framework itself imports: afterwards they import as usual
(a user's trusted module may well use pandas).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def without_optional_imports(names: tuple[str, ...]) -> Iterator[None]:
    """Make the packages ``names`` not yet imported look absent (the framework tries each and goes on)."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
