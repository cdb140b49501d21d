"""A model set from a TOML manifest: several chains exported into one ``.c``, one ``.h`` (one library).

Lamarr loads a whole set (acceptance, efficiency, resolution, covariance...) from one shared
library by symbol, so the manifest lists every model under the symbol it gets::

    [models.resolution]
    model = "resolution.keras"            # or flax = "pkg.module:Class" with flax_kwargs, params, n_inputs
    log_columns = [1]
    preprocess = ["resolution_tX.pkl"]
    target_transform = "resolution_tY.pkl"
    noise = 128
    trust = ["lamarr_utils"]              # your modules the transformer files may load (from this folder)

Relative paths resolve against the manifest's folder. Every error names the manifest, the entry
and the key (``models.toml: [models.resolution] noise: ...``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporter.backend.naming import check_symbol
from exporter.errors import ExportError
from exporter.spec import ModelSpec, Words, kwargs_from_json

if TYPE_CHECKING:
    from exporter.api import Export
    from exporter.backend import CSource
    from exporter.progress import Progress

KEYS = (
    "model flax flax_kwargs params n_inputs preprocess log_columns target_transform output_activation noise trust"
).split()


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


class _Reader:
    """Checks one entry's values, each error naming the manifest, the entry and the key."""

    def __init__(self, words: Words, folder: Path, table: dict[str, Any]):
        self.words = words
        self.folder = folder
        self.table = table

    def get(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        value = self.table.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise self.words.about(key, f"expected {what}, got {value!r}")
        return value

    def path(self, key: str, value: Any = None) -> Path | None:
        value = self.get(key, str, "a file path (a string)") if value is None else value
        if value is None:
            return None
        path = self.folder / value
        if not (path.is_file() or (key == "model" and path.is_dir())):  # a model may be a SavedModel folder
            raise self.words.about(key, f"{path}: no such file")
        return path

    def strings(self, key: str, what: str) -> list[str]:
        values = self.get(key, list, f"a list of {what}") or []
        if not all(isinstance(v, str) for v in values):
            raise self.words.about(key, f"expected a list of {what} (strings), got {values!r}")
        return values

    def ints(self, key: str) -> list[int]:
        values = self.get(key, list, "a list of integers") or []
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise self.words.about(key, f"expected a list of integers >= 0, got {values!r}")
        return values


def _entry(manifest: Path, symbol: str, table: Any) -> ModelSpec:
    if not isinstance(table, dict):
        raise ExportError(f"{manifest}: models.{symbol}: expected a table of keys ([models.{symbol}])")
    words = Words(where=f"{manifest}: [models.{symbol}]")
    r = _Reader(words, manifest.parent, table)
    with words.wording():
        check_symbol(symbol)
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise words.about(unknown[0], f"unknown key (the keys are {', '.join(KEYS)})")
    pre = r.strings("preprocess", "file paths")
    flax_kwargs = r.get("flax_kwargs", (dict, str), "a table or a JSON string") or {}
    if isinstance(flax_kwargs, str):
        with words.wording():
            flax_kwargs = kwargs_from_json(flax_kwargs)
    entry = ModelSpec(
        symbol,
        model=r.path("model"),
        flax=r.get("flax", str, "PKG.MODULE:CLASS"),
        flax_kwargs=flax_kwargs,
        params=r.path("params"),
        n_inputs=r.get("n_inputs", int, "an integer"),
        preprocess=[r.path("preprocess", p) for p in pre],  # type: ignore[misc]
        log_columns=r.ints("log_columns"),
        target_transform=r.path("target_transform"),
        output_activation=r.get("output_activation", str, "a string"),
        noise=r.get("noise", int, "an integer") or 0,
        trust=r.strings("trust", "module names"),
        import_from=manifest.parent,
        words=words,
    )
    entry.check()
    return entry


def read_manifest(path: str | Path) -> list[ModelSpec]:
    """The manifest's entries, in file order, checked (files exist, keys known, values typed)."""
    path = Path(path)
    try:
        data = _toml().loads(path.read_text())
    except OSError as err:
        raise ExportError(f"{path}: cannot read the manifest ({err.strerror or err})") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ExportError(f"{path}: not valid TOML ({err})") from None
    extra = sorted(set(data) - {"models"})
    if extra:
        raise ExportError(f"{path}: {extra[0]}: unknown top-level key (models go in [models.SYMBOL] tables)")
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise ExportError(f"{path}: no models: list each as a [models.SYMBOL] table")
    return [_entry(path, symbol, table) for symbol, table in models.items()]


@dataclass
class ModelSet:
    """Every model of a manifest, exported into one ``.c`` and ``.h`` (one library) named ``name``.

    The pipeline's spec for a manifest (``exporter.pipeline.Exportable``).
    """

    name: str
    manifest: Path
    specs: list[ModelSpec]

    @property
    def title(self) -> str:
        return str(self.manifest)

    def files(self) -> list[Path]:
        return [self.manifest, *(p for spec in self.specs for p in spec.files())]

    def exports(self, progress: Progress) -> list[Export]:
        """Every entry exported; the C functions must be unique across the set."""
        exports: list[Export] = []
        for spec in self.specs:
            progress.say(f"model {spec.name}")
            exports.append(spec.build())
        functions = [f for ex in exports for f in ex.source.functions]
        clash = sorted({f for f in functions if functions.count(f) > 1})
        if clash:
            raise ExportError(f"{self.manifest}: two models export the same C function {clash[0]!r}: rename one")
        return exports

    def combine(self, parts: list[CSource]) -> CSource:
        from exporter.backend import render_set

        return render_set(self.name, self.manifest.name, parts)

    def rows_title(self, exports: list[Export]) -> str:
        return self.manifest.name
