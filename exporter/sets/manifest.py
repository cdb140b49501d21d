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
    # an ONNX model (model = "net.onnx") may fix its dynamic dimensions: input_shape = [12], or {x = [12]}

A pipeline (``[pipelines.NAME]``, see ``exporter/sets/pipelines.py``) calls models of the same manifest
in turn inside one C function::

    [pipelines.full_muon_pipe]
    n_inputs = 5
    n_random = 128                        # optional: checked against the stages' noise
    output = ["rich", "gpid[0:3]"]        # optional: default every stage's output, in order
    scikinc_names = true                  # optional: the stages' steps also as rich_tX, rich_dnn...

    [[pipelines.full_muon_pipe.stages]]
    model = "rich"                        # a [models.rich] entry
    reads = ["input[0:5]"]                # slices of input and of earlier stages, concatenated
    noise = 64                            # optional: checked against the model's

The export's options (``exporter.common.options.Options``) are keys too: ``math``, ``dtype``, ``dispatch``,
``trees`` (how a model's C is written), ``criterion``, ``atol``, ``rtol`` (how parity is judged: "float32", the default,
or "fixed" with its tolerances, which chosen alone choose it) and ``inputs``, ``outputs`` (the columns' names).
A model takes them all; a ``[defaults]`` table all but the names, for every entry; a pipeline all but
``math``, ``dtype``, ``dispatch``, ``trees`` (its C is its stages'). A key a table does not take is refused with the
reason. An entry's own keys win over ``[defaults]``, which win over the command line's ``--criterion``, ``--atol``,
``--rtol``; ``--math``, ``--dtype``, ``--dispatch``, ``--trees`` set what the manifest leaves unset, and contradicting
one of its keys is an error.

Relative paths resolve against the manifest's folder. Every error names the manifest, the entry
and the key (``models.toml: [models.resolution] noise: ...``; a pipeline's also the stage:
``models.toml: [pipelines.full] stage gpid reads: ...``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from exporter.backend.naming import check_symbol
from exporter.common.errors import ExportError
from exporter.common.options import DEFAULTS, FIELDS, NAMES, Options
from exporter.frontends.onnx import input_shapes
from exporter.frontends.sklearn.trust import Trust
from exporter.sets.pipelines import PipelineSpec, StageSpec, check_distinct
from exporter.spec import ModelSpec, Words, kwargs_from_json

if TYPE_CHECKING:
    from exporter.backend import CSource
    from exporter.check.subject import Exported, ExportedModel
    from exporter.common.progress import Progress

WRITTEN = ("math", "dtype", "dispatch", "trees")  # how a model's C is written: a flag may not contradict such a key
PARITY = ("criterion", "atol", "rtol")
# The option keys (Options' fields) a table does not take, and why: refused by name, never ignored.
NOT_HERE = {
    "defaults": dict.fromkeys(NAMES, "column names are one model's or one pipeline's: give them in its own table"),
    "pipelines": dict.fromkeys(
        WRITTEN,
        "a pipeline's C calls its stages' functions and computes in their C type: set it on their [models.X] "
        "tables or in [defaults]",
    ),
}
MODEL_KEYS = (
    "model flax flax_kwargs params n_inputs preprocess log_columns target_transform output_activation noise input_shape"
)
KEYS = [*MODEL_KEYS.split(), "trust", *FIELDS]
DEFAULTS_KEYS = [k for k in FIELDS if k not in NOT_HERE["defaults"]]
PIPELINE_KEYS = [*"n_inputs n_random stages output scikinc_names".split(), *PARITY, *NAMES]
STAGE_KEYS = "model reads noise".split()


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

    def keys(self, keys: list[str], level: str) -> None:
        """Every key of the table is one of ``keys``: an option that does not apply at this ``level`` is refused
        with the reason, any other key as unknown."""
        for key in sorted(self.table):
            if key in NOT_HERE.get(level, {}):
                raise self.words.about(key, f"not a key of this table: {NOT_HERE[level][key]}")
        unknown = sorted(set(self.table) - set(keys))
        if unknown:
            raise self.words.about(unknown[0], f"unknown key (the keys are {', '.join(keys)})")

    def options(self, keys: tuple[str, ...] | list[str]) -> Options:
        """The table's option keys among ``keys``, made into options (which checks them), errors worded here."""
        with self.words.wording():
            return Options.of(**{key: self.table.get(key) for key in keys})

    def input_shape(self) -> dict[str, tuple[int, ...]]:
        """An ONNX model's ``input_shape``: a list of dimensions (its only input) or a table of them by input."""
        with self.words.wording():
            value = self.get("input_shape", (list, dict, str), "a list of dimensions, a table by input or NAME=D1,D2")
            return input_shapes([value] if isinstance(value, str) else value)

    def ints(self, key: str) -> list[int]:
        values = self.get(key, list, "a list of integers") or []
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise self.words.about(key, f"expected a list of integers >= 0, got {values!r}")
        return values


def _agreeing(words: Words, level: Options, flags: Options) -> Options:
    """``level``, a table's options, if no flag contradicts a key of it on how the C is written: with
    ``math = "fast"`` in the manifest, ``--math libm`` would not do what it says, so it is refused."""
    for key in WRITTEN:
        own, flag = getattr(level, key), getattr(flags, key)
        if key in level.given and key in flags.given and own != flag:
            raise words.about(key, f"{own!r} here, but --{key} {flag} on the command line: drop one of them")
    return level


def _layered(words: Words, own: Options, *lower: Options) -> Options:
    """An entry's options: its own keys, then for what they leave unset each of ``lower`` in turn ([defaults],
    the flags); a combination that breaks a rule (double with fast math) is refused under the entry's name."""
    with words.wording():
        for options in lower:
            own = own.over(options)
    return own


def _defaults(manifest: Path, table: Any, flags: Options) -> Options:
    """The ``[defaults]`` table: options for every model (and, its parity keys, every pipeline) not setting its own."""
    words = Words(where=f"{manifest}: [defaults]")
    if not isinstance(table, dict):
        raise ExportError(f"{manifest}: defaults: expected a table ([defaults])")
    r = _Reader(words, manifest.parent, table)
    r.keys(DEFAULTS_KEYS, "defaults")
    return _agreeing(words, r.options(DEFAULTS_KEYS), flags)


def _entry(manifest: Path, symbol: str, table: Any, flags: Options, defaults: Options) -> ModelSpec:
    if not isinstance(table, dict):
        raise ExportError(f"{manifest}: models.{symbol}: expected a table of keys ([models.{symbol}])")
    words = Words(where=f"{manifest}: [models.{symbol}]")
    r = _Reader(words, manifest.parent, table)
    with words.wording():
        check_symbol(symbol)
    r.keys(KEYS, "models")
    own = _agreeing(words, r.options(FIELDS), flags)
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
        input_shape=r.input_shape(),
        trust=r.strings("trust", "module names"),
        options=_layered(words, own, defaults, flags),
        import_from=manifest.parent,
        words=words,
    )
    entry.check()
    return entry


def read_manifest(path: str | Path, flags: Options = DEFAULTS) -> list[ModelSpec | PipelineSpec]:
    """The manifest's models, then its pipelines, in file order, checked (files exist, keys known, values typed).

    ``flags``: the options the command line gave (``Options.of``), for every entry that leaves them unset.
    """
    path = Path(path)
    try:
        data = _toml().loads(path.read_text())
    except OSError as err:
        raise ExportError(f"{path}: cannot read the manifest ({err.strerror or err})") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ExportError(f"{path}: not valid TOML ({err})") from None
    extra = sorted(set(data) - {"models", "pipelines", "defaults"})
    if extra:
        raise ExportError(f"{path}: {extra[0]}: unknown top-level key (models go in [models.SYMBOL] tables)")
    defaults = _defaults(path, data.get("defaults", {}), flags)
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise ExportError(f"{path}: no models: list each as a [models.SYMBOL] table")
    entries = {symbol: _entry(path, symbol, table, flags, defaults) for symbol, table in models.items()}
    pipelines = data.get("pipelines", {})
    if not isinstance(pipelines, dict):
        raise ExportError(f"{path}: pipelines: expected tables ([pipelines.NAME])")
    return [
        *entries.values(),
        *(
            _pipeline(path, name, table, entries, defaults.only(PARITY), flags.only(PARITY))
            for name, table in pipelines.items()
        ),
    ]


def _pipeline(
    manifest: Path, name: str, table: Any, models: dict[str, ModelSpec], defaults: Options, flags: Options
) -> PipelineSpec:
    """A ``[pipelines.NAME]`` table: its stages are the manifest's models (``scikinc_names`` set on them);
    ``defaults`` and ``flags``: the parity options it takes from ``[defaults]`` and the command line."""
    where = f"{manifest}: [pipelines.{name}]"
    if not isinstance(table, dict):
        raise ExportError(f"{where}: expected a table of keys")
    words = Words(where=where)
    r = _Reader(words, manifest.parent, table)
    r.keys(PIPELINE_KEYS, "pipelines")
    n_inputs = r.get("n_inputs", int, "an integer")
    if n_inputs is None:
        raise words.about("n_inputs", "missing: the width of the pipeline's input")
    output = r.get("output", list, 'a list of stage outputs such as "rich[0:4]"')
    if output is not None and not all(isinstance(o, str) for o in output):
        raise words.about("output", f"expected a list of strings, got {output!r}")
    scikinc = table.get("scikinc_names", False)
    if not isinstance(scikinc, bool):
        raise words.about("scikinc_names", f"expected true or false, got {scikinc!r}")
    stages_table = table.get("stages")
    if not isinstance(stages_table, list) or not stages_table:
        raise words.about("stages", "expected stages: one [[pipelines.NAME.stages]] table per model called")
    stages = [_stage(words, i, t, models) for i, t in enumerate(stages_table)]
    if scikinc:
        for stage in stages:
            stage.model.scikinc_names = True
    options = _layered(words, r.options([*PARITY, *NAMES]), defaults, flags)
    spec = PipelineSpec(name, n_inputs, stages, output, r.get("n_random", int, "an integer"), scikinc, where, options)
    spec.check()
    return spec


def _stage(words: Words, index: int, table: Any, models: dict[str, ModelSpec]) -> StageSpec:
    if not isinstance(table, dict):
        raise words.about("stages", f"stage {index}: expected a table of keys (model, reads, noise)")
    model = table.get("model")
    label = f"stage {model if isinstance(model, str) else index}"
    unknown = sorted(set(table) - set(STAGE_KEYS))
    if unknown:
        raise words.about(f"{label} {unknown[0]}", f"unknown key (the keys are {', '.join(STAGE_KEYS)})")
    if not isinstance(model, str) or model not in models:
        known = ", ".join(models)
        raise words.about(f"{label} model", f"{model!r}: not a model of this manifest ({known})")
    reads = table.get("reads")
    if not isinstance(reads, list) or not all(isinstance(x, str) for x in reads):
        raise words.about(f"{label} reads", f'expected a list of slices such as "input[0:5]", got {reads!r}')
    noise = table.get("noise")
    if noise is not None and (not isinstance(noise, int) or isinstance(noise, bool)):
        raise words.about(f"{label} noise", f"expected an integer, got {noise!r}")
    return StageSpec(models[model], reads, noise)


@dataclass
class ModelSet:
    """Every model of a manifest, exported into one ``.c`` and ``.h`` (one library) named ``name``.

    The pipeline's spec for a manifest (``exporter.run.request.Exportable``). ``granted``: the modules the
    person running the export trusts (``--trust``); a manifest cannot grant trust by itself, since whoever
    wrote it (a colleague, a download) chose what its folder's Python does when imported.
    """

    name: str
    manifest: Path
    specs: list[ModelSpec | PipelineSpec]
    granted: tuple[str, ...] = ()
    one_model: ClassVar[bool] = False  # its summary lists each symbol (exporter.run.request.Exportable)

    def check_granted(self) -> None:
        """Every module an entry would import (``trust``, ``flax``) is also trusted by the person running it."""
        granted = Trust.of(self.granted)
        for spec in self.specs:
            if isinstance(spec, PipelineSpec):
                continue
            for module in spec.user_modules:
                if not granted.covers(module):
                    key = "trust" if module in spec.trust else "flax"
                    raise spec.words.about(
                        key,
                        f"{module}: the manifest asks to import {module} from {self.manifest.parent}, which runs its "
                        f"code; if you trust it, grant it yourself: --trust {module} on the command line "
                        f"(CMake: lamarr_export_models(... TRUST {module}))",
                    )

    @property
    def title(self) -> str:
        return str(self.manifest)

    @property
    def library(self) -> str:
        """The library's name: its ``LIBRARY_symbols`` lists the top-level functions (``check.library_card``)."""
        return self.name

    def files(self) -> list[Path]:
        return list(dict.fromkeys([self.manifest, *(p for spec in self.specs for p in spec.files())]))

    def exports(self, progress: Progress) -> list[Exported]:
        """Every model exported, then every pipeline composed of them; the C functions must be unique."""
        self.check_granted()
        exports: list[Exported] = []
        built: dict[str, ExportedModel] = {}
        for spec in self.specs:
            progress.say(f"{'pipeline' if isinstance(spec, PipelineSpec) else 'model'} {spec.name}")
            if isinstance(spec, PipelineSpec):
                exports.append(spec.build(built))
            else:
                built[str(spec.name)] = spec.build()
                exports.append(built[str(spec.name)])
        check_distinct(exports, self.manifest)
        return exports

    def combine(self, parts: list[CSource]) -> CSource:
        from exporter.backend import render_set

        return render_set(self.name, self.manifest.name, parts)

    def rows_title(self, exports: list[Exported]) -> str:
        return self.manifest.name
