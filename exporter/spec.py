"""One model to export, however it was described: command-line flags, a manifest entry, or Python.

A :class:`ModelSpec` holds what the user asked for (files, chain steps, and the export's
:class:`~exporter.common.options.Options`) and nothing of how they said it, except :class:`Words`: the
names the user knows each field by (``--n-inputs`` on the command line, ``n_inputs`` in ``[models.X]``
of a manifest), so that every error quotes the user's own words. ``ModelSpec.build()`` is the pipeline's
first step (load, IR, render); see ``exporter/run/steps.py`` for the rest. New kinds of model (a composed
pipeline, say) add a field here and a branch in ``build``; the pipeline and the three ways of describing a
spec stay as they are.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from exporter.common.errors import ExportError, InputError, UntrustedError
from exporter.common.options import DEFAULTS, Options
from exporter.frontends import user_modules
from exporter.frontends.onnx import is_onnx_file
from exporter.frontends.sklearn.safe_load import SUFFIXES
from exporter.frontends.sklearn.trust import Trust

if TYPE_CHECKING:
    from exporter.api import Export
    from exporter.backend import CSource
    from exporter.check.subject import Exported
    from exporter.common.progress import Progress


@dataclass(frozen=True)
class Words:
    """How the user wrote each field of a spec, for error messages.

    ``names`` maps a field to the user's word for it (missing: the field's own name). ``where``
    names the entry (a manifest's ``models.toml: [models.gen]``); with it, messages read
    ``where field: message``, without it ``word message`` (``--n-inputs 0: ...``).
    """

    names: Mapping[str, str] = field(default_factory=dict)
    where: str = ""

    def __call__(self, name: str) -> str:
        return self.names.get(name, name)

    def about(self, name: str, message: str) -> ExportError:
        """An error about field ``name``; ``message`` starts with its value or says what is wrong."""
        if self.where:
            return ExportError(f"{self.where} {name}: {message}")
        return ExportError(f"{self(name)} {message}")

    def add_to(self, name: str, value: str) -> str:
        """How the user adds ``value`` to the list ``name``: ``--trust M``, ``trust = ["M"] to ...``, ``trust=[M]``."""
        if self.where:
            return f'{name} = ["{value}"] to {self.where}'
        if name in self.names:
            return f"{self(name)} {value}"
        return f'{name}=["{value}"]'

    def rule(self, name: str, message: str) -> ExportError:
        """An error about how fields go together; ``message`` names the fields itself."""
        return ExportError(f"{self.where} {name}: {message}" if self.where else message)

    @contextlib.contextmanager
    def wording(self) -> Iterator[None]:
        """Re-word the errors of the block: an input error in the user's words, any error prefixed by ``where``."""
        try:
            yield
        except UntrustedError as err:
            raise ExportError(err.worded(self.add_to("trust", err.module))) from None
        except InputError as err:
            raise self.about(err.field, err.worded(self)) from None
        except ExportError as err:
            if not self.where:
                raise
            raise ExportError(f"{self.where}: {err}") from None


PYTHON = Words()


def kwargs_from_json(text: str | None) -> dict[str, Any]:
    """A Flax module's constructor arguments written as a JSON object (command line, manifest string)."""
    if not text:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError("flax_kwargs", f"not valid JSON ({err})") from None
    if not isinstance(kwargs, dict):
        raise InputError("flax_kwargs", "expected a JSON object of constructor arguments")
    return kwargs


@dataclass
class ModelSpec:
    """One model and its chain: a Keras file, a Flax module, or a transformer file on its own.

    ``name`` is the C symbol (None: made from the model's name). ``import_from`` is the folder
    a Flax module named ``package.module:Class`` and the ``trust``-ed modules (the user's own,
    whose classes and functions the transformer files may load) are imported from (a manifest's
    folder; None: the working directory).
    """

    name: str | None = None
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
    input_shape: dict[str, tuple[int, ...]] = field(default_factory=dict)  # an ONNX model's dimensions, by input
    trust: list[str] = field(default_factory=list)
    options: Options = DEFAULTS  # math, dtype, dispatch, the parity rule, column names
    scikinc_names: bool = False  # each step also under scikinC's name (a pipeline's stages, for Lamarr's glue)
    import_from: Path | None = None
    words: Words = field(default=PYTHON, repr=False, compare=False)

    @property
    def title(self) -> str:
        """What the user gave as the model: its file, or the Flax class."""
        return str(self.model) if self.model is not None else str(self.flax)

    @property
    def stem(self) -> str:
        """The default name of the output files: the model file's, or for Flax ``name`` or the params file's."""
        if self.model is not None:
            return Path(self.model).stem
        return self.name or (Path(self.params).stem if self.params else str(self.flax).rpartition(":")[2])

    @property
    def is_transformer(self) -> bool:
        """A scikit-learn file holding a transformer (one holding a tree model is a network)."""
        from exporter.frontends.sklearn.trees import holds_tree_model

        return self.model is not None and Path(self.model).suffix in SUFFIXES and not holds_tree_model(self.model)

    def files(self) -> list[Path]:
        """The files this model is made from (a build system's dependencies)."""
        return [Path(p) for p in (self.model, self.params, *self.preprocess, self.target_transform) if p is not None]

    def check(self) -> None:
        """The rules between fields, checked before any file is read."""
        w = self.words
        one_of = f"{w('model')} (a model file) or {w('flax')} (a Flax module)"
        if self.model is None and self.flax is None:
            raise w.rule("model", f"give the model to export: {one_of}")
        if self.model is not None and self.flax is not None:
            raise w.rule("model", f"give exactly one of {one_of}, not both")
        if self.flax is None and (self.flax_kwargs or self.params or self.n_inputs is not None):
            flax_only = f"{w('flax_kwargs')}, {w('params')} and {w('n_inputs')}"
            raise w.rule("params", f"{flax_only} go with {w('flax')}")
        if self.flax is not None and (self.params is None or self.n_inputs is None):
            raise w.rule("flax", f"{w('flax')} needs {w('params')} and {w('n_inputs')}")
        if self.noise and (self.flax is not None or self.is_transformer):
            raise w.rule("noise", f"{w('noise')} goes with a generator model (Keras or ONNX)")
        if self.input_shape and not (self.model is not None and is_onnx_file(self.model)):
            raise w.rule("input_shape", f"{w('input_shape')} goes with an ONNX model")
        if self.is_transformer and (self.target_transform or self.output_activation):
            what = f"{w('target_transform')} and {w('output_activation')}"
            raise w.rule("model", f"{self.model}: {what} need a network")
        with w.wording():
            Trust.of(self.trust)

    def build(self) -> Export:
        """Load the model and its steps, make the IR and render the C (the pipeline's first step)."""
        from exporter.backend.column_names import name_columns
        from exporter.check.library_card import hash_sources

        self.check()
        export = self._build()
        with self.words.wording():
            name_columns(export, self.options.inputs, self.options.outputs)
        export.chain.sources = hash_sources(self.files())
        return export

    def _build(self) -> Export:
        chain: dict[str, Any] = {"log_columns": self.log_columns, "name": self.name, "options": self.options}
        chain.update(trust=self.trust, scikinc_names=self.scikinc_names)
        with self.words.wording(), user_modules.importable(self.import_from or Path.cwd(), self.user_modules):
            self._check_trusted_modules_exist()
            return self._export(chain)

    def _export(self, chain: dict[str, Any]) -> Export:
        """The export itself, as ``build`` words its errors."""
        from exporter.api import export_chain, export_flax
        from exporter.backend.naming import symbol_for

        if self.is_transformer:
            return export_chain(preprocess=[self.model, *self.preprocess], **chain)
        chain.update(
            preprocess=self.preprocess,
            target_transform=self.target_transform,
            output_activation=self.output_activation,
        )
        if self.flax is None and is_onnx_file(self.model):
            from exporter.frontends.onnx import load_onnx

            chain["name"] = symbol_for(self.name, self.model, self.options.dtype)
            return export_chain(load_onnx(self.model, self.input_shape, self.noise), noise=self.noise, **chain)
        if self.flax is None:
            return export_chain(self.model, noise=self.noise, **chain)
        from exporter.frontends.flax import load_linen

        assert self.params is not None and self.n_inputs is not None  # check() made sure
        module, params = load_linen(self.flax, self.flax_kwargs, self.params, self.n_inputs)
        chain["name"] = symbol_for(self.name, self.params, self.options.dtype)  # the stem: a class name says little
        return export_flax(module, params, n_inputs=self.n_inputs, **chain)

    @property
    def user_modules(self) -> list[str]:
        """The user's own modules this model imports: the trusted ones and the Flax module's."""
        flax = [self.flax.partition(":")[0]] if self.flax else []
        return [*self.trust, *flax]

    def _check_trusted_modules_exist(self) -> None:
        """A trusted module that is nowhere to be found is a typo, not something to pass over in silence."""
        folder = self.import_from or Path.cwd()
        for module in self.trust:
            if not user_modules.exists(module):
                raise InputError("trust", f"{module}: no such module in {folder} (nor installed)")

    # the pipeline's view (exporter.run.request.Exportable): one model, one rendering
    one_model: ClassVar[bool] = True  # its summary lists its steps
    library: ClassVar[str | None] = None  # one model's file lists no symbols

    def exports(self, progress: Progress) -> list[Export]:
        return [self.build()]

    def combine(self, parts: list[CSource]) -> CSource:
        (source,) = parts
        return source

    def rows_title(self, exports: list[Exported]) -> str:
        return exports[0].symbol
