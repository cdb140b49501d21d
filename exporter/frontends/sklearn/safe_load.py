"""Load fitted transformers without letting the file run code.

A pickle can call any importable function while it loads (``os.system`` included), so
pickles and joblib files go through an unpickler that resolves only scikit-learn
estimator classes and the numpy and builtin names fitted transformers hold; anything
else stops the load before it is called. (Estimators the exporter does not support
load, to be refused with their step path.) ``.skops`` files are loaded by skops,
trusting only the supported types.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any
from unittest import mock

from exporter.errors import ExportError
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
    return names


PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
SUFFIXES = (*PICKLE_SUFFIXES, ".skops")


class _Refusing:
    """Mixin for unpicklers: resolve only allowed globals."""

    path: str = ""

    def find_class(self, module: str, name: str) -> Any:
        if name in allowed().get(module, ()):
            return super().find_class(module, name)  # type: ignore[misc]
        if module.startswith("sklearn."):  # any estimator class: refused later by name, with its step path
            from sklearn.base import BaseEstimator

            found = super().find_class(module, name)  # type: ignore[misc]
            if isinstance(found, type) and issubclass(found, BaseEstimator):
                return found
        raise ExportError(
            f"{self.path}: refusing to load {module}.{name}: only scikit-learn transformers the exporter "
            "supports (and the numpy types they hold) may be unpickled"
        )


def _load_joblib(path: Path) -> Any:
    try:
        import joblib
    except ImportError:
        raise ExportError(f"{path}: reading transformers needs scikit-learn (pip install scikit-learn)") from None
    import joblib.numpy_pickle as numpy_pickle

    class RestrictedNumpyUnpickler(_Refusing, numpy_pickle.NumpyUnpickler):
        pass

    RestrictedNumpyUnpickler.path = str(path)
    with mock.patch.object(numpy_pickle, "NumpyUnpickler", RestrictedNumpyUnpickler):
        return joblib.load(path)


def _load_skops(path: Path) -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise ExportError(f"{path}: reading .skops files needs the skops package (pip install skops)") from None
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if t.rsplit(".", 1)[-1] not in allowed().get(t.rsplit(".", 1)[0], ())]
    if refused:
        raise ExportError(f"{path}: refusing to load untrusted types {refused}")
    return sio.load(path, trusted=untrusted)


def load_transformer_file(path: str | Path) -> Any:
    """The fitted transformer in a .pkl/.pickle/.joblib/.skops file, loaded safely."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such transformer file")
    if path.suffix not in SUFFIXES:
        raise ExportError(f"{path}: expected a transformer file ({', '.join(SUFFIXES)})")
    try:
        if path.suffix == ".skops":
            return _load_skops(path)
        return _load_joblib(path)  # joblib reads plain and compressed pickles alike
    except ExportError:
        raise
    except Exception as err:  # a damaged pickle raises many types
        raise ExportError(f"{path}: cannot read the transformer ({type(err).__name__}: {err})") from None
