"""Load fitted transformers without letting the file run code.

A pickle can call any importable function while it loads (``os.system`` included), so every
pickle and joblib file (plain, or compressed as joblib writes: ``unpickler.py`` reads the
container itself and refuses joblib's legacy ZF format) goes through one restricted unpickler.
This module says which names it resolves: scikit-learn estimator classes, numpy's ufuncs and the
numpy and builtin names fitted transformers hold, and the classes and functions defined in the
user's modules they trust (see ``trust.py``); anything else stops the load before it is called.
Which of them may be *called* while loading is narrower: numpy's and scikit-learn's reconstructors,
never the user's code (trust rebuilds classes and references functions). (Estimators the exporter
does not support load, to be refused with their step path.) ``.skops`` files are loaded by skops,
trusting only those types, and only in skops nodes that rebuild or reference them.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any

from exporter.common import interrupt
from exporter.common.errors import ExportError
from exporter.frontends.lean_imports import SKLEARN_OPTIONAL, without_optional_imports
from exporter.frontends.sklearn.scikinc import stand_in
from exporter.frontends.sklearn.tree_classes import LOADABLE as TREE_INTERNALS
from exporter.frontends.sklearn.trust import Trust
from exporter.frontends.sklearn.unpickler import CALL, LEGACY, NAME, TRUSTED, Resolver, load_pickle
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


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` (protocols 0 and 1) for plain objects only: no base class's code runs."""
    if not isinstance(cls, type) or base is not object or state is not None:
        raise ValueError(f"copyreg._reconstructor of {cls!r} on {base!r}: only plain objects are rebuilt")
    return object.__new__(cls)


def _encode(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode``, as protocols 0 to 2 store bytes: a str in latin-1."""
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise ValueError("_codecs.encode: only a string in latin-1 is decoded")
    return text.encode("latin1")


# what protocols 0 to 2 call while loading, as safe stand-ins or builtins that take plain data only
_CALLED = {
    ("copyreg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _encode,
    **{("builtins", f.__name__): f for f in (slice, complex, bytes, bytearray, set, frozenset)},
}
# numpy's functions that rebuild arrays, scalars and random states from plain data, called while loading
_NUMPY_CALLED = {"_reconstruct", "scalar", "_frombuffer", "__randomstate_ctor", "__bit_generator_ctor"}
_NUMPY_CALLED |= {"__generator_ctor"}


def _lookup(module: str, name: str) -> Any:
    found: Any = importlib.import_module(module)
    for part in name.split("."):
        found = getattr(found, part)
    return found


def _role(name: str, found: Any) -> str:
    """An allowed class (not ndarray: its ``__new__`` reads memory from its arguments) or one of
    numpy's and Cython's reconstructors; never a ufunc or numpy function a FunctionTransformer names."""
    import numpy as np

    if isinstance(found, type):
        return NAME if found is np.ndarray else CALL
    return CALL if name in _NUMPY_CALLED or name.startswith("__pyx_unpickle_") else NAME


def _from_main(path: str | Path, name: str) -> ExportError:
    return ExportError(
        f"{path}: refusing to load __main__.{name}: it was defined in the script that pickled it, so "
        f"the file does not say where its code is. Move {name} into a module of its own (my_module.py), "
        "import it from there, pickle the object again, and trust that module (--trust my_module)"
    )


def _resolver(path: str, trust: Trust) -> Resolver:
    """What the restricted unpickler may use from ``path``: allowed names, estimator classes (refused
    later by name, with their step path), scikinC's stand-ins, the user's trusted classes and functions."""

    def resolve(module: str, name: str) -> tuple[Any, str]:
        if (module, name) in _CALLED:
            return _CALLED[module, name], CALL
        if (module, name) == ("builtins", "object"):  # the base copyreg._reconstructor names
            return object, NAME
        if _allowed(module, name):
            found = _lookup(module, name)
            return found, _role(name, found)
        if module == "__main__":
            raise _from_main(path, name)
        if module.startswith("joblib.") and name in ("NDArrayWrapper", "ZNDArrayWrapper"):
            raise ExportError(f"{path}: {LEGACY}")
        if module.startswith("sklearn."):  # any estimator class: refused later by name, with its step path
            from sklearn.base import BaseEstimator

            found = _lookup(module, name)
            if isinstance(found, type) and issubclass(found, BaseEstimator):
                return found, NAME
        # scikinC's own classes are read by name and attributes, their module never imported (unless trusted)
        known = None if trust.covers(module) else stand_in(module, name)
        if known is not None:
            return known, NAME if isinstance(known, type) else CALL  # a TensorFlow constant: kept as an array
        trusted = trust.resolve(path, module, name)
        if trusted is not None:
            return trusted, TRUSTED  # rebuilt or referenced, never called while loading
        raise ExportError(
            f"{path}: refusing to load {module}.{name}: only scikit-learn transformers the exporter "
            "supports (and the numpy types they hold) may be unpickled"
        )

    return resolve


def _allowed(module: str, name: str) -> bool:
    """On the allow-list, or one of numpy's elementwise functions (a FunctionTransformer may hold any)."""
    import numpy as np

    ufunc = module == "numpy" and isinstance(getattr(np, name, None), np.ufunc)
    return ufunc or name in allowed().get(module, ())


def _load_joblib(path: Path, trust: Trust) -> Any:
    try:
        import joblib  # noqa: F401  (its array wrapper reads the arrays joblib stores)
    except ImportError:
        raise ExportError(f"{path}: reading transformers needs scikit-learn (pip install scikit-learn)") from None

    # scikit-learn starts up; the pickle imports its parts
    with interrupt.deferred(), without_optional_imports(SKLEARN_OPTIONAL):
        import sklearn.base  # noqa: F401

    return load_pickle(path, _resolver(str(path), trust))


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
    main = [t for t in refused if t.startswith("__main__.")]
    if main:
        raise _from_main(path, main[0].partition(".")[2])
    if refused:
        raise ExportError(f"{path}: refusing to load untrusted types {refused}")
    for loader, module, name in _skops_nodes(path):
        if trust.covers(module) and loader not in _SKOPS_REBUILDS:
            raise ExportError(
                f"{path}: refusing to load: the file calls {module}.{name} while loading (a skops {loader}); "
                "trusting a module rebuilds its classes and references its functions, it never runs them as they load"
            )
    return sio.load(path, trusted=untrusted)


# skops nodes that rebuild a class (``__new__``, ``__setstate__``) or reference a name; the others
# (DictNode, ListNode, ConstructorFromReduceNode, ReduceNode...) call the type they name
_SKOPS_REBUILDS = {"ObjectNode", "FunctionNode", "TypeNode"}


def _skops_nodes(path: Path) -> list[tuple[str, str, str]]:
    """Every node of a .skops file's schema: its loader, module and class name."""
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        pending: list[Any] = [json.loads(archive.read("schema.json"))]
    nodes = []
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if {"__loader__", "__module__", "__class__"} <= item.keys():
                nodes.append((str(item["__loader__"]), str(item["__module__"]), str(item["__class__"])))
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return nodes


def load_transformer_file(path: str | Path, trust: Trust | list[str] | tuple[str, ...] = ()) -> Any:
    """The fitted transformer in a .pkl/.pickle/.joblib/.skops file, loaded safely.

    ``trust`` names the user's modules whose classes and functions the file may use; they are
    imported as Python finds them (the model spec offers the working directory or the manifest's
    folder for those names only: ``exporter.frontends.user_modules``).
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
