"""Which backend Keras computes the reference on, chosen before Keras is first imported.

Importing TensorFlow takes seconds (most of an export's time), while Keras 3 on its numpy backend
imports, loads a model and predicts in about a second. So unless the user asks for a backend with
``KERAS_BACKEND``, the exporter takes the lightest one installed (numpy, whose Keras backend imports
jax for a few functions, then jax, then TensorFlow) and names it wherever parity is reported.
``~/.keras/keras.json`` is not read as a request: Keras writes ``tensorflow`` there on its own.
"""

from __future__ import annotations

import importlib.util
import os

from exporter.common.errors import ExportError

# Lightest first; each with the packages it needs importable.
BACKENDS = {"numpy": ("jax", "scipy"), "jax": ("jax",), "tensorflow": ("tensorflow",), "torch": ("torch",)}
# Packages Keras imports at start-up only for integrations an export never uses (DataFrames as
# training data, plots, scikit-learn wrappers): hidden while Keras imports (exporter.frontends.lean_imports).
OPTIONAL = ("pandas", "matplotlib", "sklearn")
INSTALL = "pip install 'lamarr-export[keras]' (Keras 3 on its numpy backend) or 'lamarr-export[tensorflow]'"


def keras_installed() -> bool:
    """Whether Keras 3 can be imported, asked without importing it (a finder that hides it counts as absent)."""
    try:
        return importlib.util.find_spec("keras") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["keras"] is None
        return False


def require_keras(why: str) -> None:
    """Refuse with ``why`` and what to install, before the work that needs Keras starts (a model read
    from its file needs none of it until its reference is computed, which comes while the C compiles)."""
    if not keras_installed():
        raise ExportError(f"{why} needs Keras 3: {INSTALL}")


def choose_backend() -> str:
    """``KERAS_BACKEND`` if the user set it, else the lightest installed backend (set for Keras to read)."""
    asked = os.environ.get("KERAS_BACKEND")
    if asked:
        return asked
    for name, needs in BACKENDS.items():
        if all(importlib.util.find_spec(package) for package in needs):
            os.environ["KERAS_BACKEND"] = name
            return name
    raise ExportError(f"reading Keras models needs Keras 3 and a backend: {INSTALL}")
