"""A model set from a TOML manifest: several chains exported into one ``.c``, one ``.h`` (one library).

Lamarr loads a whole set (acceptance, efficiency, resolution, covariance...) from one shared
library by symbol, so the manifest lists every model under the symbol it gets::

    [models.resolution]
    model = "resolution.keras"            # or flax = "pkg.module:Class" with flax_kwargs, params, n_inputs
    log_columns = [1]
    preprocess = ["resolution_tX.pkl"]
    target_transform = "resolution_tY.pkl"
    noise = 128

Relative paths resolve against the manifest's folder. Every error names the manifest, the entry
and the key (``models.toml: [models.resolution] noise: ...``).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.api import OUTPUT_ACTIVATIONS, Export, export_chain, export_flax
from exporter.backend import CSource, render_set
from exporter.backend.naming import check_symbol
from exporter.errors import ExportError
from exporter.parity import ParityReport

KEYS = "model flax flax_kwargs params n_inputs preprocess log_columns target_transform output_activation noise".split()


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


@dataclass
class Entry:
    """One model of the manifest, its values checked and its paths resolved."""

    symbol: str
    model: Path | None = None
    flax: str | None = None
    flax_kwargs: dict[str, Any] = field(default_factory=dict)
    params: Path | None = None
    n_inputs: int | None = None
    preprocess: list[Path] = field(default_factory=list)
    log_columns: list[int] = field(default_factory=list)
    target_transform: Path | None = None
    output_activation: str | None = None
    noise: int = 0

    def files(self) -> list[Path]:
        """The files this model is made from (a build system's dependencies)."""
        return [p for p in (self.model, self.params, *self.preprocess, self.target_transform) if p is not None]


class _Reader:
    """Checks one entry's values, each error naming the manifest, the entry and the key."""

    def __init__(self, manifest: Path, symbol: str, table: dict[str, Any]):
        self.where = f"{manifest}: [models.{symbol}]"
        self.folder = manifest.parent
        self.table = table

    def fail(self, key: str, message: str) -> ExportError:
        return ExportError(f"{self.where} {key}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        value = self.table.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise self.fail(key, f"expected {what}, got {value!r}")
        return value

    def path(self, key: str, value: Any = None) -> Path | None:
        value = self.get(key, str, "a file path (a string)") if value is None else value
        if value is None:
            return None
        path = self.folder / value
        if not (path.is_file() or (key == "model" and path.is_dir())):  # a model may be a SavedModel folder
            raise self.fail(key, f"{path}: no such file")
        return path

    def ints(self, key: str) -> list[int]:
        values = self.get(key, list, "a list of integers") or []
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise self.fail(key, f"expected a list of integers >= 0, got {values!r}")
        return values


def _entry(manifest: Path, symbol: str, table: Any) -> Entry:
    if not isinstance(table, dict):
        raise ExportError(f"{manifest}: models.{symbol}: expected a table of keys ([models.{symbol}])")
    r = _Reader(manifest, symbol, table)
    try:
        check_symbol(symbol)
    except ExportError as err:
        raise ExportError(f"{r.where}: {err}") from None
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise r.fail(unknown[0], f"unknown key (the keys are {', '.join(KEYS)})")
    pre = r.get("preprocess", list, "a list of transformer files")
    if pre is not None and not all(isinstance(p, str) for p in pre):
        raise r.fail("preprocess", f"expected a list of file paths, got {pre!r}")
    activation = r.get("output_activation", str, "a string")
    if activation not in (None, *OUTPUT_ACTIVATIONS):
        raise r.fail("output_activation", f"{activation!r}: choose one of {', '.join(OUTPUT_ACTIVATIONS)}")
    noise = r.get("noise", int, "an integer") or 0
    if noise < 0:
        raise r.fail("noise", f"expected an integer >= 0, got {noise}")
    flax_kwargs = r.get("flax_kwargs", (dict, str), "a table or a JSON string") or {}
    if isinstance(flax_kwargs, str):
        try:
            flax_kwargs = json.loads(flax_kwargs)
        except json.JSONDecodeError as err:
            raise r.fail("flax_kwargs", f"not valid JSON ({err})") from None
    entry = Entry(
        symbol,
        model=r.path("model"),
        flax=r.get("flax", str, "PKG.MODULE:CLASS"),
        flax_kwargs=flax_kwargs,
        params=r.path("params"),
        n_inputs=r.get("n_inputs", int, "an integer"),
        preprocess=[r.path("preprocess", p) for p in pre or []],  # type: ignore[misc]
        log_columns=r.ints("log_columns"),
        target_transform=r.path("target_transform"),
        output_activation=activation,
        noise=noise,
    )
    if (entry.model is None) == (entry.flax is None):
        raise r.fail("model", "give exactly one of model (a Keras file) or flax (a linen module)")
    if entry.flax is None and (entry.params or entry.n_inputs is not None or table.get("flax_kwargs")):
        raise r.fail("params", "flax_kwargs, params and n_inputs go with flax")
    if entry.flax is not None and noise:
        raise r.fail("noise", "generators are Keras models (flax takes no noise)")
    return entry


def read_manifest(path: str | Path) -> list[Entry]:
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


def export_entry(entry: Entry, manifest: Path) -> Export:
    """The chain of one entry, errors prefixed with the entry."""
    where = f"{manifest}: [models.{entry.symbol}]"
    chain: dict[str, Any] = {
        "preprocess": entry.preprocess,
        "log_columns": entry.log_columns,
        "target_transform": entry.target_transform,
        "output_activation": entry.output_activation,
        "name": entry.symbol,
    }
    try:
        if entry.flax is not None:
            from exporter.frontends.flax import load_flax_cli

            with _on_path(manifest.parent):
                module, params = load_flax_cli(
                    entry.flax,
                    json.dumps(entry.flax_kwargs),
                    str(entry.params) if entry.params else None,
                    entry.n_inputs,
                )
            return export_flax(module, params, n_inputs=entry.n_inputs or 0, **chain)
        return export_chain(entry.model, noise=entry.noise, **chain)
    except ExportError as err:
        raise ExportError(f"{where}: {err}") from None


@contextlib.contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    """The manifest's folder on ``sys.path`` while its Flax modules are imported by name."""
    entry = str(folder.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)


@dataclass
class ModelSet:
    """Every model of a manifest, exported; rendered together into one file."""

    name: str
    manifest: Path
    exports: list[Export]

    def source(self, reports: dict[str, ParityReport | None] | None = None) -> CSource:
        """The set's C and header; with ``reports``, each model's banner states its verdict."""
        reports = reports or {}
        parts = [ex.final_source(reports.get(ex.symbol)) for ex in self.exports]
        return render_set(self.name, self.manifest.name, parts)


def export_manifest(path: str | Path, name: str, on_entry: Callable[[str], None] | None = None) -> ModelSet:
    """Read the manifest and export every entry; symbols must be unique across the set."""
    path = Path(path)
    exports: list[Export] = []
    for entry in read_manifest(path):
        if on_entry is not None:
            on_entry(entry.symbol)
        exports.append(export_entry(entry, path))
    functions = [f for ex in exports for f in ex.source.functions]
    clash = sorted({f for f in functions if functions.count(f) > 1})
    if clash:
        raise ExportError(f"{path}: two models export the same C function {clash[0]!r}: rename one of them")
    return ModelSet(name, path, exports)
