"""UBJSON (XGBoost's ``.ubj`` model files) decoded without recursion and within the file's own bounds.

Hand-written because PyPI has no well-kept pure-Python decoder: py-ubjson's last release is from
2020, bjdata decodes BJData (little-endian, not UBJSON). XGBoost writes big-endian UBJSON: objects
whose keys are a length and bytes, strings, numbers, and strongly typed arrays (``[$d#L<count>``
then the raw float32s), which become numpy arrays here in one step.

A file is untrusted: every length and count is checked against the bytes left before anything is
allocated (an element takes at least one byte, a typed one its size), containers nest at most
``MAX_DEPTH`` deep (an explicit stack, no recursion), and typed containers of types that take no
bytes (null, booleans) are refused, so a small file cannot ask for a huge loop or array.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

MAX_DEPTH = 64  # XGBoost's files nest 8 deep
_NUMBERS = {  # marker: (struct format, numpy dtype), big-endian
    "i": (">b", ">i1"),
    "U": (">B", ">u1"),
    "I": (">h", ">i2"),
    "l": (">i", ">i4"),
    "L": (">q", ">i8"),
    "d": (">f", ">f4"),
    "D": (">d", ">f8"),
}
_INTEGERS = "iUIlL"


class UBJSONError(ValueError):
    """The bytes are not UBJSON this reader takes; the message says where (a byte offset) and what."""


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def fail(self, what: str) -> UBJSONError:
        return UBJSONError(f"at byte {self.at}: {what}")

    def take(self, n: int) -> bytes:
        if n < 0 or n > len(self.data) - self.at:
            raise self.fail(f"{n} bytes wanted, {len(self.data) - self.at} left (truncated or a wrong length)")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def marker(self) -> str:
        while True:
            m = chr(self.take(1)[0])
            if m != "N":  # no-op
                return m

    def number(self, m: str) -> int | float:
        fmt = _NUMBERS[m][0]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def length(self, m: str | None = None) -> int:
        m = m or self.marker()
        if m not in _INTEGERS:
            raise self.fail(f"a length must be an integer, not marker {m!r}")
        n = int(self.number(m))
        if n < 0 or n > len(self.data) - self.at:
            raise self.fail(f"length {n} with {len(self.data) - self.at} bytes left")
        return n

    def text(self) -> str:
        raw = self.take(self.length())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a string that is not UTF-8") from None

    def scalar(self, m: str) -> Any:
        if m in _NUMBERS:
            return self.number(m)
        if m in "SH":
            text = self.text()
            return text if m == "S" else float(text)
        if m == "C":
            return chr(self.take(1)[0])
        if m in "TFZ":
            return {"T": True, "F": False, "Z": None}[m]
        raise self.fail(f"unknown marker {m!r}")

    def header(self) -> tuple[str | None, int | None]:
        """A container's optional ``$type`` and ``#count``, the count bounded by the bytes left."""
        kind = count = None
        if self.data[self.at : self.at + 1] == b"$":
            self.at += 1
            kind = self.marker()
            if kind not in _NUMBERS and kind not in "SCH[{":
                raise self.fail(f"a typed container of {kind!r}, which takes no bytes per element")
        if self.data[self.at : self.at + 1] == b"#":
            self.at += 1
            count = self.length()
        elif kind is not None:
            raise self.fail("a typed container without a count")
        return kind, count


def _typed_array(r: _Reader, kind: str, count: int) -> np.ndarray:
    dtype = np.dtype(_NUMBERS[kind][1])
    raw = r.take(count * dtype.itemsize)
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))


def decode(data: bytes) -> Any:
    """The one value the bytes hold (objects as dicts, typed numeric arrays as numpy arrays)."""
    r = _Reader(data)
    stack: list[list[Any]] = []  # frames: [container, type, elements left or None, key]

    def opened(m: str) -> Any:
        """A value starting with marker ``m``: a scalar, a typed array, or a container pushed on the stack."""
        if m not in "[{":
            return r.scalar(m)
        kind, count = r.header()
        if m == "[" and kind in _NUMBERS and count is not None:
            return _typed_array(r, kind, count)
        if len(stack) >= MAX_DEPTH:
            raise r.fail(f"containers nested more than {MAX_DEPTH} deep")
        container: Any = [] if m == "[" else {}
        stack.append([container, kind, count, None])
        return container

    root = opened(r.marker())
    while stack:
        frame = stack[-1]
        container, kind, left, key = frame
        if left == 0 or (left is None and r.data[r.at : r.at + 1] in (b"]", b"}")):
            end = r.take(1) if left is None else b"]" if isinstance(container, list) else b"}"
            if end != (b"]" if isinstance(container, list) else b"}"):
                raise r.fail("a container closed by the wrong bracket")
            stack.pop()
            continue
        if isinstance(container, dict) and key is None:
            frame[3] = r.text()  # a key: a length and its bytes, no marker
            continue
        if left is not None:
            frame[2] = left - 1
        value = opened(kind or r.marker())
        if isinstance(container, list):
            container.append(value)
        else:
            container[key] = value
            frame[3] = None
    if r.at != len(data):
        raise r.fail(f"{len(data) - r.at} bytes after the end of the value")
    return root
