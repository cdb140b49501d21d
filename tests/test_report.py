"""--report and --json: the JSON document against the committed schema, the self-contained HTML page,
and that page rendered by headless Chromium."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import Image

import exporter.api
from exporter.check.report import render_html
from exporter.cli import main

from helpers import ROOT, perturb_weight, run_quietly, validate_document

EXAMPLE = ROOT / "examples" / "efficiency.keras"
SINGLE = ["--dispatch", "none"]  # the network's code once: a quarter of the compile time (and of each traced step's)
C_COLOR = (0xD6, 0x27, 0x28)  # the plots' colour for C (exporter/check/report/plots.py)


@pytest.fixture(scope="module")
def passing(tmp_path_factory, keras):
    out = tmp_path_factory.mktemp("passing")
    result = run_quietly(
        EXAMPLE, "-o", out / "e.c", "--samples", 1000, "--report", out / "report", "--pt-column", 3, "--json", *SINGLE
    )
    return (*result, out / "report")


@pytest.fixture(scope="module")
def failing(tmp_path_factory, keras):
    """The example with one weight of step 3 ('residual_2+skip_2') broken in the C, through the test hook."""

    def broken_export(*args, **kwargs):
        ex = original(*args, **kwargs)
        ex.c_edit = functools.partial(perturb_weight, op_name="residual_2+skip_2")
        return ex

    original = exporter.api.export_chain
    out = tmp_path_factory.mktemp("failing")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exporter.api, "export_chain", broken_export)
        result = run_quietly(EXAMPLE, "-o", out / "e.c", "--samples", 500, "--report", out / "report", *SINGLE)
    return (*result, out / "report")


def test_json_output_is_the_report(passing):
    code, out, err, report_dir = passing
    assert code == 0, err
    assert err == "", "--json prints no progress lines"
    document = json.loads(out)
    assert document == json.loads((report_dir / "report.json").read_text())
    validate_document(document)
    assert document["kind"] == "export" and document["passed"] is True and document["exit_code"] == 0
    assert document["model"]["sha256"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    parity = document["parity"]
    assert (parity["samples"], parity["edge_rows"], parity["user_rows"]) == (1000, 65, 0)
    assert parity["rows"] == 1065 and len(parity["outputs"]) == 4 and len(parity["input_ranges"]) == 12
    assert all(o["max_abs"] < 1e-5 and o["failures"] == 0 for o in parity["outputs"])
    assert parity["input_ranges"][0]["min"] == -100.0  # the one-hot spikes of the edge rows
    assert {"load+export", "compile", "parity", "report"} <= set(document["timings"])
    assert document["trace"] is None and document["inspection"]["totals"]["params"] == 84_740


def test_failing_parity_is_traced_and_reported(failing):
    code, out, err, report_dir = failing
    assert code == 1, err
    assert "parity: FAILED" in out
    assert "trace: first step beyond tolerance: step 3 'residual_2+skip_2' (Dense 128->128, tanh, + skip)" in out
    document = json.loads((report_dir / "report.json").read_text())
    validate_document(document)
    assert document["passed"] is False and document["exit_code"] == 1
    drift = {"index": 3, "name": "residual_2+skip_2", "op": "Dense 128->128, tanh, + skip"}
    assert document["trace"]["first_drift"] == drift
    assert [s["drifts"] for s in document["trace"]["steps"][:3]] == [False] * 3
    html = (report_dir / "report.html").read_text()
    assert "parity FAILED" in html and "residual_2" in html


def test_schema_rejects_what_it_should(passing):
    """The schema is strict enough to catch a missing, misspelled or mistyped field."""
    document = json.loads(passing[1])
    for broken in (
        {k: v for k, v in document.items() if k != "parity"},
        {**document, "pased": True},
        {**document, "parity": {**document["parity"], "rows": "1065"}},
        {**document, "model": {**document["model"], "sha256": "not a hash"}},
        {**document, "kind": "inspect"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_document(broken)


def test_every_json_document_matches_the_schema(tmp_path, keras):
    """inspect (exportable and refused), user errors, usage errors, and an unchecked export."""
    L = keras.layers
    x = keras.Input((3,))
    refused = tmp_path / "refused.keras"
    keras.Model(x, L.Dense(2)(L.Lambda(lambda t: t * 2, name="twice")(x))).save(refused)
    cases = [
        (["inspect", EXAMPLE, "--json"], 0, "inspect"),
        (["inspect", refused, "--json"], 2, "inspect"),
        ([refused, "--json", "-o", tmp_path / "r.c"], 2, "error"),
        ([tmp_path / "missing.keras", "--json"], 2, "error"),
        ([EXAMPLE, "--json", "--pt-column", "2"], 2, "error"),
        ([EXAMPLE, "--json", "--no-check", "-o", tmp_path / "e.c"], 0, "export"),
    ]
    for args, expected_code, kind in cases:
        code, out, err = run_quietly(*args)
        assert code == expected_code, (args, err)
        document = json.loads(out)
        validate_document(document)
        assert document["kind"] == kind and document["exit_code"] == expected_code
    assert document["parity"] is None and document["passed"] is None
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stdout(io.StringIO()) as out:
        main([str(EXAMPLE), "--json", "--samples", "many"])
    assert exc.value.code == 2
    validate_document(json.loads(out.getvalue()))
    assert "--samples" in json.loads(out.getvalue())["error"]


def test_html_is_self_contained(passing):
    html = (passing[3] / "report.html").read_text()
    assert "<script" not in html.lower()
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html)
    images = [link for link in links if link.startswith("data:image/png;base64,")]
    assert links == images, "every link must be an embedded image: the page may not fetch anything"
    assert len(images) == 4 + 1 + 1  # per output, class probabilities, the pT curves
    for image in images:
        png = Image.open(io.BytesIO(base64.b64decode(image.split(",", 1)[1])))
        assert png.format == "PNG" and png.width > 400
    for fragment in (
        "parity PASSED",
        "efficiency.keras",
        "Class probabilities",
        "pT-like input 3",
        "logits+probabilities",
        "84,740",
        "Input ranges",
    ):
        assert fragment in html


HOSTILE = '</td><script>alert(1)</script><img src=x onerror="a()">\x1b[2K\r\u202e&'


def _hostile(value):
    """Every string of a document with ``HOSTILE`` around it (names, ops, reasons, the file name...)."""
    if isinstance(value, dict):
        return {k: _hostile(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hostile(v) for v in value]
    return HOSTILE + value + HOSTILE if isinstance(value, str) else value


def test_strings_from_files_are_inert_in_the_page(passing, failing):
    """Names reach the page as text: markup escaped by Jinja, control characters and bidi overrides shown
    as escapes (issue 27, item 11), on the export's and the trace's document alike."""
    for report_dir in (passing[3], failing[3]):
        document = _hostile(json.loads((report_dir / "report.json").read_text()))
        html = render_html(document, [])
        assert "<script" not in html and "<img src=x" not in html and 'onerror="' not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        for raw in ("\x1b", "\r", "\u202e"):
            assert raw not in html
        assert "\\x1b[2K\\x0d\\u202e&amp;" in html


def chromium() -> str:
    """Debian's chromium; missing, it fails the test under CI=true (where .ci/run installs it), else skips."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        message = "headless Chromium is needed for the report screenshot: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_report_renders_in_headless_chromium(passing, tmp_path):
    browser = chromium()
    shot = tmp_path / "report.png"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        (passing[3] / "report.html").resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int32)
    assert pixels.shape == (2000, 1200, 3)
    ink = np.any(pixels < 235, axis=2)
    assert 0.02 < ink.mean() < 0.9, f"{ink.mean():.3f} of the page is not white"
    plot_red = np.all(np.abs(pixels - np.array(C_COLOR)) < 40, axis=2)
    assert plot_red.sum() > 2000, "the first plots (C in red) must be drawn on the page"
    badge_green = np.all(np.abs(pixels - np.array((0x2C, 0xA0, 0x2C))) < 30, axis=2)
    assert badge_green[:200].sum() > 500, "the green 'parity PASSED' badge must be at the top"


def tiny_errors(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Outputs of magnitude ``scale`` where C is off by one ULP on half the rows and equal on the others:
    errors of about ``1e-7 * scale``, far below the default tolerance (1e-5 + 1e-4 |ref|)."""
    ref = (np.random.default_rng(0).normal(size=(1000, 1)) * scale).astype(np.float32)
    c_out = ref.copy()
    c_out[::2] = np.nextafter(ref[::2], np.float32(np.inf))
    return c_out, ref


@pytest.mark.parametrize("scale", [1.0, 1e-5])
def test_error_histogram_shows_errors_far_below_the_tolerance(scale):
    """The histogram of |C - reference| draws its bars when every error is 1e-7 to 1e-12 against a tolerance
    of 1e-5 (a linear axis reaching the tolerance left them one invisible sliver), and a bin of its own for
    the rows where C is exactly the reference. Read from the PNG the report embeds."""
    from exporter.check.compare import ParityArrays, compare
    from exporter.check.report.plots import output_plots
    from exporter.common.options import DEFAULT_ATOL, DEFAULT_RTOL

    c_out, ref = tiny_errors(scale)
    report = compare(c_out, ref, ref, DEFAULT_ATOL, DEFAULT_RTOL, "Keras")
    report.arrays = ParityArrays(ref, c_out, ref)
    (plot,) = output_plots(report, "Keras")
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(plot.png))).convert("RGB"), dtype=np.int32)
    histogram = pixels[:, pixels.shape[1] // 2 :]  # the right panel; the scatter is on the left
    bars = np.all(np.abs(histogram - np.array((0xE2, 0x67, 0x68))) < 30, axis=2)  # C's colour at alpha 0.7
    zero_bin = np.all(np.abs(histogram - 115) < 8, axis=2)  # grey 0.45
    assert np.count_nonzero(bars.any(axis=0)) >= 30, "the errors' bars must span a visible part of the axis"
    assert np.count_nonzero(zero_bin.any(axis=0)) >= 20, "the rows with no error must have their bin"
    assert report.passed and 0 < report.columns[0].max_abs < 1e-6 * scale  # far below the tolerance indeed
