"""``--report DIR``: ``report.json`` (see ``document.py`` and ``schema.json``) and ``report.html``.

The page is one self-contained file: inline CSS, the plots as base64 PNG data URIs, no script and
no link to fetch, so it opens from a CI artifact or an e-mail without network access.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from exporter.check.compare import ParityReport
from exporter.check.report.document import to_json
from exporter.check.report.plots import Plot
from exporter.common.escaping import visible
from exporter.ir import Graph

Sections = list[tuple[str, list[Plot]]]


def is_classifier(graph: Graph | None) -> bool:
    """A model whose last step ends in softmax: its outputs are class probabilities."""
    last = graph.ops[-1].activations if graph is not None and graph.ops else ()
    return any(a.kind == "softmax" for a in last)


def draw(
    report: ParityReport,
    graph: Graph | None,
    framework: str,
    pt_column: int | None = None,
    compiled: Callable[[np.ndarray], np.ndarray] | None = None,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Sections:
    """Every plot the data supports, by section; ``compiled`` and ``reference`` evaluate the pT scan."""
    from exporter.check.report import plots

    sections: Sections = [(f"C against {framework}, per output", plots.output_plots(report, framework))]
    if is_classifier(graph):
        sections.append(("Class probabilities", plots.class_plots(report, framework)))
    if pt_column is not None and compiled is not None and reference is not None:
        curves = plots.pt_plots(report, pt_column, compiled, reference, framework)
        sections.append((f"Outputs against the pT-like input {pt_column}", curves))
    return sections


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,  # & < > " ' of every value (the page has no script, style or URL built from values)
        finalize=visible,  # control characters and bidi overrides in names shown, not obeyed
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


def render_html(document: dict[str, Any], sections: Sections) -> str:
    return _template().render(doc=document, sections=sections)


def report_files(directory: Path, document: dict[str, Any], sections: Sections) -> dict[Path, bytes]:
    """The two report files and their contents, for ``write_atomically`` together with the C."""
    return {
        directory / "report.json": to_json(document).encode(),
        directory / "report.html": render_html(document, sections).encode(),
    }
