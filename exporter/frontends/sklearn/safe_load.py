"""Load fitted transformers without letting the file run code.

A pickle can call any importable function while it loads (``os.system`` included), so
pickles and joblib files go through an unpickler that resolves only scikit-learn
estimator classes, numpy's ufuncs and the numpy and builtin names fitted transformers
hold, and the classes and functions defined in the user's modules they trust (see
``trust.py``); anything else stops the load before it is called. (Estimators the
exporter does not support load, to be refused with their step path.) ``.skops`` files
are loaded by skops, trusting only those types.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any
from unittest import mock

from exporter import interrupt
from exporter.errors import ExportError
from exporter.frontends.optional import SKLEARN_OPTIONAL, without_optional_imports
from exporter.frontends.sklearn.scikinc import stand_in
from exporter.frontends.sklearn.trees import LOADABLE as TREE_INTERNALS
from exporter.frontends.sklearn.trust import Trust
from exporter.ir.columns import FUNCTIONS

# what fitted transformers hold besides transformers, numbers and arrays
_SKLEARN_HELD = {"sklearn.compose._column_transformer": {"_RemainderColsList"}}
_NUMPY = {
    "numpy": {"dtype", "ndarray", *FUNCTIONS},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.numeric": {"_frombuffer"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy.dtypes": {"Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"},
    # a fitted transformer's random_state may be a numpy RandomState
    "numpy.random._pickle": {"__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"},
    "numpy.random._mt19937": {"MT19937"},
    "numpy.random._pcg64": {"PCG64"},
    "numpy.random.mtrand": {"RandomState"},
    "builtins": {"slice"},
    "joblib.numpy_pickle": {"NumpyArrayWrapper"},
}


@functools.lru_cache(maxsize=1)
def allowed() -> dict[str, set[str]]:
    """module -> the names that may be unpickled from it: every transformer the exporter maps
    (``transformers.handles``, found where scikit-learn defines it), what they hold, numpy's types."""
    from exporter.frontends.sklearn.transformers import IMPORT_PATHS

    names: dict[str, set[str]] = {module: set(held) for module, held in (*_NUMPY.items(), *_SKLEARN_HELD.items())}
    for path in IMPORT_PATHS:
        public, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(public), name)
        names.setdefault(cls.__module__, set()).add(name)
    for module, held in TREE_INTERNALS.items():  # tree models and what they hold
        names.setdefault(module, set()).update(held)
    return names


PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
SUFFIXES = (*PICKLE_SUFFIXES, ".skops")


class _Refusing:
    """Mixin for unpicklers: resolve only allowed globals."""

    path: str = ""
    trust: Trust = Trust()

    def find_class(self, module: str, name: str) -> Any:
        if _allowed(module, name):
            return super().find_class(module, name)  # type: ignore[misc]
        if module.startswith("sklearn."):  # any estimator class: refused later by name, with its step path
            from sklearn.base import BaseEstimator

            found = super().find_class(module, name)  # type: ignore[misc]
            if isinstance(found, type) and issubclass(found, BaseEstimator):
                return found
        # scikinC's own classes are read by name and attributes, their module never imported (unless trusted)
        known = None if self.trust.covers(module) else stand_in(module, name)
        if known is not None:
            return known
        trusted = self.trust.resolve(self.path, module, name)
        if trusted is not None:
            return trusted
        raise ExportError(
            f"{self.path}: refusing to load {module}.{name}: only scikit-learn transformers the exporter "
            "supports (and the numpy types they hold) may be unpickled"
        )


def _allowed(module: str, name: str) -> bool:
    """On the allow-list, or one of numpy's elementwise functions (a FunctionTransformer may hold any)."""
    import numpy as np

    ufunc = module == "numpy" and isinstance(getattr(np, name, None), np.ufunc)
    return ufunc or name in allowed().get(module, ())


def _load_joblib(path: Path, trust: Trust) -> Any:
    try:
        import joblib
    except ImportError:
        raise ExportError(f"{path}: reading transformers needs scikit-learn (pip install scikit-learn)") from None
    import joblib.numpy_pickle as numpy_pickle

    # scikit-learn starts up; the pickle imports its parts
    with interrupt.deferred(), without_optional_imports(SKLEARN_OPTIONAL):
        import sklearn.base  # noqa: F401

    class RestrictedNumpyUnpickler(_Refusing, numpy_pickle.NumpyUnpickler):
        pass

    RestrictedNumpyUnpickler.path = str(path)
    RestrictedNumpyUnpickler.trust = trust
    with mock.patch.object(numpy_pickle, "NumpyUnpickler", RestrictedNumpyUnpickler):
        return joblib.load(path)


def _load_skops(path: Path, trust: Trust) -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise ExportError(f"{path}: reading .skops files needs the skops package (pip install skops)") from None
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not _allowed(*t.rsplit(".", 1))]
    for user_type in list(refused):
        if trust.resolve(str(path), *user_type.rsplit(".", 1)) is not None:  # trusted, and defined there
            refused.remove(user_type)
    if refused:
        raise ExportError(f"{path}: refusing to load untrusted types {refused}")
    return sio.load(path, trusted=untrusted)


def load_transformer_file(path: str | Path, trust: Trust | list[str] | tuple[str, ...] = ()) -> Any:
    """The fitted transformer in a .pkl/.pickle/.joblib/.skops file, loaded safely.

    ``trust`` names the user's modules whose classes and functions the file may use; they are
    imported from ``sys.path`` (the model spec puts the working directory or the manifest's
    folder there first).
    """
    path = Path(path)
    trust = Trust.of(trust)
    if not path.is_file():
        raise ExportError(f"{path}: no such transformer file")
    if path.suffix not in SUFFIXES:
        raise ExportError(f"{path}: expected a transformer file ({', '.join(SUFFIXES)})")
    try:
        if path.suffix == ".skops":
            return _load_skops(path, trust)
        return _load_joblib(path, trust)  # joblib reads plain and compressed pickles alike
    except ExportError:
        raise
    except Exception as err:  # a damaged pickle raises many types
        raise ExportError(f"{path}: cannot read the transformer ({type(err).__name__}: {err})") from None
