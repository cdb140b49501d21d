"""The slices a pipeline's stages read, as a manifest writes them (``input[0:5]``, ``rich[2]``, ``gpid``).

Their bounds become an IR ``Read`` once the source's width is known (``exporter.ir.pipeline``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from exporter.ir.pipeline import Read

_SLICE = re.compile(r"(?P<source>[A-Za-z_][A-Za-z0-9_]*)(?P<bracket>\[(?P<start>\d*)(?P<colon>:(?P<stop>\d*))?\])?\Z")


@dataclass(frozen=True)
class WrittenSlice:
    """A slice as written (``rich[0:4]``); its bounds are known once the source's width is."""

    source: str
    start: int | None
    stop: int | None
    text: str

    def resolve(self, width: int) -> Read:
        start = 0 if self.start is None else self.start
        return Read(self.source, start, width if self.stop is None else self.stop)


def parse_slice(text: str) -> WrittenSlice:
    """``name``, ``name[i]``, ``name[a:b]``, ``name[a:]``, ``name[:b]`` (indices from 0, ``b`` excluded)."""
    found = _SLICE.match(text.replace(" ", "")) if isinstance(text, str) else None
    if found is None or (found["bracket"] and not found["colon"] and not found["start"]):
        raise ValueError(f"{text!r}: expected NAME, NAME[i] or NAME[a:b] (NAME: input or a stage)")
    start = int(found["start"]) if found["start"] else None
    stop = int(found["stop"]) if found["stop"] else None
    if found["bracket"] and not found["colon"]:
        stop = int(found["start"]) + 1  # NAME[i]: one value
    return WrittenSlice(found["source"], start, stop, text)
