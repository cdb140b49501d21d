"""What a run is asked: the thing to export (any :class:`Exportable`), where its files go, which checks run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from exporter.check.inputs import DEFAULT_SAMPLES
from exporter.common.errors import ExportError
from exporter.common.files import check_writable, refuse_folders

if TYPE_CHECKING:
    from exporter.backend import CSource
    from exporter.check.subject import Exported
    from exporter.common.progress import Progress


class Exportable(Protocol):
    """What a run exports: one or more models that end up in one ``.c`` and one ``.h``."""

    @property
    def title(self) -> str:
        """What the user named: a model file, a Flax class, a manifest."""
        ...

    @property
    def one_model(self) -> bool:
        """One model on its own (not a manifest's nor a pipeline's): the summary details its steps."""
        ...

    @property
    def library(self) -> str | None:
        """The library whose ``LIBRARY_symbols`` lists the file's top-level functions (a manifest's; None: none)."""
        ...

    def files(self) -> list[Path]:
        """The files read (a build system's dependencies)."""
        ...

    def exports(self, progress: Progress) -> list[Exported]:
        """Every model loaded, then every pipeline composed of them, as IR and rendered C (``Exported``);
        the first one's symbol loads the library."""
        ...

    def combine(self, parts: list[CSource]) -> CSource:
        """The one ``.c`` and ``.h`` of the rendered models."""
        ...

    def rows_title(self, exports: list[Exported]) -> str:
        """The title of the reference-rows file."""
        ...


def batch_check_wanted() -> bool:
    """The batch check (``exporter.check.batch_bits``) is on unless ``LAMARR_EXPORT_BATCH_CHECK=0``: its build
    compiles every variant with its blocks of rows, about five times the parity build; a test suite
    exporting hundreds of small models leaves it to the tests about it (tests/conftest.py)."""
    return os.environ.get("LAMARR_EXPORT_BATCH_CHECK", "1") != "0"


@dataclass
class Checks:
    """What the pipeline proves: parity on ``samples`` random rows (plus edge rows and ``user_rows``).

    ``trace``: True traces every step on the worst rows, None only when parity fails, False never.
    The rule each export's parity is judged by is its own (``Export.options``: criterion, atol, rtol).
    """

    parity: bool = True
    samples: int = DEFAULT_SAMPLES
    user_rows: np.ndarray | None = None
    trace: bool | None = None
    rows_file: Path | None = None  # the file ``user_rows`` came from: an input, never to be written over
    batch: bool = field(default_factory=batch_check_wanted)  # SYMBOL_batch against one call per row


@dataclass
class Outputs:
    """Where the results go: ``c`` (the header beside it as ``.h``, the reference rows as ``.ref.txt``),
    the compiled library ``so``, a ``report`` folder (``pt_column``: the input its curves are drawn
    against); ``document`` makes the JSON document even without a report (for ``--json``)."""

    c: Path
    so: Path | None = None
    report: Path | None = None
    pt_column: int | None = None
    document: bool = False
    card: bool = False  # also NAME.plugins.json: what SQLamarr's plugins need (exporter/check/library_card.py)

    def check(self, inputs: list[Path]) -> None:
        """No output may be one of the ``inputs``, another output or a folder (one another output needs): refused
        before anything is read or written.

        Files are compared as the file system knows them (symbolic and hard links, ``..``), so two
        spellings of one file are one file.
        """
        read = {_identity(Path(p)): p for p in inputs}
        written: dict[object, str] = {}
        outputs = {kind: path for kind, path in self.names().items() if path is not None}
        for kind, path in outputs.items():
            key = _identity(path)
            what = OUTPUT_KINDS[kind]
            if key in read:
                raise ExportError(f"{path}: the {what} would overwrite an input ({read[key]})")
            if key in written:
                raise ExportError(f"{path}: both the {written[key]} and the {what} would be written there")
            written[key] = what
            check_writable(path)
        refuse_folders(list(outputs.values()))  # e.g. --report x.c beside -o x.c

    def names(self) -> dict[str, Path | None]:
        """Every output file by kind, as the JSON document lists them."""
        report = self.report
        return {
            "c": self.c,
            "h": self.c.with_suffix(".h"),
            "ref": self.c.with_suffix(".ref.txt"),
            "so": self.so,
            "card": self.c.with_suffix(".plugins.json") if self.card else None,
            "report_json": report / "report.json" if report else None,
            "report_html": report / "report.html" if report else None,
        }


OUTPUT_KINDS = {
    "c": "C file (-o)",
    "h": "header (beside -o)",
    "ref": "reference rows (beside -o)",
    "so": "library (--so)",
    "card": "plugin card (beside -o)",
    "report_json": "report.json (--report)",
    "report_html": "report.html (--report)",
}


def _identity(path: Path) -> object:
    """The resolved path's device and inode when it exists (the same for every link to it), else the path."""
    resolved = path.resolve()  # a folder that does not exist yet still resolves (`new/../model.keras`)
    try:
        status = resolved.stat()
    except OSError:
        return resolved
    return (status.st_dev, status.st_ino)
