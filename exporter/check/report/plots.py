"""The report's plots, drawn with matplotlib (Agg, no display) and embedded as base64 PNG.

Nobody reads 10,000 differences in a table; these show them at a glance: C against the framework
per output, the distribution of |C - framework| with the tolerance marked, the class probabilities of
a classifier, and the output-vs-pT curve of both implementations on top of each other.
matplotlib is imported here only, and only when a report is asked for.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.check.compare import ParityArrays, ParityReport, errors
from exporter.common.errors import ExportError

MAX_OUTPUT_PLOTS = 24  # a report for a 200-output model shows the worst 24 outputs
MAX_CURVES = 8
ERROR_BINS = 40
C_COLOR, PY_COLOR = "#d62728", "#1f77b4"


@dataclass
class Plot:
    title: str
    caption: str
    png: str  # base64-encoded PNG


def figure(width: float, height: float) -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display, and no GUI toolkit import
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ExportError(f"--report draws with matplotlib: pip install 'lamarr-export[report]' ({err})") from None
    return Figure(figsize=(width, height), dpi=90, layout="constrained")


def png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _finite(*arrays: np.ndarray) -> np.ndarray:
    return np.all([np.isfinite(a) for a in arrays], axis=0)


def arrays_of(report: ParityReport) -> ParityArrays:
    if report.arrays is None:
        raise ValueError("plots need a report made by check_parity (it keeps the arrays)")
    return report.arrays


def output_plots(report: ParityReport, framework: str) -> list[Plot]:
    """Per output: C against the framework (scatter, with the diagonal) and a histogram of C - framework."""
    data = arrays_of(report)
    err = errors(data.c_out, data.ref, report.atol, report.rtol)
    score = np.nan_to_num(err.ratio, nan=0.0).max(axis=0, initial=0.0)
    columns = sorted(np.argsort(-score, kind="stable")[:MAX_OUTPUT_PLOTS])
    plots = []
    for j in columns:
        c, ref = data.c_out[:, j].astype(np.float64), data.ref[:, j].astype(np.float64)
        ok = _finite(c, ref)
        fig = figure(11, 3.6)
        scatter, hist = fig.subplots(1, 2)
        scatter.scatter(ref[ok], c[ok], s=3, alpha=0.5, color=C_COLOR, rasterized=True)
        if ok.any():
            lo, hi = float(ref[ok].min()), float(ref[ok].max())
            scatter.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", label="C = " + framework)
            scatter.legend(loc="upper left", frameon=False)
        scatter.set(xlabel=f"{framework} output {j}", ylabel=f"C output {j}", title=f"output {j}: C vs {framework}")
        error_histogram(hist, c[ok], ref[ok], report.atol, report.rtol, framework)
        hist.set_title(f"output {j}: |C - {framework}|, the tolerance marked")
        col = report.columns[j]
        caption = (
            f"output {j}: max |C - {framework}| = {col.max_abs:.3g}, max rel {col.max_rel:.3g}, "
            f"max {col.max_ulp} ULP, {col.failures} of {report.rows} rows beyond tolerance"
        )
        plots.append(Plot(f"output {j}", caption, png(fig)))
    return plots


def error_histogram(ax: Any, c: np.ndarray, ref: np.ndarray, atol: float, rtol: float, framework: str) -> None:
    """|C - framework| on log-spaced bins from the smallest nonzero error up to the tolerance (or the largest
    error, if larger), the tolerance drawn as lines. Errors are usually far below the tolerance: on a linear
    axis reaching the tolerance they would be one invisible sliver at 0; here their spread shows. Rows where C
    equals the framework exactly have a bin of their own, labelled, left of the others (a log axis has no 0)."""
    err = np.abs(np.asarray(c, dtype=np.float64) - np.asarray(ref, dtype=np.float64))
    nonzero, zeros = err[err > 0], int(np.count_nonzero(err == 0))
    ref_max = float(np.abs(ref).max(initial=0.0))
    tolerances = ((atol, ":", "atol"), (atol + rtol * ref_max, "--", f"atol + rtol·max|{framework}|"))
    lines = [(t, ls, name) for t, ls, name in tolerances if np.isfinite(t) and t > 0]
    top = max([t for t, _, _ in lines] + [float(nonzero.max(initial=0.0))]) or 1.0
    low = min(float(nonzero.min(initial=top)), top / 10)
    edges = np.geomspace(low, top, ERROR_BINS + 1)
    counts = np.histogram(np.clip(nonzero, low, top), edges)[0]
    label = f"|C - {framework}| > 0: {nonzero.size} rows"
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=C_COLOR, alpha=0.7, label=label)
    zero_bin = (low / 100, low / 10)  # a decade wide, a decade left of the smallest error
    exactly = f"C = {framework} exactly: {zeros} rows"
    ax.bar(zero_bin[0], zeros, width=zero_bin[1] - zero_bin[0], align="edge", color="0.45", label=exactly)
    if zeros:
        ax.text(np.sqrt(zero_bin[0] * zero_bin[1]), zeros, "= 0", ha="center", va="bottom", fontsize="small")
    for t, ls, name in lines:
        ax.axvline(t, color="black", lw=0.8, ls=ls, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low / 300, top * 3)
    ax.set_ylim(0.5, max(zeros, int(counts.max(initial=0)), 1) * 8)  # a bin of one row shows; room for the legend
    ax.legend(loc="upper right", frameon=False, fontsize="small")
    ax.set(xlabel=f"|C - {framework}| (grey bin: exactly 0)", ylabel="rows")


def class_plots(report: ParityReport, framework: str) -> list[Plot]:
    """A classifier's per-class probability distributions, C and the framework overlaid."""
    data = arrays_of(report)
    n = min(data.c_out.shape[1], MAX_OUTPUT_PLOTS)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = figure(11, 2.8 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    bins = np.linspace(0.0, 1.0, 51)
    for j, ax in enumerate(axes):
        if j >= n:
            ax.set_axis_off()
            continue
        ax.hist(data.ref[:, j], bins=bins, histtype="step", lw=2.5, color=PY_COLOR, label=framework)
        ax.hist(data.c_out[:, j], bins=bins, histtype="step", lw=1.2, ls="--", color=C_COLOR, label="C")
        ax.set_yscale("log")
        ax.set(xlabel=f"probability of class {j}", ylabel="rows")
        if j == 0:
            ax.legend(frameon=False)
    caption = f"per-class probabilities over the {report.rows} checked rows; the two histograms should coincide"
    return [Plot("class probabilities", caption, png(fig))]


def pt_plots(
    report: ParityReport,
    column: int,
    compiled: Callable[[np.ndarray], np.ndarray],
    reference: Callable[[np.ndarray], np.ndarray],
    framework: str,
    points: int = 200,
) -> list[Plot]:
    """Each output as a function of the pT-like input, the others held at the median row and at the
    worst row: C and the framework drawn on top of each other, as physicists draw an efficiency curve."""
    data = arrays_of(report)
    inputs = data.inputs.astype(np.float64)
    lo, hi = np.quantile(inputs[:, column], [0.005, 0.995])
    grid = np.linspace(lo, hi, points)
    worst = np.asarray(report.worst_input, dtype=np.float64)
    bases = {"other inputs at their median": np.median(inputs, axis=0), "other inputs at the worst row": worst}
    n = min(data.c_out.shape[1], MAX_CURVES)
    fig = figure(11, 3.8)
    for ax, (label, base) in zip(fig.subplots(1, 2), bases.items(), strict=True):
        rows = np.repeat(base[None, :], points, axis=0).astype(np.float32)
        rows[:, column] = grid
        c_out, ref = np.asarray(compiled(rows)), np.asarray(reference(rows))
        for j in range(n):
            color = f"C{j % 10}"
            ax.plot(grid, ref[:, j], color=color, lw=3, alpha=0.45, label=f"{framework} {j}")
            ax.plot(grid, c_out[:, j], color=color, lw=1, ls="--", label=f"C {j}")
        ax.set(xlabel=f"input {column} (pT-like)", ylabel="output", title=label)
    ax.legend(ncol=2, fontsize="small", frameon=False)
    caption = (
        f"outputs 0-{n - 1} against input {column} over its 0.5-99.5% range in the checked rows: thick lines "
        f"{framework}, dashed lines C"
    )
    return [Plot(f"outputs vs input {column}", caption, png(fig))]
