"""One restricted unpickler for every container a pickle comes in, and what it lets a pickle do.

``joblib.load`` picks its unpickler by the file's first bytes, and one of them (joblib < 0.10's
"ZF" format) is a class nobody restricted: a file could run ``os.system`` while it loaded. So the
exporter reads the container itself (the magic bytes joblib writes: gzip, bz2, xz, lzma, zlib, or
none), decompresses with the standard library, and runs this one unpickler on every stream;
joblib's code only reads the raw bytes of the arrays it stored (``NumpyArrayWrapper.read_array``,
never for object arrays: those are nested pickles, read by this unpickler again).

Which names a pickle may use is the resolver's business (``safe_load.py``); what it may *do* with
them is this module's. Pickle opcodes call objects in many places: ``REDUCE``, ``INST``/``OBJ`` and
``NEWOBJ`` call what the file names, ``BUILD`` calls ``__setstate__``, ``APPEND``/``SETITEM``/
``ADDITEMS`` call ``append``/``__setitem__``/``add`` of whatever lies on the stack, and building a
dict or set hashes its keys. Here only callables the resolver marks as safe to call (numpy's array
and dtype reconstructors, scikit-learn's Cython types, a few builtins) are called, and only with plain
data (numbers, strings, bytes, non-object arrays, containers of them, other safe callables). The
user's trusted classes are rebuilt (``__new__`` and ``__setstate__``) and their functions kept as
references, never called while loading; containers are filled with the builtin methods, keys must be
plain data, and nothing sets attributes on a class or function.
"""

from __future__ import annotations

import _compat_pickle
import bz2
import functools
import gzip
import io
import lzma
import pickle
import types
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from exporter.common.errors import ExportError

# module, name -> the object and its role: CALL (a library's, safe to call with plain data while loading),
# NAME (a library's, used as data only), TRUSTED (the user's: rebuilt or referenced, never called)
Resolver = Callable[[str, str], tuple[Any, str]]
CALL, NAME, TRUSTED = "call", "name", "trusted"

LEGACY = (
    "a joblib file in the format of joblib before 0.10 (it starts with ZF, or keeps its arrays in "
    "companion files): that format is not read, as its arrays are loaded by numpy's own unpickler. "
    "Load it with a current joblib where you trust it, and save it again with joblib.dump"
)
_DECOMPRESS: dict[bytes, Callable[[bytes], bytes]] = {  # joblib's compressors by their magic bytes
    b"\x1f\x8b": gzip.decompress,
    b"BZ": bz2.decompress,
    b"\xfd7zXZ": lzma.decompress,
    b"\x5d\x00": lzma.decompress,
    b"\x78": zlib.decompress,
}


def open_stream(path: Path) -> BinaryIO:
    """The pickle stream in a plain, joblib-compressed or legacy file (refused), read with the stdlib."""
    data = path.read_bytes()
    if data.startswith(b"ZF"):
        raise ExportError(f"{path}: {LEGACY}")
    if data.startswith(b"\x04\x22\x4d\x18"):
        raise ExportError(f"{path}: lz4-compressed joblib files are not read: save it with compress=('gzip', 3)")
    magic = next((m for m in _DECOMPRESS if data.startswith(m)), None)
    return io.BytesIO(_DECOMPRESS[magic](data) if magic else data)


def name_of(obj: Any) -> str:
    """``module.qualname`` of a class or function (of its type for anything else), for messages."""
    named = obj if hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(named, '__module__', None) or '?'}.{named.__qualname__}"


_SCALARS = (type(None), bool, int, float, complex, str, bytes, bytearray)
_CONTAINERS = (tuple, list, frozenset, set, dict)


def _numpy_owned(x: Any) -> bool:
    """A numpy dtype, scalar or random bit generator of numpy's own types (their methods are numpy's code)."""
    owned = (np.dtype, np.generic, np.random.BitGenerator, np.random.SeedSequence)
    return isinstance(x, owned) and type(x).__module__.startswith("numpy")


def _sound(dtype: np.dtype, depth: int = 0) -> bool:
    """A dtype whose records hold their fields (numpy's ``__setstate__`` takes any offsets: reading such a
    field reads outside the array) and no Python objects (pointers read from the file's bytes)."""
    if dtype == np.dtype(object):
        return depth == 0
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return depth < 8 and base.itemsize * int(np.prod(shape)) <= dtype.itemsize and _sound(base, depth + 1)
    for sub, offset, *_ in (dtype.fields or {}).values():
        if depth >= 8 or offset < 0 or offset + sub.itemsize > dtype.itemsize or not _sound(sub, depth + 1):
            return False
    return True


# what BUILD may not set attributes on: classes and functions (their behaviour, for everything after)
_NOT_BUILT = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, np.ufunc)


@functools.cache
def _array_wrapper() -> type:
    """joblib's placeholder for an array whose bytes follow in the stream."""
    from joblib.numpy_pickle import NumpyArrayWrapper

    return NumpyArrayWrapper


class RestrictedUnpickler(pickle._Unpickler):  # the Python implementation: its opcodes can be replaced
    """Unpickles with the resolver's names, calling only what it marks safe, with plain data."""

    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, stream: BinaryIO, path: str, resolve: Resolver):
        super().__init__(stream)
        self.path, self.resolve = path, resolve
        # ids of module-level objects the resolver returned: safe to call, and the library's (plain data)
        self.callable: set[int] = set()
        self.library: set[int] = set()
        self.built: dict[int, Any] = {}  # objects whose state was set (kept alive, so ids stay theirs)
        # what joblib's NumpyArrayWrapper.read_array reads the arrays' raw bytes through
        self.file_handle, self.np, self.mmap_mode = stream, np, None

    def refuse(self, what: str) -> ExportError:
        return ExportError(f"{self.path}: refusing to load: {what}")

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:  # Python 2 names, as pickle maps them
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        obj, role = self.resolve(module, name)
        if role == CALL:
            self.callable.add(id(obj))
        if role != TRUSTED:
            self.library.add(id(obj))
        return obj

    def plain(self, x: Any, depth: int = 0) -> bool:
        """Data whose use runs no code but the interpreter's and numpy's: numbers, strings, non-object
        arrays, numpy dtypes and scalars, builtin containers of them, and the library's names."""
        if type(x) in _SCALARS or _numpy_owned(x) or id(x) in self.library:
            return True
        if type(x) is np.ndarray:
            return not x.dtype.hasobject
        if type(x) in _CONTAINERS and depth < 32:
            items = [*x.keys(), *x.values()] if type(x) is dict else x
            return all(self.plain(item, depth + 1) for item in items)
        return False

    def key(self, key: Any) -> Any:
        """A dict key or set member: plain, so hashing it runs no code of the file's classes."""
        if not self.plain(key):
            raise self.refuse(f"a dict key or set member of type {name_of(key)} (hashing it would run its code)")
        return key

    def call(self, func: Any, args: Any) -> Any:
        if id(func) not in self.callable:
            raise self.refuse(
                f"the file calls {name_of(func)} while loading. A fitted transformer's file names its "
                "functions (a FunctionTransformer's func) and rebuilds its objects, but never calls a "
                "function as it loads; trusting a module does not allow that"
            )
        if type(args) is not tuple or not all(self.plain(a) for a in args):
            kinds = ", ".join(name_of(a) for a in args) if type(args) is tuple else name_of(args)
            raise self.refuse(f"the file calls {name_of(func)} with ({kinds}) while loading: only plain data allowed")
        return func(*args)

    def new(self, cls: Any, args: Any, kwargs: Any = None) -> Any:
        """``cls.__new__(cls, *args)`` (NEWOBJ): a class, rebuilt; arguments only for the user's trusted
        classes (never an array: numpy's ``__new__`` reads memory from its arguments)."""
        if not isinstance(cls, type):
            raise self.refuse(f"the file builds an object of {name_of(cls)}, which is not a class")
        if type(args) is not tuple or (kwargs is not None and type(kwargs) is not dict):
            raise self.refuse(f"the arguments of {name_of(cls)}.__new__ are not a tuple and a dict")
        library = id(cls) in self.library or issubclass(cls, np.ndarray)
        if (args or kwargs) and (library or not self.plain((args, kwargs))):
            raise self.refuse(f"the file builds {name_of(cls)} with arguments")
        return cls.__new__(cls, *args, **(kwargs or {}))

    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self.call(self.stack[-1], args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self.new(self.stack[-1], args)

    def load_newobj_ex(self) -> None:
        kwargs, args = self.stack.pop(), self.stack.pop()
        self.stack[-1] = self.new(self.stack[-1], args, kwargs)

    def _instantiate(self, klass: Any, args: list[Any]) -> None:  # INST and OBJ, as pickle's own
        if args or not isinstance(klass, type) or hasattr(klass, "__getinitargs__"):
            self.append(self.call(klass, tuple(args)))
        else:
            self.append(self.new(klass, ()))

    def load_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, _NOT_BUILT):
            raise self.refuse(f"the file sets the state of {name_of(inst)} itself")
        if type(state) not in (dict, tuple, list, *_SCALARS):
            raise self.refuse(f"the state of a {name_of(inst)} is a {name_of(state)}")
        if id(inst) in self.built:  # scikit-learn's Tree corrupts its memory when its state is set again
            raise self.refuse(f"the file sets the state of a {name_of(inst)} twice")
        self.built[id(inst)] = inst
        super().load_build()
        built = self.stack[-1]
        if isinstance(built, np.dtype) and not _sound(built):
            raise self.refuse(f"a numpy dtype with fields outside its {built.itemsize}-byte items, or objects in them")
        if isinstance(built, _array_wrapper()):  # joblib: the array's bytes follow in the stream
            self.stack[-1] = self.wrapped_array(built)

    def wrapped_array(self, wrapper: Any) -> np.ndarray:
        """The array a joblib ``NumpyArrayWrapper`` stands for: raw bytes (joblib's reader), or for
        object arrays the nested pickle joblib writes, read by this unpickler."""
        dtype, shape = getattr(wrapper, "dtype", None), getattr(wrapper, "shape", None)
        order = getattr(wrapper, "order", None)
        if not isinstance(dtype, np.dtype) or type(shape) is not tuple or order not in ("C", "F"):
            raise self.refuse("a joblib array without a numpy dtype, a shape and an order")
        if not dtype.hasobject:
            return wrapper.read_array(self, ensure_native_byte_order=True)
        array = type(self)(self.file_handle, self.path, self.resolve).load()
        if type(array) is not np.ndarray:
            raise self.refuse(f"a joblib object array that is a {name_of(array)}")
        return array

    def load_append(self) -> None:
        value = self.stack.pop()
        list.append(self._target(list), value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        list.extend(self._target(list), items)

    def load_setitem(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        dict.__setitem__(self._target(dict), self.key(key), value)

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self._target(dict)
        for i in range(0, len(items) - 1, 2):
            dict.__setitem__(target, self.key(items[i]), items[i + 1])

    def load_additems(self) -> None:
        items = self.pop_mark()
        set.update(self._target(set), [self.key(item) for item in items])

    def load_dict(self) -> None:
        items = self.pop_mark()
        self.append({self.key(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)})

    def load_frozenset(self) -> None:
        self.append(frozenset(self.key(item) for item in self.pop_mark()))

    def _target(self, kind: type) -> Any:
        """The container on the stack an opcode adds to: a ``kind`` (its methods, not the subclass's)."""
        target = self.stack[-1]
        if not isinstance(target, kind):
            raise self.refuse(f"the file adds items to a {name_of(target)}, not a {kind.__name__}")
        return target


for _opcode, _method in (
    (pickle.REDUCE, RestrictedUnpickler.load_reduce),
    (pickle.NEWOBJ, RestrictedUnpickler.load_newobj),
    (pickle.NEWOBJ_EX, RestrictedUnpickler.load_newobj_ex),
    (pickle.BUILD, RestrictedUnpickler.load_build),
    (pickle.APPEND, RestrictedUnpickler.load_append),
    (pickle.APPENDS, RestrictedUnpickler.load_appends),
    (pickle.SETITEM, RestrictedUnpickler.load_setitem),
    (pickle.SETITEMS, RestrictedUnpickler.load_setitems),
    (pickle.ADDITEMS, RestrictedUnpickler.load_additems),
    (pickle.DICT, RestrictedUnpickler.load_dict),
    (pickle.FROZENSET, RestrictedUnpickler.load_frozenset),
):
    RestrictedUnpickler.dispatch[_opcode[0]] = _method


def load_pickle(path: Path, resolve: Resolver) -> Any:
    """The object in a pickle or joblib file (any compression joblib writes), restricted throughout."""
    with open_stream(path) as stream:
        return RestrictedUnpickler(stream, str(path), resolve).load()
