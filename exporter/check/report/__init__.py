"""``--report DIR``: ``report.json`` (see ``document.py`` and ``schema.json``) and ``report.html``.

The page is one self-contained file: inline CSS, the plots as base64 PNG data URIs, no script and
no link to fetch, so it opens from a CI artifact or an e-mail without network access. A model's page is
``report.html.j2``; a manifest's, ``set.html.j2``, holds one section per model (the same pieces,
``parts.html.j2``) and one per pipeline (its comparisons and ``pipeline_plots.py``'s figures).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import markupsafe
import numpy as np

from exporter.check.compare import ParityReport
from exporter.check.report.document import to_json
from exporter.check.report.plots import Plot
from exporter.common.escaping import visible
from exporter.ir import Graph

if TYPE_CHECKING:
    from exporter.check.pipeline_parity import PipelineReport

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


def draw_pipeline(report: PipelineReport, framework: str) -> Sections:
    """A pipeline's plots: end to end against the rule's bounds and per output; per stage its amplification."""
    from exporter.check.report import pipeline_plots

    return [
        ("End to end: C pipeline against the Python composition", pipeline_plots.end_to_end_plots(report, framework)),
        (
            "Stage by stage: what each stage is fed, carries through and adds",
            pipeline_plots.stage_plots(report, framework),
        ),
    ]


def _finalize(value: object) -> object:
    """``visible`` on every value; a macro's output (``parts.html.j2``) is markup made of values already shown."""
    return value if isinstance(value, markupsafe.Markup) else visible(value)


@lru_cache(maxsize=2)
def _template(name: str) -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,  # & < > " ' of every value (the page has no script, style or URL built from values)
        finalize=_finalize,  # control characters and bidi overrides in names shown, not obeyed
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(name)


def render_html(document: dict[str, Any], sections: Sections) -> str:
    """A model's page (an ``export`` document)."""
    return _template("report.html.j2").render(doc=document, sections=sections)


def render_set_html(document: dict[str, Any], pages: dict[str, Sections]) -> str:
    """A manifest's page (a ``set`` document): ``pages`` holds each model's and pipeline's plots, by symbol."""
    return _template("set.html.j2").render(doc=document, pages=pages)


def report_files(directory: Path, document: dict[str, Any], html: str) -> dict[Path, bytes]:
    """The two report files and their contents, for ``write_atomically`` together with the C."""
    return {directory / "report.json": to_json(document).encode(), directory / "report.html": html.encode()}
