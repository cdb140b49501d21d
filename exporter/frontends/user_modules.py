"""The user's own modules, imported from their folder under the names the user gave, and nothing else.

A trusted module (``--trust lamarr_utils``) or a Flax module (``--flax pkg.model:Net``) lives in the
working directory or a manifest's folder. Putting that folder on ``sys.path`` for the build would let
every file there shadow a module imported later: a ``joblib.py`` or ``uuid.py`` lying beside a
downloaded model would run in place of the real one. So the folder is offered to the import system for the named
top-level modules only (a finder ahead of the others, while the build runs); everything else is
imported as if the folder did not exist. No bytecode cache is written into the user's folder.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterable, Iterator
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType


def top_level(module: str) -> str:
    """``pkg`` of ``pkg.sub.mod``: the name the folder is searched for."""
    return module.partition(".")[0]


class _NamedModulesOf(importlib.abc.MetaPathFinder):
    """Finds the top-level modules in ``names`` in ``folder`` (a ``.py`` file, a package or an extension)."""

    def __init__(self, folder: Path, names: frozenset[str]):
        self.folder = folder
        self.names = names

    def find_spec(self, fullname: str, path: object = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if path is not None or fullname not in self.names:
            return None  # submodules are found through their package's own __path__
        return importlib.machinery.PathFinder.find_spec(fullname, [str(self.folder)])


@contextlib.contextmanager
def importable(folder: Path, modules: Iterable[str]) -> Iterator[None]:
    """While the block runs, ``modules`` (and their submodules) import from ``folder`` before anywhere else."""
    finder = _NamedModulesOf(folder.resolve(), frozenset(top_level(m) for m in modules))
    writing = sys.dont_write_bytecode
    sys.meta_path.insert(0, finder)
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.dont_write_bytecode = writing


def exists(module: str) -> bool:
    """Whether ``module``'s top-level package can be found (in the offered folder or installed), without running it."""
    name = top_level(module)
    return name in sys.modules or importlib.util.find_spec(name) is not None
