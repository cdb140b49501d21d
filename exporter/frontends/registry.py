"""The one shape of every frontend's table of names: Keras layers, operations and TensorFlow functions,
Keras and jax.nn activations, scikit-learn transformers and tree families.

Why one class: each frontend maps a name (a class, a function) to what translates it, and the rules
are the same everywhere. A built-in name is declared once: a second declaration is a mistake, raised
when the module is imported, not a silent replacement found by a wrong export. The user's own
registrations (``exporter.register_layer``, ``register_transformer``) replace theirs on purpose, as
re-running a notebook cell does. ``names()`` lists what is supported, for messages and docs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class DuplicateName(ValueError):
    """A name declared twice in one registry."""


class Registry(Generic[K, V]):
    """Names -> what translates them, in declaration order. ``what`` names an entry in messages."""

    def __init__(self, what: str, entries: Mapping[K, V] | None = None):
        self.what = what
        self._entries: dict[K, V] = {}
        for key, value in (entries or {}).items():
            self.add(key, value)

    def add(self, key: K, value: V, *, replace: bool = False) -> None:
        """Declare ``key``; ``replace``: the user's registration, which may replace an earlier one."""
        if key in self._entries and not replace:
            raise DuplicateName(f"{self.what} {key!r} is declared twice")
        self._entries[key] = value

    def register(self, *keys: K) -> Callable[[V], V]:
        """Decorator: the decorated object is the entry of every key."""

        def declare(value: V) -> V:
            for key in keys:
                self.add(key, value)
            return value

        return declare

    def get(self, key: K) -> V | None:
        return self._entries.get(key)

    def __getitem__(self, key: K) -> V:
        try:
            return self._entries[key]
        except KeyError:
            raise KeyError(f"no {self.what} {key!r}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def names(self) -> list[K]:
        return list(self._entries)

    def items(self) -> list[tuple[K, V]]:
        return list(self._entries.items())

    @contextlib.contextmanager
    def restored(self) -> Iterator[None]:
        """Registrations made inside are undone on leaving: registries are global, a test's own stay in the test."""
        saved = dict(self._entries)
        try:
            yield
        finally:
            self._entries = saved
