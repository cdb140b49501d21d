"""A pipeline's plots: its end to end errors against the rule's bounds, and per stage what it amplifies and adds.

A pipeline that fails end to end may be wrong in one stage or right in every stage, a steep stage turning
float32 rounding upstream into a visible difference (``exporter/check/pipeline_parity.py``). Two kinds of
figure tell the cases apart at a glance:

- **the rule's bounds**: per output, the errors of a comparison as multiples of the bound the deciding rule
  puts on them (the float32 rule's quantile and per-value bounds, or ``atol + rtol |ref|``): a point above 1
  fails. Drawn for the end to end comparison and, per stage, for its comparison on Python's upstream values
  (alone) and on C's (conditional);
- **amplification**, per stage and row: the difference between C's and Python's inputs the stage receives,
  that difference carried through the Python stage, and the stage's own error on the same inputs. A point
  on the diagonal passes the difference on unchanged; above it, the stage amplifies it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.check.compare import ParityReport, errors
from exporter.check.pipeline_parity import Amplification, PipelineReport
from exporter.check.report.plots import C_COLOR, PY_COLOR, Plot, error_histogram, figure, output_plots, png
from exporter.check.verdicts import GATE_QUANTILE, K_QUANTILE, MIN_TAIL, QUANTILES, RULED

MAX_COLUMNS = 64  # outputs drawn in a bound chart: a wider stage shows its first 64
SHOWN_LOW = 1e-4  # a ratio or error of 0 is drawn here, at the foot of the log axis
MARKERS = ("o", "s", "^")


def bound_ratios(report: ParityReport) -> list[tuple[str, str, np.ndarray]]:
    """Per output, the comparison's errors as multiples of the deciding rule's bound: (label, marker, values).

    Float32 rule: each quantile the rule holds (``MIN_TAIL`` values beyond it) over ``K_QUANTILE`` x float32's
    + the floor, the worst value over its per-value bound, a generator's output-quantile shift over its gate.
    Fixed rule: quantiles and the largest of ``|c - ref| / (atol + rtol |ref|)``."""
    judgement = report.judgement
    if judgement is not None:
        columns = judgement.columns
        series = [
            (
                f"C's {q:g}% error / its bound",
                marker,
                np.array([c.c_ulp[i] / (K_QUANTILE * c.envelope_ulp[i] + c.floor) for c in columns]),
            )
            for i, (q, marker) in enumerate(zip(QUANTILES[:RULED], MARKERS, strict=True))
            if judgement.rows * (100 - q) >= 100 * MIN_TAIL
        ]
        series.append(("worst value / its bound", "x", np.array([c.worst_ratio for c in columns])))
        if judgement.generator:
            gates = np.array([(c.gate or 0.0) / GATE_QUANTILE for c in columns])
            series.append(("output quantiles' shift / gate", "D", gates))
        return series
    if report.arrays is None:
        raise ValueError("a fixed-rule chart needs a report that keeps its arrays")
    arrays = report.arrays
    ratio = np.nan_to_num(errors(arrays.c_out, arrays.ref, report.atol, report.rtol).ratio, nan=0.0)
    if not len(ratio):
        return []
    series = [
        (f"{q:g}% of |c - ref| / tolerance", marker, np.percentile(ratio, q, axis=0))
        for q, marker in zip(QUANTILES[:RULED], MARKERS, strict=True)
    ]
    return [*series, ("worst value / tolerance", "x", ratio.max(axis=0))]


def bound_chart(ax: Any, report: ParityReport, title: str) -> None:
    """``bound_ratios`` per output on a log axis, the bound drawn at 1: every point under it passes."""
    series = bound_ratios(report)
    width = min(len(report.columns), MAX_COLUMNS)
    columns = np.arange(width)
    top = 1.0
    for k, (label, marker, values) in enumerate(series):
        shown = np.clip(np.nan_to_num(values[:width], nan=np.inf, posinf=1e6), SHOWN_LOW, 1e6)
        top = max(top, float(shown.max(initial=1.0)))
        colour = C_COLOR if marker in ("x", "D") else f"C{k}"
        ax.scatter(columns + 0.1 * (k - len(series) / 2), shown, marker=marker, color=colour, s=22, label=label)
    ax.axhline(1.0, color="black", lw=1, ls="--", label="the rule's bound (above: fails)")
    ax.set_yscale("log")
    ax.set_ylim(SHOWN_LOW / 2, top * 1000)  # the legend above the bound
    ax.set_xticks(columns if width <= 16 else columns[:: max(width // 16, 1)])
    ax.set(xlabel="output", ylabel="error / the rule's bound")
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="upper left", frameon=False, fontsize="x-small")


def _rule_line(report: ParityReport) -> str:
    """Which rule decided the comparison, and on which numbers (or its verdict, for the fixed rule)."""
    word = "passed" if report.passed else "FAILED"
    if report.judgement is not None:
        return f"{word}, float32 rule: {report.judgement.reason()}"
    return f"{word}, fixed rule: |c - ref| <= {report.atol:g} + {report.rtol:g} |ref|"


def end_to_end_plots(report: PipelineReport, framework: str) -> list[Plot]:
    """The end to end comparison: its errors against the rule's bounds, then per output C against Python."""
    e = report.end_to_end
    fig = figure(11, 3.6)
    bound_chart(fig.subplots(1, 1), e, "end to end: C pipeline against the Python composition")
    caption = f"end to end, per output, errors over the rule's bound (under 1 passes): {_rule_line(e)}"
    return [Plot("end to end against the rule's bounds", caption, png(fig)), *output_plots(e, framework)]


def _amplification_panel(ax: Any, name: str, amp: Amplification, conditional: ParityReport, framework: str) -> None:
    """Per row the difference stage ``name`` receives against what it carries through and adds; a stage that
    receives none (it reads the pipeline's input only) shows the distribution of what it adds."""
    fed = amp.received > 0
    if not fed.any():
        arrays = conditional.arrays
        assert arrays is not None
        c, ref = np.asarray(arrays.c_out, np.float64), np.asarray(arrays.ref, np.float64)
        finite = np.isfinite(c) & np.isfinite(ref)
        error_histogram(ax, c[finite], ref[finite], conditional.atol, conditional.rtol, framework)
        ax.set_title(f"{name}: fed no difference; it adds |C - Py|", fontsize="medium")
        return
    received = amp.received[fed]
    positive = np.concatenate([v[v > 0] for v in (received, amp.propagated[fed], amp.added[fed])])
    floor = float(positive[np.isfinite(positive)].min(initial=1.0)) / 10
    for values, colour, label in (
        (amp.propagated[fed], PY_COLOR, "carried through: |Py(x_C) - Py(x_Py)|"),
        (amp.added[fed], C_COLOR, "added: |C(x_C) - Py(x_C)|"),
    ):
        shown = np.clip(np.nan_to_num(values, posinf=np.finfo(np.float32).max), floor, None)
        ax.scatter(received, shown, s=4, alpha=0.5, color=colour, label=label, rasterized=True)
    low, high = floor, float(np.nanmax(np.clip(positive, None, np.finfo(np.float32).max)))
    ax.plot([low, high], [low, high], color="black", lw=0.8, ls="--", label="passed on unchanged (gain 1)")
    if conditional.judgement is None and conditional.atol > 0:
        ax.axhline(conditional.atol, color="black", lw=0.8, ls=":", label="atol")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, high * 30)  # room above for the legend
    ax.set(xlabel="received: |x_C - x_Py|, largest over its inputs", ylabel="per row, largest over its outputs")
    ax.set_title(f"{name}: fed, carried through, added", fontsize="medium")
    ax.legend(loc="upper left", frameon=False, fontsize="x-small")


def stage_plots(report: PipelineReport, framework: str) -> list[Plot]:
    """Per stage: what it amplifies and adds, and its two comparisons against the rule's bounds."""
    plots = []
    for name, alone in report.stages.items():
        conditional, amp = report.conditional[name], report.amplification(name)
        fig = figure(13, 3.8)
        left, middle, right = fig.subplots(1, 3)
        _amplification_panel(left, name, amp, conditional, framework)
        bound_chart(middle, alone, "alone: on Python's upstream values")
        bound_chart(right, conditional, "conditional: on C's upstream values")
        gain = amp.gain()
        gains = (
            f"gain (carried through / received) median {np.median(gain):.3g}, max {np.max(gain):.3g} over "
            f"{gain.size} rows fed a difference"
            if gain.size
            else "fed no difference (it reads the pipeline's input only)"
        )
        caption = (
            f"stage {name}: {gains}; it adds at most {amp.added.max(initial=0.0):.3g} (Py: {framework}; a difference "
            f"of 0 is drawn at the foot of the axis). Alone: {_rule_line(alone)}. On C's upstream values: "
            f"{_rule_line(conditional)}"
        )
        plots.append(Plot(f"stage {name}", caption, png(fig)))
    return plots
